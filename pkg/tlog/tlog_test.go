package tlog_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/tlog"
)

// signed returns a fresh ECDSA P-256 signature over random bytes, as imgsign
// makes one: the digest is SHA-256 of the payload, the signature over it.
func signed(t testing.TB) tlog.Want {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signWith(t, k, []byte("payload "+rand.Text()))
}

func signWith(t testing.TB, k *ecdsa.PrivateKey, payload []byte) tlog.Want {
	t.Helper()
	d := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return tlog.Want{Digest: d[:], Signature: sig, PublicKey: &k.PublicKey}
}

func client(t testing.TB, url string, version int) *tlog.Client {
	t.Helper()
	c, err := tlog.NewClient(url, version, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func upload(t testing.TB, l *tlogtest.Log, w tlog.Want) *tlog.Entry {
	t.Helper()
	e, err := client(t, l.URL, 0).Upload(ctx(t), w)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return e
}

func mustVerify(t testing.TB, tr *tlog.Trust, e *tlog.Entry, w tlog.Want) *tlog.Facts {
	t.Helper()
	f, err := tr.Verify(e, w)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return f
}

func TestV1UploadVerify(t *testing.T) {
	l := tlogtest.NewV1(t)
	c := client(t, l.URL, 0)
	if v, err := c.Version(ctx(t)); err != nil || v != tlog.V1 {
		t.Fatalf("version = %d, %v; want 1", v, err)
	}
	before := time.Now().Unix()
	upload(t, l, signed(t)) // index 0
	w := signed(t)
	e := upload(t, l, w)
	f := mustVerify(t, l.Trust(), e, w)
	want := []string{tlog.CheckedSET, tlog.CheckedProof}
	if !slices.Equal(f.Checked, want) || f.LogIndex != 1 || f.Kind != "hashedrekord/0.0.1" ||
		f.Log != l.URL || f.LogID != hex.EncodeToString(l.LogID) || f.IntegratedTime < before-60 || f.IntegratedTime > before+600 {
		t.Fatalf("facts = %+v", f)
	}
	if p := e.GetInclusionProof(); p.GetTreeSize() != 2 || p.GetLogIndex() != 1 || len(p.GetHashes()) != 1 {
		t.Fatalf("inclusion proof = %v", p)
	}
	// The entry travels as protojson (the imgsign annotation) and comes back.
	data, err := tlog.MarshalEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tlog.ParseEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, l.Trust(), back, w)
	// Trusting the key alone (--rekor-key) works too.
	logs := loadKey(t, l.PublicKeyPEM())
	if f := mustVerify(t, &tlog.Trust{Logs: logs}, e, w); f.Log != hex.EncodeToString(l.LogID) {
		t.Fatalf("facts name the log %q, want its ID", f.Log)
	}
}

func loadKey(t testing.TB, pem []byte) []*tlog.Log {
	t.Helper()
	p := t.TempDir() + "/rekor.pub"
	if err := writeFile(p, pem); err != nil {
		t.Fatal(err)
	}
	logs, err := tlog.LoadKeyFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

func TestV2UploadVerify(t *testing.T) {
	l := tlogtest.NewV2(t)
	c := client(t, l.URL, 0)
	if v, err := c.Version(ctx(t)); err != nil || v != tlog.V2 {
		t.Fatalf("version = %d, %v; want 2", v, err)
	}
	for range 4 {
		upload(t, l, signed(t))
	}
	w := signed(t)
	e := upload(t, l, w)
	f := mustVerify(t, l.Trust(), e, w)
	if !slices.Equal(f.Checked, []string{tlog.CheckedProof}) || f.IntegratedTime != 0 || f.LogIndex != 4 ||
		f.Kind != "hashedrekord/0.0.2" || f.LogID != hex.EncodeToString(l.LogID) {
		t.Fatalf("facts = %+v", f)
	}
	if len(e.GetInclusionPromise().GetSignedEntryTimestamp()) != 0 {
		t.Fatal("a Rekor v2 entry with a SET")
	}
	if _, err := tlog.CosignBundle(e); err == nil {
		t.Fatal("CosignBundle of a v2 entry (no SET) succeeded")
	}
	// The key alone, as --rekor-key gives it: the log ID comes from the
	// checkpoint's origin.
	mustVerify(t, &tlog.Trust{Logs: loadKey(t, l.PublicKeyPEM())}, e, w)
	if l.Entries() != 5 {
		t.Fatalf("%d entries logged", l.Entries())
	}
}

func TestCosignBundleRoundTrip(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	e := upload(t, l, w)
	b, err := tlog.CosignBundle(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tlog.ParseCosignBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	f := mustVerify(t, l.Trust(), back, w)
	if !slices.Equal(f.Checked, []string{tlog.CheckedSET}) || f.LogIndex != e.GetLogIndex() || f.IntegratedTime != e.GetIntegratedTime() {
		t.Fatalf("facts = %+v", f)
	}
	if back.GetKindVersion().GetKind() != tlog.KindHashedRekord || back.GetKindVersion().GetVersion() != tlog.VersionV001 {
		t.Fatalf("kind = %v", back.GetKindVersion())
	}
}

func TestSearch(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	upload(t, l, signed(t))
	e := upload(t, l, w)
	c := client(t, l.URL, tlog.V1)
	got, err := c.Search(ctx(t), w.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].GetCanonicalizedBody(), e.GetCanonicalizedBody()) || got[0].GetLogIndex() != 1 {
		t.Fatalf("search found %d entries: %v", len(got), got)
	}
	mustVerify(t, l.Trust(), got[0], w)
	none, err := c.Search(ctx(t), make([]byte, 32))
	if err != nil || len(none) != 0 {
		t.Fatalf("search for an unknown digest: %v, %v", none, err)
	}
	v2 := tlogtest.NewV2(t)
	if _, err := client(t, v2.URL, 0).Search(ctx(t), w.Digest); err == nil {
		t.Fatal("search on a Rekor v2 log succeeded")
	}
}

func TestDuplicateUpload(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	first := upload(t, l, w)
	upload(t, l, signed(t))
	again := upload(t, l, w)
	if l.Entries() != 2 || again.GetLogIndex() != first.GetLogIndex() || !bytes.Equal(again.GetCanonicalizedBody(), first.GetCanonicalizedBody()) {
		t.Fatalf("duplicate upload: %d entries, index %d (first %d)", l.Entries(), again.GetLogIndex(), first.GetLogIndex())
	}
	// The existing entry, with a proof up to the current tree.
	if f := mustVerify(t, l.Trust(), again, w); len(f.Checked) != 2 || again.GetInclusionProof().GetTreeSize() != 2 {
		t.Fatalf("facts = %+v, proof %v", f, again.GetInclusionProof())
	}
}

// The fake refuses what Rekor refuses: a signature that does not verify
// over the digest.
func TestLogRefusesBadSignature(t *testing.T) {
	for _, l := range []*tlogtest.Log{tlogtest.NewV1(t), tlogtest.NewV2(t)} {
		w := signed(t)
		w.Digest = make([]byte, 32)
		_, err := client(t, l.URL, 0).Upload(ctx(t), w)
		if !errors.Is(err, tlog.ErrLog) || !strings.Contains(err.Error(), "400") {
			t.Errorf("upload of a bad signature: %v", err)
		}
		if l.Entries() != 0 {
			t.Errorf("%d entries logged", l.Entries())
		}
	}
}

// Neither Rekor accepts a pure Ed25519 signature in a hashedrekord entry
// (v1 verifies Ed25519 as Ed25519ph over the digest; v2 has no digest
// algorithm for it), and Rekor v2 takes ECDSA P-384 only with SHA-384: the
// client says so before sending anything.
func TestLogRefusesUnsupportedSignatures(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("payload")
	d := sha256.Sum256(msg)
	ed := tlog.Want{Digest: d[:], Signature: ed25519.Sign(priv, msg), PublicKey: pub}
	k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384 := signWith(t, k384, msg)
	for _, tc := range []struct {
		name    string
		log     *tlogtest.Log
		w       tlog.Want
		version int
		says    string
	}{
		{"v1 ed25519", tlogtest.NewV1(t), ed, tlog.V1, "Ed25519"},
		{"v2 ed25519", tlogtest.NewV2(t), ed, tlog.V2, "Ed25519"},
		{"v2 p384", tlogtest.NewV2(t), p384, tlog.V2, "P-384"},
	} {
		_, err := client(t, tc.log.URL, tc.version).Upload(ctx(t), tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: upload: %v; want a refusal naming %s", tc.name, err, tc.says)
		}
		if tc.log.Requests() != 0 {
			t.Errorf("%s: %d requests sent for a signature the log would refuse", tc.name, tc.log.Requests())
		}
	}
	// A P-384 signature is fine for Rekor v1.
	l := tlogtest.NewV1(t)
	mustVerify(t, l.Trust(), upload(t, l, p384), p384)
}

// hostile is an entry tampered with, and what its rejection must say.
type hostile struct {
	name   string
	mutate func(t *testing.T, c *hostileCase)
	msg    string
}

type hostileCase struct {
	log   *tlogtest.Log
	trust *tlog.Trust
	e     *tlog.Entry
	w     tlog.Want
}

func TestHostileEntries(t *testing.T) {
	v1, v2 := tlogtest.NewV1(t), tlogtest.NewV2(t)
	other1, other2 := tlogtest.NewV1(t), tlogtest.NewV2(t)
	// Bigger trees, so that proofs have hashes to tamper with.
	for range 4 {
		v1.Sign(signed(t))
		v2.Sign(signed(t))
	}
	flipHash := func(t *testing.T, c *hostileCase) { c.e.InclusionProof.Hashes[0][0] ^= 1 }
	otherCheckpoint := func(other *tlogtest.Log) func(*testing.T, *hostileCase) {
		return func(t *testing.T, c *hostileCase) {
			p := c.e.GetInclusionProof()
			p.Checkpoint.Envelope = other.Checkpoint(uint64(p.GetTreeSize()), p.GetRootHash())
		}
	}
	common := []hostile{
		{"other digest", func(t *testing.T, c *hostileCase) { c.w.Digest = bytes.Repeat([]byte{7}, 32) }, "records digest"},
		{"other signature bytes", func(t *testing.T, c *hostileCase) {
			c.w.Signature = append(slices.Clone(c.w.Signature[:len(c.w.Signature)-1]), c.w.Signature[len(c.w.Signature)-1]^1)
		}, "another signature"},
		{"other key", func(t *testing.T, c *hostileCase) { c.w.PublicKey = signed(t).PublicKey }, "another public key"},
		{"entry of another signature", func(t *testing.T, c *hostileCase) { c.w = signed(t) }, "records digest"},
		{"untrusted log", func(t *testing.T, c *hostileCase) {
			if c.log == v1 {
				c.trust = other1.Trust()
			} else {
				c.trust = other2.Trust()
			}
		}, "not trusted"},
		{"unknown log ID", func(t *testing.T, c *hostileCase) { c.e.LogId.KeyId = make([]byte, 32) }, "not trusted"},
		{"proof hash flipped", flipHash, "does not hash to the checkpoint"},
		{"proof root and checkpoint of another tree", func(t *testing.T, c *hostileCase) {
			p := c.e.GetInclusionProof()
			p.RootHash = bytes.Repeat([]byte{1}, 32)
			p.Checkpoint.Envelope = c.log.Checkpoint(uint64(p.GetTreeSize()), p.GetRootHash())
		}, "does not hash to the checkpoint"},
		{"tree size mismatch", func(t *testing.T, c *hostileCase) { c.e.InclusionProof.TreeSize++ }, "tree size"},
		{"index outside the tree", func(t *testing.T, c *hostileCase) { c.e.InclusionProof.LogIndex = c.e.InclusionProof.TreeSize }, "outside a tree"},
		{"proof of 1000 hashes", func(t *testing.T, c *hostileCase) {
			c.e.InclusionProof.Hashes = make([][]byte, 1000)
		}, "1000 hashes"},
		{"checkpoint huge", func(t *testing.T, c *hostileCase) {
			c.e.InclusionProof.Checkpoint.Envelope += strings.Repeat("x", tlog.MaxCheckpointBytes)
		}, "checkpoint of"},
		{"body over MaxBodyBytes", func(t *testing.T, c *hostileCase) {
			c.e.CanonicalizedBody = append(c.e.CanonicalizedBody, bytes.Repeat([]byte(" "), tlog.MaxBodyBytes)...)
		}, "entry body of"},
		{"no body", func(t *testing.T, c *hostileCase) { c.e.CanonicalizedBody = nil }, "no entry body"},
		{"neither SET nor proof", func(t *testing.T, c *hostileCase) {
			c.e.InclusionPromise, c.e.InclusionProof = nil, nil
		}, "neither"},
		{"kindVersion disagrees with the body", func(t *testing.T, c *hostileCase) {
			c.e.KindVersion.Version = "0.0.9"
		}, "entry says kind"},
		{"unsupported kind", func(t *testing.T, c *hostileCase) {
			c.e = c.log.Record([]byte(`{"apiVersion":"0.0.1","kind":"rekord","spec":{}}`))
		}, "not supported"},
		{"body not JSON", func(t *testing.T, c *hostileCase) { c.e = c.log.Record([]byte("\x00garbage")) }, "not JSON"},
		{"no entry", func(t *testing.T, c *hostileCase) { c.e = nil }, "no entry"},
	}
	v1only := []hostile{
		{"SET signed by another log key", func(t *testing.T, c *hostileCase) { other1.ResignSET(c.e) }, "signed entry timestamp does not verify"},
		{"SET alone, signed by another log key", func(t *testing.T, c *hostileCase) {
			other1.ResignSET(c.e)
			c.e.InclusionProof = nil
		}, "signed entry timestamp does not verify"},
		{"integrated time tampered", func(t *testing.T, c *hostileCase) { c.e.IntegratedTime-- }, "signed entry timestamp does not verify"},
		{"log index tampered", func(t *testing.T, c *hostileCase) { c.e.LogIndex++ }, "signed entry timestamp does not verify"},
		{"SET without integrated time", func(t *testing.T, c *hostileCase) { c.e.IntegratedTime = 0 }, "without an integrated time"},
		{"SET garbage", func(t *testing.T, c *hostileCase) { c.e.InclusionPromise.SignedEntryTimestamp = []byte("junk") }, "signed entry timestamp does not verify"},
		// A valid SET, but a proof that is not: every check present counts.
		{"valid SET, bad proof", flipHash, "does not hash"},
		{"checkpoint signed by another key", otherCheckpoint(other1), "checkpoint is not signed"},
		{"checkpoint malformed", func(t *testing.T, c *hostileCase) { c.e.InclusionProof.Checkpoint.Envelope = "nonsense" }, "malformed checkpoint"},
		{"checkpoint missing", func(t *testing.T, c *hostileCase) { c.e.InclusionProof.Checkpoint = nil }, "without a checkpoint"},
		{"log key not yet valid", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ValidFrom = time.Unix(c.e.GetIntegratedTime()+3600, 0)
		}, "before the log key's validity"},
		{"log key expired", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ValidUntil = time.Unix(c.e.GetIntegratedTime()-3600, 0)
		}, "after the log key's validity"},
		// Proof alone (no SET): no signed time, so the key must be valid
		// now, and the time the entry claims must be within its validity.
		{"proof alone, log key expired", func(t *testing.T, c *hostileCase) {
			c.e.InclusionPromise = nil
			c.trust.Logs[0].ValidUntil = time.Now().Add(-time.Hour)
		}, "validity ended"},
		{"proof alone, log key expired, entry claims an earlier time", func(t *testing.T, c *hostileCase) {
			c.e.InclusionPromise = nil
			c.trust.Logs[0].ValidUntil = time.Unix(c.e.GetIntegratedTime()+60, 0)
			c.trust.Now = func() time.Time { return time.Unix(c.e.GetIntegratedTime()+3600, 0) }
		}, "no signed entry timestamp"},
		{"proof alone, log key not yet valid", func(t *testing.T, c *hostileCase) {
			c.e.InclusionPromise = nil
			c.trust.Logs[0].ValidFrom = time.Now().Add(time.Hour)
		}, "not valid before"},
		{"proof alone, claimed time before the key's validity", func(t *testing.T, c *hostileCase) {
			c.e.InclusionPromise = nil
			c.trust.Logs[0].ValidFrom = time.Unix(c.e.GetIntegratedTime()+1, 0)
			c.trust.Now = func() time.Time { return time.Unix(c.e.GetIntegratedTime()+3600, 0) }
		}, "before the log key's validity"},
		{"log key not yet valid at a re-signed time", func(t *testing.T, c *hostileCase) {
			c.e.IntegratedTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
			c.log.ResignSET(c.e)
			c.e.InclusionProof = nil
			c.trust.Logs[0].ValidFrom = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		}, "before the log key's validity"},
	}
	v2only := []hostile{
		{"checkpoint signed by another log", otherCheckpoint(other2), "not trusted"},
		{"checkpoint signed by another log, log ID trusted", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ID = c.log.LogID
			otherCheckpoint(other2)(t, c)
		}, "checkpoint is not signed"},
		{"checkpoint of this origin signed by another key, log ID trusted", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ID = c.log.LogID
			other := tlogtest.NewV2(t)
			other.Origin = c.log.Origin
			otherCheckpoint(other)(t, c)
		}, "checkpoint is not signed"},
		{"checkpoint of this origin signed by another key", func(t *testing.T, c *hostileCase) {
			other := tlogtest.NewV2(t)
			other.Origin = c.log.Origin
			otherCheckpoint(other)(t, c)
		}, "checkpoint is not signed"},
		// Trusted by key alone, a v2 log is recognised by its checkpoint's
		// origin: without it, the entry's log is unknown.
		{"checkpoint missing", func(t *testing.T, c *hostileCase) { c.e.InclusionProof.Checkpoint = nil }, "not trusted"},
		{"checkpoint of another origin", func(t *testing.T, c *hostileCase) {
			c.e.InclusionProof.Checkpoint.Envelope = "other.origin" + strings.TrimPrefix(c.e.InclusionProof.Checkpoint.Envelope, c.log.Origin)
		}, "not trusted"},
		// Trusted with its log ID (a trusted root), the checkpoint is checked.
		{"checkpoint missing, log ID trusted", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ID = c.log.LogID
			c.e.InclusionProof.Checkpoint = nil
		}, "without a checkpoint"},
		{"checkpoint of another origin, log ID trusted", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ID = c.log.LogID
			c.e.InclusionProof.Checkpoint.Envelope = "other.origin" + strings.TrimPrefix(c.e.InclusionProof.Checkpoint.Envelope, c.log.Origin)
		}, "checkpoint is not signed"},
		{"checkpoint origin with a space, log ID trusted", func(t *testing.T, c *hostileCase) {
			c.trust.Logs[0].ID = c.log.LogID
			c.e.InclusionProof.Checkpoint.Envelope = "other origin" + strings.TrimPrefix(c.e.InclusionProof.Checkpoint.Envelope, c.log.Origin)
		}, "checkpoint origin"},
		{"a SET added", func(t *testing.T, c *hostileCase) {
			c.e.IntegratedTime = time.Now().Unix()
			c.e.InclusionPromise = nil
			other1.ResignSET(c.e)
		}, "signed entry timestamp does not verify"},
	}
	for _, lc := range []struct {
		name  string
		log   *tlogtest.Log
		cases []hostile
	}{{"v1", v1, append(slices.Clone(common), v1only...)}, {"v2", v2, append(slices.Clone(common), v2only...)}} {
		for _, h := range lc.cases {
			t.Run(lc.name+"/"+h.name, func(t *testing.T) {
				w := signed(t)
				c := &hostileCase{log: lc.log, trust: lc.log.Trust(), e: lc.log.Sign(w), w: w}
				mustVerify(t, c.trust, proto.Clone(c.e).(*tlog.Entry), c.w) // untampered, it verifies
				h.mutate(t, c)
				f, err := c.trust.Verify(c.e, c.w)
				if !errors.Is(err, tlog.ErrInvalid) || !strings.Contains(err.Error(), h.msg) {
					t.Fatalf("verify = %+v, %v; want ErrInvalid saying %q", f, err, h.msg)
				}
			})
		}
	}
}

