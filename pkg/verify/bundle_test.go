package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
)

func newBundleFixture(t *testing.T, api bool) *fixture {
	t.Helper()
	f := newFixture(t, nil)
	f.reg = testreg.Start(t, nil, registry.WithReferrersSupport(api))
	return f
}

func TestBundleSignVerify(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers-api=%v", api), func(t *testing.T) {
			f := newBundleFixture(t, api)
			d := f.reg.PushImage(t, f.reg.Ref("b/app:v1"))
			sigs := f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatBundle, Annotations: map[string]string{"team": "web"}})
			if sigs[0].Referrer == "" || sigs[0].Tag != "" || !sigs[0].Added {
				t.Fatalf("bundle-only sign wrote %+v", sigs[0])
			}
			// Signing again adds nothing.
			if again := f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatBundle, Annotations: map[string]string{"team": "web"}}); again[0].Added {
				t.Error("the same bundle signature was added twice")
			}
			refs, _ := f.client.ListReferrers(f.ctx, d)
			if len(refs.Descriptors) != 1 {
				t.Fatalf("%d referrers, want 1", len(refs.Descriptors))
			}
			for _, format := range []verify.Format{verify.FormatAny, verify.FormatBundle} {
				res, err := f.verify(t, d.String(), verify.Options{Format: format, Annotations: map[string]string{"team": "web"}}, f.key.Public())
				if err != nil || len(res.Signatures) != 1 || res.Signatures[0].Source != verify.SourceBundle {
					t.Fatalf("format %q: %+v %v", format, res, err)
				}
				var st statement.Statement
				if json.Unmarshal(res.Signatures[0].Statement, &st); st.PredicateType != statement.CosignSign {
					t.Errorf("statement in result: %s", res.Signatures[0].Statement)
				}
			}
			res, err := f.verify(t, d.String(), verify.Options{Format: verify.FormatLegacy}, f.key.Public())
			mustFail(t, err, verify.ErrNoSignatures, "", res)
			res, err = f.verify(t, d.String(), verify.Options{Annotations: map[string]string{"team": "db"}}, f.key.Public())
			mustFail(t, err, verify.ErrNotVerified, "annotation(s): team", res)
			other, _ := keys.Generate(keys.ECDSAP256)
			res, err = f.verify(t, d.String(), verify.Options{}, other.Public())
			mustFail(t, err, verify.ErrNotVerified, "does not verify with any trusted key", res)
			res, err = f.verify(t, d.String(), verify.Options{CheckIdentity: true}, f.key.Public())
			mustFail(t, err, verify.ErrNotVerified, "names no repository", res)
		})
	}
}

func TestBothFormats(t *testing.T) {
	f := newBundleFixture(t, true)
	d := f.reg.PushImage(t, f.reg.Ref("b/both:v1"))
	sigs := f.sign(t, d.String(), f.key, sign.Options{}) // the default
	if sigs[0].Tag == "" || sigs[0].Referrer == "" {
		t.Fatalf("default format did not write both: %+v", sigs[0])
	}
	for _, format := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
		if _, err := f.verify(t, d.String(), verify.Options{Format: format}, f.key.Public()); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
	}
	// Threshold across formats counts keys, not signatures.
	res, err := f.verify(t, d.String(), verify.Options{Threshold: 2}, f.key.Public(), mustKey(t).Public())
	mustFail(t, err, verify.ErrNotVerified, "1 distinct", res)
	if len(res.Signatures) != 2 {
		t.Errorf("both signatures should be listed: %+v", res.Signatures)
	}
}

