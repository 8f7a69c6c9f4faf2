package statement

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// maxDepth is the nesting encoding/json accepts.
const maxDepth = 10000

// where a JSON object sits in a statement, for the key checks.
type level int

const (
	levelOther        level = iota
	levelTop                // the statement: decoded into a struct
	levelSubjectArray       // the subject array
	levelSubject            // one subject: decoded into a struct
)

// known are the members of the statement and of a subject, folded.
var known = map[level]map[string]bool{
	levelTop:     {foldKey("_type"): true, foldKey("subject"): true, foldKey("predicateType"): true, foldKey("predicate"): true},
	levelSubject: {foldKey("name"): true, foldKey("digest"): true, foldKey("annotations"): true},
}

// checkKeys refuses members the Statement type does not have, and a
// statement that two JSON readers could read differently: a key twice in one object, at any level (encoding/json keeps
// the last, other readers the first), or two keys of the statement or of a
// subject that differ only in case (encoding/json matches struct fields
// case-insensitively, so "PredicateType" may stand in for "predicateType"
// while a map view, such as the one policy conditions get, keeps both).
//
// It scans the input in place, allocating only for keys, so that checking
// a large statement costs no copy of it. Malformed JSON is left to the
// decoder that follows (it is checked with json.Valid first).
func checkKeys(data []byte) error {
	if !json.Valid(data) {
		return nil
	}
	s := &keyScanner{data: data}
	s.space()
	return s.value(levelTop, 0, "")
}

// keyScanner walks JSON already known to be valid.
type keyScanner struct {
	data []byte
	i    int
}

func (s *keyScanner) space() {
	for s.i < len(s.data) && (s.data[s.i] == ' ' || s.data[s.i] == '\t' || s.data[s.i] == '\n' || s.data[s.i] == '\r') {
		s.i++
	}
}

// str skips a string at s.i and returns its raw text, quotes included.
func (s *keyScanner) str() []byte {
	start := s.i
	s.i++
	for s.data[s.i] != '"' {
		if s.data[s.i] == '\\' {
			s.i++
		}
		s.i++
	}
	s.i++
	return s.data[start:s.i]
}

func (s *keyScanner) value(lv level, depth int, path string) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested more than %d deep", ErrInvalid, maxDepth)
	}
	switch s.data[s.i] {
	case '"':
		s.str()
	case '{':
		s.i++
		fold := lv == levelTop || lv == levelSubject
		keys := map[string]bool{}
		folded := map[string]string{}
		for s.space(); s.data[s.i] != '}'; s.space() {
			if s.data[s.i] == ',' {
				s.i++
				s.space()
			}
			var k string
			_ = json.Unmarshal(s.str(), &k)
			if keys[k] {
				return fmt.Errorf("%w: ambiguous: key %q appears twice in %s", ErrInvalid, k, where(path))
			}
			keys[k] = true
			child := levelOther
			if fold {
				fk := foldKey(k)
				if other, dup := folded[fk]; dup {
					return fmt.Errorf("%w: ambiguous: keys %q and %q in %s differ only in case", ErrInvalid, other, k, where(path))
				}
				folded[fk] = k
				if !known[lv][fk] {
					return fmt.Errorf("%w: unknown member %q in %s", ErrInvalid, k, where(path))
				}
				if lv == levelTop && fk == foldKey("subject") {
					child = levelSubjectArray
				}
			}
			s.space()
			s.i++ // ':'
			s.space()
			if err := s.value(child, depth+1, path+"."+k); err != nil {
				return err
			}
		}
		s.i++
	case '[':
		s.i++
		child := levelOther
		if lv == levelSubjectArray {
			child = levelSubject
		}
		for n := 0; ; n++ {
			s.space()
			if s.data[s.i] == ']' {
				break
			}
			if s.data[s.i] == ',' {
				s.i++
				s.space()
			}
			if err := s.value(child, depth+1, fmt.Sprintf("%s[%d]", path, n)); err != nil {
				return err
			}
		}
		s.i++
	default: // number, true, false, null
		for s.i < len(s.data) && !strings.ContainsRune(",}] \t\r\n", rune(s.data[s.i])) {
			s.i++
		}
	}
	return nil
}

func where(path string) string {
	if path == "" {
		return "the statement"
	}
	return strings.TrimPrefix(path, ".")
}

// foldKey maps k to a key shared by every string encoding/json would match
// against the same struct field: each rune replaced by the smallest rune of
// its simple case-folding orbit (so K, k and the Kelvin sign agree, as do
// S, s and ſ).
func foldKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
