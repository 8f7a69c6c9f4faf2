package diff

import (
	"maps"
	"path"
	"slices"
	"strings"
)

// tree is the file tree a runtime would build from the layers read, on top
// of a base of shared layers that were not read (the layers both sides
// have, in the same order, at the bottom).
type tree struct {
	// files is every path the layers read leave in place.
	files map[string]*Entry
	// removed are paths whose base content the layers read delete
	// (whiteouts, and directories replaced by non-directories).
	removed map[string]bool
	// opaque are directories whose base content the layers read hide.
	opaque map[string]bool
	// noBase is set when there are no shared layers below: what the
	// layers read do not hold is absent.
	noBase bool
}

// buildTree applies layers (bottom first) as a runtime would, walking them
// from the top: the topmost entry of a path wins, a whiteout hides the path
// and everything under it in lower layers, an opaque marker hides the
// lower content of its directory, and a non-directory hides what lower
// layers put under its path.
func buildTree(layers []*layerIndex) *tree {
	t := &tree{files: map[string]*Entry{}, removed: map[string]bool{}, opaque: map[string]bool{}}
	for i := len(layers) - 1; i >= 0; i-- {
		var hides []*Entry
		// Within a layer the last entry of a path wins, as on extraction.
		for _, e := range slices.Backward(layers[i].entries) {
			switch e.Type {
			case TypeWhiteout, TypeOpaque:
				hides = append(hides, e)
				continue
			}
			if _, done := t.files[e.Path]; done || t.hidden(e.Path) {
				continue
			}
			t.files[e.Path] = e
			if e.Type != TypeDir {
				hides = append(hides, &Entry{Path: e.Path, Type: TypeWhiteout})
			}
		}
		// Markers hide lower layers only, never entries of their own.
		for _, h := range hides {
			kept, ok := t.files[h.Path]
			switch {
			case h.Type == TypeOpaque, ok && kept.Type == TypeDir:
				// A whiteout of a directory this layer or a higher one
				// recreates hides its lower content, as an opaque
				// marker does.
				t.opaque[h.Path] = true
			default:
				t.removed[h.Path] = true
			}
		}
	}
	return t
}

// hidden reports whether layers above have removed p: p or one of its
// parents removed, or a parent (not p itself) opaque.
func (t *tree) hidden(p string) bool {
	if t.removed[p] {
		if _, kept := t.files[p]; !kept {
			return true
		}
	}
	for q := p; q != "/"; {
		q = path.Dir(q)
		if t.opaque[q] {
			return true
		}
		if t.removed[q] {
			if e, kept := t.files[q]; !kept || e.Type != TypeDir {
				return true
			}
		}
	}
	return false
}

// baseHidden reports whether the base's content at p is hidden by the
// layers read: p (or a parent) removed, or a parent opaque.
func (t *tree) baseHidden(p string) bool {
	if t.noBase || t.removed[p] {
		return true
	}
	for q := p; q != "/"; {
		q = path.Dir(q)
		if t.opaque[q] || t.removed[q] {
			return true
		}
	}
	return false
}

// compareOptions choose what file differences count.
type compareOptions struct {
	ignoreTimestamps bool
	ignored          func(string) bool
}

// FileDifference is one path that differs between the two trees.
type FileDifference struct {
	Path string `json:"path"`
	// Kind is added (only in B), removed (only in A) or changed.
	Kind string `json:"kind"`
	// Changed lists the attributes that differ: type, mode, uid, gid,
	// size, content, link, xattrs, mtime.
	Changed []string `json:"changed,omitempty"`
	A       *Entry   `json:"a,omitempty"`
	B       *Entry   `json:"b,omitempty"`
	// Note says when a side's state comes from the shared layers, which
	// were not read because both sides have them.
	Note string `json:"note,omitempty"`
}

// Kinds of difference.
const (
	KindAdded     = "added"
	KindRemoved   = "removed"
	KindChanged   = "changed"
	KindReordered = "reordered"
	KindEncoding  = "encoding"
)

const sharedNote = "the other side's content at this path comes from the shared layers (identical on both sides, not read)"

