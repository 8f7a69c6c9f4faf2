package oci_test

import (
	"context"
	"crypto"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
)

const copySLSA = "https://slsa.dev/provenance/v0.2"

func genKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signAndAttest signs ref in both formats and attests it in both formats.
func signAndAttest(t *testing.T, c *oci.Client, key crypto.Signer, ref name.Reference, recursive bool) {
	t.Helper()
	s, err := sign.NewSigner(c, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(context.Background(), ref, sign.Options{Upload: true, Format: sign.FormatBoth, Recursive: recursive}); err != nil {
		t.Fatalf("sign: %v", err)
	}
	a, err := attest.NewAttester(c, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(context.Background(), ref, attest.Options{PredicateType: copySLSA, Predicate: []byte(`{"builder":{"id":"ci"}}`)}); err != nil {
		t.Fatalf("attest: %v", err)
	}
}

// mustVerify checks signatures (each format) and attestations (each
// format) of ref with key.
func mustVerify(t *testing.T, c *oci.Client, ref name.Reference, key crypto.Signer) {
	t.Helper()
	v, err := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
		if res, err := v.Verify(context.Background(), ref, verify.Options{Format: f}); err != nil || !res.Verified {
			t.Errorf("verify %s (%s): %v", ref, f, err)
		}
		if res, err := v.VerifyAttestations(context.Background(), ref, verify.AttestationOptions{PredicateType: copySLSA, Format: f}); err != nil || !res.Verified {
			t.Errorf("verify attestations %s (%s): %v", ref, f, err)
		}
	}
}

// counts returns the number of legacy layers and referrers of d.
func counts(t *testing.T, c *oci.Client, d name.Digest) (legacy, referrers int, api bool) {
	t.Helper()
	att, err := c.ListAttached(context.Background(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range att.Legacy {
		legacy += len(l.Layers)
	}
	return legacy, len(att.Referrers.Descriptors), att.Referrers.API
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCopySignedImage(t *testing.T) {
	withAPI := testreg.Start(t, nil, registry.WithReferrersSupport(true))
	without := testreg.Start(t, nil, registry.WithReferrersSupport(false))
	for _, tc := range []struct {
		name     string
		src, dst *testreg.Registry
	}{
		{"api-to-fallback", withAPI, without},
		{"fallback-to-api", without, withAPI},
		{"same-registry", without, without},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, oci.Options{})
			key := genKey(t)
			d := tc.src.PushImage(t, tc.src.Ref("src/"+tc.name+":v1"))
			signAndAttest(t, c, key, d, false)

			dst := mustRef(t, tc.dst.Ref("dst/"+tc.name+":copied"))
			res, err := c.Copy(context.Background(), mustRef(t, tc.src.Ref("src/"+tc.name+":v1")), dst, oci.CopyOptions{})
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if res.Digest != d.DigestStr() || res.Manifests != 1 {
				t.Fatalf("result %+v, want digest %s and 1 manifest", res, d.DigestStr())
			}
			// .sig, .att, and two referrers (signature and attestation bundles).
			if len(res.Attached) != 4 {
				t.Fatalf("attached %v, want 4", res.Attached)
			}
			dd := dst.Context().Digest(d.DigestStr())
			if r, err := c.Resolve(context.Background(), dst); err != nil || r.Ref.DigestStr() != d.DigestStr() {
				t.Fatalf("destination tag resolves to %v (%v)", r, err)
			}
			// A fresh client, so nothing cached from the copy helps.
			fresh := client(t, oci.Options{})
			mustVerify(t, fresh, dst, key)
			legacy, refs, _ := counts(t, fresh, dd)
			if legacy != 2 || refs != 2 {
				t.Fatalf("%d legacy layers and %d referrers at the destination, want 2 and 2", legacy, refs)
			}

			// Copying again adds nothing.
			if _, err := c.Copy(context.Background(), d, dd, oci.CopyOptions{}); err != nil {
				t.Fatalf("copy again: %v", err)
			}
			if l2, r2, _ := counts(t, fresh, dd); l2 != legacy || r2 != refs {
				t.Fatalf("after a second copy: %d legacy layers and %d referrers, want %d and %d", l2, r2, legacy, refs)
			}
		})
	}
}

// An existing legacy tag at the destination is merged with, not replaced.
func TestCopyMergesLegacyTag(t *testing.T) {
	src := testreg.Start(t, nil)
	dstReg := testreg.Start(t, nil)
	c := client(t, oci.Options{})
	k1, k2 := genKey(t), genKey(t)
	d := src.PushImage(t, src.Ref("a/app:v1"))
	signAndAttest(t, c, k1, d, false)
	dst := mustRef(t, dstReg.Ref("b/app:v1"))
	if _, err := c.Copy(context.Background(), d, dst, oci.CopyOptions{SkipAttached: true}); err != nil {
		t.Fatal(err)
	}
	dd := dst.Context().Digest(d.DigestStr())
	if l, r, _ := counts(t, c, dd); l != 0 || r != 0 {
		t.Fatalf("SkipAttached copied %d legacy layers and %d referrers", l, r)
	}
	signAndAttest(t, c, k2, dd, false) // signed at the destination too
	if _, err := c.Copy(context.Background(), d, dst, oci.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, c, dd, k1)
	mustVerify(t, c, dd, k2)
	if l, r, _ := counts(t, c, dd); l != 4 || r != 4 {
		t.Fatalf("%d legacy layers and %d referrers, want 4 and 4", l, r)
	}
}

func TestCopyIndex(t *testing.T) {
	src := testreg.Start(t, nil, registry.WithReferrersSupport(true))
	dstReg := testreg.Start(t, nil)
	c := client(t, oci.Options{})
	key := genKey(t)
	idx, children := src.PushIndex(t, src.Ref("multi/app:v1"))
	signAndAttest(t, c, key, idx, true) // index and children signed; the index attested
	for _, ch := range children {
		a, _ := attest.NewAttester(c, key)
		if _, err := a.Attest(context.Background(), ch, attest.Options{PredicateType: copySLSA, Predicate: []byte(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("platform", func(t *testing.T) {
		dst := mustRef(t, dstReg.Ref("one/app:arm64"))
		res, err := c.Copy(context.Background(), idx, dst, oci.CopyOptions{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != children[1].DigestStr() || res.Manifests != 1 {
			t.Fatalf("result %+v, want the arm64 child %s", res, children[1].DigestStr())
		}
		mustVerify(t, c, dst, key)
		if _, err := c.Resolve(context.Background(), dst.Context().Digest(idx.DigestStr())); err == nil {
			t.Fatal("the index was copied too")
		}
		if _, err := c.Copy(context.Background(), idx, dst, oci.CopyOptions{Platform: &v1.Platform{OS: "plan9", Architecture: "mips"}}); err == nil {
			t.Fatal("a platform the index lacks was accepted")
		}
	})

	t.Run("all", func(t *testing.T) {
		dst := mustRef(t, dstReg.Ref("all/app:v1"))
		progress := make(chan v1.Update, 1000)
		res, err := c.Copy(context.Background(), idx, dst, oci.CopyOptions{Progress: progress})
		if err != nil {
			t.Fatal(err)
		}
		if len(progress) == 0 {
			t.Error("no progress updates")
		}
		if res.Digest != idx.DigestStr() || res.Manifests != 3 {
			t.Fatalf("result %+v", res)
		}
		if len(res.Attached) != 12 { // .sig, .att and two bundles, for each of three manifests
			t.Fatalf("attached %d: %v", len(res.Attached), res.Attached)
		}
		mustVerify(t, c, dst, key)
		for _, ch := range children {
			mustVerify(t, c, dst.Context().Digest(ch.DigestStr()), key)
		}
	})

	t.Run("wrong digest", func(t *testing.T) {
		dst := mustRef(t, dstReg.Ref("x/app@"+children[0].DigestStr()))
		if _, err := c.Copy(context.Background(), idx, dst, oci.CopyOptions{}); err == nil {
			t.Fatal("a destination digest other than the source's was accepted")
		}
	})
}

// The destination's fallback index keeps the entries already there.
func TestCopyKeepsFallbackEntries(t *testing.T) {
	src := testreg.Start(t, nil, registry.WithReferrersSupport(true))
	dstReg := testreg.Start(t, nil)
	c := client(t, oci.Options{})
	key := genKey(t)
	d := src.PushImage(t, src.Ref("a/app:v1"))
	signAndAttest(t, c, key, d, false)
	dst := mustRef(t, dstReg.Ref("b/app:v1"))
	if _, err := c.Copy(context.Background(), d, dst, oci.CopyOptions{SkipAttached: true}); err != nil {
		t.Fatal(err)
	}
	dd := dst.Context().Digest(d.DigestStr())
	other, err := c.PushReferrer(context.Background(), dd, subjectOf(t, c, dd), oci.Artifact{
		ArtifactType: "application/vnd.test+json", Layer: []byte(`{"unrelated":true}`), LayerMediaType: "application/vnd.test+json",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(context.Background(), d, dst, oci.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	refs, err := client(t, oci.Options{}).ListReferrers(context.Background(), dd)
	if err != nil {
		t.Fatal(err)
	}
	if refs.API || len(refs.Descriptors) != 3 {
		t.Fatalf("API=%v, %d referrers; want the fallback index with 3", refs.API, len(refs.Descriptors))
	}
	found := false
	for _, r := range refs.Descriptors {
		found = found || r.Digest == other.Digest
	}
	if !found {
		t.Fatalf("the unrelated referrer %s was dropped: %v", other.Digest, fmt.Sprint(refs.Descriptors))
	}
	mustVerify(t, c, dd, key)
}
