// Package keylesstest is a private Sigstore for tests of certificate
// (keyless) verification that require SCTs: sigstore-go's VirtualSigstore
// provides the Rekor v1 log and the timestamp authority, and this package
// adds a Fulcio-style CA whose certificates carry embedded SCTs signed by a
// CT log key. SCTs are built with certificate-transparency-go (the
// precertificate leaf, the signature input and the SCT list encoding); the
// trusted root is written with sigstore-go. Hostile variants (an SCT signed
// by another key, an SCT over another certificate, no SCT) are options of
// Issue.
package keylesstest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Fulcio extension OIDs of the deprecated (raw-valued) GitHub workflow
// extensions and the OIDC issuer, as Fulcio writes them.
var (
	OIDIssuer                   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	OIDGithubWorkflowTrigger    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 2}
	OIDGithubWorkflowSHA        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 3}
	OIDGithubWorkflowName       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 4}
	OIDGithubWorkflowRepository = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 5}
	OIDGithubWorkflowRef        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 6}
)

// Sigstore is a private Sigstore: the VirtualSigstore's Rekor log and TSA,
// and its own CA and CT log. It is a root.TrustedMaterial trusting exactly
// those.
type Sigstore struct {
	*ca.VirtualSigstore
	Root, Intermediate *x509.Certificate
	RootKey, InterKey  *ecdsa.PrivateKey
	// CTKey signs the SCTs of the CT log the trusted root lists.
	CTKey *ecdsa.PrivateKey
	since time.Time
}

// New makes a private Sigstore; its CA and logs are valid from an hour ago.
func New(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	s := &Sigstore{VirtualSigstore: vs, since: time.Now().Add(-time.Hour).Truncate(time.Second)}
	s.RootKey, s.InterKey, s.CTKey = newKey(t), newKey(t), newKey(t)
	s.Root = s.create(t, &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "keylesstest root", Organization: []string{"imgsign tests"}},
		NotBefore: s.since, NotAfter: s.since.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, &s.RootKey.PublicKey, s.RootKey)
	s.Intermediate = s.create(t, &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "keylesstest intermediate", Organization: []string{"imgsign tests"}},
		NotBefore: s.since, NotAfter: s.since.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, s.Root, &s.InterKey.PublicKey, s.RootKey)
	return s
}

// CA is the certificate authority the trusted material lists.
func (s *Sigstore) CA() *root.FulcioCertificateAuthority {
	return &root.FulcioCertificateAuthority{Root: s.Root, Intermediates: []*x509.Certificate{s.Intermediate}, ValidityPeriodStart: s.since, URI: "https://fulcio.keylesstest"}
}

// FulcioCertificateAuthorities lists this Sigstore's CA.
func (s *Sigstore) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return []root.CertificateAuthority{s.CA()}
}

// CTLogs lists this Sigstore's CT log.
func (s *Sigstore) CTLogs() map[string]*root.TransparencyLog {
	id := LogID(&s.CTKey.PublicKey)
	return map[string]*root.TransparencyLog{hex.EncodeToString(id[:]): {
		BaseURL: "https://ct.keylesstest", ID: id[:], ValidityPeriodStart: s.since,
		HashFunc: crypto.SHA256, PublicKey: &s.CTKey.PublicKey, SignatureHashFunc: crypto.SHA256,
	}}
}

// Cert describes a certificate to issue.
type Cert struct {
	// Subject is the SAN: a URI when it contains "://", else an email.
	Subject, Issuer string
	// Extensions are added (GitHub workflow values: Ext).
	Extensions []pkix.Extension
	// NotBefore is the start of validity (default a minute ago); the
	// certificate is valid for ten minutes.
	NotBefore time.Time
	// NoSCT leaves the SCT out.
	NoSCT bool
	// SCTKey signs the SCT instead of the trusted CT log's key (the SCT
	// still names the trusted log).
	SCTKey *ecdsa.PrivateKey
	// SCTOver, when set, is the precertificate the SCT covers instead of
	// this certificate's own.
	SCTOver *x509.Certificate
	// Parent and ParentKey issue the certificate instead of the
	// intermediate.
	Parent    *x509.Certificate
	ParentKey *ecdsa.PrivateKey
}

// Ext is a raw-valued Fulcio extension (the OIDC issuer, GitHub workflow
// values).
func Ext(oid asn1.ObjectIdentifier, value string) pkix.Extension {
	return pkix.Extension{Id: oid, Value: []byte(value)}
}

// Issue issues a code-signing certificate with an embedded SCT (unless
// c.NoSCT) and returns it with its private key.
func (s *Sigstore) Issue(t testing.TB, c Cert) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	parent, parentKey := s.Intermediate, s.InterKey
	if c.Parent != nil {
		parent, parentKey = c.Parent, c.ParentKey
	}
	nb := c.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), NotBefore: nb, NotAfter: nb.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: append([]pkix.Extension{Ext(OIDIssuer, c.Issuer)}, c.Extensions...),
	}
	if strings.Contains(c.Subject, "://") {
		u, err := url.Parse(c.Subject)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	} else {
		tmpl.EmailAddresses = []string{c.Subject}
	}
	pre := s.create(t, tmpl, parent, &key.PublicKey, parentKey)
	if c.NoSCT {
		return pre, key
	}
	over := pre
	if c.SCTOver != nil {
		over = c.SCTOver
	}
	ctKey := s.CTKey
	if c.SCTKey != nil {
		ctKey = c.SCTKey
	}
	sct := signSCT(t, ctKey, LogID(&s.CTKey.PublicKey), over, parent)
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{sct})
	if err != nil {
		t.Fatal(err)
	}
	tlsList, err := cttls.Marshal(*list)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := asn1.Marshal(tlsList) // the extension value is an OCTET STRING of the TLS list
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: ext})
	return s.create(t, tmpl, parent, &key.PublicKey, parentKey), key
}

