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
		c.misses.Add(1)
		return gate.Result{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		c.misses.Add(1)
		return gate.Result{}, false
	}
	c.order.MoveToFront(el)
	c.hits.Add(1)
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

// policyCache is the gate.Cache of one policy: the shared cache with keys
// prefixed by the policy's identity.
type policyCache struct {
	c      *cache
	policy string
}

func (p policyCache) Get(key string) (gate.Result, bool) { return p.c.get(p.policy + "\x00" + key) }
func (p policyCache) Put(key string, r gate.Result)      { p.c.put(p.policy+"\x00"+key, r) }
