package verify_test

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// TestKeySignatureTimestamps: the RFC 3161 timestamp of a key signature,
// in either layout, is verified over the raw signature against the trusted
// TSAs and becomes its verified signing time, which key windows judge.
// Hostile timestamps built here (over other bytes, by a TSA the root does
// not list, a forged time for a windowed key, not a token at all) refuse
// the signature with the reason; without a trusted TSA, timestamps are
// ignored (and a windowed key has no time).
func TestKeySignatureTimestamps(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	open := verify.Window{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	retired := verify.Window{NotAfter: now.Add(-time.Hour)}
	cases := []struct {
		name      string
		token     func(sig []byte) []byte // nil: no timestamp
		noTSA     bool                    // no trusted TSA
		window    *verify.Window
		require   bool   // RequireTimestamp
		want      string // "" verifies
		wantTimes int
		unchecked int // TimestampsUnchecked
	}{
		{name: "over the signature", token: func(s []byte) []byte { return tsr(t, vs, s) }, wantTimes: 1},
		{name: "over the signature, windowed key", token: func(s []byte) []byte { return tsr(t, vs, s) }, window: &open, wantTimes: 1},
		{name: "signed after the key's notAfter", token: func(s []byte) []byte { return tsr(t, vs, s) }, window: &retired, want: "after key"},
		{name: "over other bytes", token: func(s []byte) []byte { return tsr(t, vs, append(bytes.Clone(s), 0)) }, want: "does not verify against the trusted timestamp authorities"},
		{name: "by a TSA the root does not list", token: func(s []byte) []byte { return tsr(t, other, s) }, want: "does not verify against the trusted timestamp authorities"},
		{name: "forged time for a windowed key", token: func(s []byte) []byte { return tsr(t, other, s) }, window: &open, want: "does not verify against the trusted timestamp authorities"},
		{name: "not a token", token: func([]byte) []byte { return []byte("not DER") }, want: "does not verify"},
		{name: "no timestamp, windowed key", window: &open, want: "no verified signing time"},
		{name: "required and present", token: func(s []byte) []byte { return tsr(t, vs, s) }, require: true, wantTimes: 1},
		{name: "required and absent", require: true, want: "no RFC 3161 timestamp verified by a trusted timestamp authority"},
		{name: "no trusted TSA: ignored", token: func(s []byte) []byte { return tsr(t, other, s) }, noTSA: true, unchecked: 1},
		{name: "no trusted TSA, windowed key", token: func(s []byte) []byte { return tsr(t, vs, s) }, noTSA: true, window: &open, want: "no verified signing time"},
	}
	for _, layout := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
		for _, c := range cases {
			t.Run(string(layout)+"/"+c.name, func(t *testing.T) {
				f := newFixture(t, nil)
				d := f.reg.PushImage(t, f.reg.Ref("app:1"))
				pushKeySignature(t, f, d, layout, c.token)
				var opts []verify.Option
				if !c.noTSA {
					opts = append(opts, verify.WithTrustedTimestamps(vs))
				}
				v, err := verify.NewVerifier(f.client, []crypto.PublicKey{f.key.Public()}, opts...)
				if err != nil {
					t.Fatal(err)
				}
				o := verify.Options{Format: layout, RequireTimestamp: c.require}
				if c.window != nil {
					id, _ := keys.KeyID(f.key.Public())
					o.KeyWindows = map[string]verify.Window{id: *c.window}
				}
				res, err := v.Verify(f.ctx, d, o)
				if c.want != "" {
					mustFail(t, err, verify.ErrNotVerified, c.want, res)
					return
				}
				if err != nil {
					t.Fatalf("want verified: %v %+v", err, res.Rejected)
				}
				if got := res.Signatures[0].TimestampsUnchecked; got != c.unchecked {
					t.Fatalf("%d unchecked timestamps, want %d", got, c.unchecked)
				}
				if got := len(res.Signatures[0].SignedAt); got != c.wantTimes {
					t.Fatalf("%d verified times, want %d: %+v", got, c.wantTimes, res.Signatures[0])
				}
				if c.wantTimes > 0 && res.Signatures[0].SignedAt[0].Sub(now).Abs() > time.Minute {
					t.Fatalf("signed at %v, not now", res.Signatures[0].SignedAt[0])
				}
			})
		}
	}
}

