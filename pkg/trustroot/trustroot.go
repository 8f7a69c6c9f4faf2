// Package trustroot gets the Sigstore trust material (the trusted root and the
// signing config) from a TUF repository, with sigstore-go's TUF client (go-tuf
// v2 underneath): the public-good Sigstore repository by default, its root
// metadata embedded in the binary, or a private one chosen once with Init (as
// `cosign initialize` does).
//
// Contract:
//   - Every Load refreshes the metadata from the repository (bounded by
//     Options.Timeout, one attempt per file, no retries) and caches it under
//     Options.CacheDir, unless Options.MaxAge allows the cache as it is.
//   - When the repository cannot be reached, the cached metadata is used while
//     it verifies and has not expired (Options.Warn says so). Nothing cached,
//     or an expired cache, is an error wrapping ErrUnavailable or ErrExpired
//     that names --trusted-root and `imgsign trust init`.
//   - Metadata that fails verification (bad signatures, a target whose hash
//     differs, a version older than the cached one) or has expired on the
//     server is an error wrapping ErrInvalid or ErrExpired: never a fallback
//     to the cache, to an older root or to the embedded one.
//   - A repository chosen with Init is stored in Options.ConfigDir (not the
//     cache: clearing a cache must not silently switch back to the public
//     root); a stored choice that cannot be read is an error.
package trustroot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Target names in Sigstore TUF repositories.
const (
	TrustedRootTarget   = "trusted_root.json"
	SigningConfigTarget = "signing_config.v0.2.json"
)

// PublicGoodMirror is the public-good Sigstore TUF repository.
const PublicGoodMirror = tuf.DefaultMirror

// DefaultTimeout bounds an online refresh as a whole; DialTimeout bounds each
// connection attempt within it.
const (
	DefaultTimeout = 20 * time.Second
	DialTimeout    = 5 * time.Second
)

// Errors of trust material. Every error of Load, Open, Init and LoadFile that
// concerns the trust material itself wraps one of them (errors.Is); IsTrustError
// reports any.
var (
	// ErrUnavailable: the repository is unreachable and nothing usable is cached.
	ErrUnavailable = errors.New("no trusted root available")
	// ErrExpired: TUF metadata (served or cached) has expired.
	ErrExpired = errors.New("TUF metadata has expired")
	// ErrInvalid: TUF metadata or a target failed verification (signature,
	// hash, length, version rollback) or is not TUF metadata at all.
	ErrInvalid = errors.New("TUF metadata failed verification")
	// ErrMalformed: a trusted root, signing config or stored repository choice
	// cannot be parsed.
	ErrMalformed = errors.New("malformed trust material")
)

// IsTrustError reports whether err is an error of trust material.
func IsTrustError(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrExpired) ||
		errors.Is(err, ErrInvalid) || errors.Is(err, ErrMalformed)
}

// remedy is appended to errors a user fixes by choosing trust material.
const remedy = "give --trusted-root FILE to verify offline, or configure a reachable repository with `imgsign trust init --mirror URL --root ROOT.json`"

// Options choose the repository and where its metadata is kept. The zero value
// uses the stored choice (Init) or the public-good repository, and the user's
// cache and config directories.
type Options struct {
	// Mirror and Root name a repository explicitly (both or neither),
	// overriding the stored choice: its base URL and a trusted root.json
	// of it (any version; newer ones are fetched and verified).
	Mirror string
	Root   []byte
	// CacheDir holds the cached metadata and targets (default
	// os.UserCacheDir()/imgsign/tuf).
	CacheDir string
	// ConfigDir holds the repository chosen with Init (default
	// os.UserConfigDir()/imgsign).
	ConfigDir string
	// Timeout bounds the online refresh as a whole (default DefaultTimeout).
	Timeout time.Duration
	// MaxAge, when positive, lets Load use the cache without contacting the
	// repository if the last successful refresh is younger than MaxAge and
	// the cached metadata verifies and has not expired.
	MaxAge time.Duration
	// Transport carries the HTTP requests (default: a clone of
	// http.DefaultTransport with DialTimeout).
	Transport http.RoundTripper
	// Warn, when set, is told when the cache is used because the repository
	// could not be reached.
	Warn func(msg string)
}

