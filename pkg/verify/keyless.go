package verify

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/tlog"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// WithKeyless makes the Verifier accept signatures made with a certificate
// (keyless), verified by pkg/keyless with these options: trusted root,
// identities, SCT and log requirements.
func WithKeyless(o keyless.Options) Option {
	return func(v *Verifier) { v.keyless = &o }
}

// SignerIdentity is the identity a verified certificate binds.
type SignerIdentity struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
}

// keylessVerified fills the Verified fields of a certificate signature.
func keylessVerified(ver *Verified, r *keyless.Result) {
	ver.Identity = &SignerIdentity{Subject: r.Subject, Issuer: r.Issuer}
	ver.SignedAt = r.SignedAt
}

// signerOf is who a verified signature counts as for a threshold: its key
// ID or its identity and issuer.
func signerOf(ver Verified) string {
	if ver.Identity != nil {
		return "identity:" + ver.Identity.Subject + "\x00" + ver.Identity.Issuer
	}
	return ver.KeyID
}

// noKeylessReason is the rejection of a certificate signature when no
// identity was asked for.
const noKeylessReason = "signed with a certificate (keyless): give --certificate-identity (or -regexp) and --certificate-oidc-issuer (or -regexp) to verify it"

// maxLegacyAnnotation bounds each certificate, chain and timestamp
// annotation read.
const maxLegacyAnnotation = 256 << 10

// legacyBundle turns a legacy .sig layer signed with a certificate into the
// Sigstore bundle it amounts to, as cosign v3 does: the certificate, the
// Rekor entry of its dev.sigstore.cosign/bundle annotation (a SET, so a
// v0.1 bundle) and its RFC 3161 timestamp, around a message signature over
// the payload. Whether the log entry records this certificate and
// signature is then checked by sigstore-go. The chain annotation is read
// apart (legacyChain).
func legacyBundle(ann map[string]string, sig, payload []byte) (*sgbundle.Bundle, error) {
	d := sha256.Sum256(payload)
	return annotatedBundle(ann, &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: d[:]},
		Signature:     sig,
	}})
}

// legacyEnvelopeBundle is legacyBundle for a legacy attestation layer (a
// DSSE envelope).
func legacyEnvelopeBundle(ann map[string]string, env *envelope.Envelope) (*sgbundle.Bundle, error) {
	pe := &protodsse.Envelope{PayloadType: env.PayloadType, Payload: env.Payload}
	for _, s := range env.Signatures {
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: s})
	}
	return annotatedBundle(ann, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe})
}

// annotatedBundle builds the bundle of content from cosign's annotations.
func annotatedBundle(ann map[string]string, content any) (*sgbundle.Bundle, error) {
	certPEM := ann[oci.CertificateAnnotation]
	if len(certPEM) > maxLegacyAnnotation || len(ann[oci.TimestampAnnotation]) > maxLegacyAnnotation {
		return nil, errors.New("certificate or timestamp annotation too large")
	}
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("certificate annotation is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, fmt.Errorf("certificate annotation: %w", err)
	}
	vm := &protobundle.VerificationMaterial{}
	mediaType := "application/vnd.dev.sigstore.bundle.v0.3+json"
	if s, ok := ann[tlog.CosignBundleAnnotation]; ok {
		e, err := tlog.ParseCosignBundle([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", tlog.CosignBundleAnnotation, err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{e}
		mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1" // a SET, no inclusion proof
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{Certificates: []*protocommon.X509Certificate{{RawBytes: blk.Bytes}}}}
	} else {
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: blk.Bytes}}
	}
	if s, ok := ann[oci.TimestampAnnotation]; ok {
		token, err := timestampToken(s)
		if err != nil {
			return nil, err
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: token}}}
	}
	pb := &protobundle.Bundle{MediaType: mediaType, VerificationMaterial: vm}
	switch c := content.(type) {
	case *protobundle.Bundle_MessageSignature:
		pb.Content = c
	case *protobundle.Bundle_DsseEnvelope:
		pb.Content = c
	}
	return sgbundle.NewBundle(pb)
}

// timestampToken reads cosign's timestamp annotation: JSON holding the
// DER RFC 3161 response.
func timestampToken(s string) ([]byte, error) {
	var ts struct {
		SignedRFC3161Timestamp []byte
	}
	if err := json.Unmarshal([]byte(s), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
		return nil, fmt.Errorf("annotation %s is not a cosign RFC 3161 timestamp", oci.TimestampAnnotation)
	}
	return ts.SignedRFC3161Timestamp, nil
}