// compareTrees lists the differences between a and b, paths sorted.
func compareTrees(a, b *tree, o compareOptions) []FileDifference {
	paths := map[string]bool{}
	for _, t := range []*tree{a, b} {
		for p := range t.files {
			paths[p] = true
		}
		for p := range t.removed {
			paths[p] = true
		}
		for p := range t.opaque {
			paths[p] = true
		}
	}
	var out []FileDifference
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		if o.ignored(p) {
			continue
		}
		ea, eb := a.files[p], b.files[p]
		switch {
		case ea != nil && eb != nil:
			if ch := changedFields(ea, eb, o.ignoreTimestamps); len(ch) > 0 {
				out = append(out, FileDifference{Path: p, Kind: KindChanged, Changed: ch, A: clean(ea, o), B: clean(eb, o)})
			}
		case ea != nil:
			if b.baseHidden(p) {
				out = append(out, FileDifference{Path: p, Kind: KindRemoved, A: clean(ea, o)})
			} else {
				out = append(out, FileDifference{Path: p, Kind: KindChanged, Changed: []string{"layer"}, A: clean(ea, o), Note: "B: " + sharedNote})
			}
		case eb != nil:
			if a.baseHidden(p) {
				out = append(out, FileDifference{Path: p, Kind: KindAdded, B: clean(eb, o)})
			} else {
				out = append(out, FileDifference{Path: p, Kind: KindChanged, Changed: []string{"layer"}, B: clean(eb, o), Note: "A: " + sharedNote})
			}
		default:
			// Neither side's layers read have p: it is a marker. It
			// matters only when it hides shared content on one side.
			ha, hb := a.baseHidden(p), b.baseHidden(p)
			oa, ob := a.opaque[p], b.opaque[p]
			switch {
			case ha && !hb:
				out = append(out, FileDifference{Path: p, Kind: KindRemoved, Note: "A's layers delete it; B keeps it from the shared layers, if they have it"})
			case hb && !ha:
				out = append(out, FileDifference{Path: p, Kind: KindAdded, Note: "B's layers delete it; A keeps it from the shared layers, if they have it"})
			case oa != ob:
				out = append(out, FileDifference{Path: p, Kind: KindChanged, Changed: []string{"opaque"}, Note: "one side's layers hide the shared layers' content of this directory (opaque)"})
			}
		}
	}
	return out
}

// clean returns e as reported: without mtime when timestamps are ignored.
func clean(e *Entry, o compareOptions) *Entry {
	if !o.ignoreTimestamps || e.ModTime == nil {
		return e
	}
	c := *e
	c.ModTime = nil
	return &c
}

// changedFields lists the attributes in which a and b differ.
func changedFields(a, b *Entry, ignoreTimestamps bool) []string {
	var ch []string
	add := func(name string, differ bool) {
		if differ {
			ch = append(ch, name)
		}
	}
	add("type", a.Type != b.Type)
	add("mode", a.Mode != b.Mode)
	add("uid", a.UID != b.UID)
	add("gid", a.GID != b.GID)
	add("size", a.Size != b.Size)
	add("content", a.Digest != b.Digest)
	add("link", a.Link != b.Link)
	add("xattrs", !maps.Equal(a.Xattrs, b.Xattrs))
	if !ignoreTimestamps {
		add("mtime", !sameTime(a, b))
	}
	return ch
}

func sameTime(a, b *Entry) bool {
	if a.ModTime == nil || b.ModTime == nil {
		return a.ModTime == b.ModTime
	}
	return a.ModTime.Equal(*b.ModTime)
}

// layerTree is one layer's own entries by path, markers included, for
// comparing layer by layer.
func layerTree(l *layerIndex) *tree {
	t := &tree{files: map[string]*Entry{}, removed: map[string]bool{}, opaque: map[string]bool{}}
	for _, e := range l.entries {
		t.files[e.Path] = e
	}
	t.noBase = true
	return t
}

// globMatcher returns a function reporting whether a path, or one of its
// parents, matches one of the globs (path.Match syntax; a glob without a
// leading / is taken from the root).
func globMatcher(globs []string) func(string) bool {
	norm := make([]string, len(globs))
	for i, g := range globs {
		if !strings.HasPrefix(g, "/") {
			g = "/" + g
		}
		norm[i] = path.Clean(g)
	}
	return func(p string) bool {
		for q := p; ; q = path.Dir(q) {
			for _, g := range norm {
				if ok, _ := path.Match(g, q); ok {
					return true
				}
			}
			if q == "/" {
				return false
			}
		}
	}
}

// ValidGlob reports a malformed --ignore glob.
func ValidGlob(g string) error {
	_, err := path.Match(g, "/")
	return err
}
