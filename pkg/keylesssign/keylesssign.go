// Package keylesssign signs without a long-lived key, on sigstore-go's sign
// package: an ephemeral ECDSA P-256 key made in memory (never written
// anywhere), ONE Fulcio certificate for it bought with an OIDC identity
// token, and for every signature a transparency-log entry (Rekor v1 or v2)
// and RFC 3161 timestamps, as the signing config (or overrides) name them.
//
// A Signer is made once per run and shared by every image signed in it:
// one token exchange and one certificate, then one log entry and one
// timestamp per signature, safe for concurrent use. Each signature is
// returned as a Sigstore bundle (v0.3) and, for cosign's legacy layout, as
// the annotations cosign writes (certificate, chain, Rekor bundle, RFC 3161
// timestamp).
package keylesssign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imgsign/imgsign/pkg/idtoken"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/tsa"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	rekortiles "github.com/sigstore/rekor-tiles/v2/pkg/client"
	rekorwrite "github.com/sigstore/rekor-tiles/v2/pkg/client/write"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
)

// ErrService is wrapped by every failure of a signing service: Fulcio,
// a transparency log or a timestamp authority refused or did not answer.
var ErrService = errors.New("keyless signing service failed")

// ErrCertificateExpired: the run outlived its short-lived certificate.
var ErrCertificateExpired = errors.New("the signing certificate expired during the run")

// Log is a transparency log to record signatures in.
type Log struct {
	URL     string
	Version uint32 // 1 (rekor-server) or 2 (rekor-tiles)
}

// Services are the signing services of a run.
type Services struct {
	Fulcio string   // Fulcio base URL (required)
	Logs   []Log    // transparency logs, each signature recorded in all
	TSAs   []string // RFC 3161 endpoints, each signature timestamped by all
}

// Overrides replace parts of a signing config (the --fulcio-url,
// --rekor-url and --timestamp-server-url flags).
type Overrides struct {
	FulcioURL    string
	RekorURL     string
	RekorVersion uint32 // of RekorURL; 0 means 1
	TSAURL       string
}

// Select picks the services of sc as cosign v3 does (sigstore-go's service
// selection: the newest valid service of a supported API version), then
// applies o. rekorVersions are the Rekor API versions acceptable (the
// legacy layout needs 1: cosign reads only a Rekor v1 SET there). sc may
// be nil when o names Fulcio.
func Select(sc *root.SigningConfig, o Overrides, rekorVersions []uint32, now time.Time) (Services, error) {
	var s Services
	if sc != nil {
		if f, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), []uint32{1}, now); err == nil {
			s.Fulcio = f.URL
		}
		if o.RekorURL == "" {
			logs, err := root.SelectServices(sc.RekorLogURLs(), sc.RekorLogURLsConfig(), rekorVersions, now)
			if err != nil && len(sc.RekorLogURLs()) > 0 {
				return s, fmt.Errorf("signing config: no transparency log of API version %s valid now: %v", versions(rekorVersions), err)
			}
			for _, l := range logs {
				s.Logs = append(s.Logs, Log{URL: l.URL, Version: l.MajorAPIVersion})
			}
		}
		if o.TSAURL == "" {
			tsas, err := root.SelectServices(sc.TimestampAuthorityURLs(), sc.TimestampAuthorityURLsConfig(), []uint32{1}, now)
			if err != nil && len(sc.TimestampAuthorityURLs()) > 0 {
				return s, fmt.Errorf("signing config: no timestamp authority valid now: %v", err)
			}
			for _, t := range tsas {
				s.TSAs = append(s.TSAs, t.URL)
			}
		}
	}
	if o.FulcioURL != "" {
		s.Fulcio = o.FulcioURL
	}
	if o.RekorURL != "" {
		v := o.RekorVersion
		if v == 0 {
			v = 1
		}
		s.Logs = []Log{{URL: o.RekorURL, Version: v}}
	}
	if o.TSAURL != "" {
		s.TSAs = []string{o.TSAURL}
	}
	if s.Fulcio == "" {
		return s, errors.New("no Fulcio certificate authority: the signing config names none valid now; give --fulcio-url")
	}
	if len(s.Logs) == 0 && len(s.TSAs) == 0 {
		return s, errors.New("neither a transparency log nor a timestamp authority: a short-lived certificate needs one of them to prove when it signed; give --rekor-url or --timestamp-server-url")
	}
	for _, l := range s.Logs {
		if l.Version == 2 && len(s.TSAs) == 0 {
			return s, fmt.Errorf("Rekor v2 log %s gives no signing time: a timestamp authority is needed too (--timestamp-server-url)", l.URL)
		}
	}
	return s, nil
}

