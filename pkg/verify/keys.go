package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/sigstore/sigstore/pkg/signature"
)

// trustedKey is a public key with every signature scheme accepted for it.
type trustedKey struct {
	id        string
	verifiers []signature.Verifier
}

// newTrustedKey returns the verifiers for pub. More than one scheme is
// accepted per key because cosign signs differently by version and key type
// (ECDSA P-384 over SHA-384 in cosign v3, SHA-256 elsewhere; Ed25519 pure or
// pre-hashed). Every scheme accepted is a sound signature by the same key.
func newTrustedKey(pub crypto.PublicKey) (trustedKey, error) {
	id, err := keys.KeyID(pub)
	if err != nil {
		return trustedKey{}, err
	}
	var vs []signature.Verifier
	add := func(v signature.Verifier, err error) {
		if err == nil {
			vs = append(vs, v)
		}
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		add(signature.LoadECDSAVerifier(k, crypto.SHA256))
		switch k.Curve {
		case elliptic.P384():
			add(signature.LoadECDSAVerifier(k, crypto.SHA384))
		case elliptic.P521():
			add(signature.LoadECDSAVerifier(k, crypto.SHA512))
		}
	case ed25519.PublicKey:
		add(signature.LoadED25519Verifier(k))
		add(signature.LoadED25519phVerifier(k))
	case *rsa.PublicKey:
		add(signature.LoadRSAPKCS1v15Verifier(k, crypto.SHA256))
	}
	if len(vs) == 0 {
		return trustedKey{}, fmt.Errorf("%w: key type %T", keys.ErrUnsupportedKey, pub)
	}
	return trustedKey{id: id, verifiers: vs}, nil
}
