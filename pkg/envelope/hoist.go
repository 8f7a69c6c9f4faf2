package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imgsign/imgsign/internal/jsonscan"
)

// Hoist takes the base64 string at path out of the JSON document doc and
// decodes it in place, so that a document up to an attestation's size is
// held once: the decoded bytes are written over the encoded text and
// returned as payload, which aliases doc. doc is consumed, whether Hoist
// succeeds or not: callers use it no more, except through payload.
//
// path names an object member at each level from the top; each level
// lists the names the member may have (protojson accepts a field's JSON
// name and its proto name alike). A name given twice in one object on the
// path is refused as ambiguous. rest is a copy of doc with that string
// emptied (""), for a strict decoder of the format to read; more than
// maxRest bytes of it is refused, so the rest of a document never costs
// that decoder the size of the payload. Without the member, payload is
// nil and rest is doc itself (still at most maxRest bytes).
//
// The base64 is standard or URL-safe, padded or not (as DSSE and
// protojson accept); JSON escapes in it are decoded, and line breaks
// ignored, as encoding/json and then encoding/base64 would.
func Hoist(doc []byte, maxRest int, path ...[]string) (rest, payload []byte, err error) {
	if !json.Valid(doc) {
		return nil, nil, errors.New("not a JSON document")
	}
	s := scanner{jsonscan.Scanner{Data: doc}}
	s.Space()
	qs, qe := -1, -1 // the quotes around the string at path
	for level, names := range path {
		if s.Data[s.I] != '{' {
			break // not an object: the member is not there
		}
		at, err := s.member(names)
		if err != nil {
			return nil, nil, err
		}
		if at < 0 {
			break
		}
		s.I = at
		if level == len(path)-1 {
			if s.Data[at] != '"' {
				return nil, nil, fmt.Errorf("%s is not a base64 string", names[0])
			}
			qs = at
			s.Str()
			qe = s.I - 1
		}
	}
	if qs < 0 {
		if len(doc) > maxRest {
			return nil, nil, fmt.Errorf("%d bytes without a payload (limit %d)", len(doc), maxRest)
		}
		return doc, nil, nil
	}
	if n := len(doc) - (qe - qs - 1); n > maxRest {
		return nil, nil, fmt.Errorf("%d bytes besides the payload (limit %d)", n, maxRest)
	}
	rest = make([]byte, 0, len(doc)-(qe-qs-1))
	rest = append(append(rest, doc[:qs+1]...), doc[qe:]...)
	payload, err = decodeInPlace(doc[qs+1 : qe])
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not base64: %v", path[len(path)-1][0], err)
	}
	return rest, payload, nil
}

// decodeInPlace decodes the raw text of a JSON string holding base64 into
// its own first bytes. Each step reads a part before writing, and the
// output never catches up with the input (it is shorter), so no byte is
// written before it was read.
func decodeInPlace(text []byte) ([]byte, error) {
	// JSON escapes and line breaks out, in place (each escape is longer
	// than what it stands for). Any escape but of a base64 character or a
	// line break leaves a character base64 refuses, so it is refused here.
	n := len(text)
	if bytes.IndexByte(text, '\\') >= 0 {
		n = 0
		for r := 0; r < len(text); r++ {
			c := text[r]
			if c == '\\' {
				r++
				switch text[r] {
				case '/':
					c = '/'
				case 'n', 'r':
					continue
				case 'u':
					v := hex4(text[r+1 : r+5])
					if v >= 0x80 {
						return nil, errors.New("an escape that is not of a base64 character")
					}
					r += 4
					if v == '\n' || v == '\r' {
						continue
					}
					c = byte(v)
				default:
					return nil, errors.New("an escape that is not of a base64 character")
				}
			}
			text[n] = c
			n++
		}
	}
	src := text[:n]
	enc := base64.StdEncoding
	if bytes.ContainsAny(src, "-_") {
		enc = base64.URLEncoding
	}
	if len(src)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	// Parts of whole quanta; padding may end only the last.
	const part = 4096
	var buf [part / 4 * 3]byte
	w := 0
	for r := 0; r < len(src); r += part {
		end := min(r+part, len(src))
		m, err := enc.Decode(buf[:], src[r:end])
		if err != nil {
			return nil, err
		}
		if end < len(src) && m != len(buf) {
			return nil, errors.New("padding before the end")
		}
		w += copy(text[w:], buf[:m])
	}
	return text[:w:w], nil
}

// hex4 is the value of four hex digits (valid JSON guarantees they are).
func hex4(h []byte) rune {
	var v rune
	for _, c := range h {
		switch {
		case c >= 'a':
			c -= 'a' - 10
		case c >= 'A':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		v = v<<4 | rune(c)
	}
	return v
}

// scanner walks a document for Hoist.
type scanner struct{ jsonscan.Scanner }

// member walks the object at I (all of it, past its closing brace) and
// returns the offset of the value of the member named by one of names, or
// -1 without one. A second member of those names is an error.
func (s *scanner) member(names []string) (int, error) {
	at, found := -1, ""
	s.I++
	for s.Space(); s.Data[s.I] != '}'; s.Space() {
		if s.Data[s.I] == ',' {
			s.I++
			s.Space()
		}
		k := keyName(s.Str())
		s.Space()
		s.I++ // ':'
		s.Space()
		for _, n := range names {
			if k == n {
				if at >= 0 {
					return 0, fmt.Errorf("ambiguous: %q and %q in one object", found, k)
				}
				at, found = s.I, k
			}
		}
		s.Skip()
	}
	s.I++
	return at, nil
}

// maxName bounds the keys compared with names (member names are short; a
// longer key, even escaped, matches none of them).
const maxName = 64

// keyName returns the key whose raw text (quotes included) is raw, or ""
// when it is too long to be one of the names looked for.
func keyName(raw []byte) string {
	if len(raw) > 6*maxName+2 {
		return ""
	}
	return jsonscan.Unquote(raw)
}
