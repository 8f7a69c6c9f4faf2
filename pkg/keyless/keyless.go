// Package keyless verifies certificate-based ("keyless") Sigstore signatures
// on top of sigstore-go: the certificate chain against the trusted root's
// certificate authorities at the VERIFIED signing time, the embedded SCTs
// against its CT logs, the Fulcio issuer extensions, and the identity the
// certificate binds. Signing time comes only from verified evidence: a
// Rekor v1 entry's integrated time (SET or inclusion proof) or an RFC 3161
// timestamp from a trusted TSA over the signature; at least one is required.
//
// Identity regular expressions match the WHOLE value: they are anchored
// here, because sigstore-go (like cosign) matches them anywhere in the value.
package keyless

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"

	ctx509util "github.com/google/certificate-transparency-go/x509util"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// MaxBundleBytes bounds a bundle read from an untrusted source.
const MaxBundleBytes = 32 << 20

// ErrNotVerified is wrapped by every verification failure (as opposed to a
// malformed request, such as an identity without an issuer).
var ErrNotVerified = errors.New("certificate signature not verified")

// ErrInvalidBundle is wrapped when a bundle cannot be read at all.
var ErrInvalidBundle = errors.New("invalid bundle")

// Identity is who must have signed: the certificate's subject alternative
// name and OIDC issuer (each exact or an anchored regular expression) and,
// optionally, Fulcio extension values that must be equal.
type Identity struct {
	Subject, SubjectRegexp string
	Issuer, IssuerRegexp   string
	// GitHub Actions workflow values (cosign's
	// --certificate-github-workflow-* flags), compared exactly.
	GithubWorkflowTrigger, GithubWorkflowSHA, GithubWorkflowName, GithubWorkflowRepository, GithubWorkflowRef string
	// SourceRepositoryURI and SourceRepositoryRef, when set, must equal
	// the certificate's (Fulcio OIDs 1.3.6.1.4.1.57264.1.12 and .14).
	SourceRepositoryURI, SourceRepositoryRef string
	// NotBefore and NotAfter, when set, bound the VERIFIED signing time:
	// every verified time of the signature must lie within them (a
	// retired or compromised identity stops counting from a date on).
	NotBefore, NotAfter time.Time
}

