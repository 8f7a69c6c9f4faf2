package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
)

// Scheme is one way a signature by a key is accepted.
type Scheme struct {
	Verifier signature.Verifier
	// Hash is the digest the signature is over; 0 means the signature is
	// over the whole message (pure Ed25519), which cannot be streamed.
	Hash crypto.Hash
}

// Schemes lists the signature schemes accepted for pub. More than one is
// accepted per key because cosign signs differently by version and key
// type: ECDSA over SHA-256 (and over SHA-384/SHA-512 for P-384/P-521 in
// cosign v3), RSA PKCS #1 v1.5 over SHA-256, and Ed25519 pure or pre-hashed
// (Ed25519ph, over SHA-512). Every scheme is a sound signature by the same
// key; this list is the one place that decides which are accepted.
func Schemes(pub crypto.PublicKey) ([]Scheme, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	var out []Scheme
	add := func(v signature.Verifier, err error, h crypto.Hash) {
		if err == nil {
			out = append(out, Scheme{v, h})
		}
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		v, err := signature.LoadECDSAVerifier(k, crypto.SHA256)
		add(v, err, crypto.SHA256)
		switch k.Curve {
		case elliptic.P384():
			v, err := signature.LoadECDSAVerifier(k, crypto.SHA384)
			add(v, err, crypto.SHA384)
		case elliptic.P521():
			v, err := signature.LoadECDSAVerifier(k, crypto.SHA512)
			add(v, err, crypto.SHA512)
		}
	case *rsa.PublicKey:
		v, err := signature.LoadRSAPKCS1v15Verifier(k, crypto.SHA256)
		add(v, err, crypto.SHA256)
	case ed25519.PublicKey:
		v, err := signature.LoadED25519phVerifier(k)
		add(v, err, crypto.SHA512)
		v2, err := signature.LoadED25519Verifier(k)
		add(v2, err, 0)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: key type %T", ErrUnsupportedKey, pub)
	}
	return out, nil
}
