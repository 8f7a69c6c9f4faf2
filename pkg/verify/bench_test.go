package verify_test

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// cpuTime is the CPU time (user and system) the process has used so far.
// On a shared machine, wall-clock time per op varies with the load; the
// CPU time per op does much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start (the in-process
// registry's included, the same for every benchmark here).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchmarkVerify measures one verification as a fresh process would do it
// (a new client, so the registry ping is counted), and reports the HTTP
// requests each verification makes. The registry has the referrers API.
func benchmarkVerify(b *testing.B, byTag bool, format sign.Format, look verify.Format) {
	reg := testreg.Start(b, nil, registry.WithReferrersSupport(true))
	d := reg.PushImage(b, reg.Ref("bench/app:v1"))
	key, _ := keys.Generate(keys.ECDSAP256)
	c, _ := oci.NewClient(oci.Options{})
	s, _ := sign.NewSigner(c, key)
	if _, err := s.Sign(context.Background(), d, sign.Options{Upload: true, Format: format}); err != nil {
		b.Fatal(err)
	}
	var ref name.Reference = d
	if byTag {
		ref, _ = name.NewTag(reg.Ref("bench/app:v1"))
	}
	counter := &oci.RequestCounter{}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c, err := oci.NewClient(oci.Options{Transport: counter})
		if err != nil {
			b.Fatal(err)
		}
		v, _ := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
		if _, err := v.Verify(context.Background(), ref, verify.Options{Format: look}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(counter.Count())/float64(b.N), "requests/op")
}

// Legacy signatures (cosign v2 layout, imgsign's default writes it too).
func BenchmarkVerifyByDigest(b *testing.B) {
	benchmarkVerify(b, false, sign.FormatLegacy, verify.FormatAny)
}
func BenchmarkVerifyByTag(b *testing.B) {
	benchmarkVerify(b, true, sign.FormatLegacy, verify.FormatAny)
}

// Sigstore bundles (cosign v3 layout): referrers, manifest, bundle.
func BenchmarkVerifyBundleByDigest(b *testing.B) {
	benchmarkVerify(b, false, sign.FormatBundle, verify.FormatBundle)
}

// A bundle-only image verified without saying where to look: the legacy
// tag is tried first.
func BenchmarkVerifyBundleAnyByDigest(b *testing.B) {
	benchmarkVerify(b, false, sign.FormatBundle, verify.FormatAny)
}

// BenchmarkSign reports the requests of signing a new image by tag, in the
// legacy layout.
func BenchmarkSign(b *testing.B) {
	reg := testreg.Start(b, nil)
	key, _ := keys.Generate(keys.ECDSAP256)
	counter := &oci.RequestCounter{}
	refs := make([]name.Reference, b.N)
	for i := range refs {
		tag := reg.Ref(fmt.Sprintf("bench/sign:v%d", i))
		reg.PushImage(b, tag)
		refs[i], _ = name.NewTag(tag)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, _ := oci.NewClient(oci.Options{Transport: counter})
		s, _ := sign.NewSigner(c, key)
		if _, err := s.Sign(context.Background(), refs[i], sign.Options{Upload: true, Format: sign.FormatLegacy}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(counter.Count())/float64(b.N), "requests/op")
}

// BenchmarkVerifyKeylessBundleByDigest is BenchmarkVerifyBundleByDigest for
// a keyless bundle (certificate, Rekor entry with inclusion proof, RFC 3161
// timestamp), all verified with sigstore-go: compare the two. The trusted
// root is loaded once, as a process holds it (the virtual Sigstore's
// material in a root.TrustedRoot, what the TUF root and --trusted-root
// give).
func BenchmarkVerifyKeylessBundleByDigest(b *testing.B) { benchmarkVerifyKeyless(b, false) }

// BenchmarkVerifyKeylessBundleByDigestNoChainCache is
// BenchmarkVerifyKeylessBundleByDigest with every TSA chain verified in
// full for each timestamp (keyless.Options.NoChainCache).
func BenchmarkVerifyKeylessBundleByDigestNoChainCache(b *testing.B) { benchmarkVerifyKeyless(b, true) }

func benchmarkVerifyKeyless(b *testing.B, noChainCache bool) {
	reg := testreg.Start(b, nil, registry.WithReferrersSupport(true))
	d := reg.PushImage(b, reg.Ref("bench/app:v1"))
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		b.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		b.Fatal(err)
	}
	c, _ := oci.NewClient(oci.Options{})
	h, _ := v1.NewHash(d.DigestStr())
	stmt, err := statement.ForImage(h, statement.CosignSign, json.RawMessage(`{}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	pushKeylessBundle(b, &fixture{client: c, ctx: context.Background()}, vs, d, testSubject, stmt)
	o := keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}, IgnoreSCT: true, NoChainCache: noChainCache}
	counter := &oci.RequestCounter{}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c, err := oci.NewClient(oci.Options{Transport: counter})
		if err != nil {
			b.Fatal(err)
		}
		v, _ := verify.NewVerifier(c, nil, verify.WithKeyless(o))
		if _, err := v.Verify(context.Background(), d, verify.Options{Format: verify.FormatBundle}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(counter.Count())/float64(b.N), "requests/op")
}