// window reports why the verified times fall outside id's window, or "".
func (id Identity) window(times []time.Time) string {
	for _, t := range times {
		if !id.NotBefore.IsZero() && t.Before(id.NotBefore) {
			return fmt.Sprintf("signed at %s, before this identity's notBefore %s", t.UTC().Format(time.RFC3339), id.NotBefore.UTC().Format(time.RFC3339))
		}
		if !id.NotAfter.IsZero() && t.After(id.NotAfter) {
			return fmt.Sprintf("signed at %s, after this identity's notAfter %s", t.UTC().Format(time.RFC3339), id.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

// hasWindow reports whether any of ids has a validity window.
func hasWindow(ids []Identity) bool {
	for _, id := range ids {
		if !id.NotBefore.IsZero() || !id.NotAfter.IsZero() {
			return true
		}
	}
	return false
}

// anchor makes a regular expression match the whole value.
func anchor(re string) string {
	if re == "" {
		return ""
	}
	return `^(?:` + re + `)$`
}

// Validate reports a request that can never be satisfied: a missing
// subject or issuer, or a regular expression that does not compile.
func (id Identity) Validate() error {
	if id.Subject == "" && id.SubjectRegexp == "" {
		return errors.New("a certificate identity needs a subject (--certificate-identity or --certificate-identity-regexp)")
	}
	if id.Issuer == "" && id.IssuerRegexp == "" {
		return errors.New("a certificate identity needs an OIDC issuer (--certificate-oidc-issuer or --certificate-oidc-issuer-regexp)")
	}
	for _, re := range []string{id.SubjectRegexp, id.IssuerRegexp} {
		if re == "" {
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("identity regular expression %q: %w", re, err)
		}
	}
	return nil
}

// matcher is id as a sigstore-go identity; anchored or as written.
func (id Identity) matcher(anchored bool) (sgverify.CertificateIdentity, error) {
	sre, ire := id.SubjectRegexp, id.IssuerRegexp
	if anchored {
		sre, ire = anchor(sre), anchor(ire)
	}
	san, err := sgverify.NewSANMatcher(id.Subject, sre)
	if err != nil {
		return sgverify.CertificateIdentity{}, err
	}
	iss, err := sgverify.NewIssuerMatcher(id.Issuer, ire)
	if err != nil {
		return sgverify.CertificateIdentity{}, err
	}
	return sgverify.NewCertificateIdentity(san, iss, certificate.Extensions{
		GithubWorkflowTrigger:    id.GithubWorkflowTrigger,
		GithubWorkflowSHA:        id.GithubWorkflowSHA,
		GithubWorkflowName:       id.GithubWorkflowName,
		GithubWorkflowRepository: id.GithubWorkflowRepository,
		GithubWorkflowRef:        id.GithubWorkflowRef,
		SourceRepositoryURI:      id.SourceRepositoryURI,
		SourceRepositoryRef:      id.SourceRepositoryRef,
	})
}

// Matches reports whether a certificate summary satisfies id (anchored).
func (id Identity) Matches(s certificate.Summary) error {
	m, err := id.matcher(true)
	if err != nil {
		return err
	}
	return m.Verify(s)
}

// String describes id in plain words.
func (id Identity) String() string {
	subj := fmt.Sprintf("subject %q", id.Subject)
	if id.Subject == "" {
		subj = fmt.Sprintf("a subject matching %q as a whole", id.SubjectRegexp)
	}
	iss := fmt.Sprintf("issuer %q", id.Issuer)
	if id.Issuer == "" {
		iss = fmt.Sprintf("an issuer matching %q as a whole", id.IssuerRegexp)
	}
	return subj + " from " + iss
}

// Options are the trust and the requirements of one verification.
type Options struct {
	// Trusted is the trusted root (CAs, CT logs, Rekor logs, TSAs).
	Trusted root.TrustedMaterial
	// Identities: the certificate must match at least one. Required.
	Identities []Identity
	// IgnoreSCT skips the embedded SCT check (cosign's
	// --insecure-ignore-sct), for a private CA without a CT log.
	IgnoreSCT bool
	// IgnoreTlog does not require a transparency-log entry (cosign's
	// --insecure-ignore-tlog); a verified RFC 3161 timestamp is then
	// the only signing time.
	IgnoreTlog bool
	// Certificate, when set, must be the signing certificate (cosign's
	// --certificate).
	Certificate *x509.Certificate
	// NoChainCache verifies the chains of the trusted root's TSAs and
	// certificate authorities in full for each signature, as if the
	// process had never seen them (see tsachain.go and fulciochain.go):
	// for measurement; the verdicts are the same.
	NoChainCache bool
	// Intermediates are CA certificates that came with the signature
	// (cosign's dev.sigstore.cosign/chain annotation, its root dropped).
	// They are never trusted: they only help build a path from the
	// signing certificate to a CA root of Trusted, which must be reached.
	Intermediates []*x509.Certificate
}

// withIntermediates is trusted material whose certificate authorities also
// accept a signature's own intermediates on the way to their roots.
type withIntermediates struct {
	root.TrustedMaterial
	inter []*x509.Certificate
}

func (w withIntermediates) FulcioCertificateAuthorities() []root.CertificateAuthority {
	cas := w.TrustedMaterial.FulcioCertificateAuthorities()
	out := make([]root.CertificateAuthority, 0, len(cas))
	for _, ca := range cas {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok {
			c := *f
			c.Intermediates = append(append([]*x509.Certificate(nil), f.Intermediates...), w.inter...)
			ca = &c
		}
		out = append(out, ca)
	}
	return out
}

// Result is what a verified signature proves.
type Result struct {
	// Subject and Issuer are the signer's identity from the certificate.
	Subject, Issuer string
	// Extensions are the certificate's Fulcio extensions.
	Extensions certificate.Extensions
	// SignedAt are the verified signing times (log integrated times and
	// RFC 3161 timestamps), at least one.
	SignedAt []time.Time
	// Certificate is the verified signing certificate.
	Certificate *x509.Certificate
}

// Signer names the signer the way a policy threshold counts them: the
// identity and issuer pair.
func (r *Result) Signer() string { return r.Subject + " (" + r.Issuer + ")" }

// ParseBundle reads a Sigstore bundle (v0.1, v0.2 or v0.3 in either
// media-type spelling); an unknown version is refused.
func ParseBundle(data []byte) (*sgbundle.Bundle, error) {
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrInvalidBundle, len(data), MaxBundleBytes)
	}
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(data, &pb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	// Roots come only from the trusted root: a chain that brings its own
	// (a self-signed certificate) is refused, not silently trimmed.
	for i, raw := range pb.GetVerificationMaterial().GetX509CertificateChain().GetCertificates() {
		c, err := x509.ParseCertificate(raw.GetRawBytes())
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d of the chain: %v", ErrInvalidBundle, i, err)
		}
		if i > 0 && bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			return nil, fmt.Errorf("%w: the certificate chain contains a root certificate (%s); roots come only from the trusted root", ErrInvalidBundle, c.Subject)
		}
	}
	b, err := sgbundle.NewBundle(&pb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	return b, nil
}

// HasCertificate reports whether the entity is signed with a certificate
// (rather than a key). For a bundle, its verification material says so
// (the certificate is parsed when it is verified).
func HasCertificate(e sgverify.SignedEntity) bool {
	if b, ok := e.(*sgbundle.Bundle); ok {
		vm := b.GetVerificationMaterial()
		return len(vm.GetCertificate().GetRawBytes()) > 0 || len(vm.GetX509CertificateChain().GetCertificates()) > 0
	}
	vc, err := e.VerificationContent()
	return err == nil && vc.Certificate() != nil
}

// Artifact is what a signature must cover: a digest ("sha256", "sha384"
// or "sha512") of the signed bytes, or, for a DSSE envelope, of one of its
// statement's subjects. The zero Artifact checks only the signature over
// the envelope: the caller then checks the statement's subject itself.
type Artifact struct {
	Algorithm string
	Digest    []byte
}

// Verify checks a certificate-signed entity over artifact. The signature
// is checked first, so a bad signature is reported as such and not as the
// log entry that does not record it.
func Verify(e sgverify.SignedEntity, artifact Artifact, o Options) (*Result, error) {
	if err := o.prepare(); err != nil {
		return nil, err
	}
	e = parseOnce(e)
	if env, ok := dsseOverHashedRekordV1(e); ok {
		o.Intermediates = nil // prepared: they are in o.Trusted
		return verifyDSSEArtifact(e, env, artifact, o)
	}
	c, err := precheck(e, o)
	if err != nil {
		return nil, err
	}
	vc, cert, ids, trusted := c.vc, c.cert, c.ids, c.trusted
	sc, err := e.SignatureContent()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	policy := sgverify.WithoutArtifactUnsafe()
	if artifact.Digest != nil {
		policy = sgverify.WithArtifactDigest(artifact.Algorithm, artifact.Digest)
	}
	// signatureErr is why the signature itself does not verify, asked only
	// after a failure: sigstore-go checks the log entry first, and a bad
	// signature must be reported as such, not as an entry that does not
	// record it.
	signatureErr := func() error {
		if artifact.Digest != nil {
			return sgverify.VerifySignatureWithArtifactDigests(sc, vc, trusted, []sgverify.ArtifactDigest{{Algorithm: artifact.Algorithm, Digest: artifact.Digest}})
		}
		return sgverify.VerifySignature(sc, vc, trusted)
	}
	// The statement is the caller's to read; its predicate is not built.
	vopts := []sgverify.VerifierOption{sgverify.WithObserverTimestamps(1), sgverify.WithoutStatementPredicate()}
	if !o.IgnoreTlog {
		vopts = append(vopts, sgverify.WithTransparencyLog(1))
	}
	if !o.IgnoreSCT {
		vopts = append(vopts, sgverify.WithSignedCertificateTimestamps(1))
	}
	v, err := sgverify.NewVerifier(trusted, vopts...)
	if err != nil {
		return nil, err
	}
	popts := make([]sgverify.PolicyOption, 0, len(ids))
	for _, m := range ids {
		popts = append(popts, sgverify.WithCertificateIdentity(m))
	}
	res, err := v.Verify(e, sgverify.NewPolicy(policy, popts...))
	if err != nil {
		if serr := signatureErr(); serr != nil {
			return nil, fmt.Errorf("%w: the signature does not verify with the certificate's key over this artifact: %v", ErrNotVerified, serr)
		}
		return nil, fmt.Errorf("%w: %v%s%s%s%s", ErrNotVerified, err, logHint(e, o.Trusted), timeHint(e, err), sctHint(cert, err), unanchoredHint(cert, o.Identities))
	}
	chainTrust := trusted
	if inter := vc.Intermediates(); len(inter) > 0 {
		chainTrust = withIntermediates{trusted, inter}
	}
	tokens, _ := e.Timestamps()
	if err := everyTimestamp(tokens, res.VerifiedTimestamps, sc.Signature(), cert, trusted, chainTrust); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	out := &Result{Certificate: cert}
	if s := res.Signature.Certificate; s != nil {
		out.Subject, out.Issuer, out.Extensions = s.SubjectAlternativeName, s.Issuer, s.Extensions
	}
	for _, t := range res.VerifiedTimestamps {
		out.SignedAt = append(out.SignedAt, t.Timestamp)
	}
	if len(out.SignedAt) == 0 { // sigstore-go requires one; never trust none
		return nil, fmt.Errorf("%w: no verified signing time", ErrNotVerified)
	}
	return inWindow(out, o.Identities, ids)
}

// prechecked is what Verify and VerifyDSSE establish before any
// signature is checked.
type prechecked struct {
	vc      sgverify.VerificationContent
	cert    *x509.Certificate // the signing certificate
	ids     sgverify.CertificateIdentities
	trusted root.TrustedMaterial // o.Trusted with the chain caches
}

// prepare validates o and adds its intermediates to its trusted material.
func (o *Options) prepare() error {
	if o.Trusted == nil {
		return errors.New("no trusted root")
	}
	if len(o.Intermediates) > 0 {
		o.Trusted = withIntermediates{o.Trusted, o.Intermediates}
	}
	if len(o.Identities) == 0 {
		return errors.New("a certificate signature needs an identity to match (--certificate-identity or --certificate-identity-regexp, with --certificate-oidc-issuer or --certificate-oidc-issuer-regexp)")
	}
	return nil
}

// precheck reads e's signing certificate (it must be one, and the one o
// names if any) and o's identity matchers; o is prepared.
func precheck(e sgverify.SignedEntity, o Options) (*prechecked, error) {
	vc, err := e.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	c := &prechecked{vc: vc, cert: vc.Certificate(), trusted: o.Trusted}
	if !o.NoChainCache {
		c.trusted = withChainCache(o.Trusted, len(vc.Intermediates()) == 0)
	}
	if c.cert == nil {
		return nil, fmt.Errorf("%w: signed with a key, not a certificate", ErrNotVerified)
	}
	if o.Certificate != nil && !o.Certificate.Equal(c.cert) {
		return nil, fmt.Errorf("%w: the signing certificate is not the one given with --certificate", ErrNotVerified)
	}
	if c.ids, err = matchers(o.Identities); err != nil {
		return nil, err
	}
	return c, nil
}

// matchers validates identities and returns them as sigstore-go
// identities, anchored.
func matchers(identities []Identity) (sgverify.CertificateIdentities, error) {
	var ids sgverify.CertificateIdentities
	for _, id := range identities {
		if err := id.Validate(); err != nil {
			return nil, err
		}
		m, err := id.matcher(true)
		if err != nil {
			return nil, err
		}
		ids = append(ids, m)
	}
	return ids, nil
}

// inWindow returns out when one of the identities it matches (ids, their
// matchers) has its verified times within its validity window.
func inWindow(out *Result, identities []Identity, ids sgverify.CertificateIdentities) (*Result, error) {
	// The identity must match with its validity window: any one listed.
	// sigstore-go has checked that one matches: without windows, that is
	// all.
	if !hasWindow(identities) {
		return out, nil
	}
	summary := certificate.Summary{SubjectAlternativeName: out.Subject, Extensions: out.Extensions}
	var outside []string
	for i, id := range identities {
		if ids[i].Verify(summary) != nil { // id.Matches, already built
			continue
		}
		why := id.window(out.SignedAt)
		if why == "" {
			return out, nil
		}
		outside = append(outside, why)
	}
	if len(outside) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotVerified, strings.Join(outside, "; "))
	}
	return out, nil
}

