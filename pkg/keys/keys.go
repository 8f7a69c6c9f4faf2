package keys

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"golang.org/x/crypto/nacl/secretbox"
)

// PEM block types read and written by this package.
const (
	// PEMTypeEncrypted is the block type of an encrypted private key written
	// by imgsign and by cosign v2 and later.
	PEMTypeEncrypted = "ENCRYPTED SIGSTORE PRIVATE KEY"
	// PEMTypeEncryptedCosign is the block type older cosign releases wrote;
	// it is read, never written.
	PEMTypeEncryptedCosign = "ENCRYPTED COSIGN PRIVATE KEY"
	// PEMTypePublic is the block type of a PKIX public key.
	PEMTypePublic = "PUBLIC KEY"

	pemTypePKCS8          = "PRIVATE KEY"
	pemTypePKCS1          = "RSA PRIVATE KEY"
	pemTypeSEC1           = "EC PRIVATE KEY"
	pemTypePKCS8Encrypted = "ENCRYPTED PRIVATE KEY"
	pemTypePKCS1Public    = "RSA PUBLIC KEY"
)

// MaxKeyFileSize is the largest key file accepted. Real key files are a few
// kilobytes; the bound keeps a hostile file from costing memory or time.
const MaxKeyFileSize = 64 << 10

// Format says how a private key was stored.
type Format string

// The private and public key formats this package reads.
const (
	FormatSigstoreEncrypted Format = "sigstore-encrypted" // PEMTypeEncrypted
	FormatCosignEncrypted   Format = "cosign-encrypted"   // PEMTypeEncryptedCosign
	FormatPKCS8             Format = "pkcs8"
	FormatPKCS1             Format = "pkcs1"
	FormatSEC1              Format = "sec1"
	FormatPKIX              Format = "pkix" // public key
)

// Encrypted reports whether keys of this format need a password.
func (f Format) Encrypted() bool {
	return f == FormatSigstoreEncrypted || f == FormatCosignEncrypted
}

// PasswordFunc supplies a password when one is needed. It is called at most
// once per parse, and only when the key turns out to be encrypted.
type PasswordFunc func() ([]byte, error)

// EncryptPrivateKey marshals priv as PKCS#8, encrypts it with password
// (scrypt N=2^16, r=8, p=1 and nacl/secretbox, as cosign does) and returns
// the PEM file contents. An empty password is allowed, as in cosign.
func EncryptPrivateKey(priv crypto.Signer, password []byte) ([]byte, error) {
	if err := checkPublicKey(priv.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if password == nil {
		password = []byte{}
	}
	body, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMTypeEncrypted, Bytes: body}), nil
}

// MarshalPublicKey returns the PEM "PUBLIC KEY" (PKIX) encoding of pub.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMTypePublic, Bytes: der}), nil
}

// KeyID returns the key ID of pub: the standard base64 encoding of the
// SHA-256 digest of its PKIX DER encoding (cosign v3's publicKey.hint).
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// ParsePrivateKey parses a private key file in any supported format: the
// encrypted sigstore/cosign format, or unencrypted PKCS#8 (RSA, ECDSA,
// Ed25519), PKCS#1 (RSA) or SEC1 (EC). password is called only if the key is
// encrypted; it may be nil for keys that are not.
func ParsePrivateKey(data []byte, password PasswordFunc) (crypto.Signer, error) {
	signer, _, err := parsePrivateKey(data, password)
	return signer, err
}

// ParsePublicKey parses a PEM "PUBLIC KEY" file. Given a private key it
// fails with ErrPrivateKeyGiven.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, err := decodeSinglePEM(data)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case PEMTypePublic:
	case PEMTypeEncrypted, PEMTypeEncryptedCosign, pemTypePKCS8, pemTypePKCS1, pemTypeSEC1, pemTypePKCS8Encrypted:
		return nil, ErrPrivateKeyGiven
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a public key (expected %q)", ErrUnsupportedKey, block.Type, PEMTypePublic)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: public key does not parse: %v", ErrMalformedKey, err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// decodeSinglePEM returns the one PEM block in data. Text before the block
// is ignored, as by most tools; a second block is refused because a file
// that holds two keys is ambiguous.
func decodeSinglePEM(data []byte) (*pem.Block, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %d bytes is larger than any key file (limit %d)", ErrMalformedKey, len(data), MaxKeyFileSize)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found (the file is truncated or not a key)", ErrMalformedKey)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("%w: more than one PEM block in the file", ErrMalformedKey)
	}
	if len(block.Headers) > 0 {
		// Proc-Type/DEK-Info: legacy OpenSSL encryption (RFC 1423), broken by design.
		return nil, fmt.Errorf("%w: legacy PEM encryption headers; convert the key to PKCS#8 first", ErrUnsupportedKey)
	}
	return block, nil
}

// pemFormats maps the PEM block types read here to their formats.
var pemFormats = map[string]Format{
	PEMTypeEncrypted:       FormatSigstoreEncrypted,
	PEMTypeEncryptedCosign: FormatCosignEncrypted,
	pemTypePKCS8:           FormatPKCS8,
	pemTypePKCS1:           FormatPKCS1,
	pemTypeSEC1:            FormatSEC1,
	PEMTypePublic:          FormatPKIX,
}

