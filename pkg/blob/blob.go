// Package blob signs and verifies arbitrary files (release archives, image
// tarballs) the way cosign sign-blob and verify-blob do, reading the file
// once as a stream so that its size does not matter.
//
// The signature is over the file's bytes: ECDSA and RSA (PKCS #1 v1.5) over
// its SHA-256 digest, Ed25519 in its pre-hashed form (Ed25519ph, over the
// SHA-512 digest) as cosign v3 does, since pure Ed25519 cannot be streamed.
// Verification also accepts what older cosign releases wrote (ECDSA over
// SHA-384 or SHA-512 for larger curves, pure Ed25519 for files up to
// MaxPureEd25519Bytes).
package blob

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// MaxPureEd25519Bytes is the largest file verified against a pure Ed25519
// signature, which needs the whole file in memory.
const MaxPureEd25519Bytes = 64 << 20

// ErrNotVerified is wrapped when a signature does not verify with any key.
var ErrNotVerified = errors.New("signature does not verify with any trusted key")

// Digests are the digests of a file, computed in one pass.
type Digests struct {
	SHA256, SHA384, SHA512 []byte
	// Size is the number of bytes read.
	Size int64
	// Head holds the file when it is at most MaxPureEd25519Bytes long
	// and it was asked for; nil otherwise.
	Head []byte
}

// Digest reads r to the end and returns its digests. With keepSmall, a file
// of at most MaxPureEd25519Bytes is also kept in memory.
func Digest(r io.Reader, keepSmall bool) (*Digests, error) {
	h256, h384, h512 := sha256.New(), sha512.New384(), sha512.New()
	w := []io.Writer{h256, h384, h512}
	var head *limitedBuffer
	if keepSmall {
		head = &limitedBuffer{max: MaxPureEd25519Bytes}
		w = append(w, head)
	}
	n, err := io.Copy(io.MultiWriter(w...), r)
	if err != nil {
		return nil, err
	}
	d := &Digests{SHA256: h256.Sum(nil), SHA384: h384.Sum(nil), SHA512: h512.Sum(nil), Size: n}
	if head != nil && !head.over {
		d.Head = head.Bytes()
	}
	return d, nil
}

// limitedBuffer keeps at most max bytes and notes when more were written.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if !b.over && b.Len()+len(p) <= b.max {
		b.Buffer.Write(p)
	} else if !b.over {
		b.over = true
		b.Reset()
	}
	return len(p), nil
}

// Signature is a signed file.
type Signature struct {
	// Sig is the raw signature.
	Sig []byte
	// Digest is the digest that was signed and its hash (SHA-256, or
	// SHA-512 for Ed25519ph).
	Digest []byte
	Hash   crypto.Hash
}

// Sign reads r once and signs it with key.
func Sign(key crypto.Signer, r io.Reader) (*Signature, error) {
	var (
		sv  signature.SignerVerifier
		h   crypto.Hash
		hh  hash.Hash
		err error
	)
	switch k := key.(type) {
	case keys.Signer:
		if h = k.SigningHash(); h == 0 {
			return nil, fmt.Errorf("%w: %s: Ed25519 keys in a KMS cannot sign blobs (imgsign signs blobs by digest)", keys.ErrUnsupportedKey, k.Ref())
		}
		sv, hh = k, h.New()
	case ed25519.PrivateKey:
		sv, err = signature.LoadED25519phSignerVerifier(k)
		h, hh = crypto.SHA512, sha512.New()
	default:
		sv, err = signature.LoadSignerVerifier(key, crypto.SHA256)
		h, hh = crypto.SHA256, sha256.New()
	}
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	if _, err := io.Copy(hh, r); err != nil {
		return nil, err
	}
	digest := hh.Sum(nil)
	sig, err := sv.SignMessage(nil, options.WithDigest(digest), options.WithCryptoSignerOpts(h))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return &Signature{Sig: sig, Digest: digest, Hash: h}, nil
}

// Verify checks sig over the file whose digests are d against each public
// key, with every scheme keys.Schemes accepts, returning the key ID of the
// first that verifies. Pure Ed25519 is only tried when the file is in
// d.Head.
func Verify(pubs []crypto.PublicKey, sig []byte, d *Digests) (string, error) {
	id, _, err := VerifyKey(pubs, sig, d)
	return id, err
}

// VerifyKey is Verify, also returning the key that verified.
func VerifyKey(pubs []crypto.PublicKey, sig []byte, d *Digests) (string, crypto.PublicKey, error) {
	for _, pub := range pubs {
		schemes, err := keys.Schemes(pub)
		if err != nil {
			return "", nil, err
		}
		for _, s := range schemes {
			var err error
			switch {
			case s.Hash == 0 && d.Head == nil:
				continue
			case s.Hash == 0:
				err = s.Verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(d.Head))
			default:
				err = s.Verifier.VerifySignature(bytes.NewReader(sig), nil, options.WithDigest(d.Of(s.Hash)), options.WithCryptoSignerOpts(s.Hash))
			}
			if err == nil {
				id, err := keys.KeyID(pub)
				return id, pub, err
			}
		}
	}
	return "", nil, ErrNotVerified
}

// Of returns the digest computed with h (SHA-256, SHA-384 or SHA-512).
func (d *Digests) Of(h crypto.Hash) []byte {
	switch h {
	case crypto.SHA384:
		return d.SHA384
	case crypto.SHA512:
		return d.SHA512
	}
	return d.SHA256
}