// pushKeySignature stores a key signature of d by f.key in layout, with
// the timestamp token makes of the raw signature (none if nil).
func pushKeySignature(t *testing.T, f *fixture, d name.Digest, layout verify.Format, token func(sig []byte) []byte) {
	t.Helper()
	sv, err := keys.AsSigner(f.key, "")
	if err != nil {
		t.Fatal(err)
	}
	if layout == verify.FormatLegacy {
		p, _ := payload.Build(d, nil)
		sig, err := sv.SignMessage(bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		ann := map[string]string{oci.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
		if token != nil {
			ann[oci.TimestampAnnotation], _ = tsa.Annotation(token(sig))
		}
		tag, _ := oci.AttachedTag(d, nil, oci.SignatureTagSuffix)
		if _, err := f.client.AddAttachments(f.ctx, tag, []oci.Attachment{{Payload: p, MediaType: oci.SimpleSigningMediaType, Annotations: ann}}, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	h, _ := v1.NewHash(d.DigestStr())
	stmt, err := statement.ForImage(h, statement.CosignSign, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(dsse.PAE(statement.PayloadType, stmt)))
	if err != nil {
		t.Fatal(err)
	}
	var tokens [][]byte
	if token != nil {
		tokens = append(tokens, token(sig))
	}
	hint, _ := keys.KeyID(f.key.Public())
	data, err := bundle.MarshalTimestampedDSSE(hint, statement.PayloadType, stmt, sig, tokens)
	if err != nil {
		t.Fatal(err)
	}
	keylesstest.AttachBundle(t, f.client, d, data, statement.CosignSign)
}

// TestKeyAttestationTimestamps: key attestations made by pkg/attest with
// a TSA (the in-process one) verify with their timestamps as signing time
// in both layouts (the legacy layer's covers the whole layer, as cosign
// v2 writes it); a legacy layer whose timestamp is by a TSA the root does
// not list is refused, and a retired key refuses both.
func TestKeyAttestationTimestamps(t *testing.T) {
	fake := sigstoretest.Start(t)
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("app:1"))
	at, err := attest.NewAttester(f.client, f.key)
	if err != nil {
		t.Fatal(err)
	}
	const slsa = "https://slsa.dev/provenance/v1"
	if _, err := at.Attest(f.ctx, d, attest.Options{PredicateType: slsa, Predicate: []byte(`{"k":"v"}`), Timestamps: tsa.New([]string{fake.TSAURL}, tsa.Options{})}); err != nil {
		t.Fatal(err)
	}
	if fake.TSACalls.Load() != 2 {
		t.Fatalf("%d TSA requests, want 2 (bundle and legacy layer)", fake.TSACalls.Load())
	}
	v, err := verify.NewVerifier(f.client, []crypto.PublicKey{f.key.Public()}, verify.WithTrustedTimestamps(fake.Trusted))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keys.KeyID(f.key.Public())
	for _, layout := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
		res, err := v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: slsa, Format: layout,
			KeyWindows: map[string]verify.Window{id: {NotBefore: time.Now().Add(-time.Hour)}}})
		if err != nil || len(res.Attestations) != 1 || len(res.Attestations[0].SignedAt) != 1 {
			t.Fatalf("%s: %v %+v", layout, err, res)
		}
		res, err = v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: slsa, Format: layout,
			KeyWindows: map[string]verify.Window{id: {NotAfter: time.Now().Add(-time.Hour)}}})
		mustFailAtt(t, res, err, verify.ErrNotVerified, "after key")
	}

	// A legacy layer timestamped by another TSA: refused with the reason.
	untrusted := sigstoretest.Start(t)
	g := newFixture(t, nil)
	g.key = f.key
	d2 := g.reg.PushImage(t, g.reg.Ref("app:2"))
	at2, _ := attest.NewAttester(g.client, g.key)
	if _, err := at2.Attest(g.ctx, d2, attest.Options{PredicateType: slsa, Predicate: []byte(`{"k":"v"}`), Format: sign.FormatLegacy, Timestamps: tsa.New([]string{untrusted.TSAURL}, tsa.Options{})}); err != nil {
		t.Fatal(err)
	}
	v2, _ := verify.NewVerifier(g.client, []crypto.PublicKey{g.key.Public()}, verify.WithTrustedTimestamps(fake.Trusted))
	res, err := v2.VerifyAttestations(g.ctx, d2, verify.AttestationOptions{PredicateType: slsa, Format: verify.FormatLegacy})
	mustFailAtt(t, res, err, verify.ErrNotVerified, "over the attestation layer (the envelope as stored, as cosign v2 timestamps it) does not verify")

	// The layer's timestamp covers the layer as stored.
	tag, _ := oci.AttachedTag(d2, nil, oci.AttestationTagSuffix)
	m, _, err := g.client.ReadManifest(g.ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	body, err := g.client.FetchBlob(g.ctx, tag.Context(), m.Layers[0], 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ SignedRFC3161Timestamp []byte }
	if err := json.Unmarshal([]byte(m.Layers[0].Annotations[oci.TimestampAnnotation]), &tok); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.ParseInPlace(bytes.Clone(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.VerifyTimestamp(tok.SignedRFC3161Timestamp, body, untrusted.Trusted); err != nil {
		t.Fatalf("the legacy attestation's timestamp does not cover the layer: %v", err)
	}
}
