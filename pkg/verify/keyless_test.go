package verify_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/verify"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	testSubject = "release@example.com"
	testIssuer  = "https://issuer.example.com"
)

// keylessSig is what a keyless signer leaves on a legacy signature layer.
type keylessSig struct {
	sig       []byte
	cert      *x509.Certificate
	cosignSET []byte // the dev.sigstore.cosign/bundle annotation
	tsr       []byte
}

// signKeyless signs data with a fresh certificate of the virtual Sigstore,
// logged at integrated.
func signKeyless(t *testing.T, vs *ca.VirtualSigstore, subject string, data []byte, integrated time.Time) keylessSig {
	t.Helper()
	e, err := vs.SignAtTime(subject, testIssuer, data, integrated)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := e.SignatureContent()
	vc, _ := e.VerificationContent()
	entries, _ := e.TlogEntries()
	// The virtual log keeps its SET to itself: sign one as Rekor v1 does.
	tle := proto.Clone(entries[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	setSig, err := vs.RekorSignPayload(sgtlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: setSig}
	set, err := tlog.CosignBundle(tle)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := e.Timestamps()
	return keylessSig{sig: sc.MessageSignatureContent().Signature(), cert: vc.Certificate(), cosignSET: set, tsr: ts[0]}
}

func (k keylessSig) annotations(withSET, withTS bool) map[string]string {
	a := map[string]string{
		oci.SignatureAnnotation:   base64.StdEncoding.EncodeToString(k.sig),
		oci.CertificateAnnotation: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw})),
	}
	if withSET {
		a[tlog.CosignBundleAnnotation] = string(k.cosignSET)
	}
	if withTS {
		ts, _ := json.Marshal(struct{ SignedRFC3161Timestamp []byte }{k.tsr})
		a[oci.TimestampAnnotation] = string(ts)
	}
	return a
}

