package oci

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// lazyAuth is the transport of a client without credentials for one
// registry. It saves go-containerregistry's ping (GET /v2/), one request per
// registry per run: the first real request goes out unauthenticated, and
//   - an answer other than a 401 challenge means the registry is open: the
//     answer is returned and later requests go out the same way;
//   - a 401 with a WWW-Authenticate challenge is exactly what the ping would
//     have returned: go-containerregistry's handshake is made from it (the
//     anonymous token exchange for the scopes, when the challenge is Bearer)
//     and the request is sent again, authenticated. An open registry that
//     challenges a later request (a private repository) is handled the same
//     way, once.
//
// So an open registry costs no handshake request and a token registry the
// same requests as before (the challenged request takes the ping's place).
// Clients with credentials keep the ping: it decides whether credentials go
// with every request (Basic) or only to the token service (Bearer), and a
// registry may hide a private repository from an anonymous request (404)
// instead of challenging it.
//
// The scheme is https; a loopback registry whose TLS attempt gets no answer
// is asked again in plain HTTP, and then always so (the ping raced the two).
// An answer never fixes https: a transport answering some requests itself
// (an image layout overlay) answers in any scheme.
type lazyAuth struct {
	reg    name.Registry
	base   http.RoundTripper
	scopes []string
	plain  atomic.Bool // a loopback registry without TLS

	mu      sync.Mutex
	started bool              // the first request went out
	authed  http.RoundTripper // the handshake's transport, once challenged
}

// lazyHandshake reports whether a client with auth can do without the ping
// for reg: no credentials, and a scheme that needs no race (https, or a
// loopback registry, which answers a TLS attempt at once either way).
func lazyHandshake(reg name.Registry, auth authn.Authenticator) bool {
	if auth != authn.Anonymous {
		return false
	}
	if reg.Scheme() == "https" {
		return true
	}
	host, _, err := net.SplitHostPort(reg.RegistryStr())
	if err != nil {
		host = reg.RegistryStr()
	}
	return isLoopback(host)
}

// RoundTrip sends req, making the handshake when the registry asks for it.
func (l *lazyAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	if l.authed != nil {
		rt := l.authed
		l.mu.Unlock()
		return rt.RoundTrip(req)
	}
	if !l.isRegistry(req) {
		// A token service or the storage a registry redirected to.
		l.mu.Unlock()
		return l.base.RoundTrip(req)
	}
	if !l.started {
		// The first request: others wait for its answer, so that one
		// handshake serves them all.
		defer l.mu.Unlock()
		l.started = true
		if !replayable(req) {
			// It could not be sent again after a challenge: handshake first.
			rt, err := transport.NewWithContext(req.Context(), l.reg, authn.Anonymous, l.base, l.scopes)
			if err != nil {
				return nil, err
			}
			l.authed = rt
			return rt.RoundTrip(req)
		}
		resp, scheme, err := l.send(req)
		if err != nil || !isChallenge(resp) {
			return resp, err
		}
		return l.handshake(req, resp, scheme)
	}
	l.mu.Unlock()
	resp, scheme, err := l.send(req)
	if err != nil || !isChallenge(resp) || !replayable(req) {
		return resp, err
	}
	// An open registry challenged this request after all.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.authed != nil {
		resp.Body.Close()
		r, err := rewind(req)
		if err != nil {
			return nil, err
		}
		return l.authed.RoundTrip(r)
	}
	return l.handshake(req, resp, scheme)
}

// send sends req to the registry, returning the scheme that answered.
func (l *lazyAuth) send(req *http.Request) (*http.Response, string, error) {
	if l.plain.Load() {
		resp, err := l.base.RoundTrip(l.withScheme(req, "http"))
		return resp, "http", err
	}
	resp, err := l.base.RoundTrip(l.withScheme(req, "https"))
	if err == nil || l.reg.Scheme() == "https" || req.Context().Err() != nil {
		return resp, "https", err
	}
	// A loopback registry: the TLS attempt got no answer, so the request
	// was not received; it goes again in plain HTTP.
	r, rerr := rewind(req)
	if rerr != nil {
		return nil, "", errors.Join(err, rerr)
	}
	presp, perr := l.base.RoundTrip(l.withScheme(r, "http"))
	switch {
	case perr != nil:
		return nil, "", errors.Join(err, perr)
	case presp.StatusCode == http.StatusBadRequest:
		// A TLS server refusing plain HTTP: the TLS error is the answer.
		presp.Body.Close()
		return nil, "", err
	}
	l.plain.Store(true)
	return presp, "http", nil
}

// handshake makes go-containerregistry's handshake from the challenge resp
// received in scheme (in place of a ping's answer), keeps its transport for every later
// request, and sends req again through it. l.mu is held.
func (l *lazyAuth) handshake(req *http.Request, resp *http.Response, scheme string) (*http.Response, error) {
	resp.Body.Close()
	canned := &cannedPing{next: l.base, resp: http.Response{
		Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: resp.Header.Clone(), Body: http.NoBody,
	}, scheme: scheme}
	rt, err := transport.NewWithContext(req.Context(), l.reg, authn.Anonymous, canned, l.scopes)
	if err != nil {
		return nil, err
	}
	l.authed = rt
	r, err := rewind(req)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(r)
}

// isRegistry reports whether req goes to the registry (not to a token
// service or blob storage it redirected to).
func (l *lazyAuth) isRegistry(req *http.Request) bool {
	return req.URL.Host == l.reg.RegistryStr()
}

// withScheme returns req sent with scheme to the registry (a copy when the
// URL changes).
func (l *lazyAuth) withScheme(req *http.Request, scheme string) *http.Request {
	if scheme == "" || req.URL.Scheme == scheme || !l.isRegistry(req) {
		return req
	}
	r := req.Clone(req.Context())
	r.URL.Scheme = scheme
	return r
}

// isChallenge reports whether resp asks for authentication.
func isChallenge(resp *http.Response) bool {
	return resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != ""
}

// replayable reports whether req can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns req with its body ready to be sent again.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

// cannedPing answers go-containerregistry's ping (GET /v2/) with the
// challenge a real request already received, once, and passes every other
// request on. The answer names the scheme the registry was reached with, as
// a ping's would.
type cannedPing struct {
	next   http.RoundTripper
	resp   http.Response
	scheme string

	once sync.Once
}

func (c *cannedPing) RoundTrip(req *http.Request) (*http.Response, error) {
	var answer *http.Response
	if req.Method == http.MethodGet && req.URL.Path == "/v2/" {
		c.once.Do(func() {
			r := req.Clone(req.Context())
			r.URL.Scheme = c.scheme
			a := c.resp
			a.Request = r
			answer = &a
		})
	}
	if answer != nil {
		return answer, nil
	}
	return c.next.RoundTrip(req)
}
