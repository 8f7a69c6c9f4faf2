//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginAndTLSOptions: login checks credentials against the real
// registry and stores them where sign and verify find them;
// --allow-insecure-registry skips TLS verification.
func TestLoginAndTLSOptions(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	d := reg.pushImage(t, "login/app:v1")
	cfgDir := filepath.Join(dir, "docker")
	env := []string{"DOCKER_CONFIG=" + cfgDir, "IMGSIGN_PASSWORD=pw"}

	r := runStdin(t, env, "wrong-password\n", bin, "login", reg.host, "-u", reg.username, "--password-stdin", "--registry-cacert", reg.caFile)
	r.must(t, 3, "refused the credentials")
	if strings.Contains(r.stderr, "wrong-password") {
		t.Fatal("password printed")
	}
	if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
		t.Fatal("config written after a failed login")
	}
	runStdin(t, env, reg.password+"\n", bin, "login", reg.host, "-u", reg.username, "--password-stdin", "--registry-cacert", reg.caFile).must(t, 0, "Login succeeded")
	st, err := os.Stat(filepath.Join(cfgDir, "config.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v, mode %v", err, st.Mode().Perm())
	}
	// Credentials now come from the Docker config file.
	run(t, env, bin, "sign", "--key", k+".key", "--registry-cacert", reg.caFile, d.String()).must(t, 0, "Signed")
	run(t, env, bin, "verify", "--key", k+".pub", "--registry-cacert", reg.caFile, d.String()).must(t, 0, "Verified")
	// Skipping TLS verification works without the CA (and says nothing is checked).
	run(t, env, bin, "verify", "--key", k+".pub", "--allow-insecure-registry", d.String()).must(t, 0, "Verified")
	// Without the CA or the skip, TLS verification fails.
	run(t, env, bin, "verify", "--key", k+".pub", d.String()).must(t, 1, "certificate")
}
