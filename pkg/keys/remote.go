package keys

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Key URI schemes. A --key value that starts with one of these names a key
// that never leaves its KMS or token; anything else is a file path.
const (
	SchemeAWS        = "awskms://"
	SchemeGCP        = "gcpkms://"
	SchemeAzure      = "azurekms://"
	SchemeHashiVault = "hashivault://"
	SchemePKCS11     = "pkcs11:"
)

// Provider names used in messages, by scheme.
var providerNames = map[string]string{
	SchemeAWS:        "AWS KMS",
	SchemeGCP:        "GCP KMS",
	SchemeAzure:      "Azure Key Vault",
	SchemeHashiVault: "HashiCorp Vault",
	SchemePKCS11:     "PKCS#11",
}

// Errors of remote keys. Each wraps into a *RemoteError that says which
// provider and key.
var (
	// ErrKeyRefused means the provider answered and refused the key or the
	// operation: permission denied, key disabled or not found, or a key
	// whose usage or algorithm cannot sign. imgsign exits 3 for it.
	ErrKeyRefused = errors.New("key refused")
	// ErrKeyUnreachable means the provider could not be reached.
	ErrKeyUnreachable = errors.New("key provider unreachable")
	// ErrNoProvider means imgsign was built without the provider a URI
	// needs (PKCS#11 in the default build).
	ErrNoProvider = errors.New("key provider not in this build")
)

// IsRemoteRef reports whether ref is a key URI rather than a file path.
func IsRemoteRef(ref string) bool {
	return remoteScheme(ref) != ""
}

func remoteScheme(ref string) string {
	for s := range providerNames {
		if strings.HasPrefix(ref, s) {
			return s
		}
	}
	return ""
}

// ProviderName returns the human name of the provider of a key URI ("AWS
// KMS"), or "" for a file path.
func ProviderName(ref string) string { return providerNames[remoteScheme(ref)] }

// RemoteError is an error from a KMS or token, naming the provider, the key
// and the operation. Err wraps ErrKeyRefused, ErrKeyUnreachable or
// ErrNoProvider when the failure is one of those.
type RemoteError struct {
	Provider, Key, Op string
	Err               error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s key %s: %s: %v", e.Provider, redactRef(e.Key), e.Op, e.Err)
}

func (e *RemoteError) Unwrap() error { return e.Err }

// redactRef drops a pin-value attribute from a pkcs11: URI so that a PIN
// never reaches a message.
func redactRef(ref string) string {
	if !strings.HasPrefix(ref, SchemePKCS11) {
		return ref
	}
	return pinValue().ReplaceAllString(ref, "${1}REDACTED")
}

