package keyless

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// DSSE is a DSSE envelope with its one signature and its payload decoded.
type DSSE struct {
	PayloadType string
	Payload     []byte
	Signature   []byte
}

// pae returns the DSSE pre-authentication encoding of env as a reader: a
// header, then the payload itself, never copied.
func (env DSSE) pae() io.Reader {
	h := fmt.Sprintf("DSSEv1 %d %s %d ", len(env.PayloadType), env.PayloadType, len(env.Payload))
	return io.MultiReader(strings.NewReader(h), bytes.NewReader(env.Payload))
}

// maxTlogEntries is sigstore-go's bound on the log entries of one entity.
const maxTlogEntries = 32

// VerifyDSSE is Verify for a DSSE envelope signed with a certificate,
// without copying its payload, which may be as large as an attestation:
// sigstore-go, given the envelope, base64-encodes the payload into a
// string, then decodes it and builds its PAE, about four copies. e gives
// the certificate, log entries and timestamps; its signature content is
// never asked for: env is the envelope.
//
// The checks are Verify's, made by sigstore-go's functions in the order of
// its Verifier.Verify, except two done here over the payload in place:
//   - the envelope signature, verified with the certificate's key over the
//     PAE streamed (as sigstore-go verifies a DSSE signature: the key's
//     default algorithm, and for P-384 and P-521 keys also SHA-256);
//   - the binding of each Rekor v1 entry to this envelope, as
//     sigstore-go's VerifyTlogEntry binds a dsse or intoto entry: the
//     entry records the SHA-256 of this payload (or, a hashedrekord entry
//     over the envelope as the client spec allows, the digest of its PAE,
//     which sigstore-go v1.3.0 does not bind), this signature and this
//     certificate's key, its SET and inclusion proof verify (sigstore-go's tlog
//     package), and its integrated time is within the certificate's
//     validity. A Rekor v2 entry is verified by sigstore-go itself
//     (VerifyTlogEntry), which binds it through the digest of the PAE.
func VerifyDSSE(e sgverify.SignedEntity, env DSSE, o Options) (*Result, error) {
	if len(env.Signature) == 0 {
		return nil, fmt.Errorf("%w: the envelope has no signature", ErrInvalidBundle)
	}
	if err := o.prepare(); err != nil {
		return nil, err
	}
	c, err := precheck(e, o)
	if err != nil {
		return nil, err
	}
	vc, cert, ids, trusted := c.vc, c.cert, c.ids, c.trusted
	// The signature first: a bad one is reported as such, not as the log
	// entry that does not record it.
	version, _ := e.Version()
	if err := verifyEnvelopeSignature(cert.PublicKey, env, version); err != nil {
		return nil, fmt.Errorf("%w: the signature does not verify with the certificate's key over this artifact: %v", ErrNotVerified, err)
	}
	entries, err := e.TlogEntries()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	// The PAE's digest, which only a Rekor v2 entry or a hashedrekord
	// entry records, is taken only for one (a second pass over the
	// payload).
	var paeDigest hashedPAE
	for _, entry := range entries {
		if _, _, hashed := entry.GetHashedRekordDigest(); hashed || entry.IsRekorV2() {
			if paeDigest, err = digestPAE(cert.PublicKey, env); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotVerified, err)
			}
			break
		}
	}
	ts, err := e.Timestamps()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	// What sigstore-go reads of the entity: the certificate, the log
	// entries, the timestamps, and a signature content that is the
	// envelope's signature over its PAE's digest (what a Rekor v2 entry
	// binds).
	lean := &leanEntity{SignedEntity: e, vc: vc, entries: entries, ts: ts,
		sc: &paeSignature{sig: env.Signature, digest: paeDigest.sum, algorithm: paeDigest.algorithm}}
	fail := func(err error) (*Result, error) {
		return nil, fmt.Errorf("%w: %v%s%s%s%s", ErrNotVerified, err, logHint(lean, o.Trusted), timeHint(lean, err), sctHint(cert, err), unanchoredHint(cert, o.Identities))
	}
	vopts := []sgverify.VerifierOption{sgverify.WithObserverTimestamps(1)}
	if !o.IgnoreSCT {
		vopts = append(vopts, sgverify.WithSignedCertificateTimestamps(1))
	}
	v, err := sgverify.NewVerifier(trusted, vopts...)
	if err != nil {
		return nil, err
	}
	var logTimes []sgverify.TimestampVerificationResult
	if !o.IgnoreTlog {
		logTimes, err = verifyDSSELog(lean, vc, trusted, env)
		if err != nil {
			return fail(fmt.Errorf("failed to verify log inclusion: %w", err))
		}
	}
	times, err := v.VerifyObserverTimestamps(lean, logTimes)
	if err != nil {
		return fail(fmt.Errorf("failed to verify timestamps: %w", err))
	}
	// The certificate, as sigstore-go's Verifier.Verify checks it.
	summary, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return fail(fmt.Errorf("failed to summarize certificate: %w", err))
	}
	if len(cert.UnhandledCriticalExtensions) > 0 {
		var unhandled []asn1.ObjectIdentifier
		for _, oid := range cert.UnhandledCriticalExtensions {
			if !oid.Equal(cryptoutils.SANOID) {
				unhandled = append(unhandled, oid)
			}
		}
		cert.UnhandledCriticalExtensions = unhandled
	}
	chainTrust := trusted
	if inter := vc.Intermediates(); len(inter) > 0 {
		chainTrust = withIntermediates{trusted, inter}
	}
	var chains [][]*x509.Certificate
	for _, t := range times {
		if chains, err = sgverify.VerifyLeafCertificate(t.Timestamp, cert, chainTrust); err != nil {
			return fail(fmt.Errorf("failed to verify leaf certificate: %w", err))
		}
	}
	if err := everyTimestamp(ts, times, env.Signature, cert, trusted, chainTrust); err != nil {
		return fail(err)
	}
	if !o.IgnoreSCT {
		if err := sgverify.VerifySignedCertificateTimestamp(chains, 1, trusted); err != nil {
			return fail(fmt.Errorf("failed to verify signed certificate timestamp: %w", err))
		}
	}
	if _, err := ids.Verify(summary); err != nil {
		return fail(fmt.Errorf("failed to verify certificate identity: %w", err))
	}
	out := &Result{Certificate: cert, Subject: summary.SubjectAlternativeName, Issuer: summary.Issuer, Extensions: summary.Extensions}
	for _, t := range times {
		out.SignedAt = append(out.SignedAt, t.Timestamp)
	}
	return inWindow(out, o.Identities, ids)
}