// An entry with an inclusion proof and no SET proves no time: the time it
// carries is not reported.
func TestUnsignedIntegratedTimeNotReported(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	e := l.Sign(w)
	e.InclusionPromise = nil
	e.IntegratedTime = 42
	f := mustVerify(t, l.Trust(), e, w)
	if f.IntegratedTime != 0 || !slices.Equal(f.Checked, []string{tlog.CheckedProof}) {
		t.Fatalf("facts = %+v", f)
	}
}

// A proof-only Rekor v1 entry from a log key valid now, within the key's
// window, verifies; the same entry once the key's validity has ended does
// not (the ErrInvalid cases are in the hostile table).
func TestProofAloneKeyValidity(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	e := l.Sign(w)
	e.InclusionPromise = nil
	tr := l.Trust()
	tr.Logs[0].ValidFrom = time.Unix(e.GetIntegratedTime()-3600, 0)
	tr.Logs[0].ValidUntil = time.Unix(e.GetIntegratedTime()+3600, 0)
	tr.Now = func() time.Time { return time.Unix(e.GetIntegratedTime()+60, 0) }
	mustVerify(t, tr, e, w)
	tr.Now = func() time.Time { return time.Unix(e.GetIntegratedTime()+7200, 0) }
	if _, err := tr.Verify(e, w); !errors.Is(err, tlog.ErrInvalid) || !strings.Contains(err.Error(), "validity ended") {
		t.Fatalf("after the key's validity: err = %v", err)
	}
}

