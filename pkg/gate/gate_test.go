package gate_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/trustpolicy"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

type env struct {
	reg    *testreg.Registry
	client *oci.Client
	dir    string
	keys   map[string]crypto.Signer
	sigs   atomic.Int64 // requests for legacy signature manifests
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), keys: map[string]crypto.Signer{}}
	e.reg = testreg.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, ".sig") {
				e.sigs.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	c, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	for _, n := range []string{"a", "b", "c"} {
		k, err := keys.Generate(keys.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[n] = k
		pem, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, n+".pub"), pem, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) sign(t *testing.T, d name.Digest, key string, o sign.Options) {
	t.Helper()
	s, err := sign.NewSigner(e.client, e.keys[key])
	if err != nil {
		t.Fatal(err)
	}
	o.Upload = true
	if o.Format == "" {
		o.Format = sign.FormatLegacy // the gate reads both; one is faster to write
	}
	if _, err := s.Sign(context.Background(), d, o); err != nil {
		t.Fatal(err)
	}
}

func (e *env) policy(t *testing.T, yaml string) *trustpolicy.Policy {
	t.Helper()
	yaml = strings.ReplaceAll(yaml, "REG", e.reg.Host)
	p, err := trustpolicy.Parse([]byte(yaml), "policy.yaml", e.dir)
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, yaml)
	}
	return p
}