// Info describes where the trust material came from.
type Info struct {
	Mirror      string    // the repository's base URL
	PublicGood  bool      // the public-good repository (embedded root)
	Stored      bool      // chosen with Init
	CacheDir    string    // this repository's cache directory
	FromCache   bool      // the repository was not contacted or not reachable
	Unreachable error     // why the repository was not reached, when FromCache after a failed attempt
	Requests    int       // HTTP requests made
	LastRefresh time.Time // last successful refresh (zero if unknown)
	RootVersion int64     // version of the trusted TUF root metadata
	Expires     time.Time // earliest expiry of the timestamp, snapshot and targets metadata
}

// Repository is a refreshed (or verified cached) TUF repository.
type Repository struct {
	client  *tuf.Client
	fetcher *fetcher
	timeout time.Duration
	info    Info
}

// Info returns where the material came from.
func (r *Repository) Info() Info { return r.info }

// TrustedRoot returns the repository's trusted root.
func (r *Repository) TrustedRoot() (*root.TrustedRoot, error) {
	data, err := r.target(TrustedRootTarget)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s from %s: %v", ErrMalformed, TrustedRootTarget, r.info.Mirror, err)
	}
	return tr, nil
}

// SigningConfig returns the repository's signing config (the services a
// signer uses: Fulcio, OIDC provider, Rekor, timestamp authorities).
func (r *Repository) SigningConfig() (*root.SigningConfig, error) {
	data, err := r.target(SigningConfigTarget)
	if err != nil {
		return nil, err
	}
	sc, err := root.NewSigningConfigFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s from %s: %v", ErrMalformed, SigningConfigTarget, r.info.Mirror, err)
	}
	return sc, nil
}

// target returns a verified target, from the cache or the repository.
func (r *Repository) target(name string) ([]byte, error) {
	r.fetcher.restart(r.timeout)
	before := r.fetcher.count()
	data, err := r.client.GetTarget(name)
	r.info.Requests += r.fetcher.count() - before
	if err != nil {
		return nil, r.classify(fmt.Sprintf("TUF target %s from %s", name, r.info.Mirror), err)
	}
	return data, nil
}

// Load returns the trusted root of the configured repository: the
// verification default when no --trusted-root is given.
func Load(ctx context.Context, opts Options) (*root.TrustedRoot, error) {
	r, err := Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	return r.TrustedRoot()
}

// LoadSigningConfig returns the signing config of the configured repository.
func LoadSigningConfig(ctx context.Context, opts Options) (*root.SigningConfig, error) {
	r, err := Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	return r.SigningConfig()
}

// LoadFile reads a trusted_root.json given on the command line; every
// failure wraps ErrMalformed (or the file's own error when it cannot be read).
func LoadFile(path string) (*root.TrustedRoot, error) {
	data, err := readLimited(path, maxMaterialBytes)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted root %s: %v", ErrMalformed, path, err)
	}
	return tr, nil
}

// ReadFile reads a trust file (a TUF root.json, a trusted root) of at most
// maxMaterialBytes.
func ReadFile(path string) ([]byte, error) { return readLimited(path, maxMaterialBytes) }

// maxMaterialBytes bounds a trust file read from disk.
const maxMaterialBytes = 4 << 20

// Open refreshes the configured repository (or verifies its cache, see the
// package contract) and returns it.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	src, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		if cacheDir, err = defaultCacheDir(); err != nil {
			return nil, err
		}
	}
	repoDir := filepath.Join(cacheDir, tuf.URLToPath(src.mirror))
	info := Info{Mirror: src.mirror, PublicGood: src.publicGood, Stored: src.stored, CacheDir: repoDir}
	if cfg, err := tuf.LoadConfig(filepath.Join(cacheDir, tuf.URLToPath(src.mirror)+".json")); err == nil {
		info.LastRefresh = cfg.LastTimestamp
	}
	anchor, err := anchorRoot(src.root, repoDir)
	if err != nil {
		return nil, err
	}
	newOpts := func(f *fetcher, forceCache bool) *tuf.Options {
		o := &tuf.Options{
			Root:              anchor,
			CachePath:         cacheDir,
			RepositoryBaseURL: src.mirror,
			Fetcher:           f,
			ForceCache:        forceCache,
		}
		return o.WithContext(ctx)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// cached verifies the cached metadata without refreshing it. After a
	// failed refresh (online set) nothing is fetched at all; on the MaxAge
	// shortcut, f may still fetch targets that are not cached yet.
	cached := func(online error, f *fetcher) (*Repository, error) {
		c, err := tuf.New(newOpts(f, true))
		r := &Repository{client: c, fetcher: f, timeout: timeout, info: info}
		r.info.FromCache = f.count() == 0
		r.info.Unreachable = online
		if err != nil {
			return nil, r.cacheError(online, err)
		}
		r.describe()
		return r, nil
	}

	if opts.MaxAge > 0 && !info.LastRefresh.IsZero() && time.Since(info.LastRefresh) < opts.MaxAge {
		f := newFetcher(ctx, opts.Transport)
		f.restart(timeout)
		if r, err := cached(nil, f); err == nil {
			return r, nil
		}
	}
	f := newFetcher(ctx, opts.Transport)
	f.restart(timeout)
	c, err := tuf.New(newOpts(f, false))
	if err != nil {
		if !isUnreachable(err) {
			return nil, classify(fmt.Sprintf("TUF repository %s", src.mirror), err)
		}
		r, cerr := cached(err, &fetcher{offline: true})
		if cerr != nil {
			return nil, cerr
		}
		r.info.FromCache = true
		r.info.Requests = f.count()
		if opts.Warn != nil {
			opts.Warn(fmt.Sprintf("TUF repository %s unreachable (%v): using the cached metadata, valid until %s",
				src.mirror, rootCause(err), r.info.Expires.UTC().Format(time.RFC3339)))
		}
		return r, nil
	}
	r := &Repository{client: c, fetcher: f, timeout: timeout, info: info}
	r.info.Requests = f.count()
	if cfg, err := tuf.LoadConfig(filepath.Join(cacheDir, tuf.URLToPath(src.mirror)+".json")); err == nil {
		r.info.LastRefresh = cfg.LastTimestamp
	}
	r.describe()
	return r, nil
}

