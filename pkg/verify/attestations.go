package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// legacyPredicateAnnotation names the predicate type of a legacy .att layer.
const legacyPredicateAnnotation = "predicateType"

// AttestationOptions say which attestations must be present.
type AttestationOptions struct {
	// PredicateType is the predicate type URI required. Required.
	PredicateType string
	// Policy, when set, must hold for a verified statement to count.
	Policy *policy.Policy
	// Format restricts where attestations are looked for (legacy .att tag,
	// bundle referrers, or both when empty).
	Format Format
	// Platform selects the child manifest of an index.
	Platform *v1.Platform
	// RequireTlog rejects an attestation without a verified
	// transparency-log entry. Without it, an entry that is present must
	// still verify.
	RequireTlog bool
	// Threshold is the number of distinct trusted keys that must have
	// made an attestation that counts; 0 means 1.
	Threshold int
	// MaxAge, when positive, refuses attestations whose trusted signing
	// time is older than this, as Options.MaxAge does for signatures.
	MaxAge time.Duration
	// Now is the time MaxAge counts from; nil means time.Now.
	Now func() time.Time
	// SignedBy, when not nil, counts only attestations made by these key
	// IDs: the keys whose signature of the image met what a statement
	// cannot carry (signed annotations), so that a requirement's
	// annotations bind its attestations too.
	SignedBy map[string]bool
	// KeyWindows bound, per key ID, the VERIFIED signing time of that
	// key's attestations, as Options.KeyWindows does for signatures.
	// (Certificate identities carry their windows in keyless.Identity.)
	KeyWindows map[string]Window
	// RequireTimestamp rejects a key attestation without a verified RFC
	// 3161 timestamp, as Options.RequireTimestamp does for signatures.
	RequireTimestamp bool
}

// AttestationResult is the verdict on one image's attestations.
type AttestationResult struct {
	Image        string                `json:"image"`
	Digest       string                `json:"digest,omitempty"`
	Verified     bool                  `json:"verified"`
	Attestations []VerifiedAttestation `json:"attestations"`
	Rejected     []Rejected            `json:"rejected"`
	Error        string                `json:"error,omitempty"`
	Warnings     []string              `json:"warnings,omitempty"`
	// OtherTypes counts attestations of other predicate types, which were
	// not downloaded.
	OtherTypes int `json:"otherTypes,omitempty"`
}

// VerifiedAttestation is an attestation that checked out.
type VerifiedAttestation struct {
	Source        string          `json:"source"`
	KeyID         string          `json:"keyID"`
	PayloadDigest string          `json:"payloadDigest,omitempty"`
	Referrer      string          `json:"referrer,omitempty"`
	Statement     json.RawMessage `json:"statement"`
	// Identity is set for a certificate (keyless) signature; SignedAt
	// are its verified signing times (as Verified.SignedAt).
	Identity *SignerIdentity `json:"identity,omitempty"`
	SignedAt []time.Time     `json:"signedAt,omitempty"`
	// Tlog are the verified transparency-log entries of the attestation.
	Tlog []tlog.Facts `json:"tlog,omitempty"`
	// TlogUnchecked counts log entries not checked: no log is trusted.
	TlogUnchecked int `json:"tlogUnchecked,omitempty"`
	// TimestampsUnchecked counts RFC 3161 timestamps not checked: no TSA
	// is trusted.
	TimestampsUnchecked int `json:"timestampsUnchecked,omitempty"`
}

