package verify_test

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"testing"

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
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

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
// timestamp), all verified with sigstore-go: compare the two.
func BenchmarkVerifyKeylessBundleByDigest(b *testing.B) {
	reg := testreg.Start(b, nil, registry.WithReferrersSupport(true))
	d := reg.PushImage(b, reg.Ref("bench/app:v1"))
	vs, err := ca.NewVirtualSigstore()
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
	o := keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}, IgnoreSCT: true}
	counter := &oci.RequestCounter{}
	b.ReportAllocs()
	b.ResetTimer()
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
	b.ReportMetric(float64(counter.Count())/float64(b.N), "requests/op")
}
