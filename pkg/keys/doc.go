// Package keys generates, encrypts, parses and describes signing keys in the
// formats cosign uses, so that keys move freely between imgsign and cosign.
//
// A private key file is a PEM block of type "ENCRYPTED SIGSTORE PRIVATE KEY"
// (older cosign files say "ENCRYPTED COSIGN PRIVATE KEY"; both are read, the
// first is written). Its body is the JSON written by go-securesystemslib's
// encrypted package (scrypt key derivation, nacl/secretbox) around a PKCS#8
// DER private key. A public key file is a PEM "PUBLIC KEY" block holding PKIX
// DER. A key's ID is the standard base64 encoding of the SHA-256 of its PKIX
// DER, which cosign v3 bundles carry as publicKey.hint.
//
// Every parser here takes untrusted bytes: inputs are size-limited, key
// derivation parameters are checked before any work is done, and failures
// are reported as errors that match one of the sentinel errors below with
// errors.Is, never as panics.
package keys
