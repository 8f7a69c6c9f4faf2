package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
)

// Info describes a key without revealing any secret.
type Info struct {
	// Private is true for a private key file, false for a public key.
	Private bool `json:"private"`
	// Format is how the file stores the key.
	Format Format `json:"format"`
	// Algorithm is "ecdsa", "ed25519" or "rsa".
	Algorithm string `json:"algorithm"`
	// Curve is the ECDSA curve ("P-256", "P-384", "P-521"), empty otherwise.
	Curve string `json:"curve,omitempty"`
	// Bits is the key size: the curve size for ECDSA, 256 for Ed25519, the
	// modulus size for RSA.
	Bits int `json:"bits"`
	// KeyID is the base64 SHA-256 of the public key's PKIX DER (see KeyID).
	KeyID string `json:"keyID"`
}

// Describe returns the Info of a public key; Private and Format are left for
// the caller to fill in.
func Describe(pub crypto.PublicKey) (Info, error) {
	if err := checkPublicKey(pub); err != nil {
		return Info{}, err
	}
	id, err := KeyID(pub)
	if err != nil {
		return Info{}, err
	}
	info := Info{KeyID: id}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		info.Algorithm, info.Curve, info.Bits = "ecdsa", k.Curve.Params().Name, k.Curve.Params().BitSize
	case ed25519.PublicKey:
		info.Algorithm, info.Bits = "ed25519", 256
	case *rsa.PublicKey:
		info.Algorithm, info.Bits = "rsa", k.N.BitLen()
	}
	return info, nil
}

// Inspect parses a private or public key file and describes it. password is
// called only for an encrypted private key, whose public half cannot be
// known without decrypting it.
func Inspect(data []byte, password PasswordFunc) (Info, error) {
	block, err := decodeSinglePEM(data)
	if err != nil {
		return Info{}, err
	}
	if block.Type == PEMTypePublic {
		pub, err := ParsePublicKey(data)
		if err != nil {
			return Info{}, err
		}
		info, err := Describe(pub)
		info.Format = FormatPKIX
		return info, err
	}
	signer, format, err := parsePrivateKey(data, password)
	if err != nil {
		return Info{}, err
	}
	info, err := Describe(signer.Public())
	if err != nil {
		return Info{}, err
	}
	info.Private, info.Format = true, format
	return info, nil
}

// String renders the Info as aligned "name value" lines.
func (i Info) String() string {
	kind := "public"
	if i.Private {
		kind = "private"
	}
	alg := i.Algorithm
	if i.Curve != "" {
		alg += " " + i.Curve
	}
	return fmt.Sprintf("type       %s key\nformat     %s\nalgorithm  %s\nbits       %d\nkey ID     %s\n",
		kind, i.Format, alg, i.Bits, i.KeyID)
}
