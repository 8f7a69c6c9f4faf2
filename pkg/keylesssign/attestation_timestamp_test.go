package keylesssign

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imgsign/imgsign/pkg/keyless"
)

// TestAttestationTimestamp: a legacy attestation layer's timestamp covers
// the whole layer (as cosign v2 writes it and cosign verifies it), is
// verified against the trusted root before use, costs one TSA request, and
// is "" without a TSA; a failing TSA is a service error naming it.
func TestAttestationTimestamp(t *testing.T) {
	f := newFakeSigstore(t)
	ctx := context.Background()
	s, err := New(ctx, Options{Services: Services{Fulcio: f.FulcioURL, TSAs: []string{f.TSAURL}}, Token: token(t, time.Now().Add(time.Minute)), Trusted: f.Trusted})
	if err != nil {
		t.Fatal(err)
	}
	layer := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AAAA"}]}`)
	ann, err := s.AttestationTimestamp(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	var ts struct{ SignedRFC3161Timestamp []byte }
	if err := json.Unmarshal([]byte(ann), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
		t.Fatalf("annotation %q is not cosign's timestamp JSON: %v", ann, err)
	}
	if _, err := keyless.VerifyTimestamp(ts.SignedRFC3161Timestamp, layer, f.Trusted); err != nil {
		t.Fatalf("the timestamp does not verify over the layer: %v", err)
	}
	if _, err := keyless.VerifyTimestamp(ts.SignedRFC3161Timestamp, []byte("AAAA"), f.Trusted); err == nil || !strings.Contains(err.Error(), "hashed messages don't match") {
		t.Fatalf("the timestamp verifies over other bytes: %v", err)
	}
	if st := s.Stats(); st.TSARequests != 1 {
		t.Fatalf("stats %+v, want 1 TSA request", st)
	}

	none, err := New(ctx, Options{Services: Services{Fulcio: f.FulcioURL, Logs: []Log{{URL: "http://127.0.0.1:1", Version: 1}}}, Token: token(t, time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if ann, err := none.AttestationTimestamp(ctx, layer); ann != "" || err != nil {
		t.Fatalf("without a TSA: %q, %v", ann, err)
	}

	f.FailTSA.Store(true)
	_, err = s.AttestationTimestamp(ctx, layer)
	if !errors.Is(err, ErrService) || !strings.Contains(err.Error(), "timestamp authority "+f.TSAURL+" did not timestamp the attestation layer (last answer: HTTP 503)") {
		t.Fatalf("%v", err)
	}
}