// legacyPayload signs ref with a throwaway key in the legacy scheme and
// returns its simple signing payload, to be re-signed keyless.
func legacyPayload(t *testing.T, f *fixture, ref string) []byte {
	t.Helper()
	f.sign(t, ref, mustKey(t), sign.Options{Format: sign.FormatLegacy})
	r, _ := name.ParseReference(ref)
	d, err := f.client.Resolve(f.ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := oci.AttachedTag(d.Ref, nil, oci.SignatureTagSuffix)
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := rc.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

// sigTag is the legacy signature tag of ref.
func sigTag(t *testing.T, f *fixture, ref string) string {
	r, _ := name.ParseReference(ref)
	d, err := f.client.Resolve(f.ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := oci.AttachedTag(d.Ref, nil, oci.SignatureTagSuffix)
	return tag.String()
}

// otherCA is vs with its certificate authorities replaced by another's.
type otherCA struct {
	root.TrustedMaterial
	cas []root.CertificateAuthority
}

func (o otherCA) FulcioCertificateAuthorities() []root.CertificateAuthority { return o.cas }

func TestKeylessLegacy(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	id := keyless.Identity{Subject: testSubject, Issuer: testIssuer}
	base := keyless.Options{Trusted: vs, Identities: []keyless.Identity{id}, IgnoreSCT: true}
	now := time.Now().Add(2 * time.Minute) // within the 10-minute certificate

	cases := []struct {
		name    string
		at      time.Time
		set, ts bool
		mutate  func(k *keylessSig, payload []byte)
		opts    func(o *keyless.Options)
		want    string // "" verifies; else the rejection must contain it
	}{
		{name: "rekor SET and timestamp", at: now, set: true, ts: true},
		{name: "rekor SET only", at: now, set: true},
		{name: "timestamp only, log not required", at: now, ts: true, opts: func(o *keyless.Options) { o.IgnoreTlog = true }},
		{name: "no verified time at all", at: now, opts: func(o *keyless.Options) { o.IgnoreTlog = true }, want: "no verified signing time"},
		{name: "no log entry", at: now, ts: true, want: "not enough verified log entries"},
		{name: "wrong identity", at: now, set: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{Subject: "attacker@example.com", Issuer: testIssuer}}
		}, want: `expected SAN value "attacker@example.com"`},
		{name: "wrong issuer", at: now, set: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{Subject: testSubject, Issuer: "https://other.example.com"}}
		}, want: "expected issuer value"},
		{name: "regexp that matches the whole value", at: now, set: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{SubjectRegexp: `[a-z]+@example\.com`, IssuerRegexp: `https://issuer\.example\.com`}}
		}},
		{name: "regexp that matches only unanchored", at: now, set: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{SubjectRegexp: `example\.com`, Issuer: testIssuer}}
		}, want: "matches the WHOLE value"},
		{name: "identity retired before the signing time", at: now, set: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{Subject: testSubject, Issuer: testIssuer, NotAfter: time.Now().Add(-time.Hour)}}
		}, want: "after this identity's notAfter"},
		{name: "identity not yet valid at the signing time", at: now, set: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{Subject: testSubject, Issuer: testIssuer, NotBefore: time.Now().Add(time.Hour)}}
		}, want: "before this identity's notBefore"},
		{name: "identity window around the signing time", at: now, set: true, ts: true, opts: func(o *keyless.Options) {
			o.Identities = []keyless.Identity{{Subject: testSubject, Issuer: testIssuer, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}}
		}},
		{name: "certificate outside its validity at signing time", at: time.Now().Add(time.Hour), set: true, want: "integrated time outside certificate validity"},
		{name: "chain to an untrusted CA", at: now, set: true, opts: func(o *keyless.Options) {
			o.Trusted = otherCA{TrustedMaterial: vs, cas: other.FulcioCertificateAuthorities()}
		}, want: "leaf certificate verification failed"},
		{name: "SCT required, none embedded", at: now, set: true, opts: func(o *keyless.Options) { o.IgnoreSCT = false }, want: "signed certificate timestamp"},
		{name: "timestamp over other bytes", at: now, ts: true, mutate: func(k *keylessSig, _ []byte) {
			k.tsr, _ = vs.TimestampResponse([]byte("other bytes"))
		}, opts: func(o *keyless.Options) { o.IgnoreTlog = true }, want: "hashed messages don't match"},
		{name: "certificate and signature replaced, Rekor entry kept", at: now, set: true, mutate: func(k *keylessSig, payload []byte) {
			other := signKeyless(t, vs, testSubject, payload, now)
			k.sig, k.cert = other.sig, other.cert // a valid pair, but not the one logged
		}, want: "transparency log signature does not match"},
		{name: "signature by another certificate's key", at: now, set: true, mutate: func(k *keylessSig, payload []byte) {
			k.sig = signKeyless(t, vs, testSubject, payload, now).sig
		}, want: "signature does not verify with the certificate's key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ref := f.reg.Ref("app:1")
			f.reg.PushImage(t, ref)
			p := legacyPayload(t, f, ref)
			k := signKeyless(t, vs, testSubject, p, c.at)
			if c.mutate != nil {
				c.mutate(&k, p)
			}
			replaceAnnotations(t, f, sigTag(t, f, ref), k.annotations(c.set, c.ts))
			o := base
			if c.opts != nil {
				c.opts(&o)
			}
			res, err := f.verifyWith(t, ref, verify.Options{}, []verify.Option{verify.WithKeyless(o)})
			if c.want == "" {
				if err != nil {
					t.Fatalf("want verified, got %v (%+v)", err, res.Rejected)
				}
				s := res.Signatures[0]
				if s.Identity == nil || s.Identity.Subject != testSubject || len(s.SignedAt) == 0 {
					t.Fatalf("verified signature %+v lacks its identity or time", s)
				}
				return
			}
			mustFail(t, err, verify.ErrNotVerified, c.want, res)
		})
	}
}

// TestKeylessNeedsIdentity: a certificate signature is never accepted by a
// key-only verifier, and says what to give.
func TestKeylessNeedsIdentity(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	ref := f.reg.Ref("app:1")
	f.reg.PushImage(t, ref)
	p := legacyPayload(t, f, ref)
	k := signKeyless(t, vs, testSubject, p, time.Now().Add(2*time.Minute))
	replaceAnnotations(t, f, sigTag(t, f, ref), k.annotations(true, true))
	res, err := f.verify(t, ref, verify.Options{}, mustKey(t).Public())
	mustFail(t, err, verify.ErrNotVerified, "does not verify with any trusted key", res)
	if _, err := keyless.Verify(nil, keyless.Artifact{}, keyless.Options{Trusted: vs}); err == nil || !strings.Contains(err.Error(), "needs an identity") {
		t.Fatalf("no identity: %v", err)
	}
}

// pushKeylessBundle attaches to subject a v0.3 bundle of stmt signed by a
// fresh certificate of vs for subject identity who, as cosign v3 does.
func pushKeylessBundle(t testing.TB, f *fixture, vs *ca.VirtualSigstore, subject name.Digest, who string, stmt []byte) {
	t.Helper()
	pushKeylessBundleOf(t, f, vs, subject, who, stmt, statement.CosignSign)
}