func mustKey(t *testing.T) crypto.Signer {
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pushBundle attaches a hand-made bundle to subject, for hostile cases.
func pushBundle(t *testing.T, f *fixture, subject name.Digest, key crypto.Signer, payloadType string, stmt []byte, annotations map[string]string) {
	t.Helper()
	sv, _ := signature.LoadSignerVerifier(key, crypto.SHA256)
	sig, err := sv.SignMessage(bytes.NewReader(dsse.PAE(payloadType, stmt)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bundle.MarshalDSSE("", payloadType, stmt, sig)
	if annotations == nil {
		annotations = map[string]string{oci.BundleContentAnnotation: "dsse-envelope", oci.BundlePredicateTypeAnnotation: statement.CosignSign}
	}
	r, err := f.client.Resolve(f.ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.PushReferrer(f.ctx, subject, r.Descriptor, oci.Artifact{ArtifactType: bundle.MediaTypeV03, Layer: b, LayerMediaType: bundle.MediaTypeV03, Annotations: annotations}); err != nil {
		t.Fatal(err)
	}
}

func TestHostileBundles(t *testing.T) {
	f := newBundleFixture(t, true)
	img := func(tag string) (name.Digest, v1.Hash) {
		d := f.reg.PushImage(t, f.reg.Ref("h/"+tag))
		h, _ := v1.NewHash(d.DigestStr())
		return d, h
	}
	a, ha := img("a:v1")
	b, _ := img("b:v1")

	// A valid statement about image A, attached to image B.
	stmtA, _ := statement.ForImage(ha, statement.CosignSign, nil, nil)
	pushBundle(t, f, b, f.key, statement.PayloadType, stmtA, nil)
	res, err := f.verify(t, b.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "about another image", res)

	// Type confusion: the manifest says signature, the statement is an attestation.
	c, hc := img("c:v1")
	prov, _ := statement.ForImage(hc, "https://slsa.dev/provenance/v1", json.RawMessage(`{"builder":{"id":"x"}}`), nil)
	pushBundle(t, f, c, f.key, statement.PayloadType, prov, nil)
	res, err = f.verify(t, c.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "the signed statement says", res)

	// A payload that is not in-toto.
	d, hd := img("d:v1")
	stmtD, _ := statement.ForImage(hd, statement.CosignSign, nil, nil)
	pushBundle(t, f, d, f.key, "application/json", stmtD, nil)
	res, err = f.verify(t, d.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "not in-toto", res)

	// A malformed statement, validly signed.
	e, _ := img("e:v1")
	pushBundle(t, f, e, f.key, statement.PayloadType, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`), nil)
	res, err = f.verify(t, e.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "invalid in-toto statement", res)

	// Referrers of other types are not downloaded, and are not signatures.
	g, hg := img("g:v1")
	stmtG, _ := statement.ForImage(hg, "https://spdx.dev/Document", json.RawMessage(`{}`), nil)
	pushBundle(t, f, g, f.key, statement.PayloadType, stmtG, map[string]string{oci.BundleContentAnnotation: "dsse-envelope", oci.BundlePredicateTypeAnnotation: "https://spdx.dev/Document"})
	res, err = f.verify(t, g.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)
	_ = a
}

func TestBundleReferrerForAnotherSubject(t *testing.T) {
	// On a registry without the referrers API, the fallback index of image
	// B is made to list image A's (valid) signature referrer.
	f := newBundleFixture(t, false)
	a := f.reg.PushImage(t, f.reg.Ref("x/a:v1"))
	b := f.reg.PushImage(t, f.reg.Ref("x/b:v1"))
	sigs := f.sign(t, a.String(), f.key, sign.Options{Format: sign.FormatBundle})
	referrer, _ := name.NewDigest(sigs[0].Referrer)
	copyTag(t, f, referrer, "x/b:"+referrer.DigestStr()) // the referrer manifest, into B's repository
	ta, _ := oci.FallbackTag(a)
	tb, _ := oci.FallbackTag(b)
	copyTag(t, f, mustDigestOf(t, f, ta), tb.Context().RepositoryStr()+":"+tb.TagStr())
	res, err := f.verify(t, b.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "subject is not this image", res)
}

func mustDigestOf(t *testing.T, f *fixture, tag name.Tag) name.Digest {
	t.Helper()
	r, err := f.client.Resolve(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	return r.Ref
}

func TestManyBundlesStayBounded(t *testing.T) {
	f := newBundleFixture(t, true)
	d := f.reg.PushImage(t, f.reg.Ref("many/app:v1"))
	h, _ := v1.NewHash(d.DigestStr())
	other := mustKey(t)
	for i := 0; i < 5; i++ {
		stmt, _ := statement.ForImage(h, statement.CosignSign, nil, map[string]string{"i": fmt.Sprint(i)})
		pushBundle(t, f, d, other, statement.PayloadType, stmt, nil)
	}
	c, _ := oci.NewClient(oci.Options{Limits: oci.Limits{MaxSignatures: 2}})
	v, _ := verify.NewVerifier(c, []crypto.PublicKey{f.key.Public()})
	res, err := v.Verify(f.ctx, d, verify.Options{})
	if err == nil || len(res.Rejected) != 2 || !strings.Contains(strings.Join(res.Warnings, " "), "only the first 2") {
		t.Fatalf("cap not applied: %d rejected, warnings %v, err %v", len(res.Rejected), res.Warnings, err)
	}
}
