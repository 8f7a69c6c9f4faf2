package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// largeStatementBytes makes the statements of these benchmarks about 31
// MiB once in an envelope or a bundle (base64), under the 32 MiB
// attestation limit.
const largeStatementBytes = 23 << 20

// largeAttestation stores a validly signed attestation near the size
// limit as format says, and returns a verification of it and the size
// stored.
func largeAttestation(b testing.TB, format verify.Format) (verifyIt func() error, stored int) {
	reg := testreg.Start(b, nil, registry.WithReferrersSupport(true))
	d := reg.PushImage(b, reg.Ref("big/app:v1"))
	key, _ := keys.Generate(keys.ECDSAP256)
	c, _ := oci.NewClient(oci.Options{Retries: -1})
	ctx := context.Background()
	h, _ := v1.NewHash(d.DigestStr())
	stmt, err := statement.ForImage(h, slsa02, json.RawMessage(`{"blob":"`+strings.Repeat("x", largeStatementBytes-250)+`"}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	sv, _ := signature.LoadSignerVerifier(key, crypto.SHA256)
	sig, _ := sv.SignMessage(bytes.NewReader((&envelope.Envelope{PayloadType: statement.PayloadType, Payload: stmt}).PAE()))
	switch format {
	case verify.FormatLegacy:
		body, _ := envelope.Marshal(statement.PayloadType, stmt, sig)
		tag, _ := oci.AttachedTag(d, nil, oci.AttestationTagSuffix)
		att := oci.Attachment{Payload: body, MediaType: oci.DSSEMediaType, Annotations: map[string]string{oci.SignatureAnnotation: "", attest.PredicateTypeAnnotation: slsa02}}
		if _, err := c.AddAttachments(ctx, tag, []oci.Attachment{att}, nil); err != nil {
			b.Fatal(err)
		}
		stored = len(body)
	case verify.FormatBundle:
		body, _ := bundle.MarshalDSSE("", statement.PayloadType, stmt, sig)
		r, err := c.Resolve(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.PushReferrer(ctx, d, r.Descriptor, bundle.Artifact(body, slsa02, nil)); err != nil {
			b.Fatal(err)
		}
		stored = len(body)
	}
	v, _ := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
	return func() error {
		res, err := v.VerifyAttestations(ctx, d, verify.AttestationOptions{PredicateType: slsa02, Format: format})
		if err == nil && !res.Verified {
			err = fmt.Errorf("not verified: %+v", res.Rejected)
		}
		return err
	}, stored
}

// largeKeylessAttestation stores a bundle near the size limit signed with
// a certificate of a private Sigstore (SCT, Rekor v1 dsse entry with
// inclusion proof, RFC 3161 timestamp), and returns a verification of it
// and the size stored.
func largeKeylessAttestation(b testing.TB) (verifyIt func() error, stored int) {
	reg := testreg.Start(b, nil, registry.WithReferrersSupport(true))
	d := reg.PushImage(b, reg.Ref("big/keyless:v1"))
	c, _ := oci.NewClient(oci.Options{Retries: -1})
	ctx := context.Background()
	h, _ := v1.NewHash(d.DigestStr())
	stmt, err := statement.ForImage(h, slsa02, json.RawMessage(`{"blob":"`+strings.Repeat("x", largeStatementBytes-250)+`"}`), nil)
	if err != nil {
		b.Fatal(err)
	}
	s := keylesstest.New(b)
	const subject, issuer = "ci@example.com", "https://issuer.example"
	cert, key := s.Issue(b, keylesstest.Cert{Subject: subject, Issuer: issuer})
	body := s.DSSEBundle(b, cert, key, stmt)
	keylesstest.AttachBundle(b, c, d, body, slsa02)
	v, _ := verify.NewVerifier(c, nil, verify.WithKeyless(keyless.Options{Trusted: s, Identities: []keyless.Identity{{Subject: subject, Issuer: issuer}}}))
	return func() error {
		res, err := v.VerifyAttestations(ctx, d, verify.AttestationOptions{PredicateType: slsa02, Format: verify.FormatBundle})
		if err == nil && (!res.Verified || res.Attestations[0].Identity == nil) {
			err = fmt.Errorf("not verified with a certificate: %+v", res)
		}
		return err
	}, len(body)
}

// benchmarkLargeAttestation reports the bytes allocated per verification
// of a large attestation (those of the in-process registry serving it
// included).
func benchmarkLargeAttestation(b *testing.B, format verify.Format) {
	verifyIt, stored := largeAttestation(b, format)
	b.ReportAllocs()
	b.SetBytes(int64(stored))
	b.ResetTimer()
	for b.Loop() {
		if err := verifyIt(); err != nil {
			b.Fatal(err)
		}
	}
}

// A validly signed attestation near the size limit is verified with one
// copy of it in memory: the buffer it is read into, in which the payload
// is decoded. Allocations are counted (deterministic), not timed.
func TestLargeAttestationReadOnce(t *testing.T) {
	for _, format := range []verify.Format{verify.FormatLegacy, verify.FormatBundle, "keyless"} {
		var verifyIt func() error
		var stored int
		if format == "keyless" {
			verifyIt, stored = largeKeylessAttestation(t)
		} else {
			verifyIt, stored = largeAttestation(t, format)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := verifyIt(); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d KiB allocated to verify a %d KiB attestation", format, alloc>>10, stored>>10)
		if limit := uint64(stored) + 2<<20; alloc > limit {
			t.Errorf("%s: %d KiB allocated to verify a %d KiB attestation, more than it and 2 MiB", format, alloc>>10, stored>>10)
		}
	}
}

// BenchmarkVerifyLargeAttestationLegacy verifies a 31 MiB legacy envelope.
func BenchmarkVerifyLargeAttestationLegacy(b *testing.B) {
	benchmarkLargeAttestation(b, verify.FormatLegacy)
}

// BenchmarkVerifyLargeAttestationKeyless verifies a 31 MiB Sigstore bundle
// signed with a certificate.
func BenchmarkVerifyLargeAttestationKeyless(b *testing.B) {
	verifyIt, stored := largeKeylessAttestation(b)
	b.ReportAllocs()
	b.SetBytes(int64(stored))
	b.ResetTimer()
	for b.Loop() {
		if err := verifyIt(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyLargeAttestationBundle verifies a 31 MiB Sigstore bundle.
func BenchmarkVerifyLargeAttestationBundle(b *testing.B) {
	benchmarkLargeAttestation(b, verify.FormatBundle)
}
