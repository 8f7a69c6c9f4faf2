package statement

import (
	"bytes"
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

// checkKeys refuses a statement that two JSON readers could read
// differently: a key twice in one object, at any level (encoding/json keeps
// the last, other readers the first), or two keys of the statement or of a
// subject that differ only in case (encoding/json matches struct fields
// case-insensitively, so "PredicateType" may stand in for "predicateType"
// while a map view, such as the one policy conditions get, keeps both).
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil // the decoder reports malformed JSON
	}
	return walkKeys(dec, tok, levelTop, 0, "")
}

func walkKeys(dec *json.Decoder, tok json.Token, lv level, depth int, path string) error {
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth > maxDepth {
		return fmt.Errorf("%w: nested more than %d deep", ErrInvalid, maxDepth)
	}
	fold := lv == levelTop || lv == levelSubject
	switch d {
	case '{':
		keys := map[string]bool{}
		folded := map[string]string{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil
			}
			k, _ := kt.(string)
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
				if lv == levelTop && fk == foldKey("subject") {
					child = levelSubjectArray
				}
			}
			vt, err := dec.Token()
			if err != nil {
				return nil
			}
			if err := walkKeys(dec, vt, child, depth+1, path+"."+k); err != nil {
				return err
			}
		}
	case '[':
		child := levelOther
		if lv == levelSubjectArray {
			child = levelSubject
		}
		for i := 0; dec.More(); i++ {
			vt, err := dec.Token()
			if err != nil {
				return nil
			}
			if err := walkKeys(dec, vt, child, depth+1, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	_, _ = dec.Token() // the closing delimiter
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
