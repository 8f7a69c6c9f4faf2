package oci

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Connection timeouts. The overall time of an operation is bounded by the
// caller's context.
const (
	dialTimeout           = 30 * time.Second
	tlsHandshakeTimeout   = 15 * time.Second
	responseHeaderTimeout = 60 * time.Second
)

// ErrPlainHTTP is returned when a registry that is not on the loopback
// interface would be reached over plain HTTP without permission.
var ErrPlainHTTP = errors.New("refusing plain HTTP to a registry that is not on this machine (allow it with --allow-http-registry)")

// ErrTooLarge is wrapped when a registry response exceeds a limit.
var ErrTooLarge = errors.New("registry response exceeds the size limit")

// baseTransport builds the HTTP transport under go-containerregistry's auth
// and retry layers: TLS settings, the plain-HTTP rule and manifest size limit.
func baseTransport(o Options) (http.RoundTripper, error) {
	var rt http.RoundTripper = o.Transport
	if rt == nil {
		var err error
		if rt, err = NetworkTransport(o); err != nil {
			return nil, err
		}
	}
	timeout := o.RequestTimeout
	if timeout == 0 {
		timeout = DefaultRequestTimeout
	}
	return &guardTransport{next: rt, allowHTTP: o.AllowHTTP, maxManifest: o.Limits.orDefault().MaxManifestBytes, userAgent: o.UserAgent, timeout: timeout}, nil
}

// NetworkTransport returns the HTTP transport a Client with options o uses
// to reach registries (TLS settings of o, timeouts, proxy from the
// environment). A Client adds its own checks, authentication and retries
// above it; it is exported for transports that send some requests to the
// network and answer others themselves, set as Options.Transport.
func NetworkTransport(o Options) (http.RoundTripper, error) {
	tlsConfig, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}, nil
}

func tlsConfig(o Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipTLSVerify} //nolint:gosec // an explicit user choice
	if len(o.CACertFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range o.CACertFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("registry CA certificate: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry CA certificate %s: no PEM certificate found", f)
			}
		}
		cfg.RootCAs = pool
	}
	if o.ClientCertFile != "" || o.ClientKeyFile != "" {
		if o.ClientCertFile == "" || o.ClientKeyFile == "" {
			return nil, errors.New("a registry client certificate needs both a certificate and a key file")
		}
		cert, err := tls.LoadX509KeyPair(o.ClientCertFile, o.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("registry client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// guardTransport enforces the plain-HTTP rule, the redirect limit and the
// request timeout, refuses schema 1 manifests, caps manifest responses and
// sets the User-Agent. Every request of a Client, whichever library code
// makes it, passes here.
type guardTransport struct {
	next        http.RoundTripper
	allowHTTP   bool
	maxManifest int64
	userAgent   string
	timeout     time.Duration // <0: none
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("%s: %w", req.URL.Host, ErrPlainHTTP)
	}
	if g.userAgent != "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", g.userAgent)
	}
	if redirects(req) > MaxRedirects {
		return nil, fmt.Errorf("registry %s: %s %s: %w (more than %d)", req.URL.Host, req.Method, req.URL.Path, ErrTooManyRedirects, MaxRedirects)
	}
	var resp *http.Response
	var err error
	if g.timeout > 0 {
		resp, err = timed(g.next, req, g.timeout)
	} else {
		resp, err = g.next.RoundTrip(req)
	}
	if err != nil || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, err
	}
	if isSchema1(types.MediaType(resp.Header.Get("Content-Type"))) {
		resp.Body.Close()
		return nil, fmt.Errorf("registry %s: %s %s: %w", req.URL.Host, req.Method, req.URL.Path, ErrSchema1)
	}
	if resp.ContentLength > g.maxManifest {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: manifest of %d bytes at %s (limit %d)", ErrTooLarge, resp.ContentLength, req.URL.Path, g.maxManifest)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: g.maxManifest, what: req.URL.Path}
	return resp, nil
}

// limitedBody fails a read that goes past the limit, rather than silently
// truncating, so a too-large response is an error and never parsed.
type limitedBody struct {
	io.ReadCloser
	left int64
	what string
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.ReadCloser.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, fmt.Errorf("%w: response for %s", ErrTooLarge, l.what)
	}
	return n, err
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RequestCounter is an http.RoundTripper that counts the HTTP requests that
// got a response: registry round trips. An attempt that failed before any
// response (such as the TLS probe go-containerregistry races against plain
// HTTP for loopback registries) is not counted. Benchmarks and tests use it.
type RequestCounter struct {
	Next  http.RoundTripper
	count atomic.Int64
}

// RoundTrip counts the request and passes it on.
func (c *RequestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	next := c.Next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err == nil {
		c.count.Add(1)
	}
	return resp, err
}

// Count returns the number of requests so far.
func (c *RequestCounter) Count() int64 { return c.count.Load() }

// Reset sets the count to zero.
func (c *RequestCounter) Reset() { c.count.Store(0) }