// FormatOf reports the format of a key file from its PEM block type alone,
// without decrypting or parsing the key (which may still turn out to be
// malformed).
func FormatOf(data []byte) (Format, error) {
	block, err := decodeSinglePEM(data)
	if err != nil {
		return "", err
	}
	f, ok := pemFormats[block.Type]
	if !ok {
		return "", fmt.Errorf("%w: PEM block %q is not a key imgsign reads", ErrUnsupportedKey, block.Type)
	}
	return f, nil
}

func parsePrivateKey(data []byte, password PasswordFunc) (crypto.Signer, Format, error) {
	block, err := decodeSinglePEM(data)
	if err != nil {
		return nil, "", err
	}
	var (
		format Format
		key    any
	)
	switch block.Type {
	case PEMTypeEncrypted, PEMTypeEncryptedCosign:
		format = FormatSigstoreEncrypted
		if block.Type == PEMTypeEncryptedCosign {
			format = FormatCosignEncrypted
		}
		der, err := decrypt(block.Bytes, password)
		if err != nil {
			return nil, "", err
		}
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			return nil, "", fmt.Errorf("%w: decrypted key is not PKCS#8: %v", ErrMalformedKey, err)
		}
	case pemTypePKCS8:
		format = FormatPKCS8
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			return nil, "", fmt.Errorf("%w: PKCS#8 private key does not parse: %v", ErrMalformedKey, err)
		}
	case pemTypePKCS1:
		format = FormatPKCS1
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return nil, "", fmt.Errorf("%w: PKCS#1 RSA private key does not parse: %v", ErrMalformedKey, err)
		}
	case pemTypeSEC1:
		format = FormatSEC1
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, "", fmt.Errorf("%w: SEC1 EC private key does not parse: %v", ErrMalformedKey, err)
		}
	case PEMTypePublic, pemTypePKCS1Public:
		return nil, "", ErrPublicKeyGiven
	case pemTypePKCS8Encrypted:
		return nil, "", fmt.Errorf("%w: PKCS#8 password-encrypted keys; decrypt with openssl and import the result", ErrUnsupportedKey)
	default:
		return nil, "", fmt.Errorf("%w: PEM block %q is not a private key", ErrUnsupportedKey, block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("%w: key type %T cannot sign", ErrUnsupportedKey, key)
	}
	if err := checkPublicKey(signer.Public()); err != nil {
		return nil, "", err
	}
	return signer, format, nil
}

// scryptParams lists the only key-derivation parameters accepted, which are
// the ones go-securesystemslib writes. Anything else could make the
// derivation run for ever or exhaust memory, so it is refused before any
// work is done.
var scryptParams = [][3]int{{1 << 15, 8, 1}, {1 << 16, 8, 1}, {1 << 17, 8, 1}}

// encryptedBody mirrors the JSON that go-securesystemslib's encrypted
// package writes; it is decoded first to check shape and parameters so
// that errors can say what is wrong.
type encryptedBody struct {
	KDF struct {
		Name   string `json:"name"`
		Params struct {
			N int `json:"N"`
			R int `json:"r"`
			P int `json:"p"`
		} `json:"params"`
		Salt []byte `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

// decrypt checks the encrypted key body and decrypts it.
func decrypt(body []byte, password PasswordFunc) ([]byte, error) {
	var b encryptedBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: encrypted key body is not valid JSON: %v", ErrMalformedKey, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the encrypted key body", ErrMalformedKey)
	}
	if b.KDF.Name != "scrypt" {
		return nil, fmt.Errorf("%w: key derivation %q (expected scrypt)", ErrUnsupportedKey, b.KDF.Name)
	}
	if b.Cipher.Name != "nacl/secretbox" {
		return nil, fmt.Errorf("%w: cipher %q (expected nacl/secretbox)", ErrUnsupportedKey, b.Cipher.Name)
	}
	params := [3]int{b.KDF.Params.N, b.KDF.Params.R, b.KDF.Params.P}
	known := false
	for _, p := range scryptParams {
		known = known || p == params
	}
	if !known {
		return nil, fmt.Errorf("%w: scrypt parameters N=%d r=%d p=%d (accepted: N=2^15, 2^16 or 2^17 with r=8, p=1)",
			ErrUnsupportedKey, params[0], params[1], params[2])
	}
	if len(b.KDF.Salt) == 0 || len(b.Cipher.Nonce) != 24 || len(b.Ciphertext) < secretbox.Overhead {
		return nil, fmt.Errorf("%w: encrypted key has a missing salt, a bad nonce or a truncated ciphertext", ErrMalformedKey)
	}
	if password == nil {
		return nil, ErrPasswordRequired
	}
	pw, err := password()
	if err != nil {
		return nil, err
	}
	der, err := encrypted.Decrypt(body, pw)
	if err != nil {
		// Shape and parameters were checked above, so a failure here is the
		// authentication of the ciphertext: wrong password or altered bytes.
		return nil, ErrIncorrectPassword
	}
	return der, nil
}
