package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/verify"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/proto"
)

// TestKeylessLegacyAttestationTimestamp: the RFC 3161 timestamp annotation
// of a legacy keyless attestation (.att layer) is verified over the bytes
// cosign timestamps: the whole layer (cosign v2, and what cosign's
// verifiers check) or the envelope's signature (cosign v3.1). It then
// dates the certificate with no log entry at all; a timestamp over other
// bytes, or by a TSA the trusted root does not list, is refused with the
// reason, even when a Rekor entry would date the attestation.
func TestKeylessLegacyAttestationTimestamp(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	const slsa = "https://slsa.dev/provenance/v1"
	type layer = attLayer
	cases := []struct {
		name      string
		set       bool
		token     func(l layer) []byte // nil: no timestamp annotation
		ignoreLog bool
		want      string // "" verifies
	}{
		{name: "over the layer, no log", ignoreLog: true, token: func(l layer) []byte { return tsr(t, vs, l.body) }},
		{name: "over the signature, no log", ignoreLog: true, token: func(l layer) []byte { return tsr(t, vs, l.sig) }},
		{name: "over the layer, with a Rekor SET", set: true, token: func(l layer) []byte { return tsr(t, vs, l.body) }},
		{name: "Rekor SET only", set: true},
		{name: "no verified time", ignoreLog: true, want: "no verified signing time"},
		{name: "over other bytes, no log", ignoreLog: true, token: func(l layer) []byte { return tsr(t, vs, []byte("other bytes")) },
			want: "covers other bytes: its message imprint is the SHA-256 hash neither of the attestation layer"},
		{name: "over other bytes, with a Rekor SET", set: true, token: func(l layer) []byte { return tsr(t, vs, append(l.body, ' ')) },
			want: "covers other bytes"},
		{name: "by a TSA the trusted root does not list", ignoreLog: true, token: func(l layer) []byte { return tsr(t, other, l.body) },
			want: "over the attestation layer (the envelope as stored, as cosign v2 timestamps it) does not verify"},
		{name: "not a timestamp", ignoreLog: true, token: func(l layer) []byte { return []byte("not DER") }, want: "not an RFC 3161 timestamp response"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil)
			d := pushKeylessAtt(t, f, vs, c.set, c.token)
			o := keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}, IgnoreSCT: true, IgnoreTlog: c.ignoreLog}
			v, err := verify.NewVerifier(f.client, nil, verify.WithKeyless(o))
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: slsa, Format: verify.FormatLegacy})
			if c.want != "" {
				mustFailAtt(t, res, err, verify.ErrNotVerified, c.want)
				return
			}
			if err != nil {
				t.Fatalf("want verified: %v %+v", err, res.Rejected)
			}
			if a := res.Attestations[0]; a.Identity == nil || a.Identity.Subject != testSubject || len(a.SignedAt) == 0 || a.Source != verify.SourceLegacy {
				t.Fatalf("verified %+v", a)
			}
		})
	}
}

// pushKeylessAtt pushes an image and a legacy keyless attestation of it
// (slsa provenance v1), with a Rekor SET annotation if set and a timestamp
// annotation made by token (none if nil).
func pushKeylessAtt(t testing.TB, f *fixture, vs *ca.VirtualSigstore, set bool, token func(l attLayer) []byte) name.Digest {
	t.Helper()
	const slsa = "https://slsa.dev/provenance/v1"
	d := f.reg.PushImage(t, f.reg.Ref("app:1"))
	h, _ := v1.NewHash(d.DigestStr())
	s, err := statement.ForImage(h, slsa, json.RawMessage(`{"k":"v"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := vs.AttestAtTime(testSubject, testIssuer, s, time.Now().Add(2*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := e.SignatureContent()
	vc, _ := e.VerificationContent()
	raw := sc.EnvelopeContent().RawEnvelope()
	sig, _ := base64.StdEncoding.DecodeString(raw.Signatures[0].Sig)
	payload, _ := base64.StdEncoding.DecodeString(raw.Payload)
	body, err := envelope.Marshal(raw.PayloadType, payload, sig)
	if err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{oci.SignatureAnnotation: "", attest.PredicateTypeAnnotation: slsa,
		oci.CertificateAnnotation: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.Certificate().Raw}))}
	if set {
		entries, _ := e.TlogEntries()
		tle := proto.Clone(entries[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
		setSig, err := vs.RekorSignPayload(sgtlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
		if err != nil {
			t.Fatal(err)
		}
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: setSig}
		cb, err := tlog.CosignBundle(tle)
		if err != nil {
			t.Fatal(err)
		}
		ann[tlog.CosignBundleAnnotation] = string(cb)
	}
	if token != nil {
		j, _ := json.Marshal(struct{ SignedRFC3161Timestamp []byte }{token(attLayer{body, sig})})
		ann[oci.TimestampAnnotation] = string(j)
	}
	tag, _ := oci.AttachedTag(d, nil, oci.AttestationTagSuffix)
	if _, err := f.client.AddAttachments(f.ctx, tag, []oci.Attachment{{Payload: body, MediaType: oci.DSSEMediaType, Annotations: ann}}, nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// attLayer is a legacy attestation layer and its envelope's signature.
type attLayer struct{ body, sig []byte }

// BenchmarkLegacyAttestationTimestamp: verify-attestation of one legacy
// keyless attestation dated by a Rekor SET only, by a timestamp over the
// layer only (no log), and by both, against an in-process registry.
func BenchmarkLegacyAttestationTimestamp(b *testing.B) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		set, ts   bool
		ignoreLog bool
	}{{"rekor-set", true, false, false}, {"tsa-layer", false, true, true}, {"rekor-set+tsa-layer", true, true, false}} {
		b.Run(c.name, func(b *testing.B) {
			c0, err := oci.NewClient(oci.Options{Retries: -1})
			if err != nil {
				b.Fatal(err)
			}
			f := &fixture{reg: testreg.Start(b, nil), client: c0, ctx: context.Background()}
			var token func(l attLayer) []byte
			if c.ts {
				token = func(l attLayer) []byte { return tsr(b, vs, l.body) }
			}
			d := pushKeylessAtt(b, f, vs, c.set, token)
			o := keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}, IgnoreSCT: true, IgnoreTlog: c.ignoreLog}
			v, err := verify.NewVerifier(f.client, nil, verify.WithKeyless(o))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: "https://slsa.dev/provenance/v1", Format: verify.FormatLegacy}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func tsr(t testing.TB, vs *ca.VirtualSigstore, b []byte) []byte {
	t.Helper()
	r, err := vs.TimestampResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