// pushKeylessBundleOf is pushKeylessBundle for a statement of predicate
// type pt (an attestation).
func pushKeylessBundleOf(t testing.TB, f *fixture, vs *ca.VirtualSigstore, subject name.Digest, who string, stmt []byte, pt string) {
	t.Helper()
	data := keylesstest.VirtualBundle(t, vs, who, testIssuer, stmt)
	pushBundleJSON(t, f, subject, data, pt)
}

// pushBundleJSON attaches a bundle of an in-toto statement of predicate
// type pt to subject as a referrer, as cosign v3 does.
func pushBundleJSON(t testing.TB, f *fixture, subject name.Digest, data []byte, pt string) {
	t.Helper()
	keylesstest.AttachBundle(t, f.client, subject, data, pt)
}

func TestKeylessBundle(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	ref := f.reg.Ref("app:1")
	d := f.reg.PushImage(t, ref)
	h, _ := v1.NewHash(d.DigestStr())
	pushKeylessBundle(t, f, vs, d, testSubject, mustStatement(t, h, statement.CosignSign))
	o := keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}, IgnoreSCT: true}
	res, err := f.verifyWith(t, ref, verify.Options{Format: verify.FormatBundle}, []verify.Option{verify.WithKeyless(o)})
	if err != nil {
		t.Fatalf("want verified, got %v (%+v)", err, res.Rejected)
	}
	if s := res.Signatures[0]; s.Source != verify.SourceBundle || s.Identity == nil || s.Identity.Issuer != testIssuer || len(s.SignedAt) == 0 {
		t.Fatalf("verified %+v", s)
	}

	// Another identity, a second signer: a threshold of 2 counts them.
	pushKeylessBundle(t, f, vs, d, "second@example.com", mustStatement(t, h, statement.CosignSign))
	o.Identities = append(o.Identities, keyless.Identity{Subject: "second@example.com", Issuer: testIssuer})
	if res, err := f.verifyWith(t, ref, verify.Options{Format: verify.FormatBundle, Threshold: 2}, []verify.Option{verify.WithKeyless(o)}); err != nil {
		t.Fatalf("threshold 2 of two identities: %v (%+v)", err, res.Rejected)
	}
	if res, err := f.verifyWith(t, ref, verify.Options{Format: verify.FormatBundle, Threshold: 3}, []verify.Option{verify.WithKeyless(o)}); err == nil {
		t.Fatal("threshold 3 passed with two signers")
	} else {
		mustFail(t, err, verify.ErrNotVerified, "", res)
	}

	// A bundle about another image is refused for that reason.
	other := f.reg.PushImage(t, f.reg.Ref("other:1"))
	oh, _ := v1.NewHash(other.DigestStr())
	f2 := newFixture(t, nil)
	ref2 := f2.reg.Ref("app:2")
	d2 := f2.reg.PushImage(t, ref2)
	pushKeylessBundle(t, f2, vs, d2, testSubject, mustStatement(t, oh, statement.CosignSign))
	res, err = f2.verifyWith(t, ref2, verify.Options{Format: verify.FormatBundle}, []verify.Option{verify.WithKeyless(o)})
	mustFail(t, err, verify.ErrNotVerified, "about another image", res)

	// Wrong identity.
	o.Identities = []keyless.Identity{{Subject: "attacker@example.com", Issuer: testIssuer}}
	res, err = f.verifyWith(t, ref, verify.Options{Format: verify.FormatBundle}, []verify.Option{verify.WithKeyless(o)})
	mustFail(t, err, verify.ErrNotVerified, `expected SAN value "attacker@example.com"`, res)
}

