package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
)

// signedBy returns the first trusted key under which sig is a valid
// signature of msg, or nil.
func (v *Verifier) signedBy(sig, msg []byte) *trustedKey {
	return v.signedByParts(sig, msg)
}

// signedByParts is signedBy for a message given in parts (a DSSE PAE
// header and its payload), never joined in memory.
func (v *Verifier) signedByParts(sig []byte, parts ...[]byte) *trustedKey {
	for i, k := range v.keys {
		for _, kv := range k.verifiers {
			readers := make([]io.Reader, len(parts))
			for j, p := range parts {
				readers[j] = bytes.NewReader(p)
			}
			if kv.VerifySignature(bytes.NewReader(sig), io.MultiReader(readers...)) == nil {
				return &v.keys[i]
			}
		}
	}
	return nil
}

// dsseCheck is the outcome of checkDSSE.
type dsseCheck struct {
	key *trustedKey
	// sig is the envelope signature that verified, over the PAE whose
	// SHA-256 is paeDigest.
	sig, paeDigest []byte
	stmt           *statement.Statement
	sub            *statement.Subject
	// reason says why the envelope was rejected; empty when it verified.
	reason string
	// otherType is set when the envelope verified but is a statement of
	// another predicate type that nothing had claimed it to be: not a
	// rejection, just not what was looked for.
	otherType bool
}

// checkDSSE verifies a DSSE envelope (from a bundle or a legacy attestation
// layer) about img: a signature by a trusted key over the PAE of the exact
// payload, an in-toto payload type, a strictly parsed statement of the
// wanted predicate type (and of the type the registry-side annotation
// claimed, when it claimed one), whose subject is img's digest.
func (v *Verifier) checkDSSE(payloadType string, payload []byte, sigs [][]byte, img name.Digest, want, claimed string) dsseCheck {
	if payloadType != statement.PayloadType {
		return dsseCheck{reason: fmt.Sprintf("DSSE payload type %q is not in-toto", payloadType)}
	}
	// The PAE is the header then the payload; the payload (up to an
	// attestation's size) is not copied to build it.
	header := paeHeader(payloadType, payload)
	var key *trustedKey
	var signature []byte
	for _, sig := range sigs {
		if key = v.signedByParts(sig, header, payload); key != nil {
			signature = sig
			break
		}
	}
	if key == nil {
		return dsseCheck{reason: "signature does not verify with any trusted key"}
	}
	c := checkStatement(payload, img, want, claimed)
	ph := sha256.New()
	ph.Write(header)
	ph.Write(payload)
	c.key, c.sig, c.paeDigest = key, signature, ph.Sum(nil)
	return c
}

// checkStatement checks an authenticated in-toto statement about img: a
// strictly parsed statement of the wanted predicate type (and of the type
// the registry-side annotation claimed, when it claimed one), whose
// subject is img's digest.
func checkStatement(payload []byte, img name.Digest, want, claimed string) dsseCheck {
	s, err := statement.Parse(payload)
	if err != nil {
		return dsseCheck{reason: err.Error()}
	}
	if claimed != "" && claimed != s.PredicateType {
		return dsseCheck{reason: fmt.Sprintf("the registry claims predicate type %q, the signed statement says %q", claimed, s.PredicateType)}
	}
	if s.PredicateType != want {
		if claimed == "" {
			return dsseCheck{otherType: true}
		}
		return dsseCheck{reason: fmt.Sprintf("predicate type %q is not %q", s.PredicateType, want)}
	}
	h, _ := v1.NewHash(img.DigestStr())
	sub, ok := s.SubjectFor(h)
	if !ok {
		return dsseCheck{reason: "the signed statement is about another image, not " + img.DigestStr()}
	}
	return dsseCheck{stmt: s, sub: sub}
}

// errOtherType is checkBundle's reason for an unannotated bundle that turned
// out to be an attestation: not a signature, and not a rejected one either.
const errOtherType = "\x00other predicate type"

// isSignatureBundle reports, from the referrers entry alone (before
// anything is downloaded), whether a referrer is a cosign signature bundle.
// Registries differ in the artifactType they report (some report the config
// media type), so the bundle annotations count too.
func isSignatureBundle(d v1.Descriptor) bool {
	isBundle := d.ArtifactType == bundle.MediaTypeV03 || d.Annotations[oci.BundleContentAnnotation] == "dsse-envelope" || untypedReferrer(d)
	pt, ok := d.Annotations[oci.BundlePredicateTypeAnnotation]
	return isBundle && (!ok || pt == statement.CosignSign)
}

