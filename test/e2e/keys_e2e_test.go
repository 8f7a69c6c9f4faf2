//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysMoveBothWays: a cosign key pair works in imgsign, and an imgsign
// key pair works in cosign.
func TestKeysMoveBothWays(t *testing.T) {
	bin := imgsign(t)
	dir := t.TempDir()
	for _, cosign := range []string{cosign3, cosign2} {
		t.Run(cosign, func(t *testing.T) {
			c := tool(t, cosign)
			pw := []string{"COSIGN_PASSWORD=from-cosign"}
			prefix := filepath.Join(dir, cosign)
			// cosign generate-key-pair writes cosign.key/.pub in the working
			// directory, or under --output-key-prefix.
			run(t, pw, c, "generate-key-pair", "--output-key-prefix", prefix).must(t, 0, "")
			info := run(t, pw, bin, "key", "info", prefix+".key").must(t, 0, "ecdsa P-256")
			pubInfo := run(t, nil, bin, "key", "info", prefix+".pub").must(t, 0, "public key")
			id := keyID(t, info.stdout)
			if id == "" || id != keyID(t, pubInfo.stdout) {
				t.Fatalf("key IDs differ: %q vs %q", info.stdout, pubInfo.stdout)
			}
			pub := run(t, pw, bin, "public-key", "--key", prefix+".key").must(t, 0, "BEGIN PUBLIC KEY")
			want, _ := os.ReadFile(prefix + ".pub")
			if strings.TrimSpace(pub.stdout) != strings.TrimSpace(string(want)) {
				t.Errorf("imgsign derived another public key than cosign wrote")
			}
			run(t, []string{"COSIGN_PASSWORD=wrong"}, bin, "public-key", "--key", prefix+".key").must(t, 3, "incorrect password or corrupt key")

			// And the other way: cosign reads imgsign's keys.
			for _, alg := range []string{"ecdsa-p256", "ecdsa-p384", "rsa-3072"} {
				ours := filepath.Join(dir, cosign+"-imgsign-"+alg)
				run(t, []string{"IMGSIGN_PASSWORD=from-imgsign"}, bin, "generate-key-pair", "--algorithm", alg, "--output-key-prefix", ours).must(t, 0, "")
				out := run(t, []string{"COSIGN_PASSWORD=from-imgsign"}, c, "public-key", "--key", ours+".key").must(t, 0, "BEGIN PUBLIC KEY")
				want, _ := os.ReadFile(ours + ".pub")
				if strings.TrimSpace(out.stdout) != strings.TrimSpace(string(want)) {
					t.Errorf("%s: cosign derived another public key from an imgsign %s key", cosign, alg)
				}
			}
		})
	}
}

// keyID extracts the key ID line of `imgsign key info`.
func keyID(t testing.TB, info string) string {
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "key ID"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// TestKeyBadInput: each bad key gives one clear line and exit code 3, and
// no partial files.
func TestKeyBadInput(t *testing.T) {
	bin := imgsign(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, "generate-key-pair", "--output-key-prefix", good).must(t, 0, "")
	keyBytes, _ := os.ReadFile(good + ".key")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	cases := []struct {
		name, file, msg string
	}{
		{"truncated", write("trunc.key", string(keyBytes[:len(keyBytes)/2])), "malformed key"},
		{"not a key", write("junk.key", "hello"), "no PEM block"},
		{"certificate", write("cert.pem", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), "not a private key"},
		{"public key", good + ".pub", "a public key was given where a private key is needed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, "import-key-pair", "--key", c.file, "--output-key-prefix", filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-")))
			r.must(t, 3, c.msg)
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one: %q", n+1, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-")+".key")); err == nil {
				t.Error("a key file was written")
			}
		})
	}
	// No password source and no terminal: a clear error, not a hang.
	run(t, nil, bin, "public-key", "--key", good+".key").must(t, 3, "IMGSIGN_PASSWORD")
}