func TestKeylessAttestation(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	const slsa = "https://slsa.dev/provenance/v1"
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("app:1"))
	h, _ := v1.NewHash(d.DigestStr())
	pushKeylessBundleOf(t, f, vs, d, testSubject, mustStatement(t, h, slsa), slsa)
	o := keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}, IgnoreSCT: true}
	v, err := verify.NewVerifier(f.client, nil, verify.WithKeyless(o))
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: slsa})
	if err != nil {
		t.Fatalf("want verified: %v %+v", err, res.Rejected)
	}
	if a := res.Attestations[0]; a.Identity == nil || a.Identity.Subject != testSubject || len(a.SignedAt) == 0 {
		t.Fatalf("verified %+v", a)
	}
	o.Identities = []keyless.Identity{{SubjectRegexp: "release", Issuer: testIssuer}}
	v, _ = verify.NewVerifier(f.client, nil, verify.WithKeyless(o))
	res, err = v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: slsa})
	mustFailAtt(t, res, err, verify.ErrNotVerified, "matches the WHOLE value")

	// An identity's window is judged against the attestation's verified
	// signing time (the TSA's, now: the entry's integrated time carries
	// no SET), on both sides.
	for _, c := range []struct {
		nb, na time.Duration
		want   string
	}{{-time.Hour, time.Hour, ""}, {0, -time.Minute, "after this identity's notAfter"}, {time.Hour, 0, "before this identity's notBefore"}} {
		id := keyless.Identity{Subject: testSubject, Issuer: testIssuer}
		if c.nb != 0 {
			id.NotBefore = time.Now().Add(c.nb)
		}
		if c.na != 0 {
			id.NotAfter = time.Now().Add(c.na)
		}
		o.Identities = []keyless.Identity{id}
		v, _ = verify.NewVerifier(f.client, nil, verify.WithKeyless(o))
		res, err = v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: slsa})
		if c.want == "" {
			if err != nil {
				t.Fatalf("inside the identity's window: %v %+v", err, res.Rejected)
			}
			continue
		}
		mustFailAtt(t, res, err, verify.ErrNotVerified, c.want)
	}
}

// TestKeylessLegacyChainAnnotation: cosign's dev.sigstore.cosign/chain
// annotation offers the intermediates between the certificate and a root
// of the trusted root, as cosign uses it; the chain is never trusted on its
// own, so one that leads to a root the trusted root does not list fails,
// saying so.
func TestKeylessLegacyChainAnnotation(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootOnly := func(of *ca.VirtualSigstore) root.TrustedMaterial {
		fca := *of.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
		fca.Intermediates = nil // the trusted root lists the root alone
		return otherCA{TrustedMaterial: vs, cas: []root.CertificateAuthority{&fca}}
	}
	vsCA := vs.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
	chainPEM := func(certs ...*x509.Certificate) string {
		var b strings.Builder
		for _, c := range certs {
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
		return b.String()
	}
	id := keyless.Identity{Subject: testSubject, Issuer: testIssuer}
	cases := []struct {
		name    string
		trusted root.TrustedMaterial
		chain   string // "" leaves the annotation out
		want    string
	}{
		{name: "intermediate from the chain annotation", trusted: rootOnly(vs), chain: chainPEM(vsCA.Intermediates[0], vsCA.Root)},
		{name: "intermediate only, no root in the annotation", trusted: rootOnly(vs), chain: chainPEM(vsCA.Intermediates[0], vsCA.Intermediates[0])},
		{name: "no chain annotation, no intermediate", trusted: rootOnly(vs), want: "leaf certificate verification failed"},
		{name: "chain to a root the trusted root does not list", trusted: rootOnly(other), chain: chainPEM(vsCA.Intermediates[0], vsCA.Root), want: "which is not a CA root of the trusted root"},
		{name: "empty chain annotation, as cosign writes without a chain", trusted: vs, chain: " "},
		{name: "chain annotation that is not PEM", trusted: rootOnly(vs), chain: "not a chain", want: "is not a PEM certificate chain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ref := f.reg.Ref("app:1")
			f.reg.PushImage(t, ref)
			p := legacyPayload(t, f, ref)
			k := signKeyless(t, vs, testSubject, p, time.Now().Add(2*time.Minute))
			ann := k.annotations(true, true)
			if c.chain != "" {
				ann[oci.ChainAnnotation] = c.chain
			}
			replaceAnnotations(t, f, sigTag(t, f, ref), ann)
			o := keyless.Options{Trusted: c.trusted, Identities: []keyless.Identity{id}, IgnoreSCT: true}
			res, err := f.verifyWith(t, ref, verify.Options{}, []verify.Option{verify.WithKeyless(o)})
			if c.want == "" {
				if err != nil {
					t.Fatalf("want verified, got %v (%+v)", err, res.Rejected)
				}
				return
			}
			mustFail(t, err, verify.ErrNotVerified, c.want, res)
		})
	}
}

