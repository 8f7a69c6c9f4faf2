// Package sigstoretest runs an in-process Fulcio (certifying any requested
// key for one email identity under a test CA) and RFC 3161 timestamp
// authority, with the trusted root naming both, for fast unit tests of
// keyless signing. It is for tests only; the e2e suite runs the real
// Fulcio, CT log, TSA and Rekor.
package sigstoretest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/imgsign/imgsign/pkg/idtoken"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// The identity the fake Fulcio certifies.
const (
	Email  = "ci@imgsign.test"
	Issuer = "https://issuer.imgsign.test"
)

// Fake is a running in-process Fulcio and TSA.
type Fake struct {
	FulcioURL, TSAURL string
	// Trusted names the fake CA and TSA.
	Trusted root.TrustedMaterial
	// FulcioCalls and TSACalls count the requests received.
	FulcioCalls, TSACalls atomic.Int64
	// FailTSA makes the TSA answer 503.
	FailTSA atomic.Bool
}

type pubOnly struct{ pub crypto.PublicKey }

func (p pubOnly) Public() crypto.PublicKey { return p.pub }
func (p pubOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("public key only")
}

// Start starts the fake for the test's lifetime.
func Start(t testing.TB) *Fake {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaInter, tsaInterKey, err := ca.GenerateTSAIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tsaLeaf, err := ca.GenerateTSALeafCert(time.Now().Add(-time.Minute), tsaKey, tsaInter, tsaInterKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{}
	fulcio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.FulcioCalls.Add(1)
		var req struct {
			PublicKeyRequest struct {
				PublicKey struct{ Content string } `json:"publicKey"`
			} `json:"publicKeyRequest"`
		}
		if r.URL.Path != "/api/v2/signingCert" || json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		leaf, err := ca.GenerateLeafCert(Email, Issuer, time.Now().Add(-time.Minute), pubOnly{pub}, inter, interKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var chain []string
		for _, c := range []*x509.Certificate{leaf, inter, rootCert} {
			chain = append(chain, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
		}
		json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": chain}}})
	}))
	t.Cleanup(fulcio.Close)
	tsa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.TSACalls.Add(1)
		if f.FailTSA.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		req, err := timestamp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ts := timestamp.Timestamp{HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage, Time: time.Now(),
			Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2}}
		resp, err := ts.CreateResponseWithOpts(tsaLeaf, tsaKey, crypto.SHA256)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(resp)
	}))
	t.Cleanup(tsa.Close)
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: rootCert, Intermediates: []*x509.Certificate{inter}, ValidityPeriodStart: time.Now().Add(-time.Hour)}},
		nil,
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{Root: rootCert, Intermediates: []*x509.Certificate{tsaInter}, Leaf: tsaLeaf, ValidityPeriodStart: time.Now().Add(-time.Hour)}},
		nil)
	if err != nil {
		t.Fatal(err)
	}
	f.FulcioURL, f.TSAURL, f.Trusted = fulcio.URL, tsa.URL, tr
	return f
}

// Token makes an identity token for Email, expiring at exp (its signature
// is not checked by the fake Fulcio; its last part is the text
// "secret-signature-of-the-token").
func Token(t testing.TB, exp time.Time) *idtoken.Token {
	t.Helper()
	claims, _ := json.Marshal(map[string]any{"iss": Issuer, "sub": Email, "email": Email, "email_verified": true, "aud": "sigstore", "exp": exp.Unix()})
	enc := base64.RawURLEncoding.EncodeToString
	raw := enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + "." + enc([]byte("secret-signature-of-the-token"))
	tok, err := idtoken.Get(context.Background(), idtoken.Options{Flag: raw, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
