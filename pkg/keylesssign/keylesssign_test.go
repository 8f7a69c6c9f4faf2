package keylesssign

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/pkg/idtoken"
	"github.com/imgsign/imgsign/pkg/oci"
	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

const (
	testEmail  = sigstoretest.Email
	testIssuer = sigstoretest.Issuer
)

func newFakeSigstore(t *testing.T) *sigstoretest.Fake { return sigstoretest.Start(t) }

func token(t *testing.T, exp time.Time) *idtoken.Token { return sigstoretest.Token(t, exp) }

// TestSignManyOneCertificate: one Signer signs many messages, envelopes and
// digests concurrently with ONE Fulcio request and one timestamp each;
// every bundle verifies against the trusted root with the token's
// identity, and the legacy annotations are cosign's.
func TestSignManyOneCertificate(t *testing.T) {
	f := newFakeSigstore(t)
	ctx := context.Background()
	s, err := New(ctx, Options{Services: Services{Fulcio: f.FulcioURL, TSAs: []string{f.TSAURL}}, Token: token(t, time.Now().Add(time.Minute)), Trusted: f.Trusted})
	if err != nil {
		t.Fatal(err)
	}
	if s.Identity() != testEmail || !strings.Contains(s.ChainPEM(), "BEGIN CERTIFICATE") {
		t.Fatalf("identity %q, chain %q", s.Identity(), s.ChainPEM())
	}
	const n = 12
	out := make([]*Signed, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := payloadOf(i)
			switch i % 3 {
			case 0:
				out[i], errs[i] = s.Message(ctx, data)
			case 1:
				out[i], errs[i] = s.DSSE(ctx, "application/vnd.in-toto+json", data)
			default:
				d := sha256.Sum256(data)
				out[i], errs[i] = s.Digest(ctx, d[:])
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	st := s.Stats()
	if st.FulcioRequests != 1 || f.FulcioCalls.Load() != 1 || st.TSARequests != n || f.TSACalls.Load() != n || st.Signatures != n || st.LogEntries != 0 {
		t.Fatalf("stats %+v, fake Fulcio %d, fake TSA %d", st, f.FulcioCalls.Load(), f.TSACalls.Load())
	}
	v, err := verify.NewVerifier(f.Trusted, verify.WithSignedTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	id, err := verify.NewShortCertificateIdentity(testIssuer, "", testEmail, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range out {
		if errs[i] != nil {
			t.Fatalf("%d: %v", i, errs[i])
		}
		data, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var b sgbundle.Bundle
		if err := b.UnmarshalJSON(data); err != nil {
			t.Fatal(err)
		}
		art := verify.WithArtifact(strings.NewReader(string(payloadOf(i))))
		if i%3 == 1 {
			art = verify.WithoutArtifactUnsafe()
		}
		if _, err := v.Verify(&b, verify.NewPolicy(art, verify.WithCertificateIdentity(id))); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		// The certificate is the run's one.
		if got := b.VerificationMaterial.GetCertificate().GetRawBytes(); string(got) != string(s.cert) {
			t.Fatalf("%d: another certificate", i)
		}
	}
	ann, err := s.LegacyAnnotations(out[0])
	if err != nil {
		t.Fatal(err)
	}
	var ts struct{ SignedRFC3161Timestamp []byte }
	if err := json.Unmarshal([]byte(ann[oci.TimestampAnnotation]), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
		t.Fatalf("timestamp annotation %q: %v", ann[oci.TimestampAnnotation], err)
	}
	if ann[oci.CertificateAnnotation] != s.CertificatePEM() || ann[oci.ChainAnnotation] != s.ChainPEM() {
		t.Fatalf("annotations %v", ann)
	}
	if _, ok := ann["dev.sigstore.cosign/bundle"]; ok {
		t.Fatal("a Rekor bundle annotation without a log")
	}
	// An envelope's timestamp is over its signature, not the stored
	// envelope cosign timestamps in the legacy layout: not written there.
	if ann, _ := s.LegacyAnnotations(out[1]); ann[oci.TimestampAnnotation] != "" {
		t.Fatal("timestamp annotation on an envelope")
	}
}

// payloadOf is test payload i: an in-toto statement (envelopes carry one).
func payloadOf(i int) []byte {
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"img","digest":{"sha256":"%064x"}}],"predicateType":"https://imgsign.test/p","predicate":{}}`, i))
}

// TestFulcioRefusalNeverShowsToken: Fulcio refusing (and echoing the
// token) gives ErrService, the reason and the token's claims, never the
// token.
func TestFulcioRefusalNeverShowsToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":16,"message":"There was an error processing the identity token: `+r.Header.Get("Authorization")+`"}`, http.StatusUnauthorized)
	}))
	defer srv.Close()
	tok := token(t, time.Now().Add(time.Minute))
	_, err := New(context.Background(), Options{Services: Services{Fulcio: srv.URL, TSAs: []string{"http://127.0.0.1:1"}}, Token: tok})
	if !errors.Is(err, ErrService) {
		t.Fatalf("%v", err)
	}
	for _, w := range []string{"Fulcio " + srv.URL + " did not issue a certificate", "returned 401", "issuer " + testIssuer, `audience Fulcio expects ("sigstore"`, "[REDACTED]"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error lacks %q: %v", w, err)
		}
	}
	if strings.Contains(err.Error(), tok.Raw()) || strings.Contains(err.Error(), "secret-signature-of-the-token") {
		t.Fatalf("the token is in the error: %v", err)
	}
}