// untypedReferrer reports whether a referrers entry says nothing of what
// it is: go-containerregistry's fallback index (as cosign v2 writes it)
// records the config's media type, the empty one, and no annotations.
// Only the manifest tells (isBundleReferrer).
func untypedReferrer(d v1.Descriptor) bool {
	return (d.ArtifactType == "" || d.ArtifactType == string(oci.EmptyMediaType)) && len(d.Annotations) == 0
}

// isBundleReferrer reads the manifest of an untyped referrer: a Sigstore
// bundle is an artifact of that type with one bundle layer.
func (v *Verifier) isBundleReferrer(ctx context.Context, repo name.Repository, d v1.Descriptor) bool {
	m, _, err := v.client.ReadManifest(ctx, repo.Digest(d.Digest.String()))
	return err == nil && len(m.Layers) == 1 && m.Layers[0].MediaType == bundle.MediaTypeV03
}

// verifyBundles checks the Sigstore bundle referrers of d.
func (v *Verifier) verifyBundles(ctx context.Context, d name.Digest, o Options, res *Result, st *state) error {
	subject := d
	if o.SignatureRepo != nil {
		subject = o.SignatureRepo.Digest(d.DigestStr())
	}
	st.looked = append(st.looked, "the referrers of "+subject.String())
	refs, err := v.client.ListReferrers(ctx, subject)
	if err != nil {
		return err
	}
	res.Warnings = append(res.Warnings, refs.Warnings...)
	considered := 0
	for _, r := range refs.Descriptors {
		if !isSignatureBundle(r) {
			continue
		}
		st.found++
		if considered == v.client.Limits().MaxSignatures {
			res.Warnings = append(res.Warnings, fmt.Sprintf("only the first %d signature bundles were considered", considered))
			break
		}
		considered++
		ver, reason := v.checkBundle(ctx, subject.Context(), d, r, o)
		if reason == errOtherType {
			st.found-- // an attestation, not a signature
			continue
		}
		if reason != "" {
			res.Rejected = append(res.Rejected, Rejected{Source: SourceBundle, Referrer: r.Digest.String(), Reason: reason})
			continue
		}
		res.Signatures = append(res.Signatures, *ver)
		st.signers[signerOf(*ver)] = true
		if len(st.signers) >= threshold(o) {
			break // enough: the rest need not be downloaded
		}
	}
	return nil
}

