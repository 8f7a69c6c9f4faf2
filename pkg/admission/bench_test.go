package admission_test

import "testing"

// BenchmarkReview: one AdmissionReview of a Pod through the HTTP handler
// (JSON in and out, on loopback) whose image verdict is cached: by tag (one
// HEAD to the in-process registry) and by pinned digest (no request).
// scripts/bench measures the same on the real docker-registry, cache misses
// included.
func BenchmarkReview(b *testing.B) {
	e := newEnv(b)
	s := e.server(b, nil)
	pod := workloads[0]
	for _, bc := range []struct{ name, image string }{{"tag", e.ref("signed/app:v1")}, {"digest", e.signed.String()}} {
		q := review("b", "CREATE", pod.gvk, pod.wrap(podSpec{containers: []string{bc.image}}.json()), nil)
		b.Run(bc.name, func(b *testing.B) {
			if r := s.answer(b, "/validate", q); !r.Allowed { // warm the cache
				b.Fatal(r.Status)
			}
			before := e.requests.Load()
			b.ResetTimer()
			for b.Loop() {
				if r := s.answer(b, "/validate", q); !r.Allowed {
					b.Fatal(r.Status)
				}
			}
			b.ReportMetric(float64(e.requests.Load()-before)/float64(b.N), "registry-requests/op")
		})
	}
}
