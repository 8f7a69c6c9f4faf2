package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// unb64 accepts standard and URL-safe base64, padded or not, as the DSSE
// specification allows either.
func unb64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return nil, err
}

// unb64Bytes is unb64 for bytes, decoding into one buffer.
func unb64Bytes(s []byte) ([]byte, error) {
	var dst []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if n := enc.DecodedLen(len(s)); cap(dst) < n {
			dst = make([]byte, n)
		}
		if n, err := enc.Decode(dst[:cap(dst)], s); err == nil {
			return dst[:n], nil
		}
	}
	return nil, errors.New("not base64")
}

// base64Payload decodes a JSON string of base64 straight from the input:
// encoding/json hands UnmarshalJSON a slice of the input, so no copy of the
// encoded text is made (unless it has escapes, which base64 never needs).
type base64Payload []byte

func (p *base64Payload) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return errors.New("payload is not a string")
	}
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		inner = []byte(s)
	}
	d, err := unb64Bytes(inner)
	if err != nil {
		return errors.New("payload is not base64")
	}
	*p = d
	return nil
}

// skipValue accepts any JSON value without keeping it.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }
