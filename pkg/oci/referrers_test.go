package oci_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
)

func subjectOf(t *testing.T, c *oci.Client, d name.Digest) v1.Descriptor {
	t.Helper()
	r, err := c.Resolve(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return r.Descriptor
}

func pushArtifacts(t *testing.T, reg *testreg.Registry, d name.Digest, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := client(t, oci.Options{}) // separate clients, as separate processes
			_, err := c.PushReferrer(context.Background(), d, subjectOf(t, c, d), oci.Artifact{
				ArtifactType: "application/vnd.test+json", Layer: []byte(fmt.Sprintf(`{"n":%d}`, i)), LayerMediaType: "application/vnd.test+json",
				Annotations: map[string]string{"n": fmt.Sprint(i)},
			})
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
}

func TestReferrersAPIAndFallback(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("api=%v", api), func(t *testing.T) {
			reg := testreg.Start(t, nil, registry.WithReferrersSupport(api))
			d := reg.PushImage(t, reg.Ref("r/app:v1"))
			pushArtifacts(t, reg, d, 6)
			got, err := client(t, oci.Options{}).ListReferrers(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			if got.API != api || len(got.Descriptors) != 6 {
				t.Fatalf("API=%v, %d referrers; want API=%v and 6", got.API, len(got.Descriptors), api)
			}
			for _, desc := range got.Descriptors {
				if desc.Annotations["n"] == "" {
					t.Errorf("annotations lost: %+v", desc)
				}
			}
			if !api {
				tag, _ := oci.FallbackTag(d)
				if !strings.HasSuffix(tag.String(), ":sha256-"+strings.TrimPrefix(d.DigestStr(), "sha256:")) {
					t.Errorf("fallback tag %s", tag)
				}
			}
		})
	}
}

func TestReferrersPaginationAndLies(t *testing.T) {
	var mode string
	var mu sync.Mutex
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			m := mode
			mu.Unlock()
			if !strings.Contains(r.URL.Path, "/referrers/") || m == "" {
				next.ServeHTTP(w, r)
				return
			}
			switch m {
			case "paged":
				// Two pages of one descriptor each, linked.
				page := r.URL.Query().Get("page")
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				dg := strings.Repeat("a", 64)
				if page == "" {
					w.Header().Set("Link", `<`+r.URL.Path+`?page=2>; rel="next"`)
				} else {
					dg = strings.Repeat("b", 64)
				}
				json.NewEncoder(w).Encode(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
					"manifests": []map[string]any{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:" + dg}}})
			case "offhost":
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				w.Header().Set("Link", `<https://elsewhere.example/v2/x?page=2>; rel="next"`)
				w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
			case "html200":
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html>welcome</html>"))
			}
		})
	})
	d := reg.PushImage(t, reg.Ref("p/app:v1"))
	set := func(m string) { mu.Lock(); mode = m; mu.Unlock() }

	set("paged")
	got, err := client(t, oci.Options{}).ListReferrers(context.Background(), d)
	if err != nil || !got.API || len(got.Descriptors) != 2 {
		t.Fatalf("paged: %+v %v, want 2 descriptors over 2 pages", got, err)
	}
	set("offhost")
	if got, err = client(t, oci.Options{}).ListReferrers(context.Background(), d); err != nil || len(got.Descriptors) != 0 {
		t.Fatalf("off-host next link: %+v %v", got, err)
	}
	// A 200 that is not an index means no API: the fallback tag is used.
	set("html200")
	pushArtifacts(t, reg, d, 2)
	got, err = client(t, oci.Options{}).ListReferrers(context.Background(), d)
	if err != nil || got.API || len(got.Descriptors) != 2 {
		t.Fatalf("html 200: %+v %v, want the fallback with 2", got, err)
	}
	// Cap on referrers considered.
	got, err = client(t, oci.Options{Limits: oci.Limits{MaxReferrers: 1}}).ListReferrers(context.Background(), d)
	if err != nil || len(got.Descriptors) != 1 || len(got.Warnings) == 0 {
		t.Fatalf("cap: %+v %v", got, err)
	}
}

func TestFallbackTagThatIsNotAnIndex(t *testing.T) {
	reg := testreg.Start(t, nil)
	d := reg.PushImage(t, reg.Ref("f/app:v1"))
	tag, _ := oci.FallbackTag(d)
	reg.PushImage(t, tag.String()) // an image where the index should be
	got, err := client(t, oci.Options{}).ListReferrers(context.Background(), d)
	if err != nil || len(got.Descriptors) != 0 || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "not an OCI index") {
		t.Fatalf("got %+v %v, want no referrers and a warning", got, err)
	}
}

// TestReferrersNoAPIAskedOnce: a registry without the referrers API is
// asked once; later listings read the fallback index directly, with the
// same answer.
func TestReferrersNoAPIAskedOnce(t *testing.T) {
	var apiCalls, requests atomic.Int32
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			if strings.Contains(r.URL.Path, "/referrers/") {
				apiCalls.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	a := reg.PushImage(t, reg.Ref("r/a:v1"))
	b := reg.PushImage(t, reg.Ref("r/b:v1"))
	pushArtifacts(t, reg, a, 2)
	pushArtifacts(t, reg, b, 3)
	c := client(t, oci.Options{})
	apiCalls.Store(0)
	for i, d := range []name.Digest{a, b, a} {
		requests.Store(0)
		got, err := c.ListReferrers(context.Background(), d)
		if err != nil || got.API || len(got.Descriptors) != []int{2, 3, 2}[i] {
			t.Fatalf("listing %d: %v, %+v", i, err, got)
		}
		if i > 0 && requests.Load() != 1 {
			t.Fatalf("listing %d took %d requests, want 1 (the fallback tag)", i, requests.Load())
		}
	}
	if apiCalls.Load() != 1 {
		t.Fatalf("the referrers API was asked %d times, want once", apiCalls.Load())
	}
}
