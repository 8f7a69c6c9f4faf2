package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
)

// Signer is a signing key wherever it lives: in a key file, in a cloud KMS
// or on a PKCS#11 token. It is both a crypto.Signer (Public, and Sign over a
// digest) and a sigstore signature.SignerVerifier (SignMessage,
// VerifySignature, PublicKey), so every signing path in imgsign takes one
// of these and does not care where the private key is.
//
// Implementations are safe for concurrent use. Public and PublicKey never
// make a remote call: a remote key's public half is fetched once, when it
// is opened. SignMessage of a remote key hashes the message locally and
// sends only the digest.
type Signer interface {
	crypto.Signer
	signature.SignerVerifier
	// SigningHash is the digest every signature by this key is over:
	// SHA-256, except SHA-384/SHA-512 for remote P-384/P-521 keys (whose
	// providers sign those only) and SHA-512 (Ed25519ph) for Ed25519 blob
	// signatures.
	SigningHash() crypto.Hash
	// Ref names the key for messages: a file path or a key URI.
	Ref() string
}

// fileSigner is a Signer over a private key held in memory.
type fileSigner struct {
	crypto.Signer
	signature.SignerVerifier
	ref string
}

func (f *fileSigner) SigningHash() crypto.Hash { return crypto.SHA256 }
func (f *fileSigner) Ref() string              { return f.ref }

// AsSigner returns key as a Signer: key itself when it already is one (a
// remote key), otherwise a Signer over the in-memory private key that signs
// as cosign does (ECDSA and RSA PKCS #1 v1.5 over SHA-256, Ed25519 over the
// message). ref names the key in messages and may be empty.
func AsSigner(key crypto.Signer, ref string) (Signer, error) {
	if s, ok := key.(Signer); ok {
		return s, nil
	}
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: load signing key: %v", ErrUnsupportedKey, err)
	}
	return &fileSigner{Signer: key, SignerVerifier: sv, ref: ref}, nil
}

// remoteHash is the digest a remote key of this public key signs: KMS
// providers tie P-384 to SHA-384 and P-521 to SHA-512, and everything else
// imgsign accepts to SHA-256.
func remoteHash(pub crypto.PublicKey) crypto.Hash {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return crypto.SHA384
		case elliptic.P521():
			return crypto.SHA512
		}
	case ed25519.PublicKey:
		return 0
	}
	return crypto.SHA256
}