func refs(t *testing.T, ss ...string) []name.Reference {
	t.Helper()
	var out []name.Reference
	for _, s := range ss {
		r, err := name.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestPolicyRules: every kind of requirement decides as the policy says.
func TestPolicyRules(t *testing.T) {
	e := newEnv(t)
	log := tlogtest.NewV1(t)
	if err := os.WriteFile(filepath.Join(e.dir, "rekor.pub"), log.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	logClient, err := tlog.NewClient(log.URL, tlog.V1, nil)
	if err != nil {
		t.Fatal(err)
	}
	push := func(p string) name.Digest { return e.reg.PushImage(t, e.reg.Ref(p)) }
	signedA := push("team/signed:v1")
	e.sign(t, signedA, "a", sign.Options{})
	signedB := push("team/other:v1")
	e.sign(t, signedB, "b", sign.Options{})
	two := push("prod/two:v1")
	e.sign(t, two, "a", sign.Options{})
	e.sign(t, two, "b", sign.Options{})
	one := push("prod/one:v1")
	e.sign(t, one, "a", sign.Options{})
	annotated := push("annot/app:v1")
	e.sign(t, annotated, "a", sign.Options{Annotations: map[string]string{"env": "prod"}})
	notAnnotated := push("annot/bare:v1")
	e.sign(t, notAnnotated, "a", sign.Options{})
	logged := push("logged/app:v1")
	e.sign(t, logged, "a", sign.Options{Log: logClient})
	unlogged := push("logged/bare:v1")
	e.sign(t, unlogged, "a", sign.Options{})
	unsigned := push("scratch/anything:v1")
	rejected := push("banned/app:v1")
	e.sign(t, rejected, "a", sign.Options{})
	nowhere := push("elsewhere/app:v1")
	e.sign(t, nowhere, "a", sign.Options{})
	attested := push("att/app:v1")
	e.sign(t, attested, "a", sign.Options{})
	at, err := attest.NewAttester(e.client, e.keys["a"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.Attest(context.Background(), attested, attest.Options{PredicateType: "https://slsa.dev/provenance/v1", Predicate: []byte(`{"builder":{"id":"ci"}}`)}); err != nil {
		t.Fatal(err)
	}
	unattested := push("att/none:v1")
	e.sign(t, unattested, "a", sign.Options{})

	p := e.policy(t, `
version: 1
scopes:
  - scope: REG/team
    keys: [{file: a.pub}]
  - scope: REG/prod
    keys: [{file: a.pub}, {file: b.pub}, {file: c.pub}]
    threshold: 2
  - scope: REG/annot/*
    keys: [{file: a.pub}]
    annotations: {env: prod}
  - scope: REG/logged
    keys: [{file: a.pub}]
    tlog: {required: true, keys: [{file: rekor.pub}]}
    maxAge: 1h
  - scope: REG/scratch/**
    unsigned: accept
  - scope: REG/banned/app
    reject: true
  - scope: REG/att
    keys: [{file: a.pub}]
    attestations:
      - type: slsaprovenance1
        conditions:
          - name: built by ci
            expression: predicate.builder.id == "ci"
`)
	g := gate.New(e.client, p, gate.Options{})
	for _, tc := range []struct {
		d     name.Digest
		scope string
		err   error
		has   string
	}{
		{signedA, "REG/team", nil, ""},
		{signedB, "REG/team", verify.ErrNotVerified, ""},
		{two, "REG/prod", nil, ""},
		{one, "REG/prod", verify.ErrNotVerified, "1 distinct trusted key(s) signed, 2 required"},
		{annotated, "REG/annot/*", nil, ""},
		{notAnnotated, "REG/annot/*", verify.ErrNotVerified, ""},
		{logged, "REG/logged", nil, ""},
		{unlogged, "REG/logged", verify.ErrNotVerified, ""},
		{unsigned, "REG/scratch/**", nil, ""},
		{rejected, "REG/banned/app", gate.ErrRejected, "rejects it"},
		{nowhere, "", gate.ErrRejected, "no scope"},
		{attested, "REG/att", nil, ""},
		{unattested, "REG/att", verify.ErrNoSignatures, "attestation"},
	} {
		scope := strings.ReplaceAll(tc.scope, "REG", e.reg.Host)
		t.Run(tc.d.Context().RepositoryStr(), func(t *testing.T) {
			res := g.Check(context.Background(), []name.Reference{tc.d})[0]
			if res.Scope != scope {
				t.Errorf("scope %q, want %q", res.Scope, scope)
			}
			if tc.err == nil {
				if res.Err() != nil || !res.Verified {
					t.Fatalf("refused: %v", res.Err())
				}
				return
			}
			if !errors.Is(res.Err(), tc.err) || res.Verified {
				t.Fatalf("err = %v, want %v", res.Err(), tc.err)
			}
			if !strings.Contains(res.Error, tc.has) {
				t.Errorf("error %q lacks %q", res.Error, tc.has)
			}
		})
	}
	// The maximum age counts from the log's time: two hours later, the
	// logged image is too old.
	later := gate.New(e.client, p, gate.Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	res := later.Check(context.Background(), []name.Reference{logged})[0]
	if !errors.Is(res.Err(), verify.ErrNotVerified) || res.Signatures == nil || len(res.Signatures.Rejected) == 0 ||
		!strings.Contains(res.Signatures.Rejected[0].Reason, "older than the maximum age") {
		t.Fatalf("an old signature passed the maximum age: %+v", res)
	}
}

// An attestation requirement honours the scope's threshold (distinct keys
// attesting) and annotations (only keys whose signature carries them
// count), as the signature requirement does.
func TestAttestationRequirements(t *testing.T) {
	e := newEnv(t)
	push := func(p string) name.Digest { return e.reg.PushImage(t, e.reg.Ref(p)) }
	attestBy := func(d name.Digest, key string) {
		t.Helper()
		at, err := attest.NewAttester(e.client, e.keys[key])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := at.Attest(context.Background(), d, attest.Options{PredicateType: "https://slsa.dev/provenance/v1", Predicate: []byte(`{"builder":{"id":"ci"}}`)}); err != nil {
			t.Fatal(err)
		}
	}
	prod := map[string]string{"env": "prod"}
	// Threshold two: signed by a and b, attested by a only, or by both.
	oneAttester := push("two/one:v1")
	e.sign(t, oneAttester, "a", sign.Options{})
	e.sign(t, oneAttester, "b", sign.Options{})
	attestBy(oneAttester, "a")
	twoAttesters := push("two/both:v1")
	e.sign(t, twoAttesters, "a", sign.Options{})
	e.sign(t, twoAttesters, "b", sign.Options{})
	attestBy(twoAttesters, "a")
	attestBy(twoAttesters, "b")
	// Annotations: a signed with env=prod, b without; the attestation by
	// b does not count, the one by a does.
	byOther := push("annot/other:v1")
	e.sign(t, byOther, "a", sign.Options{Annotations: prod})
	e.sign(t, byOther, "b", sign.Options{})
	attestBy(byOther, "b")
	bySigner := push("annot/signer:v1")
	e.sign(t, bySigner, "a", sign.Options{Annotations: prod})
	e.sign(t, bySigner, "b", sign.Options{})
	attestBy(bySigner, "a")
	p := e.policy(t, `
version: 1
scopes:
  - scope: REG/two
    keys: [{file: a.pub}, {file: b.pub}, {file: c.pub}]
    threshold: 2
    attestations: [{type: slsaprovenance1}]
  - scope: REG/annot
    keys: [{file: a.pub}, {file: b.pub}]
    annotations: {env: prod}
    attestations: [{type: slsaprovenance1}]
`)
	g := gate.New(e.client, p, gate.Options{})
	// Maximum age: an attestation logged 6 s before the signature is too
	// old for a maximum age of 4 s, counted from when the signature was
	// made, while the signature is not.
	log := tlogtest.NewV1(t)
	if err := os.WriteFile(filepath.Join(e.dir, "rekor.pub"), log.PublicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	logClient, err := tlog.NewClient(log.URL, tlog.V1, nil)
	if err != nil {
		t.Fatal(err)
	}
	aged := push("aged/app:v1")
	at, err := attest.NewAttester(e.client, e.keys["a"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.Attest(context.Background(), aged, attest.Options{PredicateType: "https://slsa.dev/provenance/v1", Predicate: []byte(`{}`), Log: logClient}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	e.sign(t, aged, "a", sign.Options{Log: logClient})
	signed := time.Now()
	agedPolicy := e.policy(t, `
version: 1
scopes:
  - scope: REG/aged
    keys: [{file: a.pub}]
    tlog: {required: true, keys: [{file: rekor.pub}]}
    maxAge: 4s
    attestations: [{type: slsaprovenance1}]
`)
	res := gate.New(e.client, agedPolicy, gate.Options{Now: func() time.Time { return signed }}).Check(context.Background(), []name.Reference{aged})[0]
	if !errors.Is(res.Err(), verify.ErrNotVerified) || res.Signatures == nil || !res.Signatures.Verified || len(res.Attestations) != 1 || len(res.Attestations[0].Rejected) == 0 {
		t.Fatalf("an attestation older than the maximum age passed, or the signature failed: %+v %v", res, res.Err())
	}
	for _, r := range res.Attestations[0].Rejected { // one per storage format
		if !strings.Contains(r.Reason, "older than the maximum age of 4s") {
			t.Fatalf("attestation rejected for another reason: %s", r.Reason)
		}
	}
	for _, tc := range []struct {
		d   name.Digest
		has string // "" when verified
	}{
		{oneAttester, "1 distinct trusted key(s) attested https://slsa.dev/provenance/v1, 2 required"},
		{twoAttesters, ""},
		{byOther, "no signature of this image meeting the requirement"},
		{bySigner, ""},
	} {
		t.Run(tc.d.Context().RepositoryStr(), func(t *testing.T) {
			res := g.Check(context.Background(), []name.Reference{tc.d})[0]
			if tc.has == "" {
				if res.Err() != nil || !res.Verified {
					t.Fatalf("refused: %v", res.Err())
				}
				return
			}
			all := res.Error
			for _, a := range res.Attestations {
				for _, r := range a.Rejected {
					all += " " + r.Reason
				}
			}
			if !errors.Is(res.Err(), verify.ErrNotVerified) || res.Verified || !strings.Contains(all, tc.has) {
				t.Fatalf("err = %v (%s), want %v mentioning %q", res.Err(), all, verify.ErrNotVerified, tc.has)
			}
		})
	}
}

// TestManyImagesOnce: many references to few digests are each verified
// once, and every reference gets its own verdict in order.
func TestManyImagesOnce(t *testing.T) {
	e := newEnv(t)
	var digests []name.Digest
	for i := range 5 {
		d := e.reg.PushImage(t, e.reg.Ref(fmt.Sprintf("many/app%d:v1", i)))
		e.sign(t, d, "a", sign.Options{Format: sign.FormatLegacy})
		digests = append(digests, d)
	}
	p := e.policy(t, "version: 1\nscopes:\n  - scope: REG/many\n    keys: [{file: a.pub}]\n")
	var rs []name.Reference
	for range 20 {
		for _, d := range digests {
			rs = append(rs, d)
			tag, _ := name.NewTag(d.Context().String() + ":v1")
			rs = append(rs, tag)
		}
	}
	before := e.sigs.Load()
	results := gate.New(e.client, p, gate.Options{Jobs: 4}).Check(context.Background(), rs)
	if len(results) != len(rs) {
		t.Fatalf("%d results for %d references", len(results), len(rs))
	}
	for i, r := range results {
		if r.Err() != nil || r.Image != rs[i].String() {
			t.Fatalf("result %d: %+v (want %s)", i, r, rs[i])
		}
	}
	if n := e.sigs.Load() - before; n != int64(len(digests)) {
		t.Errorf("%d signature manifest requests for %d digests: not verified once each", n, len(digests))
	}
}

// copyImage copies the manifest (and its blobs) at src to dst, as a mirror
// does.
func copyImage(t *testing.T, src, dst string) {
	t.Helper()
	s, err := name.ParseReference(src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.ParseReference(dst)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d, img); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorRemap: an image and its signature copied to a mirror verify
// there only with the identity check remapped to the origin.
func TestMirrorRemap(t *testing.T) {
	e := newEnv(t)
	d := e.reg.PushImage(t, e.reg.Ref("origin/app:v1"))
	e.sign(t, d, "a", sign.Options{})
	hexd := strings.TrimPrefix(d.DigestStr(), "sha256:")
	copyImage(t, d.String(), e.reg.Ref("mirror/origin/app:v1"))
	copyImage(t, e.reg.Ref("origin/app:sha256-"+hexd+".sig"), e.reg.Ref("mirror/origin/app:sha256-"+hexd+".sig"))
	mirrored := refs(t, e.reg.Ref("mirror/origin/app:v1"))

	strict := e.policy(t, "version: 1\nscopes:\n  - scope: REG/mirror\n    keys: [{file: a.pub}]\n    identity: {requireMatch: true}\n")
	res := gate.New(e.client, strict, gate.Options{}).Check(context.Background(), mirrored)[0]
	if !errors.Is(res.Err(), verify.ErrNotVerified) || !strings.Contains(res.Signatures.Rejected[0].Reason, "is not repository") {
		t.Fatalf("a mirrored signature passed the identity check without a remap: %+v", res)
	}
	remapped := e.policy(t, "version: 1\nscopes:\n  - scope: REG/mirror\n    keys: [{file: a.pub}]\n    identity:\n      requireMatch: true\n      remap: [{from: REG/mirror, to: REG}]\n")
	if res := gate.New(e.client, remapped, gate.Options{}).Check(context.Background(), mirrored)[0]; res.Err() != nil {
		t.Fatalf("the remapped mirror was refused: %v", res.Err())
	}
	// The remap does not let the mirror's signature stand for another
	// image of the origin.
	other := e.reg.PushImage(t, e.reg.Ref("mirror/origin/other:v1"))
	copyImage(t, e.reg.Ref("origin/app:sha256-"+hexd+".sig"), e.reg.Ref("mirror/origin/other:sha256-"+strings.TrimPrefix(other.DigestStr(), "sha256:")+".sig"))
	if res := gate.New(e.client, remapped, gate.Options{}).Check(context.Background(), []name.Reference{other})[0]; res.Err() == nil {
		t.Fatal("a signature of another image passed through the remap")
	}
}

// With a platform, the gate checks that platform's manifest of an index
// (signed by itself) and a single-platform image as it is; with a format,
// only signatures stored that way count.
func TestPlatformAndFormat(t *testing.T) {
	e := newEnv(t)
	idx, children := e.reg.PushIndex(t, e.reg.Ref("multi/app:v1"))
	single := e.reg.PushImage(t, e.reg.Ref("multi/single:v1"))
	e.sign(t, children[1], "a", sign.Options{Format: sign.FormatBundle}) // linux/arm64 only
	e.sign(t, single, "a", sign.Options{Format: sign.FormatLegacy})
	p := e.policy(t, "version: 1\nscopes:\n  - scope: REG/multi\n    keys: [{file: a.pub}]\n")
	rs := refs(t, e.reg.Ref("multi/app:v1"), idx.String(), e.reg.Ref("multi/single:v1"))
	arm := &v1.Platform{OS: "linux", Architecture: "arm64"}
	amd := &v1.Platform{OS: "linux", Architecture: "amd64"}
	check := func(o gate.Options, want ...bool) {
		t.Helper()
		results := gate.New(e.client, p, o).Check(context.Background(), rs)
		for i, r := range results {
			if (r.Err() == nil) != want[i] {
				t.Errorf("%s with %+v: verified %v (%v), want %v", rs[i], o, r.Err() == nil, r.Err(), want[i])
			}
		}
		if o.Platform == arm && results[0].Digest != children[1].DigestStr() {
			t.Errorf("arm64 checked %s, want the child %s", results[0].Digest, children[1].DigestStr())
		}
	}
	check(gate.Options{}, false, false, true)                                           // the index itself is unsigned
	check(gate.Options{Platform: arm}, true, true, true)                                // the arm64 child is signed
	check(gate.Options{Platform: amd}, false, false, true)                              // the amd64 child is not
	check(gate.Options{Platform: arm, Format: verify.FormatLegacy}, false, false, true) // a bundle, not a legacy tag
	check(gate.Options{Platform: arm, Format: verify.FormatBundle}, true, true, false)
	r := gate.New(e.client, p, gate.Options{Platform: &v1.Platform{OS: "windows", Architecture: "amd64"}}).Check(context.Background(), rs[:1])
	if !errors.Is(r[0].Err(), verify.ErrImageNotFound) {
		t.Errorf("a platform the index lacks: %v, want image not found", r[0].Err())
	}
}
