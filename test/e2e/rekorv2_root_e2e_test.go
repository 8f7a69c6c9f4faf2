package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrustedRootRekorV2Cosign: one trusted root, made by imgsign for a real
// Rekor v2 log (origin read from the log's checkpoint), serves imgsign and
// cosign v3 alike for a bundle signature logged there; a root naming the
// log under another origin is refused by both.
func TestTrustedRootRekorV2Cosign(t *testing.T) {
	bin := imgsign(t)
	c3 := tool(t, cosign3)
	rekor := startRekorV2(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	env := []string{"IMGSIGN_PASSWORD=pw"}

	root := filepath.Join(dir, "trusted_root.json")
	// The origin comes from the checkpoint the log publishes (its read side).
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.ReadURL, "--out", root).must(t, 0, "")
	var tr struct {
		Tlogs []struct {
			BaseURL string `json:"baseUrl"`
		} `json:"tlogs"`
	}
	data, _ := os.ReadFile(root)
	if err := json.Unmarshal(data, &tr); err != nil || len(tr.Tlogs) != 1 || tr.Tlogs[0].BaseURL != "https://"+rekor.Origin {
		t.Fatalf("trusted root: want baseUrl https://%s: %v\n%s", rekor.Origin, err, data)
	}
	// Given explicitly, the same root.
	explicit := filepath.Join(dir, "explicit_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-origin", rekor.Origin, "--out", explicit).must(t, 0, "")
	if other, _ := os.ReadFile(explicit); string(other) != string(data) {
		t.Fatalf("--rekor-origin and the checkpoint's origin give different roots:\n%s\n%s", data, other)
	}
	// The write URL publishes no checkpoint: said so, with the advice.
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL, "--out", filepath.Join(dir, "x.json")).must(t, 1, "--rekor-origin")

	d := reg.pushImage(t, "tlog2root/app:v1")
	run(t, env, bin, args("sign", "--key", k+".key", "--format", "bundle", "--rekor-url", rekor.URL, reg.flags(), d.String())...).must(t, 0, "recorded in transparency log")
	run(t, nil, bin, args("verify", "--key", k+".pub", "--format", "bundle", "--trusted-root", root, "--require-tlog", reg.flags(), d.String())...).must(t, 0, "inclusion-proof")
	run(t, nil, c3, "verify", "--key", k+".pub", "--trusted-root", root, "--allow-http-registry", d.String()).must(t, 0, d.DigestStr())

	// The same key under another origin is another log: both tools refuse.
	wrong := filepath.Join(dir, "wrong_root.json")
	run(t, nil, bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-origin", "elsewhere.example", "--out", wrong).must(t, 0, "")
	run(t, nil, bin, args("verify", "--key", k+".pub", "--format", "bundle", "--trusted-root", wrong, "--require-tlog", reg.flags(), d.String())...).must(t, 12, "")
	if r := run(t, nil, c3, "verify", "--key", k+".pub", "--trusted-root", wrong, "--allow-http-registry", d.String()); r.code == 0 || !strings.Contains(r.stderr, "error") {
		t.Fatalf("cosign v3 accepted a root naming the log under another origin:\n%s", r.stderr)
	}
}
