package verify_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

const slsa02 = "https://slsa.dev/provenance/v0.2"

func (f *fixture) attest(t *testing.T, d name.Digest, key crypto.Signer, o attest.Options) *attest.Attestation {
	t.Helper()
	a, err := attest.NewAttester(f.client, key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Attest(f.ctx, d, o)
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	return out
}

func (f *fixture) verifyAtt(t *testing.T, d name.Digest, o verify.AttestationOptions, pubs ...crypto.PublicKey) (*verify.AttestationResult, error) {
	t.Helper()
	v, err := verify.NewVerifier(f.client, pubs)
	if err != nil {
		t.Fatal(err)
	}
	return v.VerifyAttestations(f.ctx, d, o)
}

func mustFailAtt(t *testing.T, res *verify.AttestationResult, err error, want error, has string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want.Error()) || res.Verified {
		t.Fatalf("err = %v, want %v", err, want)
	}
	all := err.Error()
	for _, r := range res.Rejected {
		all += " " + r.Reason
	}
	if !strings.Contains(all, has) {
		t.Fatalf("reasons %q lack %q", all, has)
	}
}

func TestAttestVerify(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers-api=%v", api), func(t *testing.T) {
			f := newBundleFixture(t, api)
			d := f.reg.PushImage(t, f.reg.Ref("att/app:v1"))
			pred := []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"x"}`)
			out := f.attest(t, d, f.key, attest.Options{PredicateType: slsa02, Predicate: pred})
			if out.Tag == "" || out.Referrer == "" {
				t.Fatalf("default format did not store both: %+v", out)
			}
			for _, format := range []verify.Format{verify.FormatAny, verify.FormatLegacy, verify.FormatBundle} {
				res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02, Format: format}, f.key.Public())
				if err != nil || !res.Verified {
					t.Fatalf("%q: %+v %v", format, res, err)
				}
				var st statement.Statement
				json.Unmarshal(res.Attestations[0].Statement, &st)
				if st.PredicateType != slsa02 || !strings.Contains(string(st.Predicate), "ci.example") {
					t.Fatalf("statement %s", res.Attestations[0].Statement)
				}
			}
			// Another type: none, even though attestations exist.
			res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: "https://spdx.dev/Document"}, f.key.Public())
			mustFailAtt(t, res, err, verify.ErrNoSignatures, "of other types exist")
			// Wrong key.
			res, err = f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02}, mustKey(t).Public())
			mustFailAtt(t, res, err, verify.ErrNotVerified, "does not verify with any trusted key")
			// Policy: holds, then fails naming the condition.
			ok, _ := policy.Parse([]byte("conditions:\n  - name: our builder\n    expression: predicate.builder.id == \"https://ci.example/builder\"\n"))
			if res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02, Policy: ok}, f.key.Public()); err != nil {
				t.Fatalf("policy should hold: %+v %v", res, err)
			}
			bad, _ := policy.Parse([]byte("conditions:\n  - name: hermetic build\n    expression: predicate.buildType == \"hermetic\"\n"))
			res, err = f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02, Policy: bad}, f.key.Public())
			mustFailAtt(t, res, err, verify.ErrNotVerified, `"hermetic build"`)
		})
	}
}

// attachAtt writes a hand-made legacy attestation layer.
func attachAtt(t *testing.T, f *fixture, d name.Digest, key crypto.Signer, payloadType string, payload []byte, claimed string) {
	t.Helper()
	sv, _ := signature.LoadSignerVerifier(key, crypto.SHA256)
	env := envelope.Envelope{PayloadType: payloadType, Payload: payload}
	sig, _ := sv.SignMessage(bytes.NewReader(env.PAE()))
	body, _ := envelope.Marshal(payloadType, payload, sig)
	tag, _ := oci.AttachedTag(d, nil, oci.AttestationTagSuffix)
	att := oci.Attachment{Payload: body, MediaType: oci.DSSEMediaType, Annotations: map[string]string{oci.SignatureAnnotation: "", attest.PredicateTypeAnnotation: claimed}}
	if _, err := f.client.AddAttachments(f.ctx, tag, []oci.Attachment{att}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestHostileAttestations(t *testing.T) {
	f := newBundleFixture(t, true)
	push := func(tag string) (name.Digest, v1.Hash) {
		d := f.reg.PushImage(t, f.reg.Ref("ha/"+tag))
		h, _ := v1.NewHash(d.DigestStr())
		return d, h
	}
	o := verify.AttestationOptions{PredicateType: slsa02, Format: verify.FormatLegacy}

	// Type confusion: the annotation says SLSA, the statement is an SBOM.
	a, ha := push("a:v1")
	sbom, _ := statement.ForImage(ha, "https://spdx.dev/Document", json.RawMessage(`{}`), nil)
	attachAtt(t, f, a, f.key, statement.PayloadType, sbom, slsa02)
	res, err := f.verifyAtt(t, a, o, f.key.Public())
	mustFailAtt(t, res, err, verify.ErrNotVerified, "the signed statement says")

	// Subject of another digest.
	b, _ := push("b:v1")
	stmtA, _ := statement.ForImage(ha, slsa02, json.RawMessage(`{}`), nil)
	attachAtt(t, f, b, f.key, statement.PayloadType, stmtA, slsa02)
	res, err = f.verifyAtt(t, b, o, f.key.Public())
	mustFailAtt(t, res, err, verify.ErrNotVerified, "about another image")

	// Malformed payload, validly signed.
	c, _ := push("c:v1")
	attachAtt(t, f, c, f.key, statement.PayloadType, []byte(`{"_type":"nope"}`), slsa02)
	res, err = f.verifyAtt(t, c, o, f.key.Public())
	mustFailAtt(t, res, err, verify.ErrNotVerified, "invalid in-toto statement")

	// Not in-toto.
	e, he := push("e:v1")
	stmtE, _ := statement.ForImage(he, slsa02, json.RawMessage(`{}`), nil)
	attachAtt(t, f, e, f.key, "application/json", stmtE, slsa02)
	res, err = f.verifyAtt(t, e, o, f.key.Public())
	mustFailAtt(t, res, err, verify.ErrNotVerified, "not in-toto")

	// Thousands attached: the manifest is refused whole, before downloads.
	g, _ := push("g:v1")
	tag, _ := oci.AttachedTag(g, nil, oci.AttestationTagSuffix)
	layers := make([]v1.Descriptor, 3000)
	for i := range layers {
		layers[i] = v1.Descriptor{MediaType: oci.DSSEMediaType, Size: 10, Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)},
			Annotations: map[string]string{attest.PredicateTypeAnnotation: slsa02}}
	}
	putManifest(t, f, tag, layers)
	res, err = f.verifyAtt(t, g, o, f.key.Public())
	mustFailAtt(t, res, err, verify.ErrNotVerified, "too many entries")

	// A huge envelope is not read past the limit.
	hImg, hh := push("h:v1")
	huge, _ := statement.ForImage(hh, slsa02, json.RawMessage(`{"pad":"`+strings.Repeat("x", 2<<20)+`"}`), nil)
	attachAtt(t, f, hImg, f.key, statement.PayloadType, huge, slsa02)
	small, _ := oci.NewClient(oci.Options{Limits: oci.Limits{MaxAttestationBytes: 1 << 20}})
	v, _ := verify.NewVerifier(small, []crypto.PublicKey{f.key.Public()})
	res, err = v.VerifyAttestations(f.ctx, hImg, o)
	mustFailAtt(t, res, err, verify.ErrNotVerified, "exceeds the size limit")
}

func TestAttestInputChecks(t *testing.T) {
	f := newBundleFixture(t, true)
	d := f.reg.PushImage(t, f.reg.Ref("in/app:v1"))
	h, _ := v1.NewHash(d.DigestStr())
	a, _ := attest.NewAttester(f.client, f.key)
	for name, o := range map[string]attest.Options{
		"not json":         {PredicateType: slsa02, Predicate: []byte("nope")},
		"json array":       {PredicateType: slsa02, Predicate: []byte("[1]")},
		"both":             {PredicateType: slsa02, Predicate: []byte("{}"), Statement: []byte("{}")},
		"huge":             {PredicateType: slsa02, Predicate: append(append([]byte(`{"a":"`), bytes.Repeat([]byte("x"), attest.MaxPredicateBytes)...), '"', '}')},
		"statement other":  {PredicateType: slsa02, Statement: mustStatement(t, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, slsa02)},
		"statement type":   {PredicateType: "https://spdx.dev/Document", Statement: mustStatement(t, h, slsa02)},
		"statement broken": {PredicateType: slsa02, Statement: []byte(`{"_type":"x"}`)},
	} {
		if _, err := a.Attest(f.ctx, d, o); err == nil || !strings.Contains(err.Error(), "invalid attestation input") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A whole statement about this image is accepted and verifies.
	out := f.attest(t, d, f.key, attest.Options{PredicateType: slsa02, Statement: mustStatement(t, h, slsa02), Format: sign.FormatBundle})
	if out.Referrer == "" || out.Tag != "" {
		t.Fatalf("bundle-only: %+v", out)
	}
	if _, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02}, f.key.Public()); err != nil {
		t.Fatal(err)
	}
}