var pinValue = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)((?:^|[;?&])pin-value=)[^;?&]*`) })

// RemoteBackend is one provider's view of a key: what sigstore's KMS
// modules and the PKCS#11 backend implement.
type RemoteBackend interface {
	SignMessage(message io.Reader, opts ...signature.SignOption) ([]byte, error)
	PublicKey(opts ...signature.PublicKeyOption) (crypto.PublicKey, error)
}

// Opener opens the key named by a URI of one scheme.
type Opener func(ctx context.Context, ref string) (RemoteBackend, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// RegisterProvider makes OpenRemote use open for URIs starting with scheme
// (one of the Scheme constants). Provider packages call it from init, so a
// build only carries the providers it imports.
func RegisterProvider(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[scheme] = open
}

// Retry policy for throttled remote calls.
const (
	remoteAttempts  = 6
	remoteBaseDelay = 200 * time.Millisecond
	remoteMaxDelay  = 5 * time.Second
)

// OpenRemote opens the key named by a key URI and fetches its public key
// (once: every later Public or PublicKey call answers from memory). Errors
// are *RemoteError values naming provider and key.
func OpenRemote(ctx context.Context, ref string) (Signer, error) {
	scheme := remoteScheme(ref)
	if scheme == "" {
		return nil, fmt.Errorf("%w: %q is not a key URI", ErrUnsupportedKey, ref)
	}
	rerr := func(op string, err error) error {
		return &RemoteError{Provider: providerNames[scheme], Key: ref, Op: op, Err: classify(err)}
	}
	openersMu.RLock()
	open := openers[scheme]
	openersMu.RUnlock()
	if open == nil {
		if scheme == SchemePKCS11 {
			return nil, rerr("open", fmt.Errorf("%w: pkcs11: keys need the pkcs11 build of imgsign (built with cgo and -tags pkcs11; the release archives named imgsign-pkcs11_*)", ErrNoProvider))
		}
		return nil, rerr("open", fmt.Errorf("%w", ErrNoProvider))
	}
	b, err := open(ctx, ref)
	if err != nil {
		return nil, rerr("open", err)
	}
	var pub crypto.PublicKey
	err = retry(ctx, func() error {
		var err error
		pub, err = b.PublicKey(options.WithContext(ctx))
		return err
	})
	if err != nil {
		return nil, rerr("fetch the public key", err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, rerr("check the public key", fmt.Errorf("%w: %w", ErrKeyRefused, err))
	}
	h := remoteHash(pub)
	var v signature.Verifier
	if h == 0 {
		v, err = signature.LoadVerifier(pub, crypto.SHA256)
	} else {
		v, err = signature.LoadVerifier(pub, h)
	}
	if err != nil {
		return nil, rerr("load the public key", fmt.Errorf("%w: %w", ErrKeyRefused, err))
	}
	return &remoteSigner{ctx: ctx, ref: ref, provider: providerNames[scheme], b: b, pub: pub, hash: h, v: v}, nil
}

// RemotePublicKey fetches the public key of a key URI.
func RemotePublicKey(ctx context.Context, ref string) (crypto.PublicKey, error) {
	s, err := OpenRemote(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.Public(), nil
}

// remoteSigner is a Signer whose private key stays in a KMS or on a token.
type remoteSigner struct {
	ctx      context.Context
	ref      string
	provider string
	b        RemoteBackend
	pub      crypto.PublicKey
	hash     crypto.Hash
	v        signature.Verifier
}

func (r *remoteSigner) Ref() string              { return r.ref }
func (r *remoteSigner) SigningHash() crypto.Hash { return r.hash }
func (r *remoteSigner) Public() crypto.PublicKey { return r.pub }

func (r *remoteSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return r.pub, nil
}

func (r *remoteSigner) VerifySignature(sig, msg io.Reader, opts ...signature.VerifyOption) error {
	return r.v.VerifySignature(sig, msg, opts...)
}

// Sign signs digest, a hash of opts.HashFunc() (crypto.Signer).
func (r *remoteSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h := r.hash
	if opts != nil && opts.HashFunc() != 0 {
		h = opts.HashFunc()
	}
	return r.sign(nil, options.WithDigest(digest), options.WithCryptoSignerOpts(h))
}

// SignMessage signs msg. Unless an option already gives the digest, the
// message is hashed here with SigningHash and only the digest is sent (for
// Ed25519 keys, which cannot sign a digest, the message is sent).
func (r *remoteSigner) SignMessage(msg io.Reader, opts ...signature.SignOption) ([]byte, error) {
	digest := digestOption(opts)
	if digest == nil && r.hash != 0 {
		hh := r.hash.New()
		if _, err := io.Copy(hh, msg); err != nil {
			return nil, err
		}
		return r.sign(nil, options.WithDigest(hh.Sum(nil)), options.WithCryptoSignerOpts(r.hash))
	}
	if digest != nil {
		return r.sign(nil, opts...)
	}
	data, err := io.ReadAll(msg)
	if err != nil {
		return nil, err
	}
	return r.sign(data, opts...)
}

func (r *remoteSigner) sign(msg []byte, opts ...signature.SignOption) ([]byte, error) {
	opts = append(opts, options.WithContext(r.ctx))
	var sig []byte
	err := retry(r.ctx, func() error {
		var rd io.Reader
		if msg != nil {
			rd = bytes.NewReader(msg)
		}
		var err error
		sig, err = r.b.SignMessage(rd, opts...)
		return err
	})
	if err != nil {
		return nil, &RemoteError{Provider: r.provider, Key: r.ref, Op: "sign", Err: classify(err)}
	}
	return sig, nil
}

// digestOption returns the digest given with options.WithDigest, if any.
func digestOption(opts []signature.SignOption) []byte {
	var d []byte
	for _, o := range opts {
		o.ApplyDigest(&d)
	}
	return d
}

// retry runs f until it succeeds, fails with an error that is not
// throttling, or remoteAttempts are spent, sleeping with jittered
// exponential backoff between throttled attempts.
func retry(ctx context.Context, f func() error) error {
	delay := remoteBaseDelay
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt == remoteAttempts || !isThrottled(err) {
			return err
		}
		d := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(d):
		}
		delay = min(2*delay, remoteMaxDelay)
	}
}

// Error codes and texts by which providers say "slow down".
var throttleMarks = []string{"throttl", "toomanyrequests", "too many requests", "rate exceeded", "resource_exhausted", "resourceexhausted", "status code: 429", "statuscode: 429", "429 too many", "limitexceeded"}

func isThrottled(err error) bool {
	if c := errorCode(err); c != "" {
		lc := strings.ToLower(c)
		for _, m := range throttleMarks {
			if strings.Contains(lc, m) {
				return true
			}
		}
	}
	s := strings.ToLower(err.Error())
	for _, m := range throttleMarks {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// errorCode returns a provider error code (AWS smithy's ErrorCode, a gRPC
// status code's name), if err carries one.
func errorCode(err error) string {
	var ec interface{ ErrorCode() string }
	if errors.As(err, &ec) {
		return ec.ErrorCode()
	}
	return ""
}

// Provider error codes and texts that mean the key was refused.
var refusedMarks = []struct{ mark, why string }{
	{"accessdenied", "permission denied"},
	{"permissiondenied", "permission denied"},
	{"permission_denied", "permission denied"},
	{"forbidden", "permission denied"},
	{"status code: 403", "permission denied"},
	{"unauthorized", "permission denied"},
	{"disabledexception", "key disabled"},
	{"is disabled", "key disabled"},
	{"kmsinvalidstate", "key disabled or pending deletion"},
	{"pending deletion", "key disabled or pending deletion"},
	{"failed_precondition", "key disabled or in the wrong state"},
	{"notfoundexception", "key not found"},
	{"not_found", "key not found"},
	{"code = notfound", "key not found"},
	{"code = failedprecondition", "key disabled or in the wrong state"},
	{"code = invalidargument", "wrong key usage or algorithm"},
	{"keynotfound", "key not found"},
	{"status code: 404", "key not found"},
	{"does not exist", "key not found"},
	{"invalidkeyusage", "wrong key usage (the key cannot sign)"},
	{"keyusage", "wrong key usage (the key cannot sign)"},
	{"unsupportedoperation", "wrong key usage or algorithm"},
	{"signing algorithm unsupported", "wrong key algorithm"},
	{"unsupported algorithm", "wrong key algorithm"},
	{"invalid_argument", "wrong key usage or algorithm"},
	{"ckr_pin_incorrect", "wrong PIN"},
	{"ckr_user_pin_not_initialized", "token PIN not initialised"},
	{"no such object", "key not found on the token"},
	{"no token", "token not found"},
	{"ckr_pin_len_range", "wrong PIN"},
}

// classify wraps err with ErrKeyRefused or ErrKeyUnreachable and a short
// reason when it recognises the failure.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrKeyRefused) || errors.Is(err, ErrKeyUnreachable) || errors.Is(err, ErrNoProvider) {
		return err
	}
	text := strings.ToLower(errorCode(err) + " " + err.Error())
	for _, m := range refusedMarks {
		if strings.Contains(text, m.mark) {
			return fmt.Errorf("%w (%s): %w", ErrKeyRefused, m.why, err)
		}
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || (errors.As(err, &ne) && ne.Timeout()) ||
		strings.Contains(text, "connection refused") || strings.Contains(text, "no such host") ||
		strings.Contains(text, "dial tcp") || strings.Contains(text, "unavailable") || strings.Contains(text, "deadline exceeded") {
		return fmt.Errorf("%w: %w", ErrKeyUnreachable, err)
	}
	return err
}

// URIError is a key URI whose form its provider does not accept. It
// matches ErrMalformedKey.
type URIError struct {
	Ref string
	Err error
}

func (e *URIError) Error() string {
	return fmt.Sprintf("malformed key URI %s: %v", redactRef(e.Ref), e.Err)
}

func (e *URIError) Unwrap() []error { return []error{ErrMalformedKey, e.Err} }

// KeyCreator is a RemoteBackend that can create its key (sigstore's KMS
// modules are).
type KeyCreator interface {
	CreateKey(ctx context.Context, algorithm string) (crypto.PublicKey, error)
	SupportedAlgorithms() []string
	DefaultAlgorithm() string
}

// CreateRemoteKey creates the key named by ref in its KMS with algorithm
// (a name the provider uses, such as ECC_NIST_P384 for AWS or
// ecdsa-p384-sha384 for GCP; "" for the provider's default, ECDSA P-256)
// and returns its public key. A key that already exists is returned as is,
// as cosign does.
func CreateRemoteKey(ctx context.Context, ref, algorithm string) (crypto.PublicKey, error) {
	scheme := remoteScheme(ref)
	rerr := func(op string, err error) error {
		return &RemoteError{Provider: providerNames[scheme], Key: ref, Op: op, Err: classify(err)}
	}
	openersMu.RLock()
	open := openers[scheme]
	openersMu.RUnlock()
	if open == nil {
		return nil, rerr("create", ErrNoProvider)
	}
	b, err := open(ctx, ref)
	if err != nil {
		return nil, rerr("open", err)
	}
	c, ok := b.(KeyCreator)
	if !ok {
		return nil, rerr("create", fmt.Errorf("%w: this provider cannot create keys", ErrKeyRefused))
	}
	if algorithm == "" {
		algorithm = c.DefaultAlgorithm()
	}
	supported := c.SupportedAlgorithms()
	found := false
	for _, a := range supported {
		found = found || a == algorithm
	}
	if !found {
		return nil, rerr("create", fmt.Errorf("%w: algorithm %q (this provider offers %s)", ErrUnsupportedKey, algorithm, strings.Join(supported, ", ")))
	}
	var pub crypto.PublicKey
	err = retry(ctx, func() error {
		var err error
		pub, err = c.CreateKey(ctx, algorithm)
		return err
	})
	if err != nil {
		return nil, rerr("create", err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, rerr("check the public key", err)
	}
	return pub, nil
}