// verifyEnvelopeSignature verifies env's signature with pub over its PAE
// streamed, with the verifiers sigstore-go uses for a DSSE envelope of a
// bundle of this version.
func verifyEnvelopeSignature(pub crypto.PublicKey, env DSSE, version string) error {
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return err
	}
	verifiers := []signature.Verifier{v}
	switch strings.TrimPrefix(version, "v") {
	case "0.1", "0.2", "0.3": // sigstore-go's compatibility with old clients
		if k, ok := pub.(*ecdsa.PublicKey); ok && (k.Curve == elliptic.P384() || k.Curve == elliptic.P521()) {
			sv, err := signature.LoadECDSAVerifier(k, crypto.SHA256)
			if err != nil {
				return err
			}
			verifiers = append(verifiers, sv)
		}
	}
	for _, v := range verifiers {
		if err = v.VerifySignature(bytes.NewReader(env.Signature), env.pae()); err == nil {
			return nil
		}
	}
	return err
}

// hashedPAE is the digest of a PAE a Rekor v2 entry records.
type hashedPAE struct {
	sum       []byte
	algorithm string
}

// digestPAE hashes env's PAE with the hash of pub's default algorithm in
// its prehashed form (sigstore-go's reconstruction of a Rekor v2 entry).
func digestPAE(pub crypto.PublicKey, env DSSE) (hashedPAE, error) {
	details, err := signature.GetDefaultAlgorithmDetails(pub, options.WithED25519ph())
	if err != nil {
		return hashedPAE{}, err
	}
	hf := details.GetHashType()
	if hf == 0 || !hf.Available() {
		return hashedPAE{}, fmt.Errorf("no prehash for the certificate's key")
	}
	h := hf.New()
	if _, err := io.Copy(h, env.pae()); err != nil {
		return hashedPAE{}, err
	}
	alg := map[crypto.Hash]string{crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}[hf]
	return hashedPAE{sum: h.Sum(nil), algorithm: alg}, nil
}

