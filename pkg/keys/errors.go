package keys

import "errors"

// Sentinel errors. Every error returned by this package for bad input wraps
// exactly one of these, so callers can tell the cases apart with errors.Is.
var (
	// ErrIncorrectPassword means an encrypted key did not decrypt: either the
	// password is wrong or the ciphertext was altered. The two cannot be told
	// apart, by design of authenticated encryption.
	ErrIncorrectPassword = errors.New("incorrect password or corrupt key")

	// ErrMalformedKey means the input is not a well-formed key file: no PEM
	// block, truncated or corrupt contents, or bytes after the key.
	ErrMalformedKey = errors.New("malformed key")

	// ErrUnsupportedKey means the input is a well-formed key of a kind imgsign
	// does not use: an unknown PEM type, algorithm, curve or key size, or key
	// derivation parameters other than the three cosign writes.
	ErrUnsupportedKey = errors.New("unsupported key")

	// ErrPublicKeyGiven means a public key was given where a private key is
	// needed.
	ErrPublicKeyGiven = errors.New("a public key was given where a private key is needed")

	// ErrPrivateKeyGiven means a private key was given where a public key is
	// expected.
	ErrPrivateKeyGiven = errors.New("a private key was given where a public key is expected")

	// ErrPasswordRequired means the key is encrypted and no password source
	// was supplied.
	ErrPasswordRequired = errors.New("the key is encrypted and no password was supplied")
)
