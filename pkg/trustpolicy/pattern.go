package trustpolicy

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// pattern is a compiled scope pattern.
type pattern struct {
	// segs are the normalised segments ("docker.io" written as
	// index.docker.io, the registry lowercased).
	segs []string
	// literal counts the segments without glob characters; wildcards
	// counts glob characters (*, ?, [ and \, ** counting 2); chars counts
	// the other characters.
	literal, wildcards, chars int
}

// key is the normalised pattern, for finding duplicates.
func (p pattern) key() string { return strings.Join(p.segs, "/") }

// moreSpecific reports whether p is tried before q.
func (p pattern) moreSpecific(q pattern) bool {
	if p.literal != q.literal {
		return p.literal > q.literal
	}
	if len(p.segs) != len(q.segs) {
		return len(p.segs) > len(q.segs)
	}
	if p.wildcards != q.wildcards {
		return p.wildcards < q.wildcards
	}
	return p.chars > q.chars
}

const globChars = `*?[\`

// compilePattern checks and normalises a scope pattern.
func compilePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("the scope pattern is empty")
	}
	if strings.Contains(s, "://") {
		return pattern{}, errors.New("a scope is a repository name, without a URL scheme")
	}
	var p pattern
	for i, seg := range strings.Split(s, "/") {
		if seg == "" {
			return pattern{}, errors.New("empty path segment (a leading, trailing or doubled \"/\")")
		}
		if i == 0 {
			seg = normaliseRegistry(seg)
		}
		if seg == "**" {
			p.segs = append(p.segs, seg)
			p.wildcards += 2
			continue
		}
		if strings.Contains(seg, "**") {
			return pattern{}, fmt.Errorf("segment %q: ** must be a whole path segment", seg)
		}
		for _, c := range seg {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			case strings.ContainsRune(globChars+"]^", c):
			case c == ':' && i == 0:
				// a registry's port
			case c >= 'A' && c <= 'Z':
				return pattern{}, fmt.Errorf("segment %q: repository paths are lowercase", seg)
			case c == ':' || c == '@':
				return pattern{}, fmt.Errorf("segment %q: a scope names repositories, not a tag or digest", seg)
			default:
				return pattern{}, fmt.Errorf("segment %q: character %q cannot appear in a repository name", seg, c)
			}
		}
		if _, err := path.Match(seg, ""); err != nil {
			return pattern{}, fmt.Errorf("segment %q: invalid glob: %w", seg, err)
		}
		n, inClass := 0, false
		for _, c := range seg {
			switch {
			case inClass:
				inClass = c != ']'
			case strings.ContainsRune(globChars, c):
				n++
				inClass = c == '['
			default:
				p.chars++
			}
		}
		if n == 0 {
			p.literal++
		}
		p.wildcards += n
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

// match reports whether p matches repo (split into segments) or a leading
// part of it ending at a segment boundary.
func (p pattern) match(repo []string) bool {
	// cur[j]: the pattern segments seen so far match repo[:j].
	cur := make([]bool, len(repo)+1)
	next := make([]bool, len(repo)+1)
	cur[0] = true
	for _, ps := range p.segs {
		if ps == "**" {
			seen := false
			for j := range next {
				seen = seen || cur[j]
				next[j] = seen
			}
		} else {
			next[0] = false
			for j := 1; j <= len(repo); j++ {
				next[j] = false
				if cur[j-1] {
					next[j] = matchSegment(ps, repo[j-1], j == 1)
				}
			}
		}
		cur, next = next, cur
	}
	for _, ok := range cur {
		if ok {
			return true
		}
	}
	return false
}

// matchSegment matches one pattern segment against one repository
// segment. A registry is normalised without its default port 443, so a
// registry pattern with a port glob (registry.example.com:*) is also
// tried against the registry with :443 written out.
func matchSegment(ps, seg string, registry bool) bool {
	if ok, _ := path.Match(ps, seg); ok {
		return true
	}
	if registry && strings.Contains(ps, ":") && !hasPort(seg) {
		ok, _ := path.Match(ps, seg+":443")
		return ok
	}
	return false
}

// hasPort reports whether a registry host names a port.
func hasPort(reg string) bool {
	i := strings.LastIndexByte(reg, ':')
	return i >= 0 && !strings.Contains(reg[i:], "]")
}

// splitRepository splits a repository name into normalised segments, or
// reports that it is not a repository name.
func splitRepository(s string) ([]string, bool) {
	segs := strings.Split(s, "/")
	if len(segs) < 2 {
		return nil, false
	}
	for i, seg := range segs {
		if seg == "" || strings.ContainsAny(seg, "@ \t\r\n") || (i > 0 && strings.Contains(seg, ":")) {
			return nil, false
		}
	}
	segs[0] = normaliseRegistry(segs[0])
	return segs, true
}