func versions(vs []uint32) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprint(v))
	}
	return strings.Join(out, " or ")
}

// Options make a Signer.
type Options struct {
	Services
	// Token is the identity token exchanged for the certificate. Only
	// Fulcio sees it; errors never contain it.
	Token *idtoken.Token
	// Trusted, when set, gives the certificate chain written in the legacy
	// chain annotation, and every bundle is verified against it as soon as
	// it is made.
	Trusted root.TrustedMaterial
	// Timeout bounds each request to a service (30 s when 0).
	Timeout time.Duration
	// Transport carries requests to Fulcio and the TSAs (default transport
	// when nil).
	Transport http.RoundTripper
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Stats count what a Signer asked of its services.
type Stats struct {
	FulcioRequests int64 // HTTP requests to Fulcio
	LogEntries     int64 // log entries written (one per log per signature)
	TSARequests    int64 // HTTP requests to timestamp authorities
	Signatures     int64
}

// Signer signs with one ephemeral key and one certificate.
type Signer struct {
	kp        *keypair
	cert      []byte // DER
	certPEM   string
	chainPEM  string
	notAfter  time.Time
	identity  string
	logs      []sgsign.Transparency
	logInfo   []Log
	tsa       *tsa.Client // nil without TSAs
	trusted   root.TrustedMaterial
	secret    string
	now       func() time.Time
	fulcioReq atomic.Int64
	entries   atomic.Int64
	sigs      atomic.Int64
}

// userAgent names imgsign to the logs.
const userAgent = "imgsign (keyless signing; sigstore-go)"

// certMargin is how long before its expiry a certificate stops being used:
// a signature must reach the log (or TSA) while the certificate is valid.
const certMargin = 30 * time.Second

// New makes the ephemeral key and buys its certificate from Fulcio (one
// request, the token as proof of identity).
func New(ctx context.Context, o Options) (*Signer, error) {
	if o.Token == nil {
		return nil, idtoken.ErrNoToken
	}
	if o.Fulcio == "" {
		return nil, errors.New("no Fulcio URL")
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	kp, err := newKeypair()
	if err != nil {
		return nil, err
	}
	s := &Signer{kp: kp, trusted: o.Trusted, secret: o.Token.Raw(), now: now, logInfo: o.Logs}
	for _, l := range o.Logs {
		if l.Version != 1 && l.Version != 2 {
			return nil, fmt.Errorf("transparency log %s: API version %d is not supported (1 or 2)", l.URL, l.Version)
		}
		// The clients are made here, not lazily by sigstore-go on first
		// use: that would race between concurrent signatures.
		ro := &sgsign.RekorOptions{BaseURL: strings.TrimRight(l.URL, "/"), Timeout: timeout, Version: l.Version}
		if l.Version == 1 {
			c, err := rekorclient.GetRekorClient(ro.BaseURL, rekorclient.WithUserAgent(userAgent))
			if err != nil {
				return nil, fmt.Errorf("transparency log %s: %w", l.URL, err)
			}
			ro.Client = c.Entries
		} else {
			w, err := rekorwrite.NewWriter(ro.BaseURL, rekortiles.WithUserAgent(userAgent))
			if err != nil {
				return nil, fmt.Errorf("transparency log %s: %w", l.URL, err)
			}
			ro.ClientV2 = w
		}
		r := sgsign.NewRekor(ro)
		s.logs = append(s.logs, namedLog{r, l, &s.entries})
	}
	s.tsa = tsa.New(o.TSAs, tsa.Options{Timeout: timeout, Transport: base, Untouched: "nothing was written to the registry"})
	fulcio := sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: strings.TrimRight(o.Fulcio, "/"), Timeout: timeout,
		Transport: counting{base: base, n: &s.fulcioReq}})
	der, err := fulcio.GetCertificate(ctx, kp, &sgsign.CertificateProviderOptions{IDToken: o.Token.Raw()})
	if err != nil {
		return nil, s.fulcioError(o.Fulcio, o.Token, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: Fulcio %s returned an unreadable certificate: %v", ErrService, o.Fulcio, err)
	}
	s.cert, s.notAfter = der, cert.NotAfter
	s.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	s.chainPEM = chainOf(cert, o.Trusted)
	s.identity = identityOf(cert)
	if !kp.priv.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: Fulcio %s certified another key than the one it was asked to", ErrService, o.Fulcio)
	}
	return s, nil
}

