// Package testreg starts go-containerregistry's in-process registry for fast
// tests, and pushes random images to it. It is for tests only; the e2e suite
// uses a real registry server.
package testreg

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a running in-process registry.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Server is the test server; its Config.Handler may be wrapped.
	Server *httptest.Server
}

// Start starts a registry on 127.0.0.1 for the test's lifetime. wrap, if
// not nil, wraps the registry handler (to inject faults or lies).
func Start(t testing.TB, wrap func(http.Handler) http.Handler, opts ...registry.Option) *Registry {
	t.Helper()
	opts = append([]registry.Option{registry.Logger(log.New(io.Discard, "", 0))}, opts...)
	var h http.Handler = registry.New(opts...)
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return &Registry{Host: strings.TrimPrefix(s.URL, "http://"), Server: s}
}

// Ref returns "HOST/path".
func (r *Registry) Ref(path string) string { return r.Host + "/" + path }

// PushImage pushes a small random image to ref (a tag) and returns its
// digest reference.
func (r *Registry) PushImage(t testing.TB, ref string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r.push(t, ref, img)
}

func (r *Registry) push(t testing.TB, ref string, img v1.Image) name.Digest {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// PushIndex pushes an index of two random images for linux/amd64 and
// linux/arm64 and returns the index digest and the children's digests.
func (r *Registry) PushIndex(t testing.TB, ref string) (name.Digest, []name.Digest) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.ImageIndex = empty.Index
	var children []name.Digest
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		children = append(children, tag.Context().Digest(d.String()))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return tag.Context().Digest(d.String()), children
}

// TokenAuth is the Docker registry token protocol as public registries run
// it for anonymous pulls: a request without a token is answered 401 with a
// Bearer challenge whose realm is /token on the registry itself, which hands
// out a token to anyone. Wrap a registry with it (Start(t, a.Wrap)) to count
// the authentication round trips a client makes.
type TokenAuth struct {
	tokens, challenges atomic.Int64
}

// tokenValue is the one token TokenAuth issues and accepts.
const tokenValue = "testreg-anonymous-token"

// Wrap requires a token for every /v2/ request of next and serves /token.
func (a *TokenAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			a.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token": %q, "expires_in": 300}`, tokenValue)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+tokenValue {
			a.challenges.Add(1)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="testreg"`, r.Host))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Tokens is the number of tokens issued.
func (a *TokenAuth) Tokens() int64 { return a.tokens.Load() }

// Challenges is the number of requests answered 401 for want of a token.
func (a *TokenAuth) Challenges() int64 { return a.challenges.Load() }