func TestEmptyTrustRejects(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	e := l.Sign(w)
	for _, tr := range []*tlog.Trust{nil, {}} {
		if _, err := tr.Verify(e, w); !errors.Is(err, tlog.ErrInvalid) {
			t.Fatalf("verify with no trusted log: %v", err)
		}
	}
}

func TestMalformedCosignBundle(t *testing.T) {
	l := tlogtest.NewV1(t)
	good, err := tlog.CosignBundle(l.Sign(signed(t)))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"unknown field":   strings.Replace(string(good), `"Payload":{`, `"Payload":{"extra":1,`, 1),
		"unknown top":     strings.Replace(string(good), `{"SignedEntryTimestamp"`, `{"verificationMaterial":{},"SignedEntryTimestamp"`, 1),
		"bad base64 body": strings.Replace(string(good), `"body":"`, `"body":"!!`, 1),
		"bad base64 SET":  strings.Replace(string(good), `"SignedEntryTimestamp":"`, `"SignedEntryTimestamp":"!!`, 1),
		"bad log ID":      strings.Replace(string(good), `"logID":"`, `"logID":"zz`, 1),
		"missing SET":     strings.Replace(string(good), `"SignedEntryTimestamp":"`, `"X":"`, 1),
		"empty SET":       `{"SignedEntryTimestamp":"","Payload":{"body":"e30=","integratedTime":1,"logIndex":1,"logID":"00"}}`,
		"body not JSON":   `{"SignedEntryTimestamp":"AA==","Payload":{"body":"AA==","integratedTime":1,"logIndex":1,"logID":"00"}}`,
		"not JSON":        `SignedEntryTimestamp`,
		"huge":            `{"SignedEntryTimestamp":"` + strings.Repeat("A", tlog.MaxResponseBytes) + `"}`,
	} {
		if data == string(good) {
			t.Fatalf("%s: the bundle was not changed", name)
		}
		if e, err := tlog.ParseCosignBundle([]byte(data)); !errors.Is(err, tlog.ErrInvalid) {
			t.Errorf("%s: ParseCosignBundle = %v, %v; want ErrInvalid", name, e, err)
		}
	}
}

