package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// Algorithm names a key type and size that imgsign can generate.
type Algorithm string

// The algorithms imgsign generates. ECDSAP256 is the default, as in cosign.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	Ed25519   Algorithm = "ed25519"
	RSA3072   Algorithm = "rsa-3072"
	RSA4096   Algorithm = "rsa-4096"
)

// DefaultAlgorithm is used when no algorithm is chosen.
const DefaultAlgorithm = ECDSAP256

// Algorithms lists every algorithm Generate accepts, default first.
func Algorithms() []Algorithm {
	return []Algorithm{ECDSAP256, ECDSAP384, Ed25519, RSA3072, RSA4096}
}

// ParseAlgorithm returns the Algorithm named by s (case-insensitive), or an
// error wrapping ErrUnsupportedKey that lists the accepted names.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms() {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	names := make([]string, 0, len(Algorithms()))
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return "", fmt.Errorf("%w: algorithm %q (choose one of %s)", ErrUnsupportedKey, s, strings.Join(names, ", "))
}

// Generate creates a new private key of the given algorithm from
// crypto/rand.
func Generate(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	_, err := ParseAlgorithm(string(alg))
	return nil, err
}

// minRSABits is the smallest RSA modulus accepted from a key file. Smaller
// keys are refused rather than silently trusted.
const minRSABits = 2048

// maxRSABits bounds the work a hostile key file can cause.
const maxRSABits = 8192

// checkPublicKey reports whether pub is of a kind imgsign signs or verifies
// with: ECDSA on P-256, P-384 or P-521, Ed25519, or RSA of 2048 to 8192 bits.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrMalformedKey, len(k))
		}
		return nil
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits (need %d to %d)", ErrUnsupportedKey, bits, minRSABits, maxRSABits)
		}
		return nil
	}
	return fmt.Errorf("%w: key type %T", ErrUnsupportedKey, pub)
}
