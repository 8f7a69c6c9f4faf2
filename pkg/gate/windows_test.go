package gate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/verify"
)

// TestAttestationKeyWindows: a key's notBefore/notAfter bounds the
// VERIFIED signing time of its attestations as it does its signatures.
// Image "late" is signed at t0 and attested two seconds later; image
// "early" the other way round. A window ending at t0+1s keeps late's
// signature and refuses its attestation; one starting at t0+1s keeps
// early's signature and refuses its attestation; a wide window passes both.
func TestAttestationKeyWindows(t *testing.T) {
	e := newEnv(t)
	log := tlogtest.NewV1(t)
	if err := os.WriteFile(filepath.Join(e.dir, "rekor.pub"), log.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	logClient, err := tlog.NewClient(log.URL, tlog.V1, nil)
	if err != nil {
		t.Fatal(err)
	}
	at, err := attest.NewAttester(e.client, e.keys["a"])
	if err != nil {
		t.Fatal(err)
	}
	attestLogged := func(d name.Digest) {
		t.Helper()
		if _, err := at.Attest(context.Background(), d, attest.Options{PredicateType: "https://slsa.dev/provenance/v1", Predicate: []byte(`{}`), Log: logClient}); err != nil {
			t.Fatal(err)
		}
	}
	late := e.reg.PushImage(t, e.reg.Ref("late/app:v1"))
	early := e.reg.PushImage(t, e.reg.Ref("early/app:v1"))
	t0 := time.Now().Truncate(time.Second)
	e.sign(t, late, "a", sign.Options{Log: logClient})
	attestLogged(early)
	time.Sleep(t0.Add(2*time.Second + 100*time.Millisecond).Sub(time.Now()))
	attestLogged(late)
	e.sign(t, early, "a", sign.Options{Log: logClient})

	bound := t0.Add(time.Second).UTC().Format(time.RFC3339)
	wideFrom, wideTo := t0.Add(-time.Hour).UTC().Format(time.RFC3339), t0.Add(time.Hour).UTC().Format(time.RFC3339)
	p := e.policy(t, `
version: 1
scopes:
  - scope: REG/late
    keys: [{file: a.pub, notAfter: `+bound+`}]
    tlog: {required: true, keys: [{file: rekor.pub}]}
    attestations: [{type: slsaprovenance1}]
  - scope: REG/early
    keys: [{file: a.pub, notBefore: `+bound+`}]
    tlog: {required: true, keys: [{file: rekor.pub}]}
    attestations: [{type: slsaprovenance1}]
`)
	wide := e.policy(t, `
version: 1
default:
  keys: [{file: a.pub, notBefore: `+wideFrom+`, notAfter: `+wideTo+`}]
  tlog: {required: true, keys: [{file: rekor.pub}]}
  attestations: [{type: slsaprovenance1}]
`)
	for _, tc := range []struct {
		d    name.Digest
		want string
	}{{late, "after key "}, {early, "before key "}} {
		res := gate.New(e.client, p, gate.Options{}).Check(context.Background(), []name.Reference{tc.d})[0]
		if !errors.Is(res.Err(), verify.ErrNotVerified) || res.Signatures == nil || !res.Signatures.Verified || len(res.Attestations) != 1 || len(res.Attestations[0].Rejected) == 0 {
			t.Fatalf("%s: the attestation outside the key's window passed, or the signature inside it failed: %+v %v", tc.d, res, res.Err())
		}
		for _, r := range res.Attestations[0].Rejected { // one per storage format
			if !strings.Contains(r.Reason, tc.want) || !strings.Contains(r.Reason, bound) {
				t.Fatalf("%s: attestation rejected for another reason: %s", tc.d, r.Reason)
			}
		}
		if res := gate.New(e.client, wide, gate.Options{}).Check(context.Background(), []name.Reference{tc.d})[0]; !res.Verified {
			t.Fatalf("%s inside a wide window: %v", tc.d, res.Err())
		}
	}
}
