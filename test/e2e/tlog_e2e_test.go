//go:build linux

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// rawManifest is a manifest to put back as is.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// editSignatureLayers rewrites the annotations of every layer of the legacy
// signature manifest of d (what an attacker with registry write access can
// do).
func editSignatureLayers(t testing.TB, reg *registry, d name.Digest, edit func(i int, ann map[string]string)) {
	t.Helper()
	ref, err := name.ParseReference(sigTag(reg, d.Context().RepositoryStr(), d.DigestStr()))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, reg.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	for i, l := range m["layers"].([]any) {
		layer := l.(map[string]any)
		ann := map[string]string{}
		for k, v := range layer["annotations"].(map[string]any) {
			ann[k] = v.(string)
		}
		edit(i, ann)
		layer["annotations"] = ann
	}
	data, _ := json.Marshal(m)
	if err := remote.Put(ref, rawManifest{data, desc.MediaType}, reg.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
}

// signatureAnnotations returns the annotations of the first legacy signature
// layer of d.
func signatureAnnotations(t testing.TB, reg *registry, d name.Digest) map[string]string {
	t.Helper()
	m := reg.manifest(t, sigTag(reg, d.Context().RepositoryStr(), d.DigestStr()))
	if len(m.Layers) == 0 {
		t.Fatal("no signature layer")
	}
	return m.Layers[0].Annotations
}

// eventually runs f until it exits 0, for at most 10 s: Rekor v1 indexes
// an entry for search in the background, a moment after recording it.
func eventually(t testing.TB, f func() result) result {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := f()
		if r.code == 0 || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// otherLogKey writes a PEM public key no log uses.
func otherLogKey(t testing.TB, dir string) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	p := filepath.Join(dir, "other-log.pub")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	return p
}

// TestTlogRekorV1 signs with a real Rekor v1 (rekor-server, Trillian,
// MariaDB) and a real registry (TLS, auth), verifies offline and online,
// and refuses stripped, copied and untrusted entries.
func TestTlogRekorV1(t *testing.T) {
	bin := imgsign(t)
	rekor := startRekorV1(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	env := []string{"IMGSIGN_PASSWORD=pw"}
	da := reg.pushImage(t, "tlog/app:a")
	db := reg.pushImage(t, "tlog/app:b")

	for _, d := range []name.Digest{da, db} {
		run(t, env, bin, args("sign", "--key", k+".key", "--rekor-url", rekor.URL, reg.flags(), d.String())...).must(t, 0, "recorded in transparency log")
	}
	ann := signatureAnnotations(t, reg, da)
	if ann["dev.sigstore.cosign/bundle"] == "" || ann["dev.imgsign.tlog-entry"] == "" {
		t.Fatalf("the signature layer lacks its log entry annotations: %v", ann)
	}

	// Offline, with the log key: SET and inclusion proof checked.
	out := run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", "-o", "json", reg.flags(), da.String())...).must(t, 0, "signed-entry-timestamp, inclusion-proof")
	var res []struct {
		Signatures []struct {
			Source string `json:"source"`
			Tlog   []struct {
				LogIndex       int64    `json:"logIndex"`
				IntegratedTime int64    `json:"integratedTime"`
				Checked        []string `json:"checked"`
			} `json:"tlog"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &res); err != nil {
		t.Fatalf("json output: %v\n%s", err, out.stdout)
	}
	for _, s := range res[0].Signatures {
		if len(s.Tlog) == 0 || s.Tlog[0].IntegratedTime == 0 {
			t.Fatalf("%s signature without verified log facts: %+v", s.Source, s)
		}
	}
	// The same through a trusted root.
	root := filepath.Join(dir, "trusted_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--out", root).must(t, 0, "")
	run(t, env, bin, args("verify", "--key", k+".pub", "--trusted-root", root, "--require-tlog", reg.flags(), da.String())...).must(t, 0, "logged in "+rekor.URL)

	// A log key that is not the log's: every entry is refused.
	other := otherLogKey(t, dir)
	run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", other, reg.flags(), da.String())...).must(t, 12, "not trusted")
	// --require-tlog without a log key is a usage error.
	run(t, env, bin, args("verify", "--key", k+".pub", "--require-tlog", reg.flags(), da.String())...).must(t, 2, "--rekor-key")

	// An entry copied from image a's signature onto image b's: refused.
	editSignatureLayers(t, reg, db, func(_ int, ann map[string]string) {
		ann["dev.sigstore.cosign/bundle"] = signatureAnnotations(t, reg, da)["dev.sigstore.cosign/bundle"]
		delete(ann, "dev.imgsign.tlog-entry")
	})
	run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", rekor.PublicKeyPEM, "--format", "legacy", reg.flags(), db.String())...).must(t, 12, "not this signature's payload")

	// Entries stripped: --require-tlog refuses; the log itself (online)
	// still proves the signature was logged.
	editSignatureLayers(t, reg, da, func(_ int, ann map[string]string) {
		delete(ann, "dev.sigstore.cosign/bundle")
		delete(ann, "dev.imgsign.tlog-entry")
	})
	run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", "--format", "legacy", reg.flags(), da.String())...).must(t, 12, "no transparency-log entry")
	eventually(t, func() result {
		return run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--require-tlog", "--format", "legacy", reg.flags(), da.String())...)
	}).must(t, 0, "inclusion-proof")

	// RSA signatures are deterministic: signing again uploads the same
	// entry, which the log refuses as a duplicate (409) and points to.
	rsa := filepath.Join(dir, "rsa")
	run(t, env, bin, "generate-key-pair", "--algorithm", "rsa-3072", "--output-key-prefix", rsa).must(t, 0, "")
	for i := range 2 {
		r := run(t, env, bin, args("sign", "--key", rsa+".key", "--format", "legacy", "--rekor-url", rekor.URL, reg.flags(), db.String())...).must(t, 0, "recorded in transparency log")
		if i == 1 && !strings.Contains(r.stderr, "already carries this signature") {
			t.Fatalf("second identical signature:\n%s", r.stderr)
		}
	}
	run(t, env, bin, args("verify", "--key", rsa+".pub", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", reg.flags(), db.String())...).must(t, 0, "signed-entry-timestamp, inclusion-proof")

	// A log that is down at signing time: the sign fails as a signing
	// service's failure (exit 16), the registry is untouched.
	dc := reg.pushImage(t, "tlog/app:c")
	r := run(t, env, bin, args("sign", "--key", k+".key", "--rekor-url", "http://127.0.0.1:1", reg.flags(), dc.String())...).must(t, 16, "nothing was written to the registry")
	if strings.Contains(r.stderr, "Signed") {
		t.Fatalf("a signature was reported stored:\n%s", r.stderr)
	}
	run(t, env, bin, args("verify", "--key", k+".pub", reg.flags(), dc.String())...).must(t, 10, "no signatures")

	// Offline: --upload=false writes the signature, payload and entry to
	// files; attach stores them later; verify then requires the entry.
	entry, pl, sg := filepath.Join(dir, "entry.json"), filepath.Join(dir, "payload.json"), filepath.Join(dir, "payload.sig")
	run(t, env, bin, args("sign", "--key", k+".key", "--rekor-url", rekor.URL, "--upload=false", "--output-tlog-entry", entry, "--output-payload", pl, "--output-signature", sg, reg.flags(), dc.String())...).must(t, 0, "not uploaded")
	if data, err := os.ReadFile(entry); err != nil || !strings.Contains(string(data), "inclusionProof") {
		t.Fatalf("entry file: %v %s", err, data)
	}
	run(t, env, bin, args("verify", "--key", k+".pub", reg.flags(), dc.String())...).must(t, 10, "no signatures")
	run(t, nil, bin, args("attach", "signature", "--payload", pl, "--signature", sg, "--tlog-entry", entry, reg.flags(), da.String())...).must(t, 2, "signs another image")
	run(t, nil, bin, args("attach", "signature", "--payload", pl, "--signature", sg, "--tlog-entry", entry, reg.flags(), dc.String())...).must(t, 0, "Attached")
	run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", reg.flags(), dc.String())...).must(t, 0, "signed-entry-timestamp, inclusion-proof")
}

// TestTlogRekorV2 signs with a real Rekor v2 (rekor-tiles) in both formats
// and verifies the inclusion proofs offline.
func TestTlogRekorV2(t *testing.T) {
	bin := imgsign(t)
	rekor := startRekorV2(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	env := []string{"IMGSIGN_PASSWORD=pw"}
	d := reg.pushImage(t, "tlog2/app:v1")
	run(t, env, bin, args("sign", "--key", k+".key", "--rekor-url", rekor.URL, reg.flags(), d.String())...).must(t, 0, "recorded in transparency log")
	ann := signatureAnnotations(t, reg, d)
	if ann["dev.imgsign.tlog-entry"] == "" || ann["dev.sigstore.cosign/bundle"] != "" {
		t.Fatalf("a v2 entry has no SET, so only imgsign's annotation is expected: %v", ann)
	}
	for _, format := range []string{"legacy", "bundle"} {
		run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", "--format", format, reg.flags(), d.String())...).must(t, 0, "(checked: inclusion-proof)")
	}
	run(t, env, bin, args("verify", "--key", k+".pub", "--rekor-key", otherLogKey(t, dir), "--format", "legacy", reg.flags(), d.String())...).must(t, 12, "not trusted")
}

// TestTlogCosignInterop: an imgsign signature recorded in the local Rekor
// v1 verifies with cosign given a trusted root naming that log; a cosign
// signature with a Rekor bundle verifies with imgsign.
func TestTlogCosignInterop(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	rekor := startRekorV1(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	env := []string{"IMGSIGN_PASSWORD=pw"}
	cosignFlags := []string{"--registry-cacert", reg.caFile, "--registry-username", reg.username, "--registry-password", reg.password}
	root := filepath.Join(dir, "trusted_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--out", root).must(t, 0, "")

	d := reg.pushImage(t, "tloginterop/app:v1")
	run(t, env, bin, args("sign", "--key", k+".key", "--format", "legacy", "--rekor-url", rekor.URL, reg.flags(), d.String())...).must(t, 0, "recorded")
	run(t, nil, c3, args("verify", "--key", k+".pub", "--trusted-root", root, cosignFlags, d.String())...).must(t, 0, d.DigestStr())
	run(t, nil, c2, args("verify", "--key", k+".pub", "--trusted-root", root, cosignFlags, d.String())...).must(t, 0, d.DigestStr())
	// A bundle signature (cosign v3's layout) carries a dsse entry, which
	// cosign v3 checks against the same root.
	db := reg.pushImage(t, "tloginterop/app:bundle")
	run(t, env, bin, args("sign", "--key", k+".key", "--format", "bundle", "--rekor-url", rekor.URL, reg.flags(), db.String())...).must(t, 0, "recorded")
	run(t, nil, c3, args("verify", "--key", k+".pub", "--trusted-root", root, cosignFlags, db.String())...).must(t, 0, "transparency log was verified")
	// cosign checks the log too: with a root naming another log it refuses.
	otherRoot := filepath.Join(dir, "other_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", otherLogKey(t, dir), "--out", otherRoot).must(t, 0, "")
	if r := run(t, nil, c3, args("verify", "--key", k+".pub", "--trusted-root", otherRoot, cosignFlags, d.String())...); r.code == 0 {
		t.Fatal("cosign accepted the entry with a root naming another log: the test proves nothing")
	}

	for _, tc := range []struct {
		cosign string
		extra  []string
	}{
		{cosign3, []string{"--use-signing-config=false", "--new-bundle-format=false"}},
		{cosign3 + "-bundle", []string{"--use-signing-config=false"}},
		{cosign2, nil},
	} {
		t.Run(tc.cosign, func(t *testing.T) {
			c := tool(t, strings.TrimSuffix(tc.cosign, "-bundle"))
			prefix := filepath.Join(dir, tc.cosign)
			pw := []string{"COSIGN_PASSWORD=cpw"}
			run(t, pw, c, "generate-key-pair", "--output-key-prefix", prefix).must(t, 0, "")
			d := reg.pushImage(t, "tlogfromcosign/"+tc.cosign+":v1")
			run(t, pw, c, args("sign", "--key", prefix+".key", "--rekor-url", rekor.URL, "--tlog-upload=true", "-y", tc.extra, cosignFlags, d.String())...).must(t, 0, "")
			run(t, nil, bin, args("verify", "--key", prefix+".pub", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", reg.flags(), d.String())...).must(t, 0, "signed-entry-timestamp")
			run(t, nil, bin, args("verify", "--key", prefix+".pub", "--rekor-key", otherLogKey(t, t.TempDir()), reg.flags(), d.String())...).must(t, 12, "not trusted")
		})
	}
}

// TestTlogAttestations: attestations recorded in the local Rekor v1, by
// imgsign and by cosign, verify with the log required, in both tools.
func TestTlogAttestations(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	rekor := startRekorV1(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	pw := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	pred := filepath.Join(dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/build/v1"}`), 0o644)
	root := filepath.Join(dir, "trusted_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--out", root).must(t, 0, "")
	verifyArgs := []string{"verify-attestation", "--key", k + ".pub", "--type", "slsaprovenance", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog"}

	// imgsign attests with the log; imgsign and cosign v3 verify the log entry.
	d := reg.pushImage(t, "tlogatt/imgsign:v1")
	run(t, pw, bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, "--rekor-url", rekor.URL, d.String())...).must(t, 0, "recorded in transparency log")
	for _, format := range []string{"legacy", "bundle"} {
		run(t, nil, bin, args(verifyArgs, "--format", format, d.String())...).must(t, 0, "inclusion-proof")
	}
	run(t, nil, c3, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--trusted-root", root, "--allow-http-registry", d.String())...).must(t, 0, "")
	// Without the log entry, the requirement fails.
	dn := reg.pushImage(t, "tlogatt/nolog:v1")
	run(t, pw, bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, dn.String())...).must(t, 0, "Attested")
	run(t, nil, bin, args(verifyArgs, dn.String())...).must(t, 12, "no transparency-log entry")

	// cosign v3 (bundle) and v2 (legacy) attest with the log; imgsign
	// verifies.
	dc := reg.pushImage(t, "tlogatt/cosign3:v1")
	run(t, pw, c3, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, "--use-signing-config=false", "--rekor-url", rekor.URL, "--tlog-upload=true", "-y", "--allow-http-registry", dc.String())...).must(t, 0, "")
	run(t, nil, bin, args(verifyArgs, dc.String())...).must(t, 0, "signed-entry-timestamp")
	d2 := reg.pushImage(t, "tlogatt/cosign2:v1")
	run(t, pw, c2, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, "--rekor-url", rekor.URL, "--tlog-upload=true", "-y", "--allow-http-registry", d2.String())...).must(t, 0, "")
	run(t, nil, bin, args(verifyArgs, d2.String())...).must(t, 0, "signed-entry-timestamp")
}

