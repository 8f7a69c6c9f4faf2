package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLegacyAttestationRekorV1Cosign: a legacy attestation (.att tag)
// imgsign records in a real Rekor v1 verifies in cosign v2 and v3
// (verify-attestation checks the log entry's envelope hash against the
// stored envelope), and in imgsign with the log required.
func TestLegacyAttestationRekorV1Cosign(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	rekor := startRekorV1(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	pw := []string{"IMGSIGN_PASSWORD=pw"}
	pred := filepath.Join(dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/build/v1"}`), 0o644)
	root := filepath.Join(dir, "trusted_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--out", root).must(t, 0, "")

	d := reg.pushImage(t, "legacyatt/app:v1")
	run(t, pw, bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, "--format", "legacy", "--rekor-url", rekor.URL, d.String())...).must(t, 0, "recorded in transparency log")
	run(t, nil, bin, "verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--rekor-key", rekor.PublicKeyPEM, "--require-tlog", "--format", "legacy", d.String()).must(t, 0, "signed-entry-timestamp")
	for _, c := range []string{c2, c3} {
		run(t, nil, c, "verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--trusted-root", root, "--allow-http-registry", d.String()).must(t, 0, "")
	}
	// cosign checks the entry: with a root naming another log it refuses.
	other := filepath.Join(dir, "other_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", otherLogKey(t, dir), "--out", other).must(t, 0, "")
	if r := run(t, nil, c3, "verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--trusted-root", other, "--allow-http-registry", d.String()); r.code == 0 {
		t.Fatal("cosign accepted the attestation's entry under a root naming another log: the test proves nothing")
	}
}
