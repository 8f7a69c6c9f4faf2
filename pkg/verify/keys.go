package verify

import (
	"crypto"

	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/sigstore/sigstore/pkg/signature"
)

// trustedKey is a public key with every signature scheme accepted for it
// (see keys.Schemes).
type trustedKey struct {
	id        string
	pub       crypto.PublicKey
	verifiers []signature.Verifier
}

func newTrustedKey(pub crypto.PublicKey) (trustedKey, error) {
	id, err := keys.KeyID(pub)
	if err != nil {
		return trustedKey{}, err
	}
	schemes, err := keys.Schemes(pub)
	if err != nil {
		return trustedKey{}, err
	}
	k := trustedKey{id: id, pub: pub}
	for _, s := range schemes {
		k.verifiers = append(k.verifiers, s.Verifier)
	}
	return k, nil
}
