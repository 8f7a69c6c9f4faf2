package blob

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"testing"

	"github.com/imgsign/imgsign/pkg/keys"
)

func TestSignVerifyEveryAlgorithm(t *testing.T) {
	data := bytes.Repeat([]byte("release archive "), 1000)
	for _, alg := range keys.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			k, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := Sign(k, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			d, err := Digest(bytes.NewReader(data), true)
			if err != nil {
				t.Fatal(err)
			}
			id, err := Verify([]crypto.PublicKey{k.Public()}, sig.Sig, d)
			want, _ := keys.KeyID(k.Public())
			if err != nil || id != want {
				t.Fatalf("Verify = %q, %v", id, err)
			}
			other, _ := keys.Generate(alg)
			if _, err := Verify([]crypto.PublicKey{other.Public()}, sig.Sig, d); !errors.Is(err, ErrNotVerified) {
				t.Fatalf("other key: %v", err)
			}
			tampered, _ := Digest(bytes.NewReader(append(bytes.Clone(data), '!')), true)
			if _, err := Verify([]crypto.PublicKey{k.Public()}, sig.Sig, tampered); !errors.Is(err, ErrNotVerified) {
				t.Fatalf("tampered file verified: %v", err)
			}
		})
	}
}

func TestSignedDigestIsTheFiles(t *testing.T) {
	k, _ := keys.Generate(keys.ECDSAP256)
	sig, _ := Sign(k, bytes.NewReader([]byte("x")))
	if sum := sha256.Sum256([]byte("x")); !bytes.Equal(sig.Digest, sum[:]) || sig.Hash != crypto.SHA256 {
		t.Fatalf("digest %x, hash %v", sig.Digest, sig.Hash)
	}
	e, _ := keys.Generate(keys.Ed25519)
	sig, _ = Sign(e, bytes.NewReader([]byte("x")))
	if sum := sha512.Sum512([]byte("x")); !bytes.Equal(sig.Digest, sum[:]) || sig.Hash != crypto.SHA512 {
		t.Fatalf("ed25519ph digest %x, hash %v", sig.Digest, sig.Hash)
	}
}

func TestOlderCosignSchemes(t *testing.T) {
	msg := []byte("artifact")
	d, _ := Digest(bytes.NewReader(msg), true)
	// Pure Ed25519 (cosign v2) over a small file.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := Verify([]crypto.PublicKey{pub}, ed25519.Sign(priv, msg), d); err != nil {
		t.Fatalf("pure ed25519: %v", err)
	}
	// Without the file in memory, pure Ed25519 cannot be checked.
	big, _ := Digest(bytes.NewReader(msg), false)
	if _, err := Verify([]crypto.PublicKey{pub}, ed25519.Sign(priv, msg), big); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("pure ed25519 without the file: %v", err)
	}
	// ECDSA P-384 over SHA-384.
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	h := sha512.Sum384(msg)
	s, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	if _, err := Verify([]crypto.PublicKey{k.Public()}, s, d); err != nil {
		t.Fatalf("P-384/SHA-384: %v", err)
	}
}

func TestDigestKeepsOnlySmallFiles(t *testing.T) {
	d, err := Digest(io.LimitReader(zeros{}, MaxPureEd25519Bytes+1), true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Head != nil || d.Size != MaxPureEd25519Bytes+1 {
		t.Fatalf("head kept for a large file (size %d)", d.Size)
	}
	d, _ = Digest(bytes.NewReader([]byte("abc")), true)
	if string(d.Head) != "abc" {
		t.Fatalf("head = %q", d.Head)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkSignStream shows memory stays flat however large the file.
func BenchmarkSignStream(b *testing.B) {
	k, _ := keys.Generate(keys.ECDSAP256)
	b.SetBytes(256 << 20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Sign(k, io.LimitReader(zeros{}, 256<<20)); err != nil {
			b.Fatal(err)
		}
	}
}