// attestationTimestamp is the RFC 3161 timestamp annotation of a legacy
// attestation layer, as cosign writes it there. cosign v2 timestamps the
// layer itself (the whole envelope JSON, as stored), and cosign v2 and v3
// verify it over those bytes; cosign v3 (3.1) timestamps the envelope's
// signature instead, as a Sigstore bundle does. Either binds the
// attestation to the time: the token's imprint decides which bytes it is
// verified over, and any other imprint is refused. Once verified, the time
// is the only one the token gives sigstore-go (verifiedTimestamp).
type attestationTimestamp struct {
	token   []byte
	hash    crypto.Hash // of the imprint, read unverified only to choose the bytes
	imprint []byte
	at      *root.Timestamp // the verified time
}

// newAttestationTimestamp reads the annotation of a legacy attestation
// layer; nil without one.
func newAttestationTimestamp(ann map[string]string) (*attestationTimestamp, error) {
	s, ok := ann[oci.TimestampAnnotation]
	if !ok {
		return nil, nil
	}
	if len(s) > maxLegacyAnnotation {
		return nil, fmt.Errorf("annotation %s too large", oci.TimestampAnnotation)
	}
	token, err := timestampToken(s)
	if err != nil {
		return nil, err
	}
	ts, err := timestamp.ParseResponse(token)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: not an RFC 3161 timestamp response: %v", oci.TimestampAnnotation, err)
	}
	if !ts.HashAlgorithm.Available() {
		return nil, fmt.Errorf("annotation %s: the timestamp's imprint uses an unsupported hash algorithm", oci.TimestampAnnotation)
	}
	return &attestationTimestamp{token: token, hash: ts.HashAlgorithm, imprint: ts.HashedMessage}, nil
}

// covers reports whether the token's imprint is the hash of b.
func (a *attestationTimestamp) covers(b []byte) bool {
	h := a.hash.New()
	h.Write(b)
	return bytes.Equal(h.Sum(nil), a.imprint)
}

// verifyOver verifies the token over b, what it covers (named what),
// against the trusted root's timestamp authorities.
func (a *attestationTimestamp) verifyOver(b []byte, what string, trusted root.TrustedMaterial) error {
	ts, err := keyless.VerifyTimestamp(a.token, b, trusted)
	if err != nil {
		return fmt.Errorf("the RFC 3161 timestamp (annotation %s) over %s does not verify: %w", oci.TimestampAnnotation, what, err)
	}
	a.at = ts
	return nil
}

// verifyLayer verifies the token over the attestation layer, when that is
// what it covers: before the layer is parsed in place.
func (a *attestationTimestamp) verifyLayer(layer []byte, trusted root.TrustedMaterial) error {
	if a == nil || !a.covers(layer) {
		return nil
	}
	return a.verifyOver(layer, "the attestation layer (the envelope as stored, as cosign v2 timestamps it)", trusted)
}

// verifySignature verifies the token over the envelope's signature, when
// it did not cover the layer; any other imprint is refused.
func (a *attestationTimestamp) verifySignature(env *envelope.Envelope, trusted root.TrustedMaterial) error {
	if a == nil || a.at != nil {
		return nil
	}
	if len(env.Signatures) > 0 && a.covers(env.Signatures[0]) {
		return a.verifyOver(env.Signatures[0], "the envelope's signature (as cosign v3 timestamps it)", trusted)
	}
	return fmt.Errorf("the RFC 3161 timestamp (annotation %s) covers other bytes: its message imprint is the %s hash neither of the attestation layer (the envelope as stored, which cosign v2 timestamps and cosign verifies) nor of the envelope's signature (which cosign v3 timestamps)", oci.TimestampAnnotation, a.hash)
}

// verifiedTimestamp is trusted material whose one timestamp authority
// vouches only for the token of a, already verified over the bytes it
// covers: sigstore-go would check a bundle's timestamp over the envelope's
// signature, whatever the token covers, and silently drop it when it
// fails. Everything else is the trusted root's.
type verifiedTimestamp struct {
	root.TrustedMaterial
	a *attestationTimestamp
}

func (m verifiedTimestamp) TimestampingAuthorities() []root.TimestampingAuthority {
	return []root.TimestampingAuthority{m}
}

// Verify gives the verified time of exactly the verified token.
func (m verifiedTimestamp) Verify(token, _ []byte) (*root.Timestamp, error) {
	if m.a.at == nil || !bytes.Equal(token, m.a.token) {
		return nil, errors.New("not the verified timestamp of the attestation layer")
	}
	return m.a.at, nil
}

// verifyLegacyKeyless verifies a legacy signature layer made with a
// certificate.
func (v *Verifier) verifyLegacyKeyless(ann map[string]string, sig, payload []byte) (*keyless.Result, error) {
	b, err := legacyBundle(ann, sig, payload)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(payload)
	return v.verifyCertificate(b, keyless.Artifact{Algorithm: "sha256", Digest: d[:]}, ann)
}

// maxChainCertificates bounds the certificates of a chain annotation.
const maxChainCertificates = 10

