package keys

import (
	"errors"
	"testing"
)

// FuzzParseKey feeds arbitrary bytes to the private and public key parsers.
// They must never panic, and every failure must match one sentinel error.
func FuzzParseKey(f *testing.F) {
	k, err := Generate(ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	enc, err := EncryptPrivateKey(k, []byte("pw"))
	if err != nil {
		f.Fatal(err)
	}
	pub, _ := MarshalPublicKey(k.Public())
	f.Add(enc)
	f.Add(pub)
	f.Add([]byte(fixedPub))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"))

	sentinels := []error{ErrIncorrectPassword, ErrMalformedKey, ErrUnsupportedKey, ErrPublicKeyGiven, ErrPrivateKeyGiven, ErrPasswordRequired}
	known := func(err error) bool {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParsePrivateKey(data, pw("pw")); err != nil && !known(err) {
			t.Fatalf("ParsePrivateKey: error matches no sentinel: %v", err)
		} else if err == nil && s == nil {
			t.Fatal("ParsePrivateKey returned neither key nor error")
		}
		if p, err := ParsePublicKey(data); err != nil && !known(err) {
			t.Fatalf("ParsePublicKey: error matches no sentinel: %v", err)
		} else if err == nil && p == nil {
			t.Fatal("ParsePublicKey returned neither key nor error")
		}
		if _, err := Inspect(data, pw("pw")); err != nil && !known(err) {
			t.Fatalf("Inspect: error matches no sentinel: %v", err)
		}
	})
}
