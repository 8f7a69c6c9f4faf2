package oci_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
)

func client(t *testing.T, o oci.Options) *oci.Client {
	t.Helper()
	c, err := oci.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolveComputesDigestFromBytes(t *testing.T) {
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A lying header must not matter.
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
			next.ServeHTTP(w, r)
		})
	})
	d := reg.PushImage(t, reg.Ref("r/app:v1"))
	tag, _ := name.NewTag(reg.Ref("r/app:v1"))
	res, err := client(t, oci.Options{}).Resolve(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref.DigestStr() != d.DigestStr() {
		t.Fatalf("resolved %s, want %s", res.Ref.DigestStr(), d.DigestStr())
	}
	missing, _ := name.NewTag(reg.Ref("r/app:missing"))
	if _, err := client(t, oci.Options{}).Resolve(context.Background(), missing); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("missing tag: err = %v, want ErrNotFound", err)
	}
}

func TestManifestSizeLimit(t *testing.T) {
	reg := testreg.Start(t, nil)
	reg.PushImage(t, reg.Ref("r/app:v1"))
	tag, _ := name.NewTag(reg.Ref("r/app:v1"))
	c := client(t, oci.Options{Limits: oci.Limits{MaxManifestBytes: 100}})
	if _, err := c.Resolve(context.Background(), tag); !errors.Is(err, oci.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Without a Content-Length the body is cut off by reading, not trusted.
	reg2 := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.WriteHeader(200)
				for i := 0; i < 1000; i++ {
					w.Write([]byte(strings.Repeat(" ", 1024)))
					w.(http.Flusher).Flush()
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	tag2, _ := name.NewTag(reg2.Ref("r/app:v1"))
	c2 := client(t, oci.Options{Limits: oci.Limits{MaxManifestBytes: 64 << 10}})
	if _, err := c2.Resolve(context.Background(), tag2); !errors.Is(err, oci.ErrTooLarge) {
		t.Fatalf("chunked: err = %v, want ErrTooLarge", err)
	}
}

func TestPlainHTTPOnlyForLoopback(t *testing.T) {
	c := client(t, oci.Options{Retries: -1})
	// 192.0.2.0/24 is TEST-NET-1; the guard refuses before any connection.
	ref, _ := name.NewTag("192.0.2.1:5000/app:v1", name.Insecure)
	_, err := c.Resolve(context.Background(), ref)
	if !errors.Is(err, oci.ErrPlainHTTP) {
		t.Fatalf("err = %v, want ErrPlainHTTP", err)
	}
}

func TestRetriesOnServerErrors(t *testing.T) {
	var fails atomic.Int32
	fails.Store(2)
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") && fails.Add(-1) >= 0 {
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	reg.PushImage(t, reg.Ref("r/app:v1"))
	fails.Store(2)
	tag, _ := name.NewTag(reg.Ref("r/app:v1"))
	if _, err := client(t, oci.Options{}).Resolve(context.Background(), tag); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	fails.Store(100)
	_, err := client(t, oci.Options{Retries: 1}).Resolve(context.Background(), tag)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("persistent 503: err = %v, want a 503 error", err)
	}
}

func TestAddAttachmentsConcurrent(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	const writers = 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := client(t, oci.Options{}) // one client per writer, as separate processes would
			att := oci.Attachment{Payload: []byte{byte('a' + i)}, MediaType: oci.SimpleSigningMediaType,
				Annotations: map[string]string{oci.SignatureAnnotation: string(rune('A' + i))}}
			_, err := c.AddAttachments(context.Background(), tag, []oci.Attachment{att}, nil)
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	m, _, err := client(t, oci.Options{}).ReadManifest(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != writers {
		t.Fatalf("%d layers after %d concurrent writers", len(m.Layers), writers)
	}
}

func TestBlobsBeforeManifest(t *testing.T) {
	var mu sync.Mutex
	var order []string
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodPatch {
				mu.Lock()
				kind := "blob"
				if strings.Contains(r.URL.Path, "/manifests/") {
					kind = "manifest"
				}
				order = append(order, kind)
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	mu.Lock()
	order = nil
	mu.Unlock()
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	att := oci.Attachment{Payload: []byte("p"), MediaType: oci.SimpleSigningMediaType, Annotations: map[string]string{oci.SignatureAnnotation: "s"}}
	if _, err := client(t, oci.Options{}).AddAttachments(context.Background(), tag, []oci.Attachment{att}, nil); err != nil {
		t.Fatal(err)
	}
	if len(order) == 0 || order[len(order)-1] != "manifest" || strings.Count(strings.Join(order, ","), "manifest") != 1 {
		t.Fatalf("write order %v: want blobs first and one manifest last", order)
	}
}

func TestFetchBlobLimits(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	c := client(t, oci.Options{})
	att := oci.Attachment{Payload: []byte(strings.Repeat("x", 100)), MediaType: oci.SimpleSigningMediaType}
	if _, err := c.AddAttachments(context.Background(), tag, []oci.Attachment{att}, nil); err != nil {
		t.Fatal(err)
	}
	desc := att.Descriptor()
	if b, err := c.FetchBlob(context.Background(), tag.Context(), desc, 100); err != nil || len(b) != 100 {
		t.Fatalf("FetchBlob = %d bytes, %v", len(b), err)
	}
	if _, err := c.FetchBlob(context.Background(), tag.Context(), desc, 99); !errors.Is(err, oci.ErrTooLarge) {
		t.Fatalf("declared too large: %v", err)
	}
	// A descriptor that understates the size is caught while reading.
	small := desc
	small.Size = 10
	if _, err := c.FetchBlob(context.Background(), tag.Context(), small, 50); err == nil {
		t.Fatal("understated size accepted")
	}
	bad := desc
	bad.Digest = v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("a", 128)}
	if _, err := c.FetchBlob(context.Background(), tag.Context(), bad, 1000); err == nil {
		t.Fatal("sha512 descriptor accepted")
	}
}

func TestRequestCounter(t *testing.T) {
	reg := testreg.Start(t, nil)
	reg.PushImage(t, reg.Ref("r/app:v1"))
	counter := &oci.RequestCounter{}
	c := client(t, oci.Options{Transport: counter})
	tag, _ := name.NewTag(reg.Ref("r/app:v1"))
	if _, err := c.Resolve(context.Background(), tag); err != nil {
		t.Fatal(err)
	}
	if n := counter.Count(); n != 1 { // the manifest: an anonymous client does not ping
		t.Fatalf("resolve made %d requests, want 1", n)
	}
	counter.Reset()
	if counter.Count() != 0 {
		t.Fatal("Reset did not reset")
	}
}
