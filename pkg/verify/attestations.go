package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
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
	// Tlog are the verified transparency-log entries of the attestation.
	Tlog []tlog.Facts `json:"tlog,omitempty"`
	// TlogUnchecked counts log entries not checked: no log is trusted.
	TlogUnchecked int `json:"tlogUnchecked,omitempty"`
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
	if o.Format != FormatBundle {
		n, err := v.legacyAttestations(ctx, d, o, res)
		found += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if o.Format != FormatLegacy {
		n, err := v.bundleAttestations(ctx, d, o, res)
		found += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch {
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

// accept applies the policy to a verified statement and records it.
func accept(res *AttestationResult, o AttestationOptions, va VerifiedAttestation, rej Rejected) {
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
func (v *Verifier) legacyAttestations(ctx context.Context, d name.Digest, o AttestationOptions, res *AttestationResult) (int, error) {
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
		blob, err := v.client.FetchBlob(ctx, tag.Context(), layer, v.client.Limits().MaxAttestationBytes)
		if err != nil {
			rej.Reason = "envelope: " + err.Error()
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		env, err := envelope.Parse(blob)
		if err != nil {
			rej.Reason = err.Error()
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		c := v.checkDSSE(env.PayloadType, env.Payload, env.Signatures, d, o.PredicateType, layer.Annotations[legacyPredicateAnnotation])
		if c.reason != "" {
			rej.Reason = c.reason
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
		accept(res, o, VerifiedAttestation{Source: SourceLegacy, KeyID: c.key.id, PayloadDigest: layer.Digest.String(), Statement: env.Payload, Tlog: lc.facts, TlogUnchecked: lc.unchecked}, rej)
	}
	return n, nil
}

// bundleAttestations checks the bundle referrers that claim the wanted
// predicate type. It returns how many it considered.
func (v *Verifier) bundleAttestations(ctx context.Context, d name.Digest, o AttestationOptions, res *AttestationResult) (int, error) {
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
		m, blob, err := v.client.FetchReferrer(ctx, d.Context(), r, bundle.MediaTypeV03, v.client.Limits().MaxAttestationBytes)
		if err != nil {
			rej.Reason = err.Error()
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
		b, err := bundle.ParseDSSE(blob)
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
		lc := v.checkLog(ctx, c.want(b.PayloadType, b.Payload), b.TlogEntries, nil, o.RequireTlog)
		if lc.reason != "" {
			rej.Reason = lc.reason
			res.Rejected = append(res.Rejected, rej)
			continue
		}
		accept(res, o, VerifiedAttestation{Source: SourceBundle, KeyID: c.key.id, Referrer: r.Digest.String(), Statement: b.Payload, Tlog: lc.facts, TlogUnchecked: lc.unchecked}, rej)
	}
	return n, nil
}