func TestParseEntryStrict(t *testing.T) {
	for name, data := range map[string]string{
		"unknown field": `{"logIndex":"1","bogus":true}`,
		"not JSON":      `{`,
		"huge":          `{"canonicalizedBody":"` + strings.Repeat("A", tlog.MaxResponseBytes) + `"}`,
	} {
		if _, err := tlog.ParseEntry([]byte(data)); !errors.Is(err, tlog.ErrInvalid) {
			t.Errorf("%s: ParseEntry: %v; want ErrInvalid", name, err)
		}
	}
}

// signedDSSE is a signature over a DSSE envelope's PAE, as imgsign signs
// bundles.
func signedDSSE(t testing.TB, k *ecdsa.PrivateKey, payloadType string, payload []byte) tlog.Want {
	t.Helper()
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
	w := signWith(t, k, pae)
	w.Envelope = &tlog.Envelope{PayloadType: payloadType, Payload: payload}
	return w
}

func TestDSSEUploadVerify(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[]}`)
	w := signedDSSE(t, k, "application/vnd.in-toto+json", payload)

	v1 := tlogtest.NewV1(t)
	e := upload(t, v1, w)
	f := mustVerify(t, v1.Trust(), e, w)
	if f.Kind != "dsse/0.0.1" || len(f.Checked) != 2 {
		t.Fatalf("facts = %+v", f)
	}
	// Uploaded again (same envelope, same signature): the log has it, the
	// client finds it by the payload's digest.
	again := upload(t, v1, w)
	if again.GetLogIndex() != e.GetLogIndex() || v1.Entries() != 1 {
		t.Fatalf("duplicate dsse upload: index %d, %d entries", again.GetLogIndex(), v1.Entries())
	}
	found, err := client(t, v1.URL, tlog.V1).Lookup(ctx(t), w)
	if err != nil || len(found) != 1 {
		t.Fatalf("lookup: %v, %v", found, err)
	}
	// The entry binds the envelope's payload, signature and key.
	for name, bad := range map[string]func(*tlog.Want){
		"other payload": func(w *tlog.Want) {
			w.Envelope = &tlog.Envelope{PayloadType: w.Envelope.PayloadType, Payload: []byte("{}")}
		},
		"other signature": func(w *tlog.Want) { w.Signature = signedDSSE(t, k, w.Envelope.PayloadType, payload).Signature },
		"other key":       func(w *tlog.Want) { w.PublicKey = signed(t).PublicKey },
		"no envelope":     func(w *tlog.Want) { w.Envelope = nil },
	} {
		ww := w
		bad(&ww)
		if _, err := v1.Trust().Verify(e, ww); !errors.Is(err, tlog.ErrInvalid) {
			t.Errorf("%s: verify: %v; want ErrInvalid", name, err)
		}
	}
	// Another signature's hashedrekord entry does not stand for it.
	if _, err := v1.Trust().Verify(v1.Sign(signed(t)), w); !errors.Is(err, tlog.ErrInvalid) {
		t.Errorf("hashedrekord of another signature for a dsse signature: %v", err)
	}

	// Rekor v2 records the signature over the PAE as a hashedrekord.
	v2 := tlogtest.NewV2(t)
	e2 := upload(t, v2, w)
	if f := mustVerify(t, v2.Trust(), e2, w); f.Kind != "hashedrekord/0.0.2" {
		t.Fatalf("facts = %+v", f)
	}
}

// Policy.Check: present entries must verify, Require needs one, unchecked
// entries are counted without trust, and the online log is asked only when
// no entry travels.
func TestPolicyCheck(t *testing.T) {
	l := tlogtest.NewV1(t)
	w := signed(t)
	e := upload(t, l, w)
	other := tlogtest.NewV1(t)
	c := client(t, l.URL, tlog.V1)
	for _, tc := range []struct {
		name    string
		p       tlog.Policy
		entries []*tlog.Entry
		facts   int
		errIs   error
	}{
		{"entry verified", tlog.Policy{Trust: l.Trust(), Require: true}, []*tlog.Entry{e}, 1, nil},
		{"same entry twice reported once", tlog.Policy{Trust: l.Trust()}, []*tlog.Entry{e, e}, 1, nil},
		{"entry of an untrusted log", tlog.Policy{Trust: other.Trust()}, []*tlog.Entry{e}, 0, tlog.ErrInvalid},
		{"no entry, not required", tlog.Policy{Trust: l.Trust()}, nil, 0, nil},
		{"no entry, required", tlog.Policy{Trust: l.Trust(), Require: true}, nil, 0, tlog.ErrRequired},
		{"unchecked, required", tlog.Policy{Require: true}, []*tlog.Entry{e}, 0, tlog.ErrRequired},
		{"online lookup", tlog.Policy{Trust: l.Trust(), Online: c, Require: true}, nil, 1, nil},
		{"online lookup, untrusted log", tlog.Policy{Trust: other.Trust(), Online: c, Require: true}, nil, 0, tlog.ErrRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.p.Check(ctx(t), w, tc.entries)
			if (tc.errIs == nil) != (err == nil) || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
				t.Fatalf("err = %v, want %v", err, tc.errIs)
			}
			if len(r.Facts) != tc.facts {
				t.Errorf("%d facts, want %d", len(r.Facts), tc.facts)
			}
		})
	}
	r, _ := tlog.Policy{}.Check(ctx(t), w, []*tlog.Entry{e})
	if r.Unchecked != 1 {
		t.Errorf("unchecked = %d, want 1", r.Unchecked)
	}
}