// VerifyAttestations checks the attestations of the predicate type asked
// for. Attestations are selected by type from the legacy layer annotations
// and the referrers list before anything is downloaded. It succeeds when at
// least one verifies (and satisfies the policy); no attestation of the type
// is ErrNoSignatures even if others exist, and ones that exist but do not
// verify are ErrNotVerified.
func (v *Verifier) VerifyAttestations(ctx context.Context, ref name.Reference, o AttestationOptions) (*AttestationResult, error) {
	res := &AttestationResult{Image: ref.String(), Attestations: []VerifiedAttestation{}, Rejected: []Rejected{}}
	fail := func(err error) (*AttestationResult, error) {
		res.Error = err.Error()
		return res, err
	}
	if o.PredicateType == "" {
		return fail(errors.New("no predicate type given"))
	}
	d, err := v.resolve(ctx, ref, o.Platform)
	if err != nil {
		return fail(err)
	}
	res.Digest = d.DigestStr()
	found := 0
	var errs []error
	budget := v.client.Limits().MaxAttestationTotalBytes
	if o.Format != FormatBundle {
		n, err := v.legacyAttestations(ctx, d, o, res, &budget)
		found += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if o.Format != FormatLegacy {
		n, err := v.bundleAttestations(ctx, d, o, res, &budget)
		found += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	attesters := map[string]bool{}
	for _, a := range res.Attestations {
		attesters[a.KeyID] = true
	}
	switch need := max(o.Threshold, 1); {
	case len(res.Attestations) > 0 && len(attesters) < need:
		return fail(fmt.Errorf("%w: %d distinct trusted key(s) attested %s, %d required", ErrNotVerified, len(attesters), o.PredicateType, need))
	case len(res.Attestations) > 0:
		for _, err := range errs {
			res.Warnings = append(res.Warnings, err.Error())
		}
		res.Verified = true
		return res, nil
	case found == 0 && len(errs) > 0:
		return fail(errors.Join(errs...))
	case found == 0:
		others := ""
		if res.OtherTypes > 0 {
			others = fmt.Sprintf("; %d attestation(s) of other types exist", res.OtherTypes)
		}
		return fail(fmt.Errorf("%w: no attestation of type %s%s", ErrNoSignatures, o.PredicateType, others))
	}
	return fail(fmt.Errorf("%w among %d attestation(s) of type %s", ErrNotVerified, found, o.PredicateType))
}

// attestationMax returns the most bytes the next attestation of an image
// may have: the per-attestation limit, or what is left of the image's
// total when that is less. With nothing left, it says why instead.
func (v *Verifier) attestationMax(left int64) (int64, string) {
	l := v.client.Limits()
	if left <= 0 {
		return 0, fmt.Sprintf("not read: the attestations of this image already took the %d bytes allowed in total", l.MaxAttestationTotalBytes)
	}
	return min(l.MaxAttestationBytes, left), ""
}

// totalNote explains a size refusal caused by the image's total rather
// than the per-attestation limit.
func (v *Verifier) totalNote(max int64, err error) string {
	l := v.client.Limits()
	if max < l.MaxAttestationBytes && errors.Is(err, oci.ErrTooLarge) {
		return fmt.Sprintf(" (what was left of the %d bytes allowed in total for this image's attestations)", l.MaxAttestationTotalBytes)
	}
	return ""
}

// accept applies the signer, age and policy requirements to a verified
// statement and records it.
func accept(res *AttestationResult, o AttestationOptions, va VerifiedAttestation, rej Rejected) {
	if o.SignedBy != nil && !o.SignedBy[va.KeyID] {
		rej.Reason = fmt.Sprintf("made by key %s, which has no signature of this image meeting the requirement (its annotations)", va.KeyID)
		res.Rejected = append(res.Rejected, rej)
		return
	}
	times := verifiedTimes(va.Tlog, va.SignedAt)
	if reason := checkAge(o.MaxAge, o.Now, times); reason != "" {
		rej.Reason = reason
		res.Rejected = append(res.Rejected, rej)
		return
	}
	if reason := checkKeyWindow(o.KeyWindows, va.KeyID, times); reason != "" {
		rej.Reason = reason
		res.Rejected = append(res.Rejected, rej)
		return
	}
	if o.Policy != nil {
		if err := o.Policy.Evaluate(va.Statement); err != nil {
			rej.Reason = err.Error()
			res.Rejected = append(res.Rejected, rej)
			return
		}
	}
	res.Attestations = append(res.Attestations, va)
}

// legacyAttestations checks the layers of the .att manifest that claim the
// wanted predicate type. It returns how many it considered.
func (v *Verifier) legacyAttestations(ctx context.Context, d name.Digest, o AttestationOptions, res *AttestationResult, budget *int64) (int, error) {
	tag, err := oci.AttachedTag(d, nil, oci.AttestationTagSuffix)
	if err != nil {
		return 0, err
	}
	m, _, err := v.client.ReadManifest(ctx, tag)
	switch {
	case errors.Is(err, oci.ErrNotFound):
		return 0, nil
	case errors.Is(err, oci.ErrTooMany), errors.Is(err, oci.ErrTooLarge):
		res.Rejected = append(res.Rejected, Rejected{Source: SourceLegacy, Reason: err.Error()})
		return 1, nil
	case err != nil:
		return 0, err
	}
	n := 0
	for i, layer := range m.Layers {
		if layer.Annotations[legacyPredicateAnnotation] != o.PredicateType {
			res.OtherTypes++
			continue
		}
		n++
		rej := Rejected{Source: SourceLegacy, Index: &i, PayloadDigest: layer.Digest.String()}
		if layer.MediaType != oci.DSSEMediaType {
			rej.Reason = fmt.Sprintf("layer media type %q is not a DSSE envelope", layer.MediaType)
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		max, over := v.attestationMax(*budget)
		if over != "" {
			rej.Reason = over
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		blob, err := v.client.FetchBlob(ctx, tag.Context(), layer, max)
		*budget -= int64(len(blob))
		if err != nil {
			rej.Reason = "envelope: " + err.Error() + v.totalNote(max, err)
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		_, hasCert := layer.Annotations[oci.CertificateAnnotation]
		keylessLayer := hasCert && (v.keyless != nil || len(v.keys) == 0)
		var (
			ts      *attestationTimestamp
			tsTrust root.TrustedMaterial // verifies ts
		)
		switch {
		case keylessLayer && v.keyless != nil:
			tsTrust = v.keyless.Trusted
		case !keylessLayer && v.tsas != nil:
			tsTrust = v.tsas
		}
		if tsTrust != nil { // its timestamp may cover the layer: verified before the layer is parsed in place
			if ts, err = newAttestationTimestamp(layer.Annotations); err == nil {
				err = ts.verifyLayer(blob, tsTrust)
			}
			if err != nil {
				rej.Reason = err.Error()
				res.Rejected = append(res.Rejected, rej)
				continue
			}
		}
		env, err := envelope.ParseInPlace(blob) // blob is consumed: env.Payload aliases it
		if err != nil {
			rej.Reason = err.Error()
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		if keylessLayer {
			load := func() (*sgbundle.Bundle, error) {
				if err := ts.verifySignature(env, v.keyless.Trusted); err != nil {
					return nil, err
				}
				return legacyEnvelopeBundle(layer.Annotations, env)
			}
			va, reason := v.checkKeylessAttestation(load, layer.Annotations, ts, d, o.PredicateType, layer.Annotations[legacyPredicateAnnotation])
			if reason != "" {
				rej.Reason = reason
				res.Rejected = append(res.Rejected, rej)
				continue
			}
			va.Source, va.PayloadDigest = SourceLegacy, layer.Digest.String()
			accept(res, o, *va, rej)
			continue
		}
		c := v.checkDSSE(env.PayloadType, env.Payload, env.Signatures, d, o.PredicateType, layer.Annotations[legacyPredicateAnnotation])
		if c.reason != "" {
			rej.Reason = c.reason
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		var (
			stamped     []time.Time
			tsUnchecked int
		)
		if _, ok := layer.Annotations[oci.TimestampAnnotation]; ok && tsTrust == nil {
			tsUnchecked = 1
		}
		if ts != nil {
			if err := ts.verifySignature(env, tsTrust); err != nil {
				rej.Reason = err.Error()
				res.Rejected = append(res.Rejected, rej)
				continue
			}
			stamped = []time.Time{ts.at.Time}
		}
		if reason := requireStamp(o.RequireTimestamp, stamped); reason != "" {
			rej.Reason = reason
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		entries, bad := legacyEntries(layer.Annotations)
		lc := v.checkLog(ctx, c.want(env.PayloadType, env.Payload), entries, bad, o.RequireTlog)
		if lc.reason != "" {
			rej.Reason = lc.reason
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		accept(res, o, VerifiedAttestation{Source: SourceLegacy, KeyID: c.key.id, PayloadDigest: layer.Digest.String(), Statement: env.Payload, Tlog: lc.facts, TlogUnchecked: lc.unchecked, SignedAt: stamped, TimestampsUnchecked: tsUnchecked}, rej)
	}
	return n, nil
}

// bundleAttestations checks the bundle referrers that claim the wanted
// predicate type. It returns how many it considered.
func (v *Verifier) bundleAttestations(ctx context.Context, d name.Digest, o AttestationOptions, res *AttestationResult, budget *int64) (int, error) {
	refs, err := v.client.ListReferrers(ctx, d)
	if err != nil {
		return 0, err
	}
	res.Warnings = append(res.Warnings, refs.Warnings...)
	n := 0
	for _, r := range refs.Descriptors {
		isBundle := r.ArtifactType == bundle.MediaTypeV03 || r.Annotations[oci.BundleContentAnnotation] == "dsse-envelope" || untypedReferrer(r)
		claimed, annotated := r.Annotations[oci.BundlePredicateTypeAnnotation]
		if !isBundle || claimed == statement.CosignSign {
			continue
		}
		if untypedReferrer(r) && !v.isBundleReferrer(ctx, d.Context(), r) {
			continue // some other artifact
		}
		if annotated && claimed != o.PredicateType {
			res.OtherTypes++
			continue
		}
		// Selected by its claimed type, or unannotated (some fallback
		// indexes drop annotations): then only downloading tells.
		if n == v.client.Limits().MaxSignatures {
			res.Warnings = append(res.Warnings, fmt.Sprintf("only the first %d attestation bundles of this type were considered", n))
			break
		}
		n++
		rej := Rejected{Source: SourceBundle, Referrer: r.Digest.String()}
		max, over := v.attestationMax(*budget)
		if over != "" {
			rej.Reason = over
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		m, blob, err := v.client.FetchReferrer(ctx, d.Context(), r, bundle.MediaTypeV03, max)
		*budget -= int64(len(blob))
		if err != nil {
			rej.Reason = err.Error() + v.totalNote(max, err)
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		if mc := m.Annotations[oci.BundlePredicateTypeAnnotation]; !annotated && mc != "" && mc != o.PredicateType {
			n-- // its manifest says it is of another type
			if mc != statement.CosignSign {
				res.OtherTypes++
			}
			continue
		}
		if m.Subject == nil || m.Subject.Digest.String() != d.DigestStr() {
			rej.Reason = "the referrer's subject is not this image"
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		// The payload is taken out once, in place (blob is consumed): each
		// parser reads the small rest.
		rest, payload, err := bundle.SplitDSSE(blob)
		if err != nil {
			rej.Reason = err.Error()
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		if v.keyless != nil || len(v.keys) == 0 {
			if kb, err := keylessSplit(rest, payload); err == nil && keyless.HasCertificate(kb) {
				va, reason := v.checkKeylessAttestation(func() (*sgbundle.Bundle, error) { return kb, nil }, nil, nil, d, o.PredicateType, m.Annotations[oci.BundlePredicateTypeAnnotation])
				switch reason {
				case errOtherType:
					n--
					res.OtherTypes++
				case "":
					va.Source, va.Referrer = SourceBundle, r.Digest.String()
					accept(res, o, *va, rej)
				default:
					rej.Reason = reason
					res.Rejected = append(res.Rejected, rej)
				}
				continue
			}
		}
		b, err := bundle.ParseSplitDSSE(rest, payload)
		if err != nil {
			rej.Reason = err.Error()
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		c := v.checkDSSE(b.PayloadType, b.Payload, b.Signatures, d, o.PredicateType, m.Annotations[oci.BundlePredicateTypeAnnotation])
		if c.otherType {
			n--
			res.OtherTypes++
			continue
		}
		if c.reason != "" {
			rej.Reason = c.reason
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		stamped, tsUnchecked, err := v.keyTimestamps(b.Timestamps, c.sig, "the envelope's signature")
		if err == nil {
			if reason := requireStamp(o.RequireTimestamp, stamped); reason != "" {
				err = errors.New(reason)
			}
		}
		if err != nil {
			rej.Reason = err.Error()
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		lc := v.checkLog(ctx, c.want(b.PayloadType, b.Payload), b.TlogEntries, nil, o.RequireTlog)
		if lc.reason != "" {
			rej.Reason = lc.reason
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		accept(res, o, VerifiedAttestation{Source: SourceBundle, KeyID: c.key.id, Referrer: r.Digest.String(), Statement: b.Payload, Tlog: lc.facts, TlogUnchecked: lc.unchecked, SignedAt: stamped, TimestampsUnchecked: tsUnchecked}, rej)
	}
	return n, nil
}

// checkKeylessAttestation verifies an attestation signed with a
// certificate: the bundle (built by load; ann, a legacy layer's annotations,
// may offer intermediates; ts is its verified timestamp) with
// keyless.VerifyDSSE, then its statement as for keys.
func (v *Verifier) checkKeylessAttestation(load func() (*sgbundle.Bundle, error), ann map[string]string, ts *attestationTimestamp, img name.Digest, want, claimed string) (*VerifiedAttestation, string) {
	if v.keyless == nil {
		return nil, noKeylessReason
	}
	b, err := load()
	if err != nil {
		return nil, err.Error()
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, "the bundle holds no DSSE envelope"
	}
	if env.GetPayloadType() != statement.PayloadType {
		return nil, fmt.Sprintf("DSSE payload type %q is not in-toto", env.GetPayloadType())
	}
	// sigstore-go would hold about four copies of the payload (up to an
	// attestation's size) to check the envelope: keyless.VerifyDSSE checks
	// it in place, and the rest with sigstore-go.
	if n := len(env.GetSignatures()); n != 1 {
		return nil, fmt.Sprintf("the envelope has %d signatures: a certificate signature needs exactly one", n)
	}
	dsse := keyless.DSSE{PayloadType: env.GetPayloadType(), Payload: env.GetPayload(), Signature: env.GetSignatures()[0].GetSig()}
	kr, err := v.verifyCertificateDSSE(b, dsse, ann, ts)
	if err != nil {
		return nil, err.Error()
	}
	c := checkStatement(env.GetPayload(), img, want, claimed)
	if c.otherType {
		return nil, errOtherType
	}
	if c.reason != "" {
		return nil, c.reason
	}
	return &VerifiedAttestation{Statement: env.GetPayload(), Identity: &SignerIdentity{Subject: kr.Subject, Issuer: kr.Issuer}, SignedAt: kr.SignedAt}, ""
}
