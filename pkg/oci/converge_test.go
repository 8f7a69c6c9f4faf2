package oci_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
)

// casRegistry wraps a registry with compare-and-swap for tags: a manifest
// PUT to a tag carrying If-Match or If-None-Match is refused with 412 when
// the tag does not hold what the condition says (misjudge: always refused).
type casRegistry struct {
	mu                 sync.Mutex
	next               http.Handler
	misjudge           bool
	conditional, plain atomic.Int32
	refused            atomic.Int32
}

func (c *casRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isTagPut := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/manifests/sha256:")
	if !isTagPut {
		c.next.ServeHTTP(w, r)
		return
	}
	ifMatch, ifNone := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if ifMatch == "" && ifNone == "" {
		c.plain.Add(1)
		c.next.ServeHTTP(w, r)
		return
	}
	c.conditional.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	// What the tag holds now.
	rec := httptest.NewRecorder()
	get := httptest.NewRequest(http.MethodGet, r.URL.Path, nil)
	get.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json")
	c.next.ServeHTTP(rec, get)
	current := ""
	if rec.Code == http.StatusOK {
		current = fmt.Sprintf(`"sha256:%x"`, sha256.Sum256(rec.Body.Bytes()))
	}
	ok := (ifNone == "*" && current == "") || (ifMatch != "" && ifMatch == current)
	if c.misjudge || !ok {
		c.refused.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.next.ServeHTTP(w, r)
}

// TestAddAttachmentsConditional: where a registry honours preconditions,
// every tag write carries one and concurrent writers lose nothing.
func TestAddAttachmentsConditional(t *testing.T) {
	cas := &casRegistry{}
	reg := testreg.Start(t, func(next http.Handler) http.Handler { cas.next = next; return cas })
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	cas.plain.Store(0)
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	const writers = 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			att := oci.Attachment{Payload: []byte{byte('a' + i)}, MediaType: oci.SimpleSigningMediaType,
				Annotations: map[string]string{oci.SignatureAnnotation: string(rune('A' + i))}}
			_, err := client(t, oci.Options{}).AddAttachments(context.Background(), tag, []oci.Attachment{att}, nil)
			errs <- err
		}()
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
		t.Fatalf("%d layers after %d concurrent conditional writers (%d writes refused)", len(m.Layers), writers, cas.refused.Load())
	}
	if cas.plain.Load() != 0 || cas.conditional.Load() < writers {
		t.Fatalf("tag writes: %d conditional, %d without a condition", cas.conditional.Load(), cas.plain.Load())
	}
}

// TestAddAttachmentsMisjudgedCondition: a registry that refuses every
// conditional write although the tag did not move is written to without
// conditions.
func TestAddAttachmentsMisjudgedCondition(t *testing.T) {
	cas := &casRegistry{misjudge: true}
	reg := testreg.Start(t, func(next http.Handler) http.Handler { cas.next = next; return cas })
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	cas.plain.Store(0)
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	att := oci.Attachment{Payload: []byte("p"), MediaType: oci.SimpleSigningMediaType, Annotations: map[string]string{oci.SignatureAnnotation: "S"}}
	if _, err := client(t, oci.Options{}).AddAttachments(context.Background(), tag, []oci.Attachment{att}, nil); err != nil {
		t.Fatal(err)
	}
	m, _, err := client(t, oci.Options{}).ReadManifest(context.Background(), tag)
	if err != nil || len(m.Layers) != 1 {
		t.Fatalf("after a refused condition: %v, %+v", err, m)
	}
	if cas.refused.Load() != 1 || cas.plain.Load() != 1 {
		t.Fatalf("%d refused, %d unconditional writes; want 1 and 1", cas.refused.Load(), cas.plain.Load())
	}
}

// TestAddAttachmentsAloneReadsBackOnce: a writer that sees no other writer
// reads the tag three times (to merge, just before writing, and back one
// lease after writing) and returns: no polling until writes stop.
func TestAddAttachmentsAloneReadsBackOnce(t *testing.T) {
	var tagReads atomic.Int32
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, ".sig") {
				tagReads.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	c := client(t, oci.Options{})
	for i, want := range []int{1, 0} {
		tagReads.Store(0)
		att := oci.Attachment{Payload: []byte("p"), MediaType: oci.SimpleSigningMediaType, Annotations: map[string]string{oci.SignatureAnnotation: "S"}}
		res, err := c.AddAttachments(context.Background(), tag, []oci.Attachment{att}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Added != want {
			t.Fatalf("round %d: added %d, want %d", i, res.Added, want)
		}
		wantReads := int32(3)
		if want == 0 {
			wantReads = 1 // already there: one read
		}
		if tagReads.Load() != wantReads {
			t.Fatalf("round %d: %d reads of the tag, want %d", i, tagReads.Load(), wantReads)
		}
	}
}

// TestAddAttachmentsRepairsStaleWrite: a writer that read the tag before
// ours and writes after it (drops our entry) is caught by our read-back
// one lease later, and our entry is merged in again, once.
func TestAddAttachmentsRepairsStaleWrite(t *testing.T) {
	var (
		mu        sync.Mutex
		stale     []byte // the tag's manifest before our first write
		staleDone bool
		next      http.Handler
	)
	reg := testreg.Start(t, func(h http.Handler) http.Handler {
		next = h
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			isTagPut := r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".sig")
			mu.Lock()
			first := isTagPut && !staleDone
			if first {
				staleDone = true
				rec := httptest.NewRecorder()
				get := httptest.NewRequest(http.MethodGet, r.URL.Path, nil)
				get.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				next.ServeHTTP(rec, get)
				stale = rec.Body.Bytes()
			}
			mu.Unlock()
			if !first {
				next.ServeHTTP(w, r)
				return
			}
			// Our write lands, then a stale writer's lands on top of it,
			// before our writer hears back.
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			put := httptest.NewRequest(http.MethodPut, r.URL.Path, bytes.NewReader(stale))
			put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			next.ServeHTTP(httptest.NewRecorder(), put)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	})
	img := reg.PushImage(t, reg.Ref("r/app:v1"))
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	c := client(t, oci.Options{})
	mk := func(s string) oci.Attachment {
		return oci.Attachment{Payload: []byte(s), MediaType: oci.SimpleSigningMediaType, Annotations: map[string]string{oci.SignatureAnnotation: s}}
	}
	// The stale writer's list: the tag as it was, with an earlier entry.
	mu.Lock()
	staleDone = true
	mu.Unlock()
	if _, err := c.AddAttachments(context.Background(), tag, []oci.Attachment{mk("earlier")}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	staleDone = false
	mu.Unlock()
	res, err := c.AddAttachments(context.Background(), tag, []oci.Attachment{mk("ours")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := c.ReadManifest(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range m.Layers {
		got = append(got, l.Annotations[oci.SignatureAnnotation])
	}
	if strings.Join(got, ",") != "earlier,ours" || res.Writes != 2 {
		t.Fatalf("after a stale overwrite: layers %v, %d writes; want earlier,ours and 2 writes", got, res.Writes)
	}
}
