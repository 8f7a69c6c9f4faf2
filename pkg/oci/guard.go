package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// MaxRedirects is the most redirects followed for one request, as Go's
// default HTTP client. go-containerregistry's clients set a redirect check
// without a hop limit, so the transport enforces it for every client.
const MaxRedirects = 10

// DefaultRequestTimeout bounds one registry request: a document (manifest,
// referrers list, tag list, signature payload, bundle, attestation) must
// arrive whole within it, and a streamed blob fails when no byte arrives for
// that long.
const DefaultRequestTimeout = 30 * time.Second

// ErrTooManyRedirects is wrapped when a request is redirected more than
// MaxRedirects times.
var ErrTooManyRedirects = errors.New("too many redirects")

// ErrRequestTimeout is wrapped when a registry does not deliver a document
// within the request timeout, or a blob stalls for that long.
var ErrRequestTimeout = errors.New("registry too slow")

// ErrSchema1 is wrapped when a registry serves a Docker schema 1 manifest.
// Schema 1 manifests carry their signature inside the bytes, so their digest
// is not the hash of what was served; they cannot be signed or verified
// safely and are refused.
var ErrSchema1 = errors.New("Docker schema 1 manifests are not supported (their digest is not the hash of their bytes); convert the image to schema 2 or OCI")

type documentKey struct{}

// asDocument marks ctx so that requests made with it must complete, body
// included, within the request timeout: the caller reads a small, capped
// document, not a stream.
func asDocument(ctx context.Context) context.Context {
	return context.WithValue(ctx, documentKey{}, true)
}

// isDocument reports whether req fetches a document: a manifest, a
// referrers list, a tag list, or a request whose context is marked.
func isDocument(req *http.Request) bool {
	if v, _ := req.Context().Value(documentKey{}).(bool); v {
		return true
	}
	p := req.URL.Path
	return strings.Contains(p, "/manifests/") || strings.Contains(p, "/referrers/") || strings.HasSuffix(p, "/tags/list")
}

// redirects counts the redirects that led to req: net/http sets
// Request.Response on the request it makes to follow one.
func redirects(req *http.Request) int {
	n := 0
	for r := req; r.Response != nil && r.Response.Request != nil && n <= MaxRedirects; r = r.Response.Request {
		n++
	}
	return n
}

// isSchema1 reports whether mt is a Docker schema 1 manifest type.
func isSchema1(mt types.MediaType) bool {
	mt = types.MediaType(strings.TrimSpace(strings.Split(string(mt), ";")[0]))
	return mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed
}

// timed bounds one request: for a document the whole exchange must end
// within d; otherwise every wait for the response or the next body bytes
// must end within d. The returned response body, when there is one, stops
// the clock when closed.
func timed(next http.RoundTripper, req *http.Request, d time.Duration) (*http.Response, error) {
	doc := isDocument(req)
	what := fmt.Sprintf("registry %s: %s %s", req.URL.Host, req.Method, req.URL.Path)
	ctx, cancel := context.WithCancelCause(req.Context())
	var cause error
	if doc {
		cause = fmt.Errorf("%s: %w: the response did not arrive whole within %s (--request-timeout)", what, ErrRequestTimeout, d)
	} else {
		cause = fmt.Errorf("%s: %w: no data for %s (--request-timeout)", what, ErrRequestTimeout, d)
	}
	timer := time.AfterFunc(d, func() { cancel(cause) })
	resp, err := next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		if context.Cause(ctx) == cause {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	if !doc {
		timer.Reset(d)
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, ctx: ctx, cause: cause, timer: timer, idle: !doc, d: d, cancel: cancel}
	return resp, nil
}

// timedBody reports the timeout as the reason of a read it interrupted,
// rearms an idle timer on progress and releases the timer on Close.
type timedBody struct {
	io.ReadCloser
	ctx    context.Context
	cause  error
	timer  *time.Timer
	idle   bool
	d      time.Duration
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.idle {
		b.timer.Reset(b.d)
	}
	if err != nil && err != io.EOF && context.Cause(b.ctx) == b.cause {
		err = b.cause
	}
	return n, err
}

func (b *timedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel(nil)
	})
	return err
}

// httpClient returns an HTTP client over rt that leaves the redirect limit
// to the transport, so every redirect loop fails the same way.
func httpClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
}
