package verify_test

import (
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/verify"
)

// verifyWith verifies ref with extra Verifier options.
func (f *fixture) verifyWith(t *testing.T, ref string, o verify.Options, opts []verify.Option, pubs ...crypto.PublicKey) (*verify.Result, error) {
	t.Helper()
	v, err := verify.NewVerifier(f.client, pubs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(f.ctx, r, o)
	if res == nil {
		t.Fatal("nil result")
	}
	return res, err
}

func logClient(t *testing.T, l *tlogtest.Log) *tlog.Client {
	t.Helper()
	c, err := tlog.NewClient(l.URL, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTlogSignVerify: signatures recorded in a v1 or v2 log verify with the
// log's key, in both storage formats, and are refused with any other log
// key, even without --require-tlog.
func TestTlogSignVerify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		log     func(testing.TB) *tlogtest.Log
		checked string
	}{
		{"v1", tlogtest.NewV1, "signed-entry-timestamp"},
		{"v2", tlogtest.NewV2, "inclusion-proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			log := tc.log(t)
			d := f.reg.PushImage(t, f.reg.Ref("tlog/app:v1"))
			sigs := f.sign(t, d.String(), f.key, sign.Options{Log: logClient(t, log)})
			if sigs[0].Entry == nil || sigs[0].BundleEntry == nil || log.Entries() != 2 {
				t.Fatalf("entries: legacy %v, bundle %v, log holds %d", sigs[0].Entry, sigs[0].BundleEntry, log.Entries())
			}
			for _, format := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
				res, err := f.verifyWith(t, d.String(), verify.Options{Format: format, RequireTlog: true},
					[]verify.Option{verify.WithTrustedLogs(log.Trust())}, f.key.Public())
				if err != nil || len(res.Signatures) != 1 || len(res.Signatures[0].Tlog) != 1 {
					t.Fatalf("%s: %+v %v", format, res, err)
				}
				if facts := res.Signatures[0].Tlog[0]; !strings.Contains(strings.Join(facts.Checked, ","), tc.checked) {
					t.Errorf("%s: checked %v, want %s", format, facts.Checked, tc.checked)
				}
				// Another log's key: the entry present is invalid, which is
				// a rejection even when the log is not required.
				other := tc.log(t)
				res, err = f.verifyWith(t, d.String(), verify.Options{Format: format},
					[]verify.Option{verify.WithTrustedLogs(other.Trust())}, f.key.Public())
				mustFail(t, err, verify.ErrNotVerified, "not trusted", res)
			}
			// Without trusted logs the entries are reported unchecked, and
			// the signature stands on its key.
			res, err := f.verifyWith(t, d.String(), verify.Options{}, nil, f.key.Public())
			if err != nil || res.Signatures[0].TlogUnchecked == 0 {
				t.Fatalf("unchecked entries not reported: %+v %v", res, err)
			}
		})
	}
}

// TestTlogRequire: without an entry, RequireTlog refuses; an online v1
// log that holds the signature satisfies it.
func TestTlogRequire(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV1(t)
	d := f.reg.PushImage(t, f.reg.Ref("tlog/req:v1"))
	f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatLegacy})
	trusted := []verify.Option{verify.WithTrustedLogs(log.Trust())}
	res, err := f.verifyWith(t, d.String(), verify.Options{RequireTlog: true}, trusted, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "no transparency-log entry", res)

	// Online: the log knows nothing of this signature yet.
	online := append(trusted, verify.WithOnlineLog(logClient(t, log)))
	res, err = f.verifyWith(t, d.String(), verify.Options{RequireTlog: true, Format: verify.FormatLegacy}, online, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "no entry for this signature", res)

	// Sign again with the log, same payload: the entry is found online
	// for the new signature only.
	d2 := f.reg.PushImage(t, f.reg.Ref("tlog/req:v2"))
	f.sign(t, d2.String(), f.key, sign.Options{Format: sign.FormatLegacy, Log: logClient(t, log)})
	before := log.Requests()
	res, err = f.verifyWith(t, d2.String(), verify.Options{RequireTlog: true, Format: verify.FormatLegacy}, online, f.key.Public())
	if err != nil || len(res.Signatures[0].Tlog) == 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := log.Requests() - before; n != 0 {
		t.Errorf("the entry travelled with the signature, yet the log was asked %d times", n)
	}
}

