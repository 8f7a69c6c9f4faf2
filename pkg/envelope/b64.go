package envelope

import "encoding/base64"

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
