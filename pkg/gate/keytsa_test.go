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
	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// TestKeyTimestampWindows: without any log, a scope's trustedRoot TSA
// dates key signatures and attestations by their RFC 3161 timestamps: a
// key window around now and a maximum age pass them, a window that closed
// an hour ago refuses both (the reason names the key's notAfter), a
// maximum age shorter than their age refuses them too, and the same
// window without the trustedRoot finds no verified signing time.
func TestKeyTimestampWindows(t *testing.T) {
	e := newEnv(t)
	fake := sigstoretest.Start(t)
	data, err := fake.Trusted.(*root.TrustedRoot).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "tsa_root.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ts := tsa.New([]string{fake.TSAURL}, tsa.Options{})
	d := e.reg.PushImage(t, e.reg.Ref("app/x:v1"))
	e.sign(t, d, "a", sign.Options{Timestamps: ts})
	at, err := attest.NewAttester(e.client, e.keys["a"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.Attest(context.Background(), d, attest.Options{PredicateType: "https://slsa.dev/provenance/v1", Predicate: []byte(`{}`), Timestamps: ts}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	check := func(doc string, at time.Time) gate.Result {
		t.Helper()
		return gate.New(e.client, e.policy(t, doc), gate.Options{Now: func() time.Time { return at }}).Check(context.Background(), []name.Reference{d})[0]
	}
	scope := "version: 1\ndefault:\n  attestations: [{type: slsaprovenance1}]\n"
	if res := check(scope+"  keys: [{file: a.pub, notBefore: "+rfc(now.Add(-time.Hour))+", notAfter: "+rfc(now.Add(time.Hour))+"}]\n  trustedRoot: tsa_root.json\n  maxAge: 1h\n", now); !res.Verified {
		t.Fatalf("timestamped within the window and age: %v", res.Err())
	}
	closed := rfc(now.Add(-time.Hour))
	res := check(scope+"  keys: [{file: a.pub, notAfter: "+closed+"}]\n  trustedRoot: tsa_root.json\n", now)
	if !errors.Is(res.Err(), verify.ErrNotVerified) || res.Signatures == nil || len(res.Signatures.Rejected) == 0 {
		t.Fatalf("signed after the key's notAfter, yet: %+v %v", res, res.Err())
	}
	for _, r := range res.Signatures.Rejected {
		if !strings.Contains(r.Reason, "after key") || !strings.Contains(r.Reason, closed) {
			t.Fatalf("rejected for another reason: %s", r.Reason)
		}
	}
	res = check(scope+"  keys: [{file: a.pub}]\n  trustedRoot: tsa_root.json\n  maxAge: 1h\n", now.Add(2*time.Hour))
	if res.Verified || !strings.Contains(res.Signatures.Rejected[0].Reason, "older than the maximum age of 1h") {
		t.Fatalf("two hours old under maxAge 1h: %+v", res.Signatures)
	}
	res = check(scope+"  keys: [{file: a.pub, notBefore: "+rfc(now.Add(-time.Hour))+"}]\n", now)
	if res.Verified || !strings.Contains(res.Signatures.Rejected[0].Reason, "no verified signing time") {
		t.Fatalf("no trusted TSA, yet: %+v", res.Signatures)
	}
}