// TestCertificateExpiredMidRun: once the certificate is about to expire,
// nothing more is signed (no service is asked) and the error says why.
func TestCertificateExpiredMidRun(t *testing.T) {
	f := newFakeSigstore(t)
	var now atomic.Value
	now.Store(time.Now())
	s, err := New(context.Background(), Options{Services: Services{Fulcio: f.FulcioURL, TSAs: []string{f.TSAURL}}, Token: token(t, time.Now().Add(time.Minute)),
		Now: func() time.Time { return now.Load().(time.Time) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(context.Background(), []byte("first")); err != nil {
		t.Fatal(err)
	}
	now.Store(s.NotAfter().Add(-10 * time.Second))
	_, err = s.Message(context.Background(), []byte("late"))
	if !errors.Is(err, ErrCertificateExpired) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("%v", err)
	}
	if f.TSACalls.Load() != 1 {
		t.Fatalf("the TSA was asked %d times, want 1 (none after expiry)", f.TSACalls.Load())
	}
}

// TestTSADown: an unreachable TSA is a service error naming it.
func TestTSADown(t *testing.T) {
	f := newFakeSigstore(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/api/v1/timestamp"
	dead.Close()
	s, err := New(context.Background(), Options{Services: Services{Fulcio: f.FulcioURL, TSAs: []string{deadURL}}, Token: token(t, time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Message(context.Background(), []byte("x"))
	if !errors.Is(err, ErrService) || !strings.Contains(err.Error(), "timestamp authority "+deadURL+" did not timestamp the signature") {
		t.Fatalf("%v", err)
	}
	// A TSA that answers an error: its status is in the message.
	f.FailTSA.Store(true)
	s, err = New(context.Background(), Options{Services: Services{Fulcio: f.FulcioURL, TSAs: []string{f.TSAURL}}, Token: token(t, time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.DSSE(context.Background(), "application/vnd.in-toto+json", payloadOf(1))
	if !errors.Is(err, ErrService) || !strings.Contains(err.Error(), "timestamp authority "+f.TSAURL+" did not timestamp the signature (last answer: HTTP 503)") {
		t.Fatalf("%v", err)
	}
}

func TestSelect(t *testing.T) {
	now := time.Now()
	svc := func(url string, v uint32) root.Service {
		return root.Service{URL: url, MajorAPIVersion: v, ValidityPeriodStart: now.Add(-time.Hour)}
	}
	anyOne := root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY}
	sc := func(logs []root.Service, tsas []root.Service) *root.SigningConfig {
		c, err := root.NewSigningConfig(root.SigningConfigMediaType02, []root.Service{svc("https://fulcio.test", 1)},
			[]root.Service{svc("https://oauth.test", 1)}, logs, anyOne, tsas, anyOne)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	both := sc([]root.Service{svc("https://rekor-v1.test", 1), svc("https://rekor-v2.test", 2)}, []root.Service{svc("https://tsa.test", 1)})
	for _, c := range []struct {
		name     string
		sc       *root.SigningConfig
		o        Overrides
		versions []uint32
		want     string // Services as text, or the error's start
	}{
		{"newest log for bundles", both, Overrides{}, []uint32{1, 2}, "https://fulcio.test [{https://rekor-v2.test 2}] [https://tsa.test]"},
		{"v1 for the legacy layout", both, Overrides{}, []uint32{1}, "https://fulcio.test [{https://rekor-v1.test 1}] [https://tsa.test]"},
		{"overrides", both, Overrides{FulcioURL: "https://f2.test", RekorURL: "https://r2.test", TSAURL: "https://t2.test"}, []uint32{1}, "https://f2.test [{https://r2.test 1}] [https://t2.test]"},
		{"no config, flags only", nil, Overrides{FulcioURL: "https://f.test", TSAURL: "https://t.test"}, []uint32{1}, "https://f.test [] [https://t.test]"},
		{"no Fulcio", nil, Overrides{TSAURL: "https://t.test"}, []uint32{1}, "error: no Fulcio"},
		{"no log, no TSA", sc(nil, nil), Overrides{}, []uint32{1}, "error: neither a transparency log nor a timestamp authority"},
		{"Rekor v2 without TSA", sc([]root.Service{svc("https://rekor-v2.test", 2)}, nil), Overrides{}, []uint32{1, 2}, "error: Rekor v2 log https://rekor-v2.test gives no signing time"},
		{"only v2 for legacy", sc([]root.Service{svc("https://rekor-v2.test", 2)}, nil), Overrides{}, []uint32{1}, "error: signing config: no transparency log of API version 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Select(c.sc, c.o, c.versions, now)
			got := fmt.Sprintf("%s %v %v", s.Fulcio, s.Logs, s.TSAs)
			if err != nil {
				got = "error: " + err.Error()
			}
			if !strings.HasPrefix(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
