package statement

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/imgsign/imgsign/internal/jsonscan"
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
// It returns the raw predicate, a slice of data.
//
// It scans the input in place, allocating only for the keys of the
// objects open at a time, so that checking a large statement costs no
// copy of it, whatever its shape. Malformed JSON is left to the decoder
// that follows (it is checked with json.Valid first).
func checkKeys(data []byte) (predicate []byte, err error) {
	if !json.Valid(data) {
		return nil, nil
	}
	s := &keyScanner{Scanner: jsonscan.Scanner{Data: data}}
	s.Space()
	err = s.value(levelTop, 0)
	return s.predicate, err
}

// keyScanner walks JSON already known to be valid.
type keyScanner struct {
	jsonscan.Scanner
	// path is where the scan is, for errors: keys and array indexes.
	path []any
	// predicate is the statement's predicate, once scanned.
	predicate []byte
}

func (s *keyScanner) value(lv level, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested more than %d deep", ErrInvalid, maxDepth)
	}
	switch s.Data[s.I] {
	case '"':
		s.Str()
	case '{':
		s.I++
		fold := lv == levelTop || lv == levelSubject
		keys := map[string]bool{}
		var folded map[string]string
		if fold {
			folded = map[string]string{}
		}
		for s.Space(); s.Data[s.I] != '}'; s.Space() {
			if s.Data[s.I] == ',' {
				s.I++
				s.Space()
			}
			k := jsonscan.Unquote(s.Str())
			if keys[k] {
				return fmt.Errorf("%w: ambiguous: key %q appears twice in %s", ErrInvalid, k, s.where())
			}
			keys[k] = true
			child := levelOther
			isPredicate := false
			if fold {
				fk := foldKey(k)
				if other, dup := folded[fk]; dup {
					return fmt.Errorf("%w: ambiguous: keys %q and %q in %s differ only in case", ErrInvalid, other, k, s.where())
				}
				folded[fk] = k
				if !known[lv][fk] {
					return fmt.Errorf("%w: unknown member %q in %s", ErrInvalid, k, s.where())
				}
				if lv == levelTop && fk == foldKey("subject") {
					child = levelSubjectArray
				}
				isPredicate = lv == levelTop && fk == foldKey("predicate")
			}
			s.Space()
			s.I++ // ':'
			s.Space()
			start := s.I
			s.path = append(s.path, k)
			if err := s.value(child, depth+1); err != nil {
				return err
			}
			s.path = s.path[:len(s.path)-1]
			if isPredicate {
				s.predicate = s.Data[start:s.I:s.I]
			}
		}
		s.I++
	case '[':
		s.I++
		child := levelOther
		if lv == levelSubjectArray {
			child = levelSubject
		}
		for n := 0; ; n++ {
			s.Space()
			if s.Data[s.I] == ']' {
				break
			}
			if s.Data[s.I] == ',' {
				s.I++
				s.Space()
			}
			s.path = append(s.path, n)
			if err := s.value(child, depth+1); err != nil {
				return err
			}
			s.path = s.path[:len(s.path)-1]
		}
		s.I++
	default: // number, true, false, null
		s.Scalar()
	}
	return nil
}

// where names the object being scanned, for errors.
func (s *keyScanner) where() string {
	if len(s.path) == 0 {
		return "the statement"
	}
	var b strings.Builder
	for i, p := range s.path {
		switch p := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
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