// legacyChain reads cosign's chain annotation: the signing certificate's
// issuers, root last. As cosign does, all but the last are offered as
// untrusted intermediates (keyless.Options.Intermediates); the last is
// returned only to explain a failure, never trusted.
func legacyChain(ann map[string]string) (inter []*x509.Certificate, last *x509.Certificate, err error) {
	s := ann[oci.ChainAnnotation]
	if strings.TrimSpace(s) == "" { // cosign writes it empty when it has no chain
		return nil, nil, nil
	}
	if len(s) > maxLegacyAnnotation {
		return nil, nil, fmt.Errorf("annotation %s too large", oci.ChainAnnotation)
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited([]byte(s), maxChainCertificates)
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("annotation %s is not a PEM certificate chain (at most %d certificates): %v", oci.ChainAnnotation, maxChainCertificates, err)
	}
	return certs[:len(certs)-1], certs[len(certs)-1], nil
}

// verifyCertificate verifies b, signed with a certificate, with
// pkg/keyless (see certificateOptions for ann).
func (v *Verifier) verifyCertificate(b sgverify.SignedEntity, a keyless.Artifact, ann map[string]string) (*keyless.Result, error) {
	o, last, err := v.certificateOptions(ann, nil)
	if err != nil {
		return nil, err
	}
	r, err := keyless.Verify(b, a, o)
	return r, chainHint(err, o, last)
}

// verifyCertificateDSSE is verifyCertificate for a DSSE envelope (an
// attestation) of b: keyless.VerifyDSSE, which does not copy its payload.
func (v *Verifier) verifyCertificateDSSE(b sgverify.SignedEntity, env keyless.DSSE, ann map[string]string, ts *attestationTimestamp) (*keyless.Result, error) {
	o, last, err := v.certificateOptions(ann, ts)
	if err != nil {
		return nil, err
	}
	r, err := keyless.VerifyDSSE(b, env, o)
	return r, chainHint(err, o, last)
}

// certificateOptions are the verifier's keyless options for one signature:
// a legacy layer's chain annotation (ann) offers intermediates (last is the
// chain's last certificate, nil without one), and ts, a legacy
// attestation's timestamp already verified over the bytes it covers, is
// the only one its token gives.
func (v *Verifier) certificateOptions(ann map[string]string, ts *attestationTimestamp) (keyless.Options, *x509.Certificate, error) {
	o := *v.keyless
	inter, last, err := legacyChain(ann)
	if err != nil {
		return o, nil, err
	}
	o.Intermediates = inter
	if ts != nil {
		o.Trusted = verifiedTimestamp{o.Trusted, ts}
	}
	return o, last, nil
}

// chainHint adds to a failure why a chain annotation could not help: it
// ends at a certificate that is not a CA root of the trusted root.
func chainHint(err error, o keyless.Options, last *x509.Certificate) error {
	if err != nil && last != nil && !trustedCARoot(o.Trusted, last) {
		return fmt.Errorf("%w (the chain annotation ends at %q, which is not a CA root of the trusted root: a chain annotation only offers intermediates, it is never trusted)", err, last.Subject.String())
	}
	return err
}

// trustedCARoot reports whether c is the root of a certificate authority
// of tr.
func trustedCARoot(tr root.TrustedMaterial, c *x509.Certificate) bool {
	for _, ca := range tr.FulcioCertificateAuthorities() {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok && f.Root != nil && f.Root.Equal(c) {
			return true
		}
	}
	return false
}

// Window bounds a signer's verified signing times; a zero bound is open.
type Window struct {
	NotBefore, NotAfter time.Time
}

// checkTimes applies MaxAge and the window of key id to a verified key
// signature's verified signing times; it returns the reason for a
// rejection, or "".
func (o Options) checkTimes(id string, times []time.Time) string {
	if reason := o.checkAge(times); reason != "" {
		return reason
	}
	return checkKeyWindow(o.KeyWindows, id, times)
}

// checkKeyWindow applies windows[id] to a verified signature's or
// attestation's verified signing times (verifiedTimes); it returns the
// reason for a rejection, or "". Every time must be within the window.
func checkKeyWindow(windows map[string]Window, id string, times []time.Time) string {
	w, ok := windows[id]
	if !ok || (w.NotBefore.IsZero() && w.NotAfter.IsZero()) {
		return ""
	}
	if len(times) == 0 {
		return fmt.Sprintf("key %s counts only within its notBefore/notAfter window, and this signature has no verified signing time (a trusted log's integrated time, or an RFC 3161 timestamp by a TSA of the trusted root)", id)
	}
	for _, t := range times {
		if !w.NotBefore.IsZero() && t.Before(w.NotBefore) {
			return fmt.Sprintf("signed at %s, before key %s's notBefore %s", t.UTC().Format(time.RFC3339), id, w.NotBefore.UTC().Format(time.RFC3339))
		}
		if !w.NotAfter.IsZero() && t.After(w.NotAfter) {
			return fmt.Sprintf("signed at %s, after key %s's notAfter %s", t.UTC().Format(time.RFC3339), id, w.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return ""
}