func mustStatement(t *testing.T, h v1.Hash, pt string) []byte {
	s, err := statement.ForImage(h, pt, json.RawMessage(`{"k":"v"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnannotatedFallbackEntries: cosign v3's fallback index entries carry
// no annotations, so the type is only known from the referrer manifest.
func TestUnannotatedFallbackEntries(t *testing.T) {
	f := newBundleFixture(t, false)
	d := f.reg.PushImage(t, f.reg.Ref("un/app:v1"))
	f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatBundle})
	f.attest(t, d, f.key, attest.Options{PredicateType: slsa02, Predicate: []byte(`{"a":1}`), Format: sign.FormatBundle})
	// Strip the annotations from the fallback index entries.
	refs, err := f.client.ListReferrers(f.ctx, d)
	if err != nil || refs.API || len(refs.Descriptors) != 2 {
		t.Fatalf("referrers %+v %v", refs, err)
	}
	var entries []map[string]any
	for _, r := range refs.Descriptors {
		entries = append(entries, map[string]any{"mediaType": r.MediaType, "size": r.Size, "digest": r.Digest.String(), "artifactType": r.ArtifactType})
	}
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
	tag, _ := oci.FallbackTag(d)
	putRaw(t, f, tag.RepositoryStr(), tag.TagStr(), "application/vnd.oci.image.index.v1+json", raw)

	if res, err := f.verify(t, d.String(), verify.Options{Format: verify.FormatBundle}, f.key.Public()); err != nil || len(res.Signatures) != 1 {
		t.Fatalf("signature: %+v %v", res, err)
	}
	if res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02}, f.key.Public()); err != nil || len(res.Attestations) != 1 {
		t.Fatalf("attestation: %+v %v", res, err)
	}
	res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: "https://cyclonedx.org/bom"}, f.key.Public())
	mustFailAtt(t, res, err, verify.ErrNoSignatures, "other types exist")
}