// logHint explains a log entry sigstore-go skipped without saying why: a
// signed entry timestamp that does not verify under the trusted logs.
func logHint(e sgverify.SignedEntity, tr root.TrustedMaterial) string {
	entries, err := e.TlogEntries()
	if err != nil {
		return ""
	}
	var why []string
	for _, entry := range entries {
		if !entry.HasInclusionPromise() {
			continue
		}
		if err := sgtlog.VerifySET(entry, tr.RekorLogs()); err != nil {
			why = append(why, fmt.Sprintf("log entry %d: its signed entry timestamp (SET) does not verify: %v", entry.LogIndex(), err))
		}
	}
	if len(why) == 0 {
		return ""
	}
	return " (" + strings.Join(why, "; ") + ")"
}

// timeHint explains a missing signing time.
func timeHint(e sgverify.SignedEntity, err error) string {
	if !strings.Contains(err.Error(), "threshold not met for verified signed & log entry integrated timestamps") {
		return ""
	}
	ts, _ := e.Timestamps()
	entries, _ := e.TlogEntries()
	timed := 0
	for _, en := range entries {
		if en.IntegratedTime().Unix() > 0 {
			timed++
		}
	}
	return fmt.Sprintf(" (no verified signing time: a certificate signature needs a verified RFC 3161 timestamp or a Rekor v1 entry's integrated time; the bundle has %d timestamp(s) and %d log entr(ies) with an integrated time, a Rekor v2 entry has none)", len(ts), timed)
}