// checkBundle verifies one bundle referrer, returning the verified
// signature or the reason it was rejected.
func (v *Verifier) checkBundle(ctx context.Context, repo name.Repository, img name.Digest, r v1.Descriptor, o Options) (*Verified, string) {
	if untypedReferrer(r) && !v.isBundleReferrer(ctx, repo, r) {
		return nil, errOtherType // some other artifact
	}
	m, blob, err := v.client.FetchReferrer(ctx, repo, r, bundle.MediaTypeV03, v.client.Limits().MaxPayloadBytes)
	if err != nil {
		return nil, err.Error()
	}
	if _, annotated := r.Annotations[oci.BundlePredicateTypeAnnotation]; !annotated {
		if mc := m.Annotations[oci.BundlePredicateTypeAnnotation]; mc != "" && mc != statement.CosignSign {
			return nil, errOtherType // its manifest says it is an attestation
		}
	}
	if m.Subject == nil || m.Subject.Digest.String() != img.DigestStr() {
		return nil, "the referrer's subject is not this image"
	}
	// The payload is taken out once, in place (blob is consumed): each
	// parser reads the small rest.
	rest, payload, err := bundle.SplitDSSE(blob)
	if err != nil {
		return nil, err.Error()
	}
	var kerr error
	if v.keyless != nil || len(v.keys) == 0 {
		kb, err := keylessSplit(rest, payload)
		if err == nil && keyless.HasCertificate(kb) {
			return v.checkKeylessBundle(kb, img, r, m.Annotations[oci.BundlePredicateTypeAnnotation], o)
		}
		kerr = err
	}
	b, err := bundle.ParseSplitDSSE(rest, payload)
	if err != nil {
		if kerr != nil && v.keyless != nil {
			return nil, kerr.Error() // sigstore-go's reason, for a certificate bundle
		}
		return nil, err.Error()
	}
	c := v.checkDSSE(b.PayloadType, b.Payload, b.Signatures, img, statement.CosignSign, m.Annotations[oci.BundlePredicateTypeAnnotation])
	if c.otherType {
		return nil, errOtherType
	}
	if c.reason != "" {
		return nil, c.reason
	}
	sub := c.sub
	if missing := sub.MissingAnnotations(o.Annotations); len(missing) > 0 {
		return nil, "missing or different annotation(s): " + joinSorted(missing)
	}
	if o.CheckIdentity {
		if sub.Name == "" {
			return nil, "the bundle names no repository, so --check-identity cannot be satisfied by it"
		}
		claimed, err := name.ParseReference(sub.Name)
		if want := o.identity(img); err != nil || claimed.Context().Name() != want {
			return nil, fmt.Sprintf("signed identity %q is not repository %s", sub.Name, want)
		}
	}
	stamped, tsUnchecked, err := v.keyTimestamps(b.Timestamps, c.sig, "the envelope's signature")
	if err != nil {
		return nil, err.Error()
	}
	if reason := requireStamp(o.RequireTimestamp, stamped); reason != "" {
		return nil, reason
	}
	lc := v.checkLog(ctx, c.want(b.PayloadType, b.Payload), b.TlogEntries, nil, o.RequireTlog)
	if lc.reason == "" {
		lc.reason = o.checkTimes(c.key.id, verifiedTimes(lc.facts, stamped))
	}
	if lc.reason != "" {
		return nil, lc.reason
	}
	return &Verified{Source: SourceBundle, KeyID: c.key.id, Referrer: r.Digest.String(), Statement: b.Payload, Tlog: lc.facts, TlogUnchecked: lc.unchecked, SignedAt: stamped, TimestampsUnchecked: tsUnchecked}, ""
}

// checkKeylessBundle verifies a signature bundle made with a certificate:
// sigstore-go checks the envelope signature, certificate, SCTs, log
// entries, timestamps and identity; then the statement must be a cosign
// signature of img, with the annotations and identity asked for.
func (v *Verifier) checkKeylessBundle(b *sgbundle.Bundle, img name.Digest, r v1.Descriptor, claimed string, o Options) (*Verified, string) {
	if v.keyless == nil {
		return nil, noKeylessReason
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, "the bundle holds no DSSE envelope"
	}
	if env.GetPayloadType() != statement.PayloadType {
		return nil, fmt.Sprintf("DSSE payload type %q is not in-toto", env.GetPayloadType())
	}
	kr, err := keyless.Verify(b, keyless.Artifact{}, *v.keyless)
	if err != nil {
		return nil, err.Error()
	}
	c := checkStatement(env.GetPayload(), img, statement.CosignSign, claimed)
	if c.otherType {
		return nil, errOtherType
	}
	if c.reason != "" {
		return nil, c.reason
	}
	if missing := c.sub.MissingAnnotations(o.Annotations); len(missing) > 0 {
		return nil, "missing or different annotation(s): " + joinSorted(missing)
	}
	if o.CheckIdentity {
		claimedRef, err := name.ParseReference(c.sub.Name)
		if want := o.identity(img); c.sub.Name == "" || err != nil || claimedRef.Context().Name() != want {
			return nil, fmt.Sprintf("signed identity %q is not repository %s", c.sub.Name, want)
		}
	}
	if reason := o.checkAge(kr.SignedAt); reason != "" {
		return nil, reason
	}
	ver := &Verified{Source: SourceBundle, Referrer: r.Digest.String(), Statement: env.GetPayload()}
	keylessVerified(ver, kr)
	return ver, ""
}

// keylessSplit parses with sigstore-go what bundle.SplitDSSE left of a
// bundle, and puts its DSSE payload back.
func keylessSplit(rest, payload []byte) (*sgbundle.Bundle, error) {
	kb, err := keyless.ParseBundle(rest)
	if err != nil {
		return nil, err
	}
	if env := kb.GetDsseEnvelope(); env != nil {
		env.Payload = payload
	}
	return kb, nil
}

// paeHeader is the DSSE pre-authentication encoding of payloadType and
// payload without the payload itself, which follows it.
func paeHeader(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d ", len(payloadType), payloadType, len(payload)))
}
