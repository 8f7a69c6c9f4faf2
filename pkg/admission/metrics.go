package admission

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the review latency
// histogram.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics are the webhook's counters, written in the Prometheus text
// exposition format (version 0.0.4) by hand: a handful of series do not
// need a client library.
type metrics struct {
	mu      sync.Mutex
	reviews map[[2]string]uint64 // endpoint, verdict
	images  map[string]uint64    // verdict
	latency map[string]*histogram

	malformed     atomic.Uint64
	inflight      atomic.Int64
	reloads       atomic.Uint64
	reloadErrors  atomic.Uint64
	policyOK      atomic.Bool
	policyLoaded  atomic.Int64 // unix seconds
	registryCalls func() uint64
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{reviews: map[[2]string]uint64{}, images: map[string]uint64{}, latency: map[string]*histogram{}}
}

func (m *metrics) review(endpoint, verdict string, d time.Duration, images map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reviews[[2]string{endpoint, verdict}]++
	for v, n := range images {
		m.images[v] += uint64(n)
	}
	h := m.latency[endpoint]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		m.latency[endpoint] = h
	}
	s := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, s)
	h.counts[i]++
	h.sum += s
	h.n++
}

func (m *metrics) write(w io.Writer, c *cache) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# HELP imgsign_admission_reviews_total AdmissionReviews answered, by endpoint and verdict (allowed, denied, warned, error).\n")
	p("# TYPE imgsign_admission_reviews_total counter\n")
	for _, k := range sortedKeys(m.reviews, func(k [2]string) string { return k[0] + " " + k[1] }) {
		p("imgsign_admission_reviews_total{endpoint=%q,verdict=%q} %d\n", k[0], k[1], m.reviews[k])
	}
	p("# HELP imgsign_admission_images_total Images checked, by verdict (verified, unsigned, failed).\n")
	p("# TYPE imgsign_admission_images_total counter\n")
	for _, k := range sortedKeys(m.images, func(k string) string { return k }) {
		p("imgsign_admission_images_total{verdict=%q} %d\n", k, m.images[k])
	}
	p("# HELP imgsign_admission_malformed_reviews_total Requests that were not an AdmissionReview this webhook can answer.\n")
	p("# TYPE imgsign_admission_malformed_reviews_total counter\n")
	p("imgsign_admission_malformed_reviews_total %d\n", m.malformed.Load())
	p("# HELP imgsign_admission_review_duration_seconds Time to answer an AdmissionReview.\n")
	p("# TYPE imgsign_admission_review_duration_seconds histogram\n")
	for _, ep := range sortedKeys(m.latency, func(k string) string { return k }) {
		h := m.latency[ep]
		var cum uint64
		for i, b := range latencyBuckets {
			cum += h.counts[i]
			p("imgsign_admission_review_duration_seconds_bucket{endpoint=%q,le=%q} %d\n", ep, strconv.FormatFloat(b, 'g', -1, 64), cum)
		}
		p("imgsign_admission_review_duration_seconds_bucket{endpoint=%q,le=\"+Inf\"} %d\n", ep, h.n)
		p("imgsign_admission_review_duration_seconds_sum{endpoint=%q} %g\n", ep, h.sum)
		p("imgsign_admission_review_duration_seconds_count{endpoint=%q} %d\n", ep, h.n)
	}
	p("# HELP imgsign_admission_reviews_in_flight AdmissionReviews being answered.\n")
	p("# TYPE imgsign_admission_reviews_in_flight gauge\n")
	p("imgsign_admission_reviews_in_flight %d\n", m.inflight.Load())
	p("# HELP imgsign_admission_cache_hits_total Verdicts taken from the cache.\n")
	p("# TYPE imgsign_admission_cache_hits_total counter\n")
	p("imgsign_admission_cache_hits_total %d\n", c.hits.Load())
	p("# HELP imgsign_admission_cache_misses_total Verdicts not in the cache (verified afresh).\n")
	p("# TYPE imgsign_admission_cache_misses_total counter\n")
	p("imgsign_admission_cache_misses_total %d\n", c.misses.Load())
	p("# HELP imgsign_admission_cache_entries Verdicts held in the cache.\n")
	p("# TYPE imgsign_admission_cache_entries gauge\n")
	p("imgsign_admission_cache_entries %d\n", c.len())
	if m.registryCalls != nil {
		p("# HELP imgsign_admission_registry_requests_total HTTP requests made to registries.\n")
		p("# TYPE imgsign_admission_registry_requests_total counter\n")
		p("imgsign_admission_registry_requests_total %d\n", m.registryCalls())
	}
	p("# HELP imgsign_admission_policy_reloads_total Policy files loaded after a change (the first load included).\n")
	p("# TYPE imgsign_admission_policy_reloads_total counter\n")
	p("imgsign_admission_policy_reloads_total %d\n", m.reloads.Load())
	p("# HELP imgsign_admission_policy_reload_errors_total Policy file changes that did not load (the old policy stayed in force).\n")
	p("# TYPE imgsign_admission_policy_reload_errors_total counter\n")
	p("imgsign_admission_policy_reload_errors_total %d\n", m.reloadErrors.Load())
	ok := 0
	if m.policyOK.Load() {
		ok = 1
	}
	p("# HELP imgsign_admission_policy_file_ok 1 when the policy file in force is the one on disk, 0 when the file on disk did not load.\n")
	p("# TYPE imgsign_admission_policy_file_ok gauge\n")
	p("imgsign_admission_policy_file_ok %d\n", ok)
	p("# HELP imgsign_admission_policy_loaded_timestamp_seconds When the policy in force was loaded.\n")
	p("# TYPE imgsign_admission_policy_loaded_timestamp_seconds gauge\n")
	p("imgsign_admission_policy_loaded_timestamp_seconds %d\n", m.policyLoaded.Load())
}

func sortedKeys[K comparable, V any](m map[K]V, str func(K) string) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return str(keys[i]) < str(keys[j]) })
	return keys
}