// TestTlogCopiedEntry: a valid entry of one signature attached to another
// signature (same key, other image) is refused.
func TestTlogCopiedEntry(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV1(t)
	da := f.reg.PushImage(t, f.reg.Ref("tlog/copy:a"))
	db := f.reg.PushImage(t, f.reg.Ref("tlog/copy:b"))
	sa := f.sign(t, da.String(), f.key, sign.Options{Format: sign.FormatLegacy, Log: logClient(t, log)})
	// A genuine entry of another key's signature of the same payload.
	otherKey, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	so := f.sign(t, db.String(), otherKey, sign.Options{Format: sign.FormatLegacy, Log: logClient(t, log), SignatureRepo: repoOf(t, f.reg.Ref("elsewhere/sigs"))})
	f.sign(t, db.String(), f.key, sign.Options{Format: sign.FormatLegacy, Log: logClient(t, log)})
	for _, tc := range []struct {
		name, reason string
		e            *tlog.Entry
	}{
		{"entry of image a", "not this signature's payload", sa[0].Entry},
		{"entry of another key's signature", "another signature", so[0].Entry},
	} {
		name, e := tc.name, tc.e
		data, err := tlog.CosignBundle(e)
		if err != nil {
			t.Fatal(err)
		}
		tag := f.reg.Ref("tlog/copy:sha256-" + strings.TrimPrefix(db.DigestStr(), "sha256:") + ".sig")
		replaceAnnotations(t, f, tag, map[string]string{tlog.CosignBundleAnnotation: string(data)}, tlog.EntryAnnotation)
		res, err := f.verifyWith(t, db.String(), verify.Options{Format: verify.FormatLegacy},
			[]verify.Option{verify.WithTrustedLogs(log.Trust())}, f.key.Public())
		mustFail(t, err, verify.ErrNotVerified, tc.reason, res)
		t.Logf("%s: refused", name)
	}
}

// TestTlogLogDown: a log that fails at signing time leaves the registry
// untouched.
func TestTlogLogDown(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV1(t)
	log.Fail(http.StatusServiceUnavailable)
	d := f.reg.PushImage(t, f.reg.Ref("tlog/down:v1"))
	s, _ := sign.NewSigner(f.client, f.key)
	_, err := s.Sign(f.ctx, d, sign.Options{Upload: true, Log: logClient(t, log)})
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("err = %v", err)
	}
	res, err := f.verify(t, d.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)
}

// replaceAnnotations sets annotations on every layer of the manifest at ref
// and removes the ones named in drop (an attacker with write access).
func replaceAnnotations(t *testing.T, f *fixture, ref string, set map[string]string, drop ...string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Layers {
		for k, v := range set {
			m.Layers[i].Annotations[k] = v
		}
		for _, k := range drop {
			delete(m.Layers[i].Annotations, k)
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{data, m.MediaType}); err != nil {
		t.Fatal(err)
	}
}

type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func repoOf(t *testing.T, s string) *name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestTlogAttestations: attestations carry their log entries in both
// layouts; an entry from an untrusted log is a rejection, and RequireTlog
// refuses attestations without one.
func TestTlogAttestations(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV1(t)
	d := f.reg.PushImage(t, f.reg.Ref("tlog/att:v1"))
	a, err := attest.NewAttester(f.client, f.key)
	if err != nil {
		t.Fatal(err)
	}
	const pt = "https://slsa.dev/provenance/v1"
	o := attest.Options{PredicateType: pt, Predicate: []byte(`{"builder":{"id":"ci"}}`), Log: logClient(t, log)}
	if out, err := a.Attest(f.ctx, d, o); err != nil || out.Entry == nil {
		t.Fatalf("attest: %+v %v", out, err)
	}
	verifyAtt := func(ao verify.AttestationOptions, opts ...verify.Option) (*verify.AttestationResult, error) {
		v, err := verify.NewVerifier(f.client, []crypto.PublicKey{f.key.Public()}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return v.VerifyAttestations(f.ctx, d, ao)
	}
	for _, format := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
		res, err := verifyAtt(verify.AttestationOptions{PredicateType: pt, Format: format, RequireTlog: true}, verify.WithTrustedLogs(log.Trust()))
		if err != nil || len(res.Attestations) != 1 || len(res.Attestations[0].Tlog) != 1 {
			t.Fatalf("%s: %+v %v", format, res, err)
		}
		res, err = verifyAtt(verify.AttestationOptions{PredicateType: pt, Format: format}, verify.WithTrustedLogs(tlogtest.NewV1(t).Trust()))
		if err == nil || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "not trusted") {
			t.Fatalf("%s: an entry of an untrusted log was not refused: %+v %v", format, res, err)
		}
	}
	o.Log = nil
	d2 := f.reg.PushImage(t, f.reg.Ref("tlog/att:v2"))
	if _, err := a.Attest(f.ctx, d2, o); err != nil {
		t.Fatal(err)
	}
	v, _ := verify.NewVerifier(f.client, []crypto.PublicKey{f.key.Public()}, verify.WithTrustedLogs(log.Trust()))
	res, err := v.VerifyAttestations(f.ctx, d2, verify.AttestationOptions{PredicateType: pt, RequireTlog: true})
	if err == nil || !strings.Contains(res.Rejected[0].Reason, "no transparency-log entry") {
		t.Fatalf("an attestation without a log entry passed RequireTlog: %+v %v", res, err)
	}
}