// sctHint says whether a certificate whose SCTs did not verify has any.
func sctHint(cert *x509.Certificate, err error) string {
	if !strings.Contains(err.Error(), "signed certificate timestamp") {
		return ""
	}
	scts, perr := ctx509util.ParseSCTsFromCertificate(cert.Raw)
	if perr != nil || len(scts) == 0 {
		return " (the certificate embeds no SCT: a certificate from a CA without a CT log needs --insecure-ignore-sct)"
	}
	return fmt.Sprintf(" (the certificate embeds %d SCT(s), none signed over this certificate by a CT log of the trusted root)", len(scts))
}

// unanchoredHint says when an identity failed only because its regular
// expression must match the whole value.
func unanchoredHint(cert *x509.Certificate, ids []Identity) string {
	s, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return ""
	}
	for _, id := range ids {
		if id.SubjectRegexp == "" && id.IssuerRegexp == "" {
			continue
		}
		if id.Matches(s) == nil {
			continue // it matched: the failure was elsewhere
		}
		m, err := id.matcher(false)
		if err == nil && m.Verify(s) == nil {
			return fmt.Sprintf(" (the certificate's subject %q from issuer %q contains a match of the regular expression, but imgsign matches the WHOLE value: add what precedes and follows, e.g. '.*' explicitly, if that is really meant)", s.SubjectAlternativeName, s.Issuer)
		}
	}
	return ""
}

