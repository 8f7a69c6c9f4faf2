package keyless

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// testCA issues certificates for the TSA chain tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64

// issue makes a certificate from tmpl, signed by parent (self-signed when
// parent is nil).
func issue(t *testing.T, tmpl *x509.Certificate, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

func caTemplate(name string, from, to time.Time, eku ...x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, NotBefore: from, NotAfter: to,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, ExtKeyUsage: eku,
	}
}

// tsaLeafTemplate is a TSA certificate as RFC 3161 wants it: one,
// critical, time-stamping extended key usage.
func tsaLeafTemplate(from, to time.Time) *x509.Certificate {
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: "tsa"}, NotBefore: from, NotAfter: to,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
}

// stamp is an RFC 3161 response by leaf over sig, dated at.
func stamp(t *testing.T, leaf *testCA, sig []byte, at time.Time) []byte {
	t.Helper()
	h := sha256.Sum256(sig)
	ts := timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: h[:], Time: at, Policy: asn1.ObjectIdentifier{1, 2, 3}, AddTSACertificate: true}
	r, err := ts.CreateResponseWithOpts(leaf.cert, leaf.key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChainedTSAMatchesSigstore checks the TSA whose chain is verified once
// against sigstore-go's own TSA verification, timestamp by timestamp: the
// same verdict, and for a rejection the same reason, including when the
// token's time falls outside the chain's validity (the intermediate has
// expired, the root is not yet valid) and when the chain itself is wrong.
func TestChainedTSAMatchesSigstore(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	day := 24 * time.Hour
	rootCA := issue(t, caTemplate("root", now.Add(-30*day), now.Add(30*day)), nil)
	// The intermediate is valid for the last ten days and the next two.
	inter := issue(t, caTemplate("intermediate", now.Add(-10*day), now.Add(2*day), x509.ExtKeyUsageTimeStamping), rootCA)
	leaf := issue(t, tsaLeafTemplate(now.Add(-20*day), now.Add(20*day)), inter)
	// A chain whose intermediate may not be used for time-stamping.
	badInter := issue(t, caTemplate("web intermediate", now.Add(-10*day), now.Add(2*day), x509.ExtKeyUsageServerAuth), rootCA)
	badLeaf := issue(t, tsaLeafTemplate(now.Add(-20*day), now.Add(20*day)), badInter)
	// Another TSA under the same root, not in the trusted root.
	otherLeaf := issue(t, tsaLeafTemplate(now.Add(-20*day), now.Add(20*day)), inter)

	good := &root.SigstoreTimestampingAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{inter.cert}, Leaf: leaf.cert, URI: "https://tsa.example"}
	windowed := &root.SigstoreTimestampingAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{inter.cert}, Leaf: leaf.cert, URI: "https://tsa.example", ValidityPeriodStart: now.Add(-day), ValidityPeriodEnd: now.Add(day)}
	wrongEKU := &root.SigstoreTimestampingAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{badInter.cert}, Leaf: badLeaf.cert, URI: "https://bad.example"}

	sig := []byte("the signature")
	cases := []struct {
		name    string
		tsa     *root.SigstoreTimestampingAuthority
		token   []byte
		over    []byte
		cached  bool // the chain verifies: the fast path is taken
		wantErr string
	}{
		{"valid now", good, stamp(t, leaf, sig, now), sig, true, ""},
		{"valid, 9 days ago", good, stamp(t, leaf, sig, now.Add(-9*day)), sig, true, ""},
		{"intermediate expired at the token's time", good, stamp(t, leaf, sig, now.Add(5*day)), sig, true, "error while verifying signer certificate chain"},
		{"intermediate not yet valid at the token's time", good, stamp(t, leaf, sig, now.Add(-15*day)), sig, true, "error while verifying signer certificate chain"},
		{"leaf expired at the token's time", good, stamp(t, leaf, sig, now.Add(25*day)), sig, true, "error while verifying signer certificate chain"},
		{"token over other bytes", good, stamp(t, leaf, sig, now), []byte("other bytes"), true, "hashed messages don't match"},
		{"token by another TSA", good, stamp(t, otherLeaf, sig, now), sig, true, "does not match the provided TSA certificate"},
		{"outside the TSA's validity period", windowed, stamp(t, leaf, sig, now.Add(-2*day)), sig, true, "timestamp is before the validity period start"},
		{"intermediate not for time-stamping", wrongEKU, stamp(t, badLeaf, sig, now), sig, false, "error while verifying signer certificate chain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, wantErr := c.tsa.Verify(c.token, c.over)
			ch := chainOf(c.tsa)
			if got := ch != nil && len(ch.windows) > 0; got != c.cached {
				t.Fatalf("chain cached = %v, want %v", got, c.cached)
			}
			var got *root.Timestamp
			var err error
			if c.cached {
				got, err = (&chainedTSA{SigstoreTimestampingAuthority: c.tsa, chain: ch}).Verify(c.token, c.over)
			} else {
				got, err = c.tsa.Verify(c.token, c.over)
			}
			if c.wantErr == "" {
				if wantErr != nil || err != nil {
					t.Fatalf("sigstore-go: %v; chained: %v; want both to verify", wantErr, err)
				}
				if !got.Time.Equal(want.Time) || got.URI != want.URI {
					t.Fatalf("chained gives %v %s, sigstore-go %v %s", got.Time, got.URI, want.Time, want.URI)
				}
				return
			}
			if wantErr == nil || err == nil {
				t.Fatalf("sigstore-go: %v; chained: %v; want both to fail with %q", wantErr, err, c.wantErr)
			}
			if !strings.Contains(wantErr.Error(), c.wantErr) || err.Error() != wantErr.Error() {
				t.Fatalf("chained: %q\nsigstore-go: %q\nwant both to say %q", err, wantErr, c.wantErr)
			}
		})
	}
}