// describe fills in the root version and metadata expiry.
func (r *Repository) describe() {
	r.info.RootVersion, r.info.Expires = trustedMetadataSummary(r.info.CacheDir)
}

// cacheError explains why the cache could not stand in for the repository.
func (r *Repository) cacheError(online, local error) error {
	if _, err := os.Stat(filepath.Join(r.info.CacheDir, metadata.TIMESTAMP+".json")); err != nil {
		return fmt.Errorf("%w: TUF repository %s unreachable (%v) and nothing cached in %s: %s",
			ErrUnavailable, r.info.Mirror, rootCause(online), r.info.CacheDir, remedy)
	}
	// sigstore-go reports the failed refresh that follows a failed cache
	// check, not the check's own error: look at the cached expiry too.
	_, expires := trustedMetadataSummary(r.info.CacheDir)
	if errors.Is(local, &metadata.ErrExpiredMetadata{}) || (!expires.IsZero() && time.Now().After(expires)) {
		return fmt.Errorf("%w: TUF repository %s unreachable (%v) and the cached metadata in %s has expired (on %s): %s",
			ErrExpired, r.info.Mirror, rootCause(online), r.info.CacheDir, expires.UTC().Format(time.RFC3339), remedy)
	}
	if online == nil {
		return classify("cached TUF metadata in "+r.info.CacheDir, local)
	}
	return fmt.Errorf("%w: TUF repository %s unreachable (%v) and the cached metadata in %s is not usable (%v): %s",
		ErrUnavailable, r.info.Mirror, rootCause(online), r.info.CacheDir, rootCause(local), remedy)
}

// classify wraps a TUF error with the package's error kinds.
func (r *Repository) classify(what string, err error) error {
	if isUnreachable(err) {
		return fmt.Errorf("%w: %s: repository unreachable (%v) and not cached: %s", ErrUnavailable, what, rootCause(err), remedy)
	}
	return classify(what, err)
}

func classify(what string, err error) error {
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		return fmt.Errorf("%w: %s: %v (refusing it; the cache is not used in its place)", ErrExpired, what, rootCause(err))
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}), errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		return fmt.Errorf("%w: %s: content differs from what the signed metadata lists (tampered?): %v", ErrInvalid, what, rootCause(err))
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		return fmt.Errorf("%w: %s: version older than the trusted one (rollback?): %v", ErrInvalid, what, rootCause(err))
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		return fmt.Errorf("%w: %s: not signed by the trusted keys (tampered?): %v", ErrInvalid, what, rootCause(err))
	case isUnreachable(err):
		return fmt.Errorf("%w: %s unreachable (%v): %s", ErrUnavailable, what, rootCause(err), remedy)
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
}

// rootCause drops sigstore-go's wrapping prefixes for shorter messages.
func rootCause(err error) error {
	if err == nil {
		return nil
	}
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func defaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for TUF metadata: %v", err)
	}
	return filepath.Join(d, "imgsign", "tuf"), nil
}
