package admission

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imgsign/imgsign/pkg/gate"
)

// Cache defaults.
const (
	DefaultCacheSize   = 10000
	DefaultCacheTTL    = 10 * time.Minute
	DefaultNegativeTTL = 30 * time.Second
)

// cache is a bounded LRU of verdicts with expiry: verdicts that passed live
// ttl, failures negTTL (so that an image signed after a refusal is admitted
// soon). Keys are prefixed with the policy they were made under.
type cache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	negTTL  time.Duration
	now     func() time.Time
	order   *list.List // front: most recently used
	entries map[string]*list.Element

	hits, misses atomic.Uint64
}

type cacheEntry struct {
	key     string
	r       gate.Result
	expires time.Time
}

func newCache(max int, ttl, negTTL time.Duration, now func() time.Time) *cache {
	return &cache{max: max, ttl: ttl, negTTL: negTTL, now: now, order: list.New(), entries: map[string]*list.Element{}}
}

func (c *cache) get(key string) (gate.Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return gate.Result{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return gate.Result{}, false
	}
	c.order.MoveToFront(el)
	return e.r, true
}

func (c *cache) put(key string, r gate.Result) {
	ttl := c.ttl
	if r.Err() != nil {
		ttl = c.negTTL
	}
	if ttl <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: key, r: r, expires: c.now().Add(ttl)}
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// policyCache is the gate.Cache of one policy and one set of registry
// credentials: the shared cache with keys prefixed by the policy's
// identity. A verdict that passed is shared by every set of credentials
// (the digest is verified, whoever asked); a failure is kept for the
// credentials that met it only, as it may be theirs (a registry that
// refuses them).
type policyCache struct {
	c      *cache
	policy string
	creds  string
}

func (p policyCache) passed(key string) string { return p.policy + "\x00+\x00" + key }
func (p policyCache) failed(key string) string { return p.policy + "\x00-" + p.creds + "\x00" + key }

func (p policyCache) Get(key string) (gate.Result, bool) {
	r, ok := p.c.get(p.passed(key))
	if !ok {
		r, ok = p.c.get(p.failed(key))
	}
	if ok {
		p.c.hits.Add(1)
	} else {
		p.c.misses.Add(1)
	}
	return r, ok
}

func (p policyCache) Put(key string, r gate.Result) {
	if r.Err() == nil {
		p.c.put(p.passed(key), r)
	} else {
		p.c.put(p.failed(key), r)
	}
}
