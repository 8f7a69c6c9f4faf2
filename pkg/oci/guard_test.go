package oci_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
)

// A registry that redirects every request to itself is given up after
// MaxRedirects hops, for the library's requests and for ours.
func TestRedirectLoopStops(t *testing.T) {
	var hops atomic.Int64
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				next.ServeHTTP(w, r)
				return
			}
			hops.Add(1)
			http.Redirect(w, r, r.URL.Path+"?x="+r.URL.Query().Get("x")+"x", http.StatusTemporaryRedirect)
		})
	})
	tag, _ := name.NewTag(reg.Ref("r/app:v1"))
	c := client(t, oci.Options{Retries: -1})
	_, err := c.Resolve(context.Background(), tag)
	if !errors.Is(err, oci.ErrTooManyRedirects) || !strings.Contains(err.Error(), "too many redirects") {
		t.Fatalf("Resolve: err = %v, want too many redirects", err)
	}
	if n := hops.Load(); n != oci.MaxRedirects+1 {
		t.Fatalf("%d requests reached the registry, want %d", n, oci.MaxRedirects+1)
	}
	hops.Store(0)
	d, _ := name.NewDigest(reg.Ref("r/app@sha256:" + strings.Repeat("a", 64)))
	if _, err := c.OpenBlob(context.Background(), d.Context(), v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Size: 1}); !errors.Is(err, oci.ErrTooManyRedirects) {
		t.Fatalf("OpenBlob: err = %v, want too many redirects", err)
	}
	if n := hops.Load(); n > oci.MaxRedirects+1 {
		t.Fatalf("%d requests reached the registry, want at most %d", n, oci.MaxRedirects+1)
	}
}

// trickle answers matching requests with a status line and then one byte
// per tick, never finishing before the client gives up.
func trickle(match func(*http.Request) bool, contentType string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(200)
			for i := 0; i < 1000; i++ {
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
}

// A manifest trickled byte by byte fails at the request timeout, even
// though bytes keep coming, with an error naming registry and request.
func TestTricklingManifestTimesOut(t *testing.T) {
	reg := testreg.Start(t, trickle(func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, "/manifests/")
	}, "application/vnd.oci.image.manifest.v1+json"))
	tag, _ := name.NewTag(reg.Ref("r/app:v1"))
	c := client(t, oci.Options{Retries: -1, RequestTimeout: 300 * time.Millisecond})
	_, err := c.Resolve(context.Background(), tag)
	if !errors.Is(err, oci.ErrRequestTimeout) {
		t.Fatalf("err = %v, want ErrRequestTimeout", err)
	}
	for _, want := range []string{tag.RegistryStr(), "GET /v2/r/app/manifests/v1", "--request-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// A blob stream is bounded by idle time only: steady bytes keep it alive
// past the request timeout; a stall fails it.
func TestBlobIdleTimeout(t *testing.T) {
	const size = 30
	var stall atomic.Bool
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/blobs/") {
				next.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(200)
			for i := 0; i < size; i++ {
				w.Write([]byte("a"))
				w.(http.Flusher).Flush()
				d := 20 * time.Millisecond
				if stall.Load() && i == 5 {
					d = 5 * time.Second
				}
				select {
				case <-r.Context().Done():
					return
				case <-time.After(d):
				}
			}
		})
	})
	h, _, _ := v1.SHA256(strings.NewReader(strings.Repeat("a", size)))
	repo, _ := name.NewRepository(reg.Ref("r/app"))
	c := client(t, oci.Options{Retries: -1, RequestTimeout: 300 * time.Millisecond})
	read := func() error {
		rc, err := c.OpenBlob(context.Background(), repo, v1.Descriptor{Digest: h, Size: size})
		if err != nil {
			return err
		}
		defer rc.Close()
		buf := make([]byte, 64)
		for {
			_, err := rc.Read(buf)
			if err != nil {
				if err.Error() == "EOF" {
					return nil
				}
				return err
			}
		}
	}
	if err := read(); err != nil { // ~600 ms in all, 20 ms between bytes
		t.Fatalf("steady blob: %v", err)
	}
	stall.Store(true)
	if err := read(); !errors.Is(err, oci.ErrRequestTimeout) || !strings.Contains(err.Error(), "no data for") {
		t.Fatalf("stalled blob: err = %v, want idle ErrRequestTimeout", err)
	}
}

// Schema 1 manifests are refused whatever the header says, signed or not,
// by media type or by content.
func TestSchema1Refused(t *testing.T) {
	body := `{"schemaVersion":1,"name":"r/app","tag":"v1","architecture":"amd64","fsLayers":[],"history":[]}`
	for _, ct := range []string{
		"application/vnd.docker.distribution.manifest.v1+prettyjws",
		"application/vnd.docker.distribution.manifest.v1+json",
		"application/json", // by content
	} {
		t.Run(ct, func(t *testing.T) {
			reg := testreg.Start(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !strings.Contains(r.URL.Path, "/manifests/") {
						next.ServeHTTP(w, r)
						return
					}
					w.Header().Set("Content-Type", ct)
					w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
					w.Write([]byte(body))
				})
			})
			tag, _ := name.NewTag(reg.Ref("r/app:v1"))
			_, err := client(t, oci.Options{Retries: -1}).Resolve(context.Background(), tag)
			if !errors.Is(err, oci.ErrSchema1) {
				t.Fatalf("err = %v, want ErrSchema1", err)
			}
		})
	}
}

// A capped blob (signature payload, bundle, attestation) is a document:
// trickled, it fails at the request timeout even though bytes keep coming,
// where a streamed blob would not.
func TestTricklingDocumentBlobTimesOut(t *testing.T) {
	reg := testreg.Start(t, trickle(func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, "/blobs/")
	}, "application/octet-stream"))
	repo, _ := name.NewRepository(reg.Ref("r/app"))
	h, _, _ := v1.SHA256(strings.NewReader(strings.Repeat(" ", 1000)))
	c := client(t, oci.Options{Retries: -1, RequestTimeout: 300 * time.Millisecond})
	_, err := c.FetchBlob(context.Background(), repo, v1.Descriptor{Digest: h, Size: 1000}, 1<<20)
	if !errors.Is(err, oci.ErrRequestTimeout) || !strings.Contains(err.Error(), "did not arrive whole") {
		t.Fatalf("err = %v, want ErrRequestTimeout for a document", err)
	}
}
