package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options configure a Client. The zero value talks to registries with the
// credentials of the Docker config file, system TLS roots and default limits.
type Options struct {
	// Username and Password, when set, are used for every registry instead
	// of the keychain.
	Username, Password string
	// Keychain supplies credentials per registry; default
	// authn.DefaultKeychain (Docker config file and credential helpers).
	Keychain authn.Keychain
	// CACertFiles are PEM files of extra trusted registry CAs.
	CACertFiles []string
	// ClientCertFile and ClientKeyFile are a TLS client certificate.
	ClientCertFile, ClientKeyFile string
	// InsecureSkipTLSVerify turns off TLS certificate verification.
	InsecureSkipTLSVerify bool
	// AllowHTTP permits plain HTTP to registries not on the loopback
	// interface. Loopback registries may always use plain HTTP.
	AllowHTTP bool
	// Retries is how many times a request failing with 408, 429 or 5xx or
	// a connection reset is tried again, with exponential backoff.
	// Zero means the default (3); negative means none.
	Retries int
	// Limits on untrusted data; zero fields take the defaults.
	Limits Limits
	// RequestTimeout bounds each request: a document (manifest, payload,
	// bundle, attestation, list) must arrive whole within it; a blob stream
	// fails when no byte arrives for that long. Zero means
	// DefaultRequestTimeout; negative means none.
	RequestTimeout time.Duration
	// UserAgent is added to requests.
	UserAgent string
	// Transport replaces the HTTP transport (TLS options are then ignored).
	// Tests and benchmarks use it to count or fault requests.
	Transport http.RoundTripper
}

// Client reads and writes images and signatures. One Client authenticates
// once per registry (and once more if it must write) and reuses
// connections; without credentials it sends no ping, the first request
// serving as one (lazyAuth). It is safe for concurrent use.
type Client struct {
	base   http.RoundTripper // TLS, guard, retries: what authentication wraps
	auth   func(name.Registry) (authn.Authenticator, error)
	limits Limits

	mu         sync.Mutex
	transports map[string]*authEntry // by registry, and "push:"+registry
	apis       map[string]bool       // whether a registry has the referrers API, once known
}

// authEntry is an authenticated transport for one registry, made once.
type authEntry struct {
	mu sync.Mutex
	rt http.RoundTripper
}

// DefaultRetries is the number of retries of a failed request.
const DefaultRetries = 3

// retryStatusCodes are the answers worth trying again.
var retryStatusCodes = []int{http.StatusRequestTimeout, http.StatusTooManyRequests,
	http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// NewClient returns a Client for the options.
func NewClient(o Options) (*Client, error) {
	rt, err := baseTransport(o)
	if err != nil {
		return nil, err
	}
	retries := o.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	if retries > 0 {
		rt = transport.NewRetry(rt,
			transport.WithRetryBackoff(transport.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: retries + 1}),
			transport.WithRetryStatusCodes(retryStatusCodes...),
			transport.WithRetryPredicate(isTransient))
	}
	c := &Client{base: rt, limits: o.Limits.orDefault(), transports: map[string]*authEntry{}, apis: map[string]bool{}}
	switch {
	case o.Username != "" || o.Password != "":
		basic := &authn.Basic{Username: o.Username, Password: o.Password}
		c.auth = func(name.Registry) (authn.Authenticator, error) { return basic, nil }
	default:
		kc := o.Keychain
		if kc == nil {
			kc = authn.DefaultKeychain
		}
		c.auth = func(r name.Registry) (authn.Authenticator, error) { return kc.Resolve(r) }
	}
	return c, nil
}

// isTransient reports whether a failed request is worth retrying: a
// retryable status (go-containerregistry marks it temporary) or a dropped
// connection. A deadline is never retried.
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Limits returns the limits the client enforces.
func (c *Client) Limits() Limits { return c.limits }

