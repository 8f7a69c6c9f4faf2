package oci_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
)

// An open registry that challenges one repository: the anonymous client
// reads the open one with no handshake, then makes the handshake once, on
// the first challenge, and reads the private one.
func TestLazyHandshakeOpenThenChallenged(t *testing.T) {
	auth := &testreg.TokenAuth{}
	var guard atomic.Bool
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		guarded := auth.Wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if guard.Load() && (strings.Contains(r.URL.Path, "/private/") || r.URL.Path == "/token" || r.Header.Get("Authorization") != "") {
				guarded.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	reg.PushImage(t, reg.Ref("open/app:v1"))
	reg.PushImage(t, reg.Ref("private/app:v1"))
	guard.Store(true)
	tokens := auth.Tokens()
	counter := &oci.RequestCounter{}
	c := client(t, oci.Options{Transport: counter})
	open, _ := name.NewTag(reg.Ref("open/app:v1"))
	if _, err := c.Resolve(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	if n := counter.Count(); n != 1 || auth.Tokens() != tokens {
		t.Fatalf("open repository: %d requests, %d tokens; want 1 and none", n, auth.Tokens()-tokens)
	}
	priv, _ := name.NewTag(reg.Ref("private/app:v1"))
	counter.Reset()
	tokens = auth.Tokens()
	for range 2 {
		if _, err := c.Resolve(context.Background(), priv); err != nil {
			t.Fatal(err)
		}
	}
	// Challenged, token, the manifest again; then the manifest alone.
	if n, tk := counter.Count(), auth.Tokens()-tokens; n != 4 || tk != 1 {
		t.Fatalf("private repository: %d requests, %d tokens; want 4 and 1", n, tk)
	}
}

// A loopback registry with TLS is reached in TLS, without a ping.
func TestLazyHandshakeLoopbackTLS(t *testing.T) {
	s := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "https://")
	tag, _ := name.NewTag(host + "/tls/app:v1")
	img, _ := random.Image(64, 1)
	if err := remote.Write(tag, img, remote.WithTransport(s.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	counter := &oci.RequestCounter{Next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}}
	c := client(t, oci.Options{Transport: counter})
	if _, err := c.Resolve(context.Background(), tag); err != nil {
		t.Fatal(err)
	}
	if n := counter.Count(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}
