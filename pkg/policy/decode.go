package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/imgsign/imgsign/internal/jsonscan"
)

// Estimated bytes the Go values of decoded JSON take on the heap, counted
// against MaxDecodedBytes, garbage of growing maps and slices included
// (TestDecodeEstimate checks them against what decoding really allocates):
// a value held in an interface slot, the slot counted by its container.
const (
	costString   = 64  // the string header an interface points to; then its bytes, rounded
	costNumber   = 48  // a float64 in an interface, and parsing it
	costMap      = 320 // a small map: its header and first group of slots
	costMapEntry = 160 // a key and value slot, with the table's spare room and growth
	costSlice    = 48  // a slice header
	costElem     = 48  // an element slot, with append's spare room and garbage
)

// stringCost is the estimated cost of a string of n bytes (large ones
// are rounded up to whole pages).
func stringCost(n int) int { return costString + n + n/128 }

// decoder builds the value encoding/json's Unmarshal into an any would
// (maps, slices, strings, float64, bool, nil) from JSON already known to
// be valid, counting the estimated memory of what it builds and stopping
// once it passes the budget: a hostile statement of small values cannot
// make it use 10-40 times its size.
type decoder struct {
	s    jsonscan.Scanner
	left int
	what string // what is decoded, for the error
}

// decodeBounded decodes the valid JSON data within MaxDecodedBytes.
func decodeBounded(data []byte, what string) (any, error) {
	d := &decoder{s: jsonscan.Scanner{Data: data}, left: MaxDecodedBytes, what: what}
	d.s.Space()
	return d.value()
}

// unquote is jsonscan.Unquote with encoding/json's handling of invalid
// UTF-8 (each bad byte becomes U+FFFD), so that conditions see what they
// saw when statements were decoded by encoding/json.
func unquote(raw []byte) string {
	if !utf8.Valid(raw) {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	return jsonscan.Unquote(raw)
}

func (d *decoder) spend(n int) error {
	d.left -= n
	if d.left < 0 {
		return fmt.Errorf("%w: %w: %s would take more than %d MiB of memory decoded (%d bytes of JSON); a condition that reads it cannot be evaluated on this statement", ErrFailed, ErrTooLarge, d.what, MaxDecodedBytes>>20, len(d.s.Data))
	}
	return nil
}

func (d *decoder) value() (any, error) {
	data := d.s.Data
	switch c := data[d.s.I]; c {
	case '{':
		if err := d.spend(costMap); err != nil {
			return nil, err
		}
		m := map[string]any{}
		d.s.I++
		for {
			d.s.Space()
			switch data[d.s.I] {
			case '}':
				d.s.I++
				return m, nil
			case ',':
				d.s.I++
				d.s.Space()
			}
			raw := d.s.Str()
			if err := d.spend(costMapEntry + stringCost(len(raw)) - costString); err != nil {
				return nil, err
			}
			k := unquote(raw)
			d.s.Space()
			d.s.I++ // ':'
			d.s.Space()
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	case '[':
		if err := d.spend(costSlice); err != nil {
			return nil, err
		}
		a := []any{}
		d.s.I++
		for {
			d.s.Space()
			switch data[d.s.I] {
			case ']':
				d.s.I++
				return a, nil
			case ',':
				d.s.I++
				d.s.Space()
			}
			if err := d.spend(costElem); err != nil {
				return nil, err
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case '"':
		raw := d.s.Str()
		if err := d.spend(stringCost(len(raw))); err != nil {
			return nil, err
		}
		return unquote(raw), nil
	case 't', 'f', 'n':
		d.s.Scalar()
		switch c {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
		return nil, nil
	default:
		start := d.s.I
		d.s.Scalar()
		if err := d.spend(costNumber); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(string(data[start:d.s.I]), 64)
		if err != nil { // out of range: encoding/json refuses it too
			return nil, fmt.Errorf("%w: %s: number %s: %v", ErrFailed, d.what, data[start:d.s.I], err)
		}
		return f, nil
	}
}