// signSCT signs, as the CT log with key, an SCT over the precertificate
// pre issued by issuer.
func signSCT(t testing.TB, key *ecdsa.PrivateKey, logID [32]byte, pre, issuer *x509.Certificate) *ct.SignedCertificateTimestamp {
	t.Helper()
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: logID}, Timestamp: uint64(time.Now().UnixMilli())}
	leaf := ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{IssuerKeyHash: sha256.Sum256(issuer.RawSubjectPublicKeyInfo), TBSCertificate: pre.RawTBSCertificate},
		},
	}}
	input, err := ct.SerializeSCTSignatureInput(sct, leaf)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(input)
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	return &sct
}

// LogID is the RFC 6962 log ID of a CT log key.
func LogID(pub *ecdsa.PublicKey) [32]byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for a P-256 key
	return sha256.Sum256(der)
}

// DSSEBundle signs statement with key (of cert) as cosign v3 signs an image
// or an attestation, and returns the v0.3 bundle: the certificate, a Rekor
// v1 dsse entry with its inclusion proof, and an RFC 3161 timestamp over the
// signature (the verified signing time).
func (s *Sigstore) DSSEBundle(t testing.TB, cert *x509.Certificate, key *ecdsa.PrivateKey, statement []byte) []byte {
	t.Helper()
	signer, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	es, err := dsse.NewEnvelopeSigner(&sigdsse.SignerAdapter{SignatureSigner: signer, Pub: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), "application/vnd.in-toto+json", statement)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := s.GenerateTlogEntry(cert, env, sig, time.Now().Unix(), true)
	if err != nil {
		t.Fatal(err)
	}
	tle := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	var kind struct{ Kind, APIVersion string }
	if err := json.Unmarshal(tle.CanonicalizedBody, &kind); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion}
	tsr, err := s.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	data, err := protojson.Marshal(&protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{PayloadType: env.PayloadType, Payload: payload, Signatures: []*protodsse.Signature{{Sig: sig}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Attach signs image d keyless with cert and key as cosign v3 does: a
// bundle of an in-toto statement about d of predicate type pt (a cosign
// signature with statement.CosignSign, else an attestation) attached as a
// referrer through client.
func (s *Sigstore) Attach(t testing.TB, client *oci.Client, d name.Digest, cert *x509.Certificate, key *ecdsa.PrivateKey, pt string) {
	t.Helper()
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := statement.ForImage(h, pt, json.RawMessage(`{"by":"keylesstest"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	AttachBundle(t, client, d, s.DSSEBundle(t, cert, key, stmt), pt)
}

// AttachBundle attaches a bundle of an in-toto statement of predicate type
// pt to d as a referrer, as cosign v3 does.
func AttachBundle(t testing.TB, client *oci.Client, d name.Digest, data []byte, pt string) {
	t.Helper()
	ctx := context.Background()
	r, err := client.Resolve(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{oci.BundleContentAnnotation: "dsse-envelope", oci.BundlePredicateTypeAnnotation: pt}
	if _, err := client.PushReferrer(ctx, d, r.Descriptor, oci.Artifact{ArtifactType: bundle.MediaTypeV03, Layer: data, LayerMediaType: bundle.MediaTypeV03, Annotations: ann}); err != nil {
		t.Fatal(err)
	}
}

// TrustedRootJSON is the trusted_root.json of this Sigstore: its CA (or
// none, with noCA), CT log, TSA and Rekor log.
func (s *Sigstore) TrustedRootJSON(t testing.TB, noCA bool) []byte {
	t.Helper()
	var cas []root.CertificateAuthority
	if !noCA {
		cas = s.FulcioCertificateAuthorities()
	}
	rekor := map[string]*root.TransparencyLog{}
	for id, l := range s.RekorLogs() {
		c := *l
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		c.ID, c.ValidityPeriodStart, c.ValidityPeriodEnd = raw, s.since, time.Time{}
		rekor[id] = &c
	}
	var tsas []root.TimestampingAuthority
	for _, a := range s.TimestampingAuthorities() {
		c := *a.(*root.SigstoreTimestampingAuthority)
		c.ValidityPeriodStart, c.ValidityPeriodEnd = s.since, time.Time{}
		tsas = append(tsas, &c)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, s.CTLogs(), tsas, rekor)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// WritePEM writes certificates as PEM to path.
func WritePEM(t testing.TB, path string, certs ...*x509.Certificate) {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *Sigstore) create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewKey is a fresh ECDSA P-256 key (an attacker's CT log key, ...).
func NewKey(t testing.TB) *ecdsa.PrivateKey { return newKey(t) }

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// VirtualBundle is a v0.3 Sigstore bundle, as cosign v3 writes one, of a
// DSSE envelope around stmt, signed by a fresh certificate of vs for
// subject and issuer, with a Rekor v1 entry (inclusion proof) and an RFC
// 3161 timestamp.
func VirtualBundle(t testing.TB, vs *ca.VirtualSigstore, subject, issuer string, stmt []byte) []byte {
	t.Helper()
	e, err := vs.AttestAtTime(subject, issuer, stmt, time.Now().Add(2*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := e.SignatureContent()
	vc, _ := e.VerificationContent()
	entries, _ := e.TlogEntries()
	ts, _ := e.Timestamps()
	env := sc.EnvelopeContent().RawEnvelope()
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	tle := proto.Clone(entries[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	var kind struct{ Kind, APIVersion string }
	if err := json.Unmarshal(tle.CanonicalizedBody, &kind); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts[0]}}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{PayloadType: env.PayloadType, Payload: payload, Signatures: []*protodsse.Signature{{Sig: sig}}}},
	}
	data, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
