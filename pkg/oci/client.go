package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	// UserAgent is added to requests.
	UserAgent string
	// Transport replaces the HTTP transport (TLS options are then ignored).
	// Tests and benchmarks use it to count or fault requests.
	Transport http.RoundTripper
}

// Client reads and writes images and signatures. One Client authenticates
// once per registry and repository and reuses connections; it is safe for
// concurrent use.
type Client struct {
	base   http.RoundTripper
	limits Limits
	puller *remote.Puller
	pusher *remote.Pusher
}

// DefaultRetries is the number of retries of a failed request.
const DefaultRetries = 3

// NewClient returns a Client for the options.
func NewClient(o Options) (*Client, error) {
	rt, err := baseTransport(o)
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{remote.WithTransport(rt)}
	switch {
	case o.Username != "" || o.Password != "":
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: o.Username, Password: o.Password}))
	case o.Keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(o.Keychain))
	default:
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(o.UserAgent))
	}
	retries := o.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	if retries < 0 {
		retries = 0
	}
	opts = append(opts,
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: retries + 1}),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	)
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	return &Client{base: rt, limits: o.Limits.orDefault(), puller: puller, pusher: pusher}, nil
}

// Limits returns the limits the client enforces.
func (c *Client) Limits() Limits { return c.limits }

func (c *Client) pull(ctx context.Context) []remote.Option {
	return []remote.Option{remote.Reuse(c.puller), remote.WithContext(ctx)}
}

func (c *Client) push(ctx context.Context) []remote.Option {
	return []remote.Option{remote.Reuse(c.pusher), remote.WithContext(ctx)}
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

// Resolve fetches the manifest ref names and returns its digest, computed
// from the bytes received (a registry's Docker-Content-Digest header is never
// trusted). When ref is a digest, bytes that do not hash to it are refused.
// Afterwards callers work with Resolved.Ref only: a tag is read once.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (*Resolved, error) {
	d, err := remote.Get(ref, c.pull(ctx)...)
	if err != nil {
		return nil, wrapNotFound(ref.String(), err)
	}
	return &Resolved{Ref: ref.Context().Digest(d.Digest.String()), Descriptor: d.Descriptor, Manifest: d.Manifest}, nil
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