// verifyDSSELog verifies the log entries of a DSSE envelope: at least one
// from a trusted log, each bound to this envelope (see VerifyDSSE). It
// returns the verified integrated times (of entries with a SET), one per
// log, as sigstore-go's VerifyTlogEntry does.
func verifyDSSELog(e *leanEntity, vc sgverify.VerificationContent, trusted root.TrustedMaterial, env DSSE) ([]sgverify.TimestampVerificationResult, error) {
	entries := e.entries
	if len(entries) > maxTlogEntries {
		return nil, fmt.Errorf("too many tlog entries: %d > %d", len(entries), maxTlogEntries)
	}
	for i := range entries {
		for j := i + 1; j < len(entries); j++ {
			if entries[i].LogKeyID() == entries[j].LogKeyID() && entries[i].LogIndex() == entries[j].LogIndex() {
				return nil, errors.New("duplicate tlog entries found")
			}
		}
	}
	var v1, v2 []*sgtlog.Entry
	for _, entry := range entries {
		if entry.IsRekorV2() {
			v2 = append(v2, entry)
		} else {
			v1 = append(v1, entry)
		}
	}
	var out []sgverify.TimestampVerificationResult
	verified := map[string]bool{}
	// Rekor v2: sigstore-go, on the PAE's digest (the entry records no
	// time, and the threshold is counted below).
	if len(v2) > 0 {
		only := *e
		only.entries = v2
		if _, err := sgverify.VerifyTlogEntry(&only, trusted, 0, false); err != nil {
			return nil, err
		}
		for _, entry := range v2 {
			if _, ok := trusted.RekorLogs()[hex.EncodeToString([]byte(entry.LogKeyID()))]; ok {
				verified[entry.LogKeyID()] = true
			}
		}
	}
	payloadHash := sha256.Sum256(env.Payload)
	timed := map[string]bool{}
	for _, entry := range v1 {
		if err := sgtlog.ValidateEntry(entry); err != nil {
			return nil, err
		}
		keyID := entry.LogKeyID()
		log, ok := trusted.RekorLogs()[hex.EncodeToString([]byte(keyID))]
		if !ok {
			continue // an entry the trusted root cannot verify: skipped
		}
		if !entry.HasInclusionPromise() && !entry.HasInclusionProof() {
			return nil, fmt.Errorf("entry must contain an inclusion proof and/or promise")
		}
		if entry.HasInclusionPromise() {
			if err := sgtlog.VerifySET(entry, trusted.RekorLogs()); err != nil {
				continue // as sigstore-go: an entry the trusted root cannot verify
			}
		}
		if entry.HasInclusionProof() {
			if !hasRekorV1STH(entry) {
				return nil, errors.New("a Rekor v1 entry whose inclusion proof's checkpoint is not a Rekor v1 signed tree head")
			}
			verifier, err := signature.LoadVerifier(log.PublicKey, log.SignatureHashFunc)
			if err != nil {
				return nil, err
			}
			if err := sgtlog.VerifyInclusion(entry, verifier); err != nil {
				return nil, err
			}
		}
		// Every way the entry differs from this envelope is said, the
		// signature first (sigstore-go's order): a logged envelope swapped
		// for another differs in both signature and content.
		var differs []string
		if !bytes.Equal(entry.Signature(), env.Signature) {
			differs = append(differs, "transparency log signature does not match")
		}
		if !vc.CompareKey(entry.PublicKey(), trusted) {
			differs = append(differs, "transparency log certificate does not match")
		}
		if logged, ok := entry.GetDssePayloadHash(); ok {
			if !bytes.Equal(payloadHash[:], logged) {
				differs = append(differs, fmt.Sprintf("transparency log dsse/intoto entry payload hash %s does not match envelope payload hash %s", hex.EncodeToString(logged), hex.EncodeToString(payloadHash[:])))
			}
		} else if logged, alg, ok := entry.GetHashedRekordDigest(); ok {
			// A hashedrekord entry over a DSSE envelope (the client
			// spec's "bundle content vs. Rekor entry kind") records the
			// digest of the PAE: the bytes the signature covers.
			if alg != e.sc.algorithm || !bytes.Equal(logged, e.sc.digest) {
				differs = append(differs, fmt.Sprintf("transparency log hashedrekord entry digest %s:%s does not match the envelope's PAE digest %s:%s", alg, hex.EncodeToString(logged), e.sc.algorithm, hex.EncodeToString(e.sc.digest)))
			}
		} else {
			return nil, errors.New("transparency log rekor v1 entry is not a dsse_v001, intoto_v002 or hashedrekord_v001 entry")
		}
		if len(differs) > 0 {
			return nil, errors.New(strings.Join(differs, "; "))
		}
		if !entry.IntegratedTime().IsZero() && !vc.ValidAtTime(entry.IntegratedTime(), trusted) {
			return nil, errors.New("integrated time outside certificate validity")
		}
		verified[keyID] = true
		if entry.HasInclusionPromise() && !timed[keyID] {
			timed[keyID] = true
			out = append(out, sgverify.TimestampVerificationResult{Type: "Tlog", URI: log.BaseURL, Timestamp: entry.IntegratedTime()})
		}
	}
	if len(verified) < 1 {
		return nil, fmt.Errorf("not enough verified log entries from transparency log: %d < %d", len(verified), 1)
	}
	return out, nil
}