// TestKeylessSCT: with SCTs required (the default), a certificate must
// carry an SCT that a CT log of the trusted root signed over this very
// certificate; an SCT signed by another key (though it names the trusted
// log) or over another certificate is refused for that reason.
func TestKeylessSCT(t *testing.T) {
	ks := keylesstest.New(t)
	other, _ := ks.Issue(t, keylesstest.Cert{Subject: "other@example.com", Issuer: testIssuer, NoSCT: true})
	cases := []struct {
		name string
		cert keylesstest.Cert
		want string
	}{
		{name: "SCT by the trusted CT log", cert: keylesstest.Cert{}},
		{name: "no SCT", cert: keylesstest.Cert{NoSCT: true}, want: "embeds no SCT"},
		{name: "SCT signed by a key not in the trusted root", cert: keylesstest.Cert{SCTKey: keylesstest.NewKey(t)}, want: "embeds 1 SCT(s), none signed over this certificate by a CT log of the trusted root"},
		{name: "SCT over another certificate", cert: keylesstest.Cert{SCTOver: other}, want: "embeds 1 SCT(s), none signed over this certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil)
			d := f.reg.PushImage(t, f.reg.Ref("app:1"))
			h, _ := v1.NewHash(d.DigestStr())
			c.cert.Subject, c.cert.Issuer = testSubject, testIssuer
			cert, key := ks.Issue(t, c.cert)
			pushBundleJSON(t, f, d, ks.DSSEBundle(t, cert, key, mustStatement(t, h, statement.CosignSign)), statement.CosignSign)
			o := keyless.Options{Trusted: ks, Identities: []keyless.Identity{{Subject: testSubject, Issuer: testIssuer}}}
			res, err := f.verifyWith(t, d.String(), verify.Options{Format: verify.FormatBundle}, []verify.Option{verify.WithKeyless(o)})
			if c.want == "" {
				if err != nil {
					t.Fatalf("want verified, got %v (%+v)", err, res.Rejected)
				}
				return
			}
			mustFail(t, err, verify.ErrNotVerified, c.want, res)
		})
	}
}

