package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// writeIndentedArray writes JSON values as one array, byte for byte as
// json.Encoder with SetIndent("", "  ") writes a []json.RawMessage (HTML
// characters escaped in strings, as it does), but streaming: the encoder
// makes two copies of its whole output, which for attestations up to the
// size limit would cost more memory than verifying them.
func writeIndentedArray(w io.Writer, vals []json.RawMessage) error {
	for i, v := range vals {
		if !json.Valid(v) {
			return fmt.Errorf("value %d is not JSON", i)
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	ind := &indenter{w: bw}
	ind.punct('[')
	for i, v := range vals {
		if i > 0 {
			ind.punct(',')
		}
		ind.value(v)
	}
	ind.punct(']')
	bw.WriteByte('\n')
	return bw.Flush()
}

// indenter writes valid JSON indented, as encoding/json's Indent does
// after Compact: a new line and two spaces per level inside non-empty
// objects and arrays, ": " between a key and its value.
type indenter struct {
	w     *bufio.Writer
	depth int
	// open is set after { or [, until what follows tells whether the
	// container is empty ({} and [] stay on one line).
	open bool
}

func (d *indenter) newline() {
	d.w.WriteByte('\n')
	for range d.depth {
		d.w.WriteString("  ")
	}
}

// lead starts a value or key: on a new line when it opens a container.
func (d *indenter) lead() {
	if d.open {
		d.open = false
		d.depth++
		d.newline()
	}
}

func (d *indenter) punct(c byte) {
	switch c {
	case '{', '[':
		d.lead()
		d.open = true
		d.w.WriteByte(c)
	case ',':
		d.w.WriteByte(c)
		d.newline()
	case ':':
		d.w.WriteString(": ")
	case '}', ']':
		if d.open {
			d.open = false
		} else {
			d.depth--
			d.newline()
		}
		d.w.WriteByte(c)
	}
}

const hexDigits = "0123456789abcdef"

// value writes one valid JSON value.
func (d *indenter) value(v []byte) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ' ', '\t', '\n', '\r':
		case '{', '[', ',', ':', '}', ']':
			d.punct(c)
		case '"':
			d.lead()
			i = d.str(v, i)
		default: // numbers and literals
			d.lead()
			d.w.WriteByte(c)
		}
	}
}

// inString are the bytes str stops at; others are copied in runs.
var inString = func() (t [256]bool) {
	for _, c := range []byte{'"', '\\', '<', '>', '&', 0xE2} {
		t[c] = true
	}
	return t
}()

// str writes the string starting at v[i], escaping <, >, & and U+2028
// and U+2029 as encoding/json does, and returns the index of its closing
// quote.
func (d *indenter) str(v []byte, i int) int {
	d.w.WriteByte('"')
	for i++; ; i++ {
		run := i
		for !inString[v[i]] {
			i++
		}
		d.w.Write(v[run:i])
		switch c := v[i]; {
		case c == '"':
			d.w.WriteByte(c)
			return i
		case c == '\\':
			d.w.Write(v[i : i+2])
			i++
		case c == '<' || c == '>' || c == '&':
			d.w.WriteString(`\u00`)
			d.w.WriteByte(hexDigits[c>>4])
			d.w.WriteByte(hexDigits[c&0xF])
		case c == 0xE2 && i+2 < len(v) && v[i+1] == 0x80 && v[i+2]&^1 == 0xA8:
			d.w.WriteString(`\u202`)
			d.w.WriteByte(hexDigits[v[i+2]&0xF])
			i += 2
		default:
			d.w.WriteByte(c)
		}
	}
}
