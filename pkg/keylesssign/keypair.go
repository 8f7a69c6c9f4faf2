package keylesssign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// keypair is the run's ephemeral ECDSA P-256 key, held in memory only. It
// is sigstore-go's sign.Keypair; its digest view signs a SHA-256 digest
// computed elsewhere (a file read as a stream), which sigstore-go's own
// EphemeralKeypair cannot.
type keypair struct {
	priv *ecdsa.PrivateKey
	hint []byte
}

func newKeypair() (*keypair, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(der)
	return &keypair{priv: priv, hint: h[:]}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetKeyAlgorithm() string        { return "ECDSA" }
func (k *keypair) GetPublicKey() crypto.PublicKey { return &k.priv.PublicKey }
func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(&k.priv.PublicKey)
	return string(b), err
}

// SignData signs SHA-256(data); it returns the signature and the digest.
func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	d := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, d[:])
	return sig, d[:], err
}

// digestView is k signing data that already is a SHA-256 digest.
type digestView struct{ *keypair }

func (k digestView) SignData(_ context.Context, digest []byte) ([]byte, []byte, error) {
	if len(digest) != sha256.Size {
		return nil, nil, errors.New("not a SHA-256 digest")
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest)
	return sig, digest, err
}

// digestContent is a message signature over a file known by its SHA-256
// digest (sign-blob): sigstore-go's PlainData, without the file in memory.
type digestContent struct{ digest []byte }

func (c digestContent) PreAuthEncoding() []byte { return c.digest }

func (c digestContent) Bundle(b *protobundle.Bundle, sig, digest []byte, alg protocommon.HashAlgorithm) {
	b.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: alg, Digest: digest},
		Signature:     sig,
	}}
}
