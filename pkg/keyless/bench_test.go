package keyless_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

const (
	benchSubject = "release@example.com"
	benchIssuer  = "https://issuer.example.com"
)

// trustedRootOf is the virtual Sigstore's material as a loaded trusted root
// (what a verifier holds in production: the TUF root or --trusted-root),
// rather than the virtual Sigstore itself, which rebuilds its log map on
// every call.
func trustedRootOf(t testing.TB, vs *ca.VirtualSigstore) *root.TrustedRoot {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// keylessBundle is a v0.3 bundle as cosign v3 writes it: a DSSE envelope
// signed with a fresh certificate, a Rekor v1 entry with an inclusion proof
// and an RFC 3161 timestamp.
func keylessBundle(t testing.TB, vs *ca.VirtualSigstore, stmt []byte) []byte {
	t.Helper()
	return keylesstest.VirtualBundle(t, vs, benchSubject, benchIssuer, stmt)
}

// benchmarkVerify parses and verifies keyless bundles, each made with its
// own certificate, timestamp and log entry, cycling through a set of them.
func benchmarkVerify(b *testing.B, noCache bool) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		b.Fatal(err)
	}
	tr := trustedRootOf(b, vs)
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"` + "0000000000000000000000000000000000000000000000000000000000000000" + `"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`)
	bundles := make([][]byte, 32)
	for i := range bundles {
		bundles[i] = keylessBundle(b, vs, stmt)
	}
	o := keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: benchSubject, Issuer: benchIssuer}}, IgnoreSCT: true, NoChainCache: noCache}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		e, err := keyless.ParseBundle(bundles[i%len(bundles)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := keyless.Verify(e, keyless.Artifact{}, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time (user and system) the process has used so far:
// on a shared machine, it varies much less with the load than wall-clock
// time per op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerify is the keyless part of a verification: parse a bundle,
// then check its signature, certificate chain, timestamp, log entry and
// identity.
func BenchmarkVerify(b *testing.B) { benchmarkVerify(b, false) }

// BenchmarkVerifyNoChainCache is BenchmarkVerify with every TSA chain
// verified in full for each timestamp.
func BenchmarkVerifyNoChainCache(b *testing.B) { benchmarkVerify(b, true) }