// A keyless attestation (verified without copying its payload) is bound
// to its envelope: a log entry of another envelope, a payload changed
// after signing, a second signature, and a timestamp over another
// signature with no log entry to date it, are each refused for that
// reason.
func TestKeylessAttestationBinding(t *testing.T) {
	const pt = "https://slsa.dev/provenance/v1"
	const subject, issuer = "ci@example.com", "https://issuer.example"
	s := keylesstest.New(t)
	cert, key := s.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer})
	f := newFixture(t, nil)
	o := keyless.Options{Trusted: s, Identities: []keyless.Identity{{Subject: subject, Issuer: issuer}}}
	v, err := verify.NewVerifier(f.client, nil, verify.WithKeyless(o))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(data []byte, change func(*protobundle.Bundle)) []byte {
		var pb protobundle.Bundle
		if err := protojson.Unmarshal(data, &pb); err != nil {
			t.Fatal(err)
		}
		change(&pb)
		out, err := protojson.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for i, c := range []struct {
		name   string
		change func(pb *protobundle.Bundle, other *protobundle.Bundle)
		want   string
		// noTlog verifies without log entries (--insecure-ignore-tlog):
		// the timestamp alone dates the signature.
		noTlog bool
		// identity, when set, is the identity required instead.
		identity *keyless.Identity
	}{
		{"valid", func(*protobundle.Bundle, *protobundle.Bundle) {}, "", false, nil},
		{"log entry of another envelope", func(pb, other *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries = other.VerificationMaterial.TlogEntries
		}, "failed to verify log inclusion: transparency log signature does not match", false, nil},
		{"log entry of this signature over another payload", func(pb, _ *protobundle.Bundle) {
			// What a lying log could record: this envelope's signature and
			// certificate with another payload's hash, under a valid SET.
			tle := pb.VerificationMaterial.TlogEntries[0]
			var body map[string]any
			if err := json.Unmarshal(tle.CanonicalizedBody, &body); err != nil {
				t.Fatal(err)
			}
			other := sha256.Sum256([]byte("another payload"))
			body["spec"].(map[string]any)["payloadHash"] = map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(other[:])}
			raw, _ := json.Marshal(body)
			set, err := s.RekorSignPayload(sgtlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(raw), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
			if err != nil {
				t.Fatal(err)
			}
			proof, err := s.GetInclusionProof(raw)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := sgtlog.NewEntry(raw, tle.IntegratedTime, tle.LogIndex, tle.LogId.KeyId, set, proof) //nolint:staticcheck // the constructor the test Sigstore uses
			if err != nil {
				t.Fatal(err)
			}
			lied := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
			lied.KindVersion = tle.KindVersion
			pb.VerificationMaterial.TlogEntries[0] = lied
		}, "failed to verify log inclusion: transparency log dsse/intoto entry payload hash " + hex.EncodeToString(func() []byte { d := sha256.Sum256([]byte("another payload")); return d[:] }()) + " does not match envelope payload hash", false, nil},
		{"payload changed", func(pb, _ *protobundle.Bundle) {
			pb.GetDsseEnvelope().Payload = bytes.Replace(pb.GetDsseEnvelope().Payload, []byte(`"x"`), []byte(`"y"`), 1)
		}, "the signature does not verify with the certificate's key", false, nil},
		{"two signatures", func(pb, other *protobundle.Bundle) {
			e := pb.GetDsseEnvelope()
			e.Signatures = append(e.Signatures, other.GetDsseEnvelope().Signatures...)
		}, "the envelope has 2 signatures", false, nil},
		{"no log entry", func(pb, _ *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries = nil
		}, "not enough verified log entries", false, nil},
		{"timestamp alone", func(pb, _ *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries = nil
		}, "", true, nil},
		{"timestamp of another signature alone", func(pb, other *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries = nil
			pb.VerificationMaterial.TimestampVerificationData = other.VerificationMaterial.TimestampVerificationData
		}, "threshold not met for verified signed & log entry integrated timestamps", true, nil},
		{"another identity", func(*protobundle.Bundle, *protobundle.Bundle) {}, "failed to verify certificate identity", false, &keyless.Identity{Subject: "mallory@example.com", Issuer: issuer}},
		{"certificate of a CA not trusted", func(pb, _ *protobundle.Bundle) {
			// Another Sigstore's certificate, with this Sigstore's log
			// entry and timestamp for it.
			s2 := keylesstest.New(t)
			c2, k2 := s2.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer})
			var o2 protobundle.Bundle
			if err := protojson.Unmarshal(s.DSSEBundle(t, c2, k2, pb.GetDsseEnvelope().GetPayload()), &o2); err != nil {
				t.Fatal(err)
			}
			pb.VerificationMaterial = o2.VerificationMaterial
			pb.Content = o2.Content
		}, "failed to verify leaf certificate", false, nil},
		{"certificate without SCT", func(pb, _ *protobundle.Bundle) {
			c2, k2 := s.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer, NoSCT: true})
			var o2 protobundle.Bundle
			if err := protojson.Unmarshal(s.DSSEBundle(t, c2, k2, pb.GetDsseEnvelope().GetPayload()), &o2); err != nil {
				t.Fatal(err)
			}
			pb.VerificationMaterial = o2.VerificationMaterial
			pb.Content = o2.Content
		}, "failed to verify signed certificate timestamp", false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := f.reg.PushImage(t, f.reg.Ref(fmt.Sprintf("bind:%d", i)))
			h, _ := v1.NewHash(d.DigestStr())
			stmt, err := statement.ForImage(h, pt, json.RawMessage(`{"x":"x"}`), nil)
			if err != nil {
				t.Fatal(err)
			}
			otherStmt, _ := statement.ForImage(h, pt, json.RawMessage(`{"x":"other"}`), nil)
			var other protobundle.Bundle
			if err := protojson.Unmarshal(s.DSSEBundle(t, cert, key, otherStmt), &other); err != nil {
				t.Fatal(err)
			}
			data := edit(s.DSSEBundle(t, cert, key, stmt), func(pb *protobundle.Bundle) { c.change(pb, &other) })
			keylesstest.AttachBundle(t, f.client, d, data, pt)
			v := v
			if c.noTlog || c.identity != nil {
				o := o
				o.IgnoreTlog = c.noTlog
				if c.identity != nil {
					o.Identities = []keyless.Identity{*c.identity}
				}
				if v, err = verify.NewVerifier(f.client, nil, verify.WithKeyless(o)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := v.VerifyAttestations(f.ctx, d, verify.AttestationOptions{PredicateType: pt, Format: verify.FormatBundle})
			if c.want == "" {
				if err != nil || res.Attestations[0].Identity == nil || res.Attestations[0].Identity.Subject != subject {
					t.Fatalf("want verified with a certificate: %v %+v", err, res)
				}
				return
			}
			if err == nil || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, c.want) {
				t.Fatalf("err = %v, rejected %+v; want a rejection for %q", err, res.Rejected, c.want)
			}
		})
	}
}