// transport returns the authenticated transport for repo's registry: the
// first call pings the registry and authenticates (for pushing to repo when
// push is set), or, without credentials, prepares to do so on the first
// challenge (lazyAuth); later calls reuse it. A read reuses a push transport if
// there is one, so signing pings once.
func (c *Client) transport(ctx context.Context, repo name.Repository, push bool) (http.RoundTripper, error) {
	reg := repo.RegistryStr()
	c.mu.Lock()
	e := c.transports["push:"+reg]
	if e == nil && !push {
		e = c.transports[reg]
	}
	if e == nil {
		e = &authEntry{}
		key := reg
		if push {
			key = "push:" + reg
		}
		c.transports[key] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rt != nil {
		return e.rt, nil
	}
	auth, err := c.auth(repo.Registry)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", reg, err)
	}
	scope := transport.PullScope
	if push {
		scope = transport.PushScope
	}
	scopes := []string{repo.Scope(scope)}
	if lazyHandshake(repo.Registry, auth) {
		// No ping: the first request serves as one (lazyAuth). Wrapped as
		// go-containerregistry's own handshake result, so that its remote
		// functions use it as it is.
		e.rt, err = transport.FromToken(repo.Registry, authn.Anonymous, &lazyAuth{reg: repo.Registry, base: c.base, scopes: scopes}, &transport.Challenge{}, nil)
		return e.rt, err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, c.base, scopes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", reg, err)
	}
	e.rt = rt // not cached on error: the next call tries again
	return rt, nil
}

// options returns go-containerregistry options using the authenticated
// transport (which it does not ping or wrap again).
func (c *Client) options(ctx context.Context, repo name.Repository, push bool) ([]remote.Option, error) {
	rt, err := c.transport(ctx, repo, push)
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}, nil
}

// Authenticate prepares the client to write to repo, so that reads and
// writes that follow share one registry handshake.
func (c *Client) Authenticate(ctx context.Context, repo name.Repository, push bool) error {
	_, err := c.transport(ctx, repo, push)
	return err
}

// ErrNotFound is wrapped when a manifest or tag does not exist.
var ErrNotFound = errors.New("not found")

// Resolved is an image or index resolved to its digest.
type Resolved struct {
	// Ref is the digest reference of what was resolved.
	Ref name.Digest
	// Descriptor describes the manifest: media type, size and digest.
	Descriptor v1.Descriptor
	// Manifest is the raw manifest, whose SHA-256 is the digest.
	Manifest []byte
}

// PlatformManifest returns the descriptor of the manifest for platform p
// in the index r: the first whose platform satisfies p. r must be an index;
// no such manifest is ErrNotFound.
func (r *Resolved) PlatformManifest(p v1.Platform) (v1.Descriptor, error) {
	if !r.Descriptor.MediaType.IsIndex() {
		return v1.Descriptor{}, fmt.Errorf("%s: a platform was given but it is not an index", r.Ref)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(r.Manifest))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: malformed index: %w", r.Ref, err)
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.Satisfies(p) {
			return m, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w: no manifest for platform %s", r.Ref, ErrNotFound, p.String())
}

// Resolve fetches the manifest ref names and returns its digest, computed
// from the bytes received (a registry's Docker-Content-Digest header is never
// trusted). When ref is a digest, bytes that do not hash to it are refused.
// Afterwards callers work with Resolved.Ref only: a tag is read once.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (*Resolved, error) {
	opts, err := c.options(ctx, ref.Context(), false)
	if err != nil {
		return nil, err
	}
	d, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, wrapNotFound(ref.String(), err)
	}
	desc, err := checkManifest(ref, d.Descriptor, d.Manifest)
	if err != nil {
		return nil, err
	}
	return &Resolved{Ref: ref.Context().Digest(desc.Digest.String()), Descriptor: desc, Manifest: d.Manifest}, nil
}

// checkManifest refuses schema 1 manifests (by media type or by content)
// and returns desc with the digest and size of raw as received: the
// library's descriptor may take a schema 1 digest from the registry's
// Docker-Content-Digest header. When ref is a digest, raw must hash to it.
func checkManifest(ref name.Reference, desc v1.Descriptor, raw []byte) (v1.Descriptor, error) {
	var probe struct {
		SchemaVersion json.Number `json:"schemaVersion"`
	}
	_ = json.Unmarshal(raw, &probe)
	if isSchema1(desc.MediaType) || probe.SchemaVersion == "1" {
		return v1.Descriptor{}, fmt.Errorf("%s: %w", ref, ErrSchema1)
	}
	h, n, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if dg, ok := ref.(name.Digest); ok && dg.DigestStr() != h.String() {
		return v1.Descriptor{}, fmt.Errorf("%s: %w: the bytes served hash to %s", ref, ErrDigestMismatch, h)
	}
	desc.Digest, desc.Size = h, n
	return desc, nil
}

// wrapNotFound turns a registry 404 (or MANIFEST_UNKNOWN/NAME_UNKNOWN) into
// ErrNotFound, keeping the original error in the chain.
func wrapNotFound(what string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%s: %w (%v)", what, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
			return true
		}
	}
	return false
}
