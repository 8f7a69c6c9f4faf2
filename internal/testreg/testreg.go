// Package testreg starts go-containerregistry's in-process registry for fast
// tests, and pushes random images to it. It is for tests only; the e2e suite
// uses a real registry server.
package testreg

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
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
