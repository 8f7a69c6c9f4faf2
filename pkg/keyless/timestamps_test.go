package keyless_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// testTSA is a timestamp authority whose tokens carry any time the test
// chooses.
type testTSA struct {
	tsa *root.SigstoreTimestampingAuthority
	key *ecdsa.PrivateKey
}

func newTestTSA(t *testing.T, uri string) *testTSA {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateTSAIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Valid from 5 minutes ago for 10 minutes.
	leaf, err := ca.GenerateTSALeafCert(time.Now().Add(-5*time.Minute), key, inter, interKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testTSA{tsa: &root.SigstoreTimestampingAuthority{Root: rootCert, Intermediates: []*x509.Certificate{inter}, Leaf: leaf, URI: uri}, key: key}
}

// token is an RFC 3161 timestamp over sig at time at.
func (a *testTSA) token(t *testing.T, sig []byte, at time.Time) []byte {
	t.Helper()
	h := sha256.Sum256(sig)
	tok, err := (&timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: h[:], Time: at, Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2}}).CreateResponseWithOpts(a.tsa.Leaf, a.key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEveryTimestampCounts: every RFC 3161 timestamp of a certificate
// signature must verify under the trusted root and fall within the
// certificate's validity, not only the first of each authority that
// sigstore-go keeps. Both entry points (Verify, VerifyDSSE) are checked.
func TestEveryTimestampCounts(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tsa := newTestTSA(t, "https://tsa.test")
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), []root.TimestampingAuthority{tsa.tsa}, vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"` + strings.Repeat("0", 64) + `"}}],"predicateType":"https://example.com/p","predicate":{}}`)
	data := keylesstest.VirtualBundle(t, vs, benchSubject, benchIssuer, stmt)
	var b map[string]any
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	env := b["dsseEnvelope"].(map[string]any)
	sig, err := base64.StdEncoding.DecodeString(env["signatures"].([]any)[0].(map[string]any)["sig"].(string))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	// The certificate of the bundle is valid from its issuance (now) on.
	now := time.Now()
	foreign, err := vs.TimestampResponse(sig) // a TSA this root does not trust
	if err != nil {
		t.Fatal(err)
	}
	withTokens := func(tokens ...[]byte) []byte {
		var ts []any
		for _, tok := range tokens {
			ts = append(ts, map[string]any{"signedTimestamp": base64.StdEncoding.EncodeToString(tok)})
		}
		b["verificationMaterial"].(map[string]any)["timestampVerificationData"] = map[string]any{"rfc3161Timestamps": ts}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	o := keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: benchSubject, Issuer: benchIssuer}}, IgnoreSCT: true}
	verify := func(t *testing.T, data []byte) []error {
		var errs []error
		for _, dsse := range []bool{false, true} {
			e, err := keyless.ParseBundle(data)
			if err != nil {
				t.Fatal(err)
			}
			if dsse {
				_, err = keyless.VerifyDSSE(e, keyless.DSSE{PayloadType: env["payloadType"].(string), Payload: payload, Signature: sig}, o)
			} else {
				_, err = keyless.Verify(e, keyless.Artifact{}, o)
			}
			errs = append(errs, err)
		}
		return errs
	}
	inside := tsa.token(t, sig, now.Add(time.Minute))
	for _, c := range []struct {
		name   string
		tokens [][]byte
		want   string // "" passes
	}{
		{"one inside", [][]byte{inside}, ""},
		{"two inside", [][]byte{inside, tsa.token(t, sig, now.Add(2*time.Minute))}, ""},
		// Same authority: sigstore-go keeps the first and drops the second.
		{"second before the certificate", [][]byte{inside, tsa.token(t, sig, now.Add(-90*time.Second))}, "RFC 3161 timestamp 2 of 2 .* is outside certificate validity"},
		{"first before the certificate", [][]byte{tsa.token(t, sig, now.Add(-90*time.Second)), inside}, "outside certificate validity|leaf certificate"},
		{"second from an untrusted TSA", [][]byte{inside, foreign}, "RFC 3161 timestamp 2 of 2 does not verify"},
		{"second over another signature", [][]byte{inside, tsa.token(t, append(bytes.Clone(sig), 0), now.Add(time.Minute))}, "RFC 3161 timestamp 2 of 2 does not verify"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, err := range verify(t, withTokens(c.tokens...)) {
				entry := []string{"Verify", "VerifyDSSE"}[i]
				switch {
				case c.want == "" && err != nil:
					t.Fatalf("%s: %v", entry, err)
				case c.want == "":
				case err == nil:
					t.Fatalf("%s verified", entry)
				case !regexp.MustCompile(c.want).MatchString(err.Error()):
					t.Fatalf("%s: %v, want /%s/", entry, err, c.want)
				}
			}
		})
	}
}
