package gate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
)

// mapCache is the simplest Cache: a map, counting hits.
type mapCache struct {
	mu   sync.Mutex
	m    map[string]gate.Result
	hits int
}

func (c *mapCache) Get(k string) (gate.Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[k]
	if ok {
		c.hits++
	}
	return r, ok
}

func (c *mapCache) Put(k string, r gate.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = r
}

// TestLongLivedGate: with a Cache, a Gate asks about a tag on every Check
// (one HEAD, no GET), sees a moved tag, and takes verdicts from the cache,
// failures with their reason.
func TestLongLivedGate(t *testing.T) {
	e := newEnv(t)
	var heads, gets atomic.Int64
	e.reg.Server.Config.Handler = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/v1") {
				switch r.Method {
				case http.MethodHead:
					heads.Add(1)
				case http.MethodGet:
					gets.Add(1)
				}
			}
			h.ServeHTTP(w, r)
		})
	}(e.reg.Server.Config.Handler)
	signed := e.reg.PushImage(t, e.reg.Ref("team/app:v1"))
	e.sign(t, signed, "a", sign.Options{})
	p := e.policy(t, "version: 1\nscopes:\n  - scope: REG/team\n    keys: [{file: a.pub}]\n")
	cache := &mapCache{m: map[string]gate.Result{}}
	g := gate.New(e.client, p, gate.Options{Cache: cache})
	tag := refs(t, e.reg.Ref("team/app:v1"))
	heads.Store(0)
	gets.Store(0)

	for i := range 3 {
		r := g.Check(context.Background(), tag)[0]
		if r.Err() != nil || r.Digest != signed.DigestStr() {
			t.Fatalf("check %d: %+v", i, r)
		}
	}
	if heads.Load() != 3 || gets.Load() != 0 {
		t.Errorf("tag requests: %d HEAD, %d GET; want 3 HEAD, 0 GET", heads.Load(), gets.Load())
	}
	if cache.hits != 2 {
		t.Errorf("cache hits = %d, want 2", cache.hits)
	}

	// The tag moves to an unsigned image: the next Check sees it.
	moved := e.reg.PushImage(t, e.reg.Ref("team/app:v1"))
	r := g.Check(context.Background(), tag)[0]
	if r.Digest != moved.DigestStr() || r.Err() == nil {
		t.Fatalf("after the tag moved: %+v", r)
	}
	if !errors.Is(r.Err(), verify.ErrNoSignatures) {
		t.Errorf("reason: %v", r.Err())
	}
	// The failure is cached with its reason.
	again := g.Check(context.Background(), tag)[0]
	if again.Err() == nil || again.Error != r.Error || cache.hits != 3 {
		t.Errorf("cached failure: %+v (hits %d)", again, cache.hits)
	}

	// A digest reference needs no registry request to resolve.
	before := heads.Load() + gets.Load()
	if r := g.Check(context.Background(), []name.Reference{signed})[0]; r.Err() != nil {
		t.Fatal(r.Err())
	}
	if n := heads.Load() + gets.Load() - before; n != 0 {
		t.Errorf("a digest reference made %d tag request(s)", n)
	}
}

// TestLongLivedGateCanceled: a verdict cut short by the caller's context is
// not cached.
func TestLongLivedGateCanceled(t *testing.T) {
	reg := testreg.Start(t, nil)
	c, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := reg.PushImage(t, reg.Ref("team/app:v1"))
	p := e.policy(t, "version: 1\ndefault:\n  keys: [{file: a.pub}]\n")
	cache := &mapCache{m: map[string]gate.Result{}}
	g := gate.New(c, p, gate.Options{Cache: cache})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := g.Check(ctx, []name.Reference{d})[0]
	if r.Err() == nil {
		t.Fatal("a canceled check passed")
	}
	if len(cache.m) != 0 {
		t.Errorf("a canceled verdict was cached: %v", cache.m)
	}
}
