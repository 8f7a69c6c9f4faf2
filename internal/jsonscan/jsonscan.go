// Package jsonscan walks JSON in place, without decoding or copying it:
// the shared cursor of imgsign's checks on large documents (a statement's
// keys, a DSSE payload's position). It reads JSON already known to be
// valid (json.Valid): on other input its results mean nothing.
package jsonscan

import (
	"bytes"
	"encoding/json"
)

// Scanner is a position in valid JSON.
type Scanner struct {
	Data []byte
	I    int
}

// Space skips white space.
func (s *Scanner) Space() {
	for s.I < len(s.Data) && isSpace(s.Data[s.I]) {
		s.I++
	}
}

// Str skips the string at I and returns its raw text, quotes included.
func (s *Scanner) Str() []byte {
	start := s.I
	s.I++
	for s.Data[s.I] != '"' {
		if s.Data[s.I] == '\\' {
			s.I++
		}
		s.I++
	}
	s.I++
	return s.Data[start:s.I]
}

// Scalar skips the number or literal (true, false, null) at I.
func (s *Scanner) Scalar() {
	for s.I < len(s.Data) && !isSpace(s.Data[s.I]) && !isEnd(s.Data[s.I]) {
		s.I++
	}
}

// Skip skips the value at I, whatever its depth, without recursion.
func (s *Scanner) Skip() {
	depth := 0
	for {
		switch c := s.Data[s.I]; {
		case c == '"':
			s.Str()
		case c == '{' || c == '[':
			depth++
			s.I++
		case c == '}' || c == ']':
			depth--
			s.I++
		case depth > 0 && (c == ',' || c == ':' || isSpace(c)):
			s.I++
		default:
			s.Scalar()
		}
		if depth == 0 {
			return
		}
	}
}

// Unquote returns the string whose raw JSON text (quotes included, as Str
// returns it) is raw.
func Unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var k string
	_ = json.Unmarshal(raw, &k)
	return k
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isEnd(c byte) bool { return c == ',' || c == '}' || c == ']' || c == ':' }
