package cli

import (
	"errors"
	"io/fs"

	"github.com/imgsign/imgsign/pkg/idtoken"
	"github.com/imgsign/imgsign/pkg/keylesssign"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/imgsign/imgsign/pkg/tsa"
)

// Exit codes. They are part of imgsign's interface: scripts and CI jobs
// branch on them, so they never change meaning.
const (
	ExitOK    = 0 // success
	ExitError = 1 // any error not listed below
	ExitUsage = 2 // bad command line: unknown command or flag, wrong arguments
	ExitKey   = 3 // a key or password was rejected: wrong password, corrupt, wrong kind or unsupported key, or a KMS/token refused the key
	ExitExist = 4 // refused to overwrite an existing file (use --force)
	// ExitDifferent is diff's answer when the images differ at the levels
	// compared (0 when they are identical there).
	ExitDifferent = 14
	// ExitTrust: the trust material was refused: TUF metadata expired or
	// tampered, no trusted root reachable or cached, a malformed trusted root.
	ExitTrust = 15
	// ExitKeyless: a signing service or token failed: keyless signing
	// found no usable identity token (none found, expired, malformed, the
	// CI endpoint failed), or Fulcio, a transparency log or a timestamp
	// authority (keyless; with --key, the log of --rekor-url or the TSA of
	// --timestamp-server-url) refused or did not answer. Nothing was
	// written.
	ExitKeyless = 16
)

// exitCodeHelp is shown at the end of the root command's help.
const exitCodeHelp = `Exit codes:
  0   success
  1   any other error
  2   bad command line (unknown command or flag, wrong arguments)
  3   key or password rejected (wrong password, corrupt key, wrong kind of key;
      a KMS or token refused the key: permission denied, disabled, not found)
  4   refused to overwrite an existing file (use --force)
  10  verify: no signatures found
  11  verify: image or tag not found
  12  verify: signatures found, but none (or too few) verified
  13  verify: the trust policy rejects the image
  14  diff: the images differ
  15  trust root refused: TUF metadata expired or tampered, none reachable
      or cached (give --trusted-root or run 'imgsign trust init'), or a
      malformed trusted root
  16  a signing service or token failed: no usable identity token (keyless),
      or Fulcio, the transparency log or the timestamp authority (keyless;
      with --key, --rekor-url's log or --timestamp-server-url's TSA) refused
      or did not answer (nothing was written)`

// usageError marks an error in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries a chosen exit code with its error. When reported is
// set, the command has already explained the failure on stderr.
type exitError struct {
	code     int
	err      error
	reported bool
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var (
		u usageError
		e exitError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &e):
		return e.code
	case errors.As(err, &u):
		return ExitUsage
	case errors.Is(err, keys.ErrIncorrectPassword), errors.Is(err, keys.ErrMalformedKey),
		errors.Is(err, keys.ErrUnsupportedKey), errors.Is(err, keys.ErrPublicKeyGiven),
		errors.Is(err, keys.ErrPrivateKeyGiven), errors.Is(err, keys.ErrPasswordRequired),
		errors.Is(err, errNoPassword), errors.Is(err, errPasswordMismatch),
		errors.Is(err, keys.ErrKeyRefused), errors.Is(err, keys.ErrNoProvider):
		return ExitKey
	case errors.Is(err, fs.ErrExist):
		return ExitExist
	case trustroot.IsTrustError(err):
		return ExitTrust
	case errors.Is(err, keylesssign.ErrService), errors.Is(err, keylesssign.ErrCertificateExpired), errors.Is(err, tsa.ErrFailed), errors.Is(err, sign.ErrLogFailed),
		errors.Is(err, idtoken.ErrNoToken), errors.Is(err, idtoken.ErrExpired),
		errors.Is(err, idtoken.ErrMalformed), errors.Is(err, idtoken.ErrFetch):
		return ExitKeyless
	}
	return ExitError
}
