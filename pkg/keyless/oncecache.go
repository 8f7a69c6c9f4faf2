package keyless

import "sync"

// onceCache remembers, for at most max keys, a value computed once per key
// (the verification of trusted material's own chains: tsachain.go and
// fulciochain.go). Concurrent callers with one key share one computation.
// Past max keys nothing more is remembered, so input cannot grow it: get
// then reports false and the caller does the full work.
type onceCache[T any] struct {
	max int
	mu  sync.Mutex
	m   map[string]*onceEntry[T]
}

type onceEntry[T any] struct {
	once sync.Once
	v    T
}

func newOnceCache[T any](max int) *onceCache[T] {
	return &onceCache[T]{max: max, m: map[string]*onceEntry[T]{}}
}

// get returns the value for key, computing it the first time; false when
// the cache is full and key is not in it.
func (c *onceCache[T]) get(key string, compute func() T) (T, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	if !ok && len(c.m) < c.max {
		e = &onceEntry[T]{}
		c.m[key] = e
	}
	c.mu.Unlock()
	if e == nil {
		var zero T
		return zero, false
	}
	e.once.Do(func() { e.v = compute() })
	return e.v, true
}