// fulcioError explains a refused certificate request, without the token.
func (s *Signer) fulcioError(url string, tok *idtoken.Token, err error) error {
	err = idtoken.Redact(err, s.secret)
	msg := err.Error()
	hint := ""
	if strings.Contains(msg, "returned 401") || strings.Contains(msg, "returned 403") || strings.Contains(strings.ToLower(msg), "identity token") {
		hint = fmt.Sprintf("; Fulcio did not accept the %s: it must come from an issuer Fulcio trusts, be unexpired, and be for the audience Fulcio expects (%q on public Sigstore)", tok, idtoken.Audience)
	}
	return fmt.Errorf("%w: Fulcio %s did not issue a certificate (nothing was signed or written): %v%s", ErrService, url, err, hint)
}

// chainOf returns the PEM chain above cert (intermediates, then root) from
// the trusted CA that issued it, as Fulcio hands it to cosign; "" if none
// is known.
func chainOf(cert *x509.Certificate, tr root.TrustedMaterial) string {
	if tr == nil {
		return ""
	}
	for _, ca := range tr.FulcioCertificateAuthorities() {
		f, ok := ca.(*root.FulcioCertificateAuthority)
		if !ok || f.Root == nil {
			continue
		}
		issuers := append(append([]*x509.Certificate{}, f.Intermediates...), f.Root)
		if cert.CheckSignatureFrom(issuers[0]) != nil {
			continue
		}
		var b bytes.Buffer
		for _, c := range issuers {
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		return b.String()
	}
	return ""
}

// identityOf is the certificate's subject alternative name.
func identityOf(c *x509.Certificate) string {
	switch {
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return ""
}

// PublicKey is the ephemeral public key.
func (s *Signer) PublicKey() crypto.PublicKey { return s.kp.GetPublicKey() }

// CertificatePEM is the signing certificate, PEM.
func (s *Signer) CertificatePEM() string { return s.certPEM }

// ChainPEM is the certificate's issuers (intermediates, root), PEM; "" when
// no trusted root was given.
func (s *Signer) ChainPEM() string { return s.chainPEM }

// Identity is the certificate's identity (email or URI SAN).
func (s *Signer) Identity() string { return s.identity }

// NotAfter is when the certificate expires.
func (s *Signer) NotAfter() time.Time { return s.notAfter }

// Logs are the transparency logs each signature is recorded in.
func (s *Signer) Logs() []Log { return s.logInfo }

// Stats returns the counts so far.
func (s *Signer) Stats() Stats {
	return Stats{FulcioRequests: s.fulcioReq.Load(), LogEntries: s.entries.Load(), TSARequests: s.tsa.Requests(), Signatures: s.sigs.Load()}
}

// Signed is one signature, logged and timestamped.
type Signed struct {
	// Bundle is the Sigstore bundle v0.3 (certificate, entries with
	// inclusion proofs, timestamps).
	Bundle *protobundle.Bundle
	// Signature is the raw signature.
	Signature []byte
	// Entry is the first log entry (nil without logs).
	Entry *tlog.Entry
}

// JSON is the bundle as written to files and registries.
func (d *Signed) JSON() ([]byte, error) { return protojson.Marshal(d.Bundle) }

// Message signs data (a message-signature bundle; hashedrekord entries).
// The legacy layout and sign-blob use it.
func (s *Signer) Message(ctx context.Context, data []byte) (*Signed, error) {
	return s.sign(ctx, &sgsign.PlainData{Data: data})
}

// Digest signs a file known by its SHA-256 digest (sign-blob, reading the
// file as a stream): the bundle is the one Message would make of the file.
func (s *Signer) Digest(ctx context.Context, sha256Digest []byte) (*Signed, error) {
	return s.signWith(ctx, digestContent{sha256Digest}, digestView{s.kp})
}

// DSSE signs payload in a DSSE envelope (dsse entries on Rekor v1).
func (s *Signer) DSSE(ctx context.Context, payloadType string, payload []byte) (*Signed, error) {
	return s.sign(ctx, &sgsign.DSSEData{Data: payload, PayloadType: payloadType})
}

func (s *Signer) sign(ctx context.Context, content sgsign.Content) (*Signed, error) {
	return s.signWith(ctx, content, s.kp)
}

func (s *Signer) signWith(ctx context.Context, content sgsign.Content, kp sgsign.Keypair) (*Signed, error) {
	if left := s.notAfter.Sub(s.now()); left < certMargin {
		return nil, fmt.Errorf("%w (valid until %s): nothing was written; sign fewer images per run", ErrCertificateExpired, s.notAfter.UTC().Format(time.RFC3339))
	}
	var tsas []*sgsign.TimestampAuthority
	if s.tsa != nil {
		tsas = s.tsa.Authorities()
	}
	b, err := sgsign.Bundle(content, kp, sgsign.BundleOptions{
		CertificateProvider:  staticCert(s.cert),
		TimestampAuthorities: tsas,
		TransparencyLogs:     s.logs,
		Context:              ctx,
	})
	if err != nil {
		// (Wrapped with %w below: a cancellation stays errors.Is-visible, so
		// that SignAll reports the failure that caused it.)
		err = idtoken.Redact(err, s.secret)
		var le logError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%w: transparency log %s (Rekor v%d) did not record the signature (nothing was written to the registry): %w", ErrService, le.log.URL, le.log.Version, le.err)
		}
		// sigstore-go asks the TSAs before the logs (whose errors are
		// logErrors) and after signing in memory: what fails here is a TSA.
		if s.tsa != nil {
			return nil, fmt.Errorf("%w: %w", ErrService, s.tsa.Explain("the signature", err))
		}
		return nil, fmt.Errorf("keyless signature (nothing was written to the registry): %w", err)
	}
	if err := s.check(b); err != nil {
		return nil, fmt.Errorf("the new signature does not verify against the trusted root (nothing was written to the registry): %w", err)
	}
	s.sigs.Add(1)
	out := &Signed{Bundle: b}
	switch c := b.Content.(type) {
	case *protobundle.Bundle_MessageSignature:
		out.Signature = c.MessageSignature.GetSignature()
	case *protobundle.Bundle_DsseEnvelope:
		if sigs := c.DsseEnvelope.GetSignatures(); len(sigs) > 0 {
			out.Signature = sigs[0].GetSig()
		}
	}
	if es := b.GetVerificationMaterial().GetTlogEntries(); len(es) > 0 {
		out.Entry = es[0]
	}
	return out, nil
}

// check verifies a bundle just made against the trusted root, when one was
// given, as sigstore-go's sign.Bundle would (its own check cannot take a
// message known only by its digest): the certificate chain, the log
// entries and timestamps, the signature over the content.
func (s *Signer) check(b *protobundle.Bundle) error {
	if s.trusted == nil {
		return nil
	}
	var opts []verify.VerifierOption
	if s.tsa != nil {
		opts = append(opts, verify.WithSignedTimestamps(len(s.tsa.URLs())))
	}
	if len(s.logs) > 0 {
		opts = append(opts, verify.WithTransparencyLog(len(s.logs)))
		if s.tsa == nil {
			opts = append(opts, verify.WithIntegratedTimestamps(len(s.logs)))
		}
	}
	v, err := verify.NewVerifier(s.trusted, opts...)
	if err != nil {
		return err
	}
	sb, err := sgbundle.NewBundle(b)
	if err != nil {
		return err
	}
	artifact := verify.WithoutArtifactUnsafe()
	if ms := b.GetMessageSignature(); ms != nil {
		artifact = verify.WithArtifactDigest("sha256", ms.GetMessageDigest().GetDigest())
	}
	_, err = v.Verify(sb, verify.NewPolicy(artifact, verify.WithoutIdentitiesUnsafe()))
	return err
}

// LegacyAnnotations are the annotations cosign writes on a legacy
// signature or attestation layer signed with a certificate: the
// certificate, its chain, the Rekor v1 bundle (SET) and (signatures only:
// see AttestationTimestamp) the RFC 3161 timestamp; imgsign's whole log
// entry too (tlog.Annotations).
func (s *Signer) LegacyAnnotations(d *Signed) (map[string]string, error) {
	ann := map[string]string{oci.CertificateAnnotation: s.certPEM}
	if s.chainPEM != "" {
		ann[oci.ChainAnnotation] = s.chainPEM
	}
	if d.Entry != nil {
		la, err := tlog.Annotations(d.Entry)
		if err != nil {
			return nil, err
		}
		maps.Copy(ann, la)
	}
	// cosign timestamps a legacy signature's raw bytes, as sigstore-go does;
	// a legacy attestation's timestamp covers the whole layer instead
	// (AttestationTimestamp), so an envelope's (over its signature) is not
	// written here.
	if ts := d.Bundle.GetVerificationMaterial().GetTimestampVerificationData().GetRfc3161Timestamps(); len(ts) > 0 && d.Bundle.GetMessageSignature() != nil {
		j, err := tsa.Annotation(ts[0].GetSignedTimestamp())
		if err != nil {
			return nil, err
		}
		ann[oci.TimestampAnnotation] = j
	}
	return ann, nil
}

// AttestationTimestamp timestamps a legacy attestation layer (the
// envelope exactly as stored) with the run's first timestamp authority and
// returns cosign's dev.sigstore.cosign/rfc3161timestamp annotation; "" when
// the run has no TSA. The token's imprint covers the whole layer, as cosign
// v2 writes it and as cosign v2 and v3 verify it (cosign v3.1 itself
// timestamps the envelope's signature there, which neither verifies). With
// a trusted root the token is verified over the layer before it is used.
func (s *Signer) AttestationTimestamp(ctx context.Context, layer []byte) (string, error) {
	if s.tsa == nil {
		return "", nil
	}
	token, err := s.tsa.One(ctx, layer, "the attestation layer")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrService, idtoken.Redact(err, s.secret))
	}
	if s.trusted != nil {
		if _, err := keyless.VerifyTimestamp(token, layer, s.trusted); err != nil {
			return "", fmt.Errorf("%w: the timestamp of the attestation layer by %s does not verify against the trusted root (nothing was written to the registry): %v", ErrService, s.tsa.URLs()[0], err)
		}
	}
	return tsa.Annotation(token)
}

// staticCert hands sigstore-go the run's one certificate, so that no
// signature asks Fulcio again.
type staticCert []byte

func (c staticCert) GetCertificate(context.Context, sgsign.Keypair, *sgsign.CertificateProviderOptions) ([]byte, error) {
	return c, nil
}

// namedLog is a sigstore-go log that counts entries and names itself in
// errors.
type namedLog struct {
	r     *sgsign.Rekor
	log   Log
	count *atomic.Int64
}

func (n namedLog) GetTransparencyLogEntry(ctx context.Context, pem []byte, b *protobundle.Bundle) error {
	if err := n.r.GetTransparencyLogEntry(ctx, pem, b); err != nil {
		return logError{n.log, err}
	}
	n.count.Add(1)
	return nil
}

type logError struct {
	log Log
	err error
}

func (e logError) Error() string { return fmt.Sprintf("transparency log %s: %v", e.log.URL, e.err) }
func (e logError) Unwrap() error { return e.err }

// counting counts the requests it carries (Fulcio's; the TSAs' are
// counted by pkg/tsa).
type counting struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}