// TestWithChainCache checks which TSAs of trusted material get the chain
// cache, and that it is safe for concurrent use.
func TestWithChainCache(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	rootCA := issue(t, caTemplate("root", now.Add(-time.Hour), now.Add(time.Hour)), nil)
	leaf := issue(t, tsaLeafTemplate(now.Add(-time.Hour), now.Add(time.Hour)), rootCA)
	good := &root.SigstoreTimestampingAuthority{Root: rootCA.cert, Leaf: leaf.cert, URI: "https://tsa.example"}
	noLeaf := &root.SigstoreTimestampingAuthority{Root: rootCA.cert, URI: "https://noleaf.example"}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, []root.TimestampingAuthority{noLeaf, good}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := withChainCache(tr, true)
	tsas := m.TimestampingAuthorities()
	if tsas[0] != noLeaf {
		t.Errorf("a TSA without a leaf certificate in the trusted root is wrapped: %T", tsas[0])
	}
	if _, ok := tsas[1].(*chainedTSA); !ok {
		t.Fatalf("the TSA with a full chain is not wrapped: %T", tsas[1])
	}
	if plain := (&root.BaseTrustedMaterial{}); withChainCache(plain, true) != root.TrustedMaterial(plain) {
		t.Error("material without TSAs is wrapped")
	}
	sig := []byte("sig")
	token := stamp(t, leaf, sig, now)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := withChainCache(tr, true).TimestampingAuthorities()[1].Verify(token, sig); err != nil {
				errs <- err
			}
			if _, err := withChainCache(tr, true).TimestampingAuthorities()[1].Verify(token, bytes.Repeat(sig, 2)); err == nil {
				errs <- errTest
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var errTest = errors.New("a token over other bytes verified")

// leafTemplate is a signing certificate as Fulcio issues it.
func leafTemplate(from, to time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{}, NotBefore: from, NotAfter: to, EmailAddresses: []string{"signer@example.com"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
}

// TestChainedCAMatchesSigstore checks the certificate authority whose own
// chain is verified once against sigstore-go's, certificate by
// certificate: the same verdict and chains, and for a rejection the same
// reason. The cases include chains whose root constrains what is below it
// (path length, names), where an intermediate may not stand for the chain
// above it.
func TestChainedCAMatchesSigstore(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	day := 24 * time.Hour
	rootCA := issue(t, caTemplate("root", now.Add(-30*day), now.Add(30*day)), nil)
	// The intermediate is valid for the last ten days and the next two.
	inter := issue(t, caTemplate("intermediate", now.Add(-10*day), now.Add(2*day), x509.ExtKeyUsageCodeSigning), rootCA)
	good := &root.FulcioCertificateAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{inter.cert}, URI: "https://fulcio.example"}
	windowed := &root.FulcioCertificateAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{inter.cert}, URI: "https://fulcio.example", ValidityPeriodStart: now.Add(-day)}

	// A root that expires before its intermediate does.
	rootS := issue(t, caTemplate("short-lived root", now.Add(-30*day), now.Add(day)), nil)
	interS := issue(t, caTemplate("intermediate outliving its root", now.Add(-10*day), now.Add(10*day), x509.ExtKeyUsageCodeSigning), rootS)
	shortRoot := &root.FulcioCertificateAuthority{Root: rootS.cert, Intermediates: []*x509.Certificate{interS.cert}}

	// A root that allows no intermediate below it.
	t0 := caTemplate("root, path length 0", now.Add(-30*day), now.Add(30*day))
	t0.MaxPathLen, t0.MaxPathLenZero = 0, true
	root0 := issue(t, t0, nil)
	inter0 := issue(t, caTemplate("intermediate under path length 0", now.Add(-10*day), now.Add(2*day)), root0)
	pathLen0 := &root.FulcioCertificateAuthority{Root: root0.cert, Intermediates: []*x509.Certificate{inter0.cert}}

	// A root that allows email addresses at example.org only.
	tn := caTemplate("root for example.org", now.Add(-30*day), now.Add(30*day))
	tn.PermittedEmailAddresses = []string{"example.org"}
	rootN := issue(t, tn, nil)
	interN := issue(t, caTemplate("intermediate under example.org", now.Add(-10*day), now.Add(2*day)), rootN)
	named := &root.FulcioCertificateAuthority{Root: rootN.cert, Intermediates: []*x509.Certificate{interN.cert}}

	// An intermediate for web servers, not code signing.
	interW := issue(t, caTemplate("web intermediate", now.Add(-10*day), now.Add(2*day), x509.ExtKeyUsageServerAuth), rootCA)
	web := &root.FulcioCertificateAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{interW.cert}}

	// An intermediate that is not a CA.
	tl := caTemplate("not a CA", now.Add(-10*day), now.Add(2*day))
	tl.IsCA = false
	interL := issue(t, tl, rootCA)
	notCA := &root.FulcioCertificateAuthority{Root: rootCA.cert, Intermediates: []*x509.Certificate{interL.cert}}

	// A signing certificate that requires an explicit policy, under an
	// intermediate with none.
	tp := leafTemplate(now.Add(-time.Hour), now.Add(time.Hour))
	// policyConstraints { requireExplicitPolicy [0] 0 }, critical.
	tp.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 36}, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, 0x00}}}
	tp.Policies = []x509.OID{mustOID(t, "1.2.3.4")}

	other := issue(t, caTemplate("other root", now.Add(-30*day), now.Add(30*day)), nil)
	otherInter := issue(t, caTemplate("other intermediate", now.Add(-10*day), now.Add(2*day), x509.ExtKeyUsageCodeSigning), other)

	leaf := func(parent *testCA, tmpl *x509.Certificate) *x509.Certificate {
		return issue(t, tmpl, parent).cert
	}
	fresh := func(parent *testCA) *x509.Certificate {
		return leaf(parent, leafTemplate(now.Add(-time.Hour), now.Add(time.Hour)))
	}
	cases := []struct {
		name     string
		ca       *root.FulcioCertificateAuthority
		cert     *x509.Certificate
		at       time.Time
		standsIn bool // the intermediate stands for its chain
		wantErr  string
	}{
		{"valid", good, fresh(inter), now, true, ""},
		{"intermediate expired at signing time", good, leaf(inter, leafTemplate(now.Add(3*day), now.Add(4*day))), now.Add(3*day + time.Hour), true, "x509: certificate has expired or is not yet valid"},
		{"root not yet valid at signing time", good, leaf(inter, leafTemplate(now.Add(-40*day), now.Add(40*day))), now.Add(-35 * day), true, "x509: certificate has expired or is not yet valid"},
		{"root expired at signing time", shortRoot, leaf(interS, leafTemplate(now.Add(3*day), now.Add(4*day))), now.Add(3*day + time.Hour), true, "x509: certificate has expired or is not yet valid"},
		{"valid before the root expires", shortRoot, fresh(interS), now, true, ""},
		{"certificate not valid at signing time", good, fresh(inter), now.Add(2 * time.Hour), true, "x509: certificate has expired or is not yet valid"},
		{"before the CA's validity period", windowed, fresh(inter), now.Add(-2 * day), true, "certificate is not valid yet"},
		{"issued by another CA", good, fresh(otherInter), now, true, "x509: certificate signed by unknown authority"},
		{"certificate requiring an explicit policy", good, leaf(inter, tp), now, true, "invalid policies"},
		{"root allows no intermediate", pathLen0, fresh(inter0), now, false, "too many intermediates"},
		{"root constrains names", named, fresh(interN), now, false, "email address"},
		{"intermediate not for code signing", web, fresh(interW), now, false, "incompatible key usage"},
		{"intermediate not a CA", notCA, fresh(interL), now, false, "x509:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, wantErr := c.ca.Verify(c.cert, c.at)
			ch := caChainOf(c.ca)
			if got := len(ch.above) > 0; got != c.standsIn {
				t.Fatalf("intermediate stands in = %v, want %v", got, c.standsIn)
			}
			got, err := (&chainedCA{FulcioCertificateAuthority: c.ca, chain: ch}).Verify(c.cert, c.at)
			if c.wantErr == "" {
				if wantErr != nil || err != nil {
					t.Fatalf("sigstore-go: %v; chained: %v; want both to verify", wantErr, err)
				}
				if len(got) != len(want) {
					t.Fatalf("chained gives %d chains, sigstore-go %d", len(got), len(want))
				}
				for i := range got {
					if len(got[i]) != len(want[i]) {
						t.Fatalf("chain %d: %d certificates, sigstore-go %d", i, len(got[i]), len(want[i]))
					}
					for j := range got[i] {
						if !got[i][j].Equal(want[i][j]) {
							t.Fatalf("chain %d differs at %d: %s, sigstore-go %s", i, j, got[i][j].Subject, want[i][j].Subject)
						}
					}
				}
				return
			}
			if wantErr == nil || err == nil {
				t.Fatalf("sigstore-go: %v; chained: %v; want both to fail with %q", wantErr, err, c.wantErr)
			}
			if !strings.Contains(wantErr.Error(), c.wantErr) || err.Error() != wantErr.Error() {
				t.Fatalf("chained: %q\nsigstore-go: %q\nwant both to say %q", err, wantErr, c.wantErr)
			}
		})
	}
}

func mustOID(t *testing.T, s string) x509.OID {
	t.Helper()
	o, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestPublicGoodRootIsCached checks that the public-good trusted root's
// current Fulcio CA and its TSA use the chain caches.
func TestPublicGoodRootIsCached(t *testing.T) {
	tr, err := root.NewTrustedRootFromPath("../blob/testdata/sigstore/bundle-verify/rekor2-happy-path/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	m := withChainCache(tr, true)
	n := 0
	for _, ca := range m.FulcioCertificateAuthorities() {
		if _, ok := ca.(*chainedCA); ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d public-good CAs use the chain cache, want 1 (the one with an intermediate)", n)
	}
	for _, a := range m.TimestampingAuthorities() {
		if _, ok := a.(*chainedTSA); !ok {
			t.Errorf("public-good TSA %T does not use the chain cache", a)
		}
	}
}
