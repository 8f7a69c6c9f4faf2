package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/imgsign/imgsign/internal/atomicfile"
)

// File modes of written key files.
const (
	PrivateKeyMode fs.FileMode = 0o600
	PublicKeyMode  fs.FileMode = 0o644
)

// ReadFile reads a key file, refusing files larger than MaxKeyFileSize
// before reading them whole.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than any key file (limit %d bytes)", ErrMalformedKey, path, MaxKeyFileSize)
	}
	return data, nil
}

// KeyPairPaths returns the private and public key file names for prefix:
// prefix+".key" and prefix+".pub".
func KeyPairPaths(prefix string) (privPath, pubPath string) {
	return prefix + ".key", prefix + ".pub"
}

// WriteKeyPair writes an encrypted private key PEM to prefix.key (mode 0600)
// and a public key PEM to prefix.pub (mode 0644), each atomically.
//
// Unless force is set, it refuses (with an error matching fs.ErrExist) when
// either file exists, before writing anything. If the second file cannot be
// written, the first one, which it had just created, is removed again, so a
// failure leaves no half key pair behind.
func WriteKeyPair(prefix string, privPEM, pubPEM []byte, force bool) (privPath, pubPath string, err error) {
	privPath, pubPath = KeyPairPaths(prefix)
	if !force {
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return "", "", fmt.Errorf("%s already exists (use --force to overwrite): %w", p, fs.ErrExist)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", err
			}
		}
	}
	if err := atomicfile.Write(privPath, privPEM, PrivateKeyMode, force); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(pubPath, pubPEM, PublicKeyMode, force); err != nil {
		if !force {
			os.Remove(privPath)
		}
		return "", "", err
	}
	return privPath, pubPath, nil
}
