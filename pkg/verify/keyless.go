package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

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
		var ts struct {
			SignedRFC3161Timestamp []byte
		}
		if err := json.Unmarshal([]byte(s), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
			return nil, fmt.Errorf("annotation %s is not a cosign RFC 3161 timestamp", oci.TimestampAnnotation)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}}}
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

// verifyCertificate verifies a bundle made with a certificate; ann, the
// annotations of a legacy layer (nil for a bundle), may offer
// intermediates in cosign's chain annotation.
func (v *Verifier) verifyCertificate(b sgverify.SignedEntity, a keyless.Artifact, ann map[string]string) (*keyless.Result, error) {
	o := *v.keyless
	inter, last, err := legacyChain(ann)
	if err != nil {
		return nil, err
	}
	o.Intermediates = inter
	r, err := keyless.Verify(b, a, o)
	if err != nil && last != nil && !trustedCARoot(o.Trusted, last) {
		err = fmt.Errorf("%w (the chain annotation ends at %q, which is not a CA root of the trusted root: a chain annotation only offers intermediates, it is never trusted)", err, last.Subject.String())
	}
	return r, err
}

// verifyCertificateDSSE is verifyCertificate for a DSSE envelope (an
// attestation) of b: keyless.VerifyDSSE, which does not copy its payload.
func (v *Verifier) verifyCertificateDSSE(b sgverify.SignedEntity, env keyless.DSSE, ann map[string]string) (*keyless.Result, error) {
	o := *v.keyless
	inter, last, err := legacyChain(ann)
	if err != nil {
		return nil, err
	}
	o.Intermediates = inter
	r, err := keyless.VerifyDSSE(b, env, o)
	if err != nil && last != nil && !trustedCARoot(o.Trusted, last) {
		err = fmt.Errorf("%w (the chain annotation ends at %q, which is not a CA root of the trusted root: a chain annotation only offers intermediates, it is never trusted)", err, last.Subject.String())
	}
	return r, err
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

// checkAgeTimes applies MaxAge to the verified signing times of a
// certificate signature; it returns the reason for a rejection, or "".
func (o Options) checkAgeTimes(times []time.Time) string {
	var facts []tlog.Facts
	for _, t := range times {
		facts = append(facts, tlog.Facts{IntegratedTime: t.Unix()})
	}
	return o.checkAge(facts)
}

// Window bounds a signer's verified signing times; a zero bound is open.
type Window struct {
	NotBefore, NotAfter time.Time
}

// checkKeyWindow applies the window of key id to a verified signature's
// log facts; it returns the reason for a rejection, or "".
func (o Options) checkKeyWindow(id string, facts []tlog.Facts) string {
	return checkKeyWindow(o.KeyWindows, id, facts)
}

// checkKeyWindow applies windows[id] to a verified signature's or
// attestation's log facts; it returns the reason for a rejection, or "".
func checkKeyWindow(windows map[string]Window, id string, facts []tlog.Facts) string {
	w, ok := windows[id]
	if !ok || (w.NotBefore.IsZero() && w.NotAfter.IsZero()) {
		return ""
	}
	var times []time.Time
	for _, f := range facts {
		if f.IntegratedTime > 0 {
			times = append(times, time.Unix(f.IntegratedTime, 0))
		}
	}
	if len(times) == 0 {
		return fmt.Sprintf("key %s counts only within its notBefore/notAfter window, and this signature has no verified signing time (a trusted log's integrated time)", id)
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