// rekorV1Origin is the origin line of a Rekor v1 checkpoint: it ends with
// the tree ID.
var rekorV1Origin = regexp.MustCompile(".* - [0-9]+$")

// hasRekorV1STH reports whether an entry's inclusion proof has a Rekor
// v1 signed tree head (sigstore-go's test for the v1 proof check).
func hasRekorV1STH(entry *sgtlog.Entry) bool {
	lines := strings.Split(entry.TransparencyLogEntry().GetInclusionProof().GetCheckpoint().GetEnvelope(), "\n")
	return len(lines) >= 4 && rekorV1Origin.MatchString(lines[0])
}

// leanEntity is what sigstore-go reads of a DSSE entity in VerifyDSSE:
// its parts parsed once, and a signature content that holds no payload.
type leanEntity struct {
	sgverify.SignedEntity
	vc      sgverify.VerificationContent
	sc      *paeSignature
	entries []*sgtlog.Entry
	ts      [][]byte
}

func (l *leanEntity) VerificationContent() (sgverify.VerificationContent, error) { return l.vc, nil }
func (l *leanEntity) SignatureContent() (sgverify.SignatureContent, error)       { return l.sc, nil }
func (l *leanEntity) TlogEntries() ([]*sgtlog.Entry, error)                      { return l.entries, nil }
func (l *leanEntity) Timestamps() ([][]byte, error)                              { return l.ts, nil }

// paeSignature is a DSSE signature as a message signature over the PAE's
// digest: what an RFC 3161 timestamp (over the signature) and a Rekor v2
// entry (over the signature and the PAE's digest) bind.
type paeSignature struct {
	sig, digest []byte
	algorithm   string
}

func (p *paeSignature) Signature() []byte                                         { return p.sig }
func (p *paeSignature) EnvelopeContent() sgverify.EnvelopeContent                 { return nil }
func (p *paeSignature) MessageSignatureContent() sgverify.MessageSignatureContent { return p }
func (p *paeSignature) Digest() []byte                                            { return p.digest }
func (p *paeSignature) DigestAlgorithm() string                                   { return p.algorithm }