// Attestations honour the maximum age, the threshold of distinct keys and
// the keys a requirement's signed annotations admit, as signatures do.
func TestAttestationRequirements(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV1(t)
	d := f.reg.PushImage(t, f.reg.Ref("tlog/attreq:v1"))
	other, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	const pt = "https://slsa.dev/provenance/v1"
	o := attest.Options{PredicateType: pt, Predicate: []byte(`{"builder":{"id":"ci"}}`), Log: logClient(t, log)}
	a, err := attest.NewAttester(f.client, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(f.ctx, d, o); err != nil {
		t.Fatal(err)
	}
	v, _ := verify.NewVerifier(f.client, []crypto.PublicKey{f.key.Public(), other.Public()}, verify.WithTrustedLogs(log.Trust()))
	check := func(ao verify.AttestationOptions) (*verify.AttestationResult, error) {
		ao.PredicateType, ao.RequireTlog = pt, true
		return v.VerifyAttestations(f.ctx, d, ao)
	}
	keyID := func(k crypto.Signer) string {
		id, err := keys.KeyID(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	for _, tc := range []struct {
		name string
		ao   verify.AttestationOptions
		has  string // "" when it passes
	}{
		{"within the maximum age", verify.AttestationOptions{MaxAge: time.Hour}, ""},
		{"older than the maximum age", verify.AttestationOptions{MaxAge: time.Hour, Now: later}, "older than the maximum age"},
		{"one key of a threshold of two", verify.AttestationOptions{Threshold: 2}, "1 distinct trusted key(s) attested " + pt + ", 2 required"},
		{"made by a key the annotations admit", verify.AttestationOptions{SignedBy: map[string]bool{keyID(f.key): true}}, ""},
		{"made by a key the annotations do not admit", verify.AttestationOptions{SignedBy: map[string]bool{keyID(other): true}}, "no signature of this image meeting the requirement"},
		{"no key admitted", verify.AttestationOptions{SignedBy: map[string]bool{}}, "no signature of this image meeting the requirement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := check(tc.ao)
			if tc.has == "" {
				if err != nil || !res.Verified {
					t.Fatalf("refused: %+v %v", res, err)
				}
				return
			}
			mustFailAtt(t, res, err, verify.ErrNotVerified, tc.has)
		})
	}
	// A second key's attestation meets the threshold of two.
	b, err := attest.NewAttester(f.client, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Attest(f.ctx, d, o); err != nil {
		t.Fatal(err)
	}
	if res, err := check(verify.AttestationOptions{Threshold: 2}); err != nil || !res.Verified {
		t.Fatalf("two keys, threshold two: %+v %v", res, err)
	}
}

// TestTlogAttachOffline: a signature made with Upload false and logged is
// attached later, with its entry, and verifies with the log required; it
// cannot be attached to another image.
func TestTlogAttachOffline(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV2(t)
	d := f.reg.PushImage(t, f.reg.Ref("tlog/offline:v1"))
	other := f.reg.PushImage(t, f.reg.Ref("tlog/offline:v2"))
	s, err := sign.NewSigner(f.client, f.key)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := s.Sign(f.ctx, d, sign.Options{Log: logClient(t, log)})
	if err != nil || sigs[0].Entry == nil {
		t.Fatalf("sign: %+v %v", sigs, err)
	}
	res, err := f.verify(t, d.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)

	det := sign.Detached{Payload: sigs[0].Payload, Signature: sigs[0].Signature, Entry: sigs[0].Entry}
	if _, err := sign.Attach(f.ctx, f.client, other, det, nil); !errors.Is(err, sign.ErrWrongImage) {
		t.Fatalf("attached to another image: %v", err)
	}
	for i, wantAdded := range []bool{true, false} {
		got, err := sign.Attach(f.ctx, f.client, d, det, nil)
		if err != nil || got.Added != wantAdded {
			t.Fatalf("attach #%d: %+v %v (want added %v)", i, got, err, wantAdded)
		}
	}
	res, err = f.verifyWith(t, d.String(), verify.Options{RequireTlog: true}, []verify.Option{verify.WithTrustedLogs(log.Trust())}, f.key.Public())
	if err != nil || len(res.Signatures) != 1 || len(res.Signatures[0].Tlog) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestTlogLogFailsMidway: signing an index recursively logs every
// signature before the first write, so a log that fails on the third
// upload leaves no signature on any manifest.
func TestTlogLogFailsMidway(t *testing.T) {
	f := newFixture(t, nil)
	log := tlogtest.NewV1(t)
	target, err := url.Parse(log.URL)
	if err != nil {
		t.Fatal(err)
	}
	var uploads atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && uploads.Add(1) > 2 {
			http.Error(w, "down", http.StatusBadRequest)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	c, err := tlog.NewClient(flaky.URL, tlog.V1, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, children := f.reg.PushIndex(t, f.reg.Ref("tlog/index:v1"))
	s, _ := sign.NewSigner(f.client, f.key)
	_, err = s.Sign(f.ctx, idx, sign.Options{Upload: true, Recursive: true, Format: sign.FormatLegacy, Log: c})
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("err = %v", err)
	}
	for _, d := range append(children, idx) {
		res, err := f.verify(t, d.String(), verify.Options{}, f.key.Public())
		mustFail(t, err, verify.ErrNoSignatures, "", res)
	}
}

// TestMaxAge: a signature's age counts from the integrated time a SET
// vouches for; too old, or without such a time, it is refused.
func TestMaxAge(t *testing.T) {
	f := newFixture(t, nil)
	v1log, v2log := tlogtest.NewV1(t), tlogtest.NewV2(t)
	d1 := f.reg.PushImage(t, f.reg.Ref("age/app:v1"))
	d2 := f.reg.PushImage(t, f.reg.Ref("age/app:v2"))
	f.sign(t, d1.String(), f.key, sign.Options{Format: sign.FormatLegacy, Log: logClient(t, v1log)})
	f.sign(t, d2.String(), f.key, sign.Options{Format: sign.FormatBundle, Log: logClient(t, v2log)})
	trust := &tlog.Trust{}
	trust.Add(v1log.TrustLog(), v2log.TrustLog())
	opts := []verify.Option{verify.WithTrustedLogs(trust)}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

	res, err := f.verifyWith(t, d1.String(), verify.Options{MaxAge: time.Hour, Now: at(0)}, opts, f.key.Public())
	if err != nil || !res.Verified {
		t.Fatalf("fresh signature refused: %+v %v", res, err)
	}
	res, err = f.verifyWith(t, d1.String(), verify.Options{MaxAge: time.Hour, Now: at(2 * time.Hour)}, opts, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "older than the maximum age of 1h0m0s", res)
	// Rekor v2 entries carry no signed time.
	res, err = f.verifyWith(t, d2.String(), verify.Options{MaxAge: time.Hour}, opts, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "no trusted signing time", res)
	// Nor does a signature without a log entry.
	d3 := f.reg.PushImage(t, f.reg.Ref("age/app:v3"))
	f.sign(t, d3.String(), f.key, sign.Options{Format: sign.FormatLegacy})
	res, err = f.verifyWith(t, d3.String(), verify.Options{MaxAge: time.Hour}, opts, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "no trusted signing time", res)
}

// TestExpectedIdentity: with CheckIdentity, the signed identity must name
// ExpectedIdentity when it is set (a mirror checked under its origin's
// name), else the repository verified.
func TestExpectedIdentity(t *testing.T) {
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("origin/app:v1"))
	// Legacy payloads carry the identity (cosign's bundles do not).
	f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatLegacy})
	o := verify.Options{CheckIdentity: true, ExpectedIdentity: d.Context().Name()}
	if res, err := f.verify(t, d.String(), o, f.key.Public()); err != nil || !res.Verified {
		t.Fatalf("%+v %v", res, err)
	}
	o.ExpectedIdentity = "mirror.example/origin/app"
	res, err := f.verify(t, d.String(), o, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "is not repository mirror.example/origin/app", res)
}

// TestVerifyBlobs: with VerifyBlobs, a registry serving other bytes for a
// layer (as after its storage was overwritten) fails the verification;
// without it, only the signed manifest is checked.
func TestVerifyBlobs(t *testing.T) {
	var tamper atomic.Value // the blob path to lie about
	tamper.Store("")
	f := newFixture(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := tamper.Load().(string); p != "" && r.URL.Path == p && r.Method == http.MethodGet {
				w.Write([]byte("not the layer that was signed"))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	d := f.reg.PushImage(t, f.reg.Ref("deep/app:v1"))
	f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatLegacy})
	res, err := f.verify(t, d.String(), verify.Options{VerifyBlobs: true}, f.key.Public())
	if err != nil || res.Blobs == nil || res.Blobs.Blobs != 2 || res.Blobs.Manifests != 1 {
		t.Fatalf("deep verification of an intact image: %+v %v", res, err)
	}
	img, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	tamper.Store("/v2/deep/app/blobs/" + ld.String())
	if res, err := f.verify(t, d.String(), verify.Options{}, f.key.Public()); err != nil || !res.Verified {
		t.Fatalf("without VerifyBlobs the layers are not read: %+v %v", res, err)
	}
	res, err = f.verify(t, d.String(), verify.Options{VerifyBlobs: true}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "content does not match", res)
}

// TestKeyWindows: a key's notBefore/notAfter is judged against the
// verified signing time (a trusted log's integrated time), in both
// schemes; a signature with no verified time never passes a windowed key.
func TestKeyWindows(t *testing.T) {
	f := newFixture(t, nil)
	v1log, v2log := tlogtest.NewV1(t), tlogtest.NewV2(t)
	d1 := f.reg.PushImage(t, f.reg.Ref("win/app:v1"))
	d2 := f.reg.PushImage(t, f.reg.Ref("win/app:v2"))
	d3 := f.reg.PushImage(t, f.reg.Ref("win/app:v3"))
	f.sign(t, d1.String(), f.key, sign.Options{Format: sign.FormatLegacy, Log: logClient(t, v1log)})
	f.sign(t, d2.String(), f.key, sign.Options{Format: sign.FormatBundle, Log: logClient(t, v1log)})
	f.sign(t, d3.String(), f.key, sign.Options{Format: sign.FormatLegacy})
	trust := &tlog.Trust{}
	trust.Add(v1log.TrustLog(), v2log.TrustLog())
	opts := []verify.Option{verify.WithTrustedLogs(trust)}
	id, err := keys.KeyID(f.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	win := func(nb, na time.Duration) map[string]verify.Window {
		w := verify.Window{}
		if nb != 0 {
			w.NotBefore = time.Now().Add(nb)
		}
		if na != 0 {
			w.NotAfter = time.Now().Add(na)
		}
		return map[string]verify.Window{id: w}
	}
	for _, d := range []string{d1.String(), d2.String()} {
		if res, err := f.verifyWith(t, d, verify.Options{KeyWindows: win(-time.Hour, time.Hour)}, opts, f.key.Public()); err != nil {
			t.Fatalf("%s inside its window: %v %+v", d, err, res.Rejected)
		}
		res, err := f.verifyWith(t, d, verify.Options{KeyWindows: win(0, -time.Hour)}, opts, f.key.Public())
		mustFail(t, err, verify.ErrNotVerified, "notAfter", res)
		res, err = f.verifyWith(t, d, verify.Options{KeyWindows: win(time.Hour, 0)}, opts, f.key.Public())
		mustFail(t, err, verify.ErrNotVerified, "notBefore", res)
	}
	res, err := f.verifyWith(t, d3.String(), verify.Options{KeyWindows: win(-time.Hour, time.Hour)}, opts, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "no verified signing time", res)
	// Without a window the same signature verifies.
	if _, err := f.verifyWith(t, d3.String(), verify.Options{}, opts, f.key.Public()); err != nil {
		t.Fatal(err)
	}
}