// TestTlogBlobs: files signed with the local Rekor v1 verify with the log
// required, imgsign's bundles in cosign and cosign's in imgsign.
func TestTlogBlobs(t *testing.T) {
	bin := imgsign(t)
	c3 := tool(t, cosign3)
	rekor := startRekorV1(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "release.tar.gz")
	os.WriteFile(file, []byte("a release archive, logged\n"), 0o644)
	pw := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")
	root := filepath.Join(dir, "trusted_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--out", root).must(t, 0, "")

	ib := filepath.Join(dir, "i.bundle")
	run(t, pw, bin, "sign-blob", "--key", k+".key", "--rekor-url", rekor.URL, "--bundle", ib, file).must(t, 0, "Recorded in transparency log")
	run(t, nil, bin, "verify-blob", "--key", k+".pub", "--bundle", ib, "--trusted-root", root, "--require-tlog", file).must(t, 0, "signed-entry-timestamp, inclusion-proof")
	run(t, nil, c3, "verify-blob", "--key", k+".pub", "--bundle", ib, "--trusted-root", root, file).must(t, 0, "Verified OK")
	// Bare signatures carry no entry: the log is asked online, and holds
	// entries for this file, but only the logged signature's counts.
	sig, logged := filepath.Join(dir, "i.sig"), filepath.Join(dir, "logged.sig")
	run(t, pw, bin, "sign-blob", "--key", k+".key", "--output-signature", sig, file).must(t, 0, "")
	run(t, pw, bin, "sign-blob", "--key", k+".key", "--rekor-url", rekor.URL, "--output-signature", logged, file).must(t, 0, "Recorded")
	run(t, nil, bin, "verify-blob", "--key", k+".pub", "--signature", sig, "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", file).must(t, 12, "no transparency-log entry")
	online := []string{"--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--require-tlog"}
	run(t, nil, bin, args("verify-blob", "--key", k+".pub", "--signature", sig, online, file)...).must(t, 12, "no entry for this signature")
	eventually(t, func() result {
		return run(t, nil, bin, args("verify-blob", "--key", k+".pub", "--signature", logged, online, file)...)
	}).must(t, 0, "inclusion-proof")

	ck := filepath.Join(dir, "cosign")
	run(t, pw, c3, "generate-key-pair", "--output-key-prefix", ck).must(t, 0, "")
	cb := filepath.Join(dir, "c.bundle")
	run(t, pw, c3, "sign-blob", "--key", ck+".key", "--use-signing-config=false", "--rekor-url", rekor.URL, "--tlog-upload=true", "--bundle", cb, "-y", file).must(t, 0, "")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--bundle", cb, "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", file).must(t, 0, "signed-entry-timestamp")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--bundle", cb, "--rekor-key", otherLogKey(t, dir), file).must(t, 12, "not trusted")
}