// dsseOverHashedRekordV1 returns e's DSSE envelope when one of its Rekor v1
// entries is a hashedrekord (over the envelope's PAE, as the client spec
// allows): sigstore-go v1.3.0 binds a v1 entry to an envelope only as a
// dsse or intoto entry, VerifyDSSE binds this one too.
func dsseOverHashedRekordV1(e sgverify.SignedEntity) (DSSE, bool) {
	sc, err := e.SignatureContent()
	if err != nil || sc.EnvelopeContent() == nil {
		return DSSE{}, false
	}
	entries, err := e.TlogEntries()
	if err != nil {
		return DSSE{}, false
	}
	hashed := false
	for _, entry := range entries {
		if _, _, ok := entry.GetHashedRekordDigest(); ok && !entry.IsRekorV2() {
			hashed = true
		}
	}
	if !hashed {
		return DSSE{}, false
	}
	env := sc.EnvelopeContent().RawEnvelope()
	if env == nil || len(env.Signatures) != 1 {
		return DSSE{}, false
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return DSSE{}, false
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		return DSSE{}, false
	}
	return DSSE{PayloadType: env.PayloadType, Payload: payload, Signature: sig}, true
}

// verifyDSSEArtifact is Verify of a DSSE envelope through VerifyDSSE, then
// (with an artifact) the check sigstore-go makes of it: the envelope's
// in-toto statement names the artifact's digest among its subjects.
func verifyDSSEArtifact(e sgverify.SignedEntity, env DSSE, artifact Artifact, o Options) (*Result, error) {
	res, err := VerifyDSSE(e, env, o)
	if err != nil || artifact.Digest == nil {
		return res, err
	}
	sc, err := e.SignatureContent()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	vc, err := e.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	if err := sgverify.VerifySignatureWithArtifactDigests(sc, vc, o.Trusted, []sgverify.ArtifactDigest{{Algorithm: artifact.Algorithm, Digest: artifact.Digest}}); err != nil {
		return nil, fmt.Errorf("%w: the signature does not verify with the certificate's key over this artifact: %v", ErrNotVerified, err)
	}
	return res, nil
}
