package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Environment variables that supply passwords. COSIGN_PASSWORD is read so
// that users moving from cosign keep their CI settings.
const (
	envPassword       = "IMGSIGN_PASSWORD"
	envCosignPassword = "COSIGN_PASSWORD"
	envNewPassword    = "IMGSIGN_NEW_PASSWORD"
)

// maxPasswordFileSize bounds a --password-file read.
const maxPasswordFileSize = 4 << 10

var (
	errNoPassword       = errors.New("a password is needed: set " + envPassword + ", pass --password-file, or run on a terminal to be prompted")
	errPasswordMismatch = errors.New("the two passwords entered do not match")
)

// passwordSource finds a password, in this order: the file named by
// --password-file ("-" for standard input), the environment variables, then
// a prompt on the terminal. A password is never echoed, logged or put into
// an error message.
type passwordSource struct {
	file   string   // --password-file, or ""
	envs   []string // variables to try, in order
	prompt string   // the question asked on a terminal
	app    *App
}

// get returns the password. With confirm set, a password typed at a
// terminal is asked for twice and must match.
func (p passwordSource) get(confirm bool) ([]byte, error) {
	if p.file != "" {
		return p.readFile()
	}
	for _, name := range p.envs {
		if v, ok := p.app.LookupEnv(name); ok {
			return []byte(v), nil
		}
	}
	if p.app.ReadPassword == nil {
		return nil, errNoPassword
	}
	pw, err := p.app.ReadPassword(p.prompt + ": ")
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if confirm {
		again, err := p.app.ReadPassword("Enter the password again: ")
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, errPasswordMismatch
		}
	}
	return pw, nil
}

// readFile reads a password file (or standard input for "-"), dropping one
// trailing newline.
func (p passwordSource) readFile() ([]byte, error) {
	var r io.Reader
	if p.file == "-" {
		r = p.app.Stdin
	} else {
		f, err := os.Open(p.file)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxPasswordFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	if len(data) > maxPasswordFileSize {
		return nil, fmt.Errorf("password file %s is larger than %d bytes", p.file, maxPasswordFileSize)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	return data, nil
}

// func returns the source as a keys.PasswordFunc that asks at most once.
func (p passwordSource) lazy(confirm bool) func() ([]byte, error) {
	var (
		pw   []byte
		err  error
		done bool
	)
	return func() ([]byte, error) {
		if !done {
			pw, err = p.get(confirm)
			done = true
		}
		return pw, err
	}
}
