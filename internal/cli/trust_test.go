package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/tuftest"
)

// TestTrustInitAndShow: trust init stores a private TUF repository that
// trust show (and every later command) uses; trust failures exit 15.
func TestTrustInitAndShow(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	repo := tuftest.New(t)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	tuftest.Write(t, rootFile, repo.RootJSON)

	run{}.do(t, "trust", "init", "--mirror", repo.URL()).expect(t, ExitUsage, "--mirror and --root go together")
	run{}.do(t, "trust", "init", "--mirror", repo.URL(), "--root", rootFile).expect(t, ExitOK, "root version 1")
	r := run{}.do(t, "trust", "show")
	r.expect(t, ExitOK, "")
	data, err := os.ReadFile(repo.TargetFile("trusted_root.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{repo.URL(), "chosen with 'imgsign trust init'", "Rekor transparency logs: 1", "id " + tuftest.LogIDOf(t, data)} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run{}.do(t, "trust", "show", "--json")
	r.expect(t, ExitOK, "")
	if !strings.Contains(r.stdout, `"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"`) &&
		!strings.Contains(r.stdout, `"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"`) {
		t.Fatalf("--json: %s", r.stdout)
	}

	// The repository gone: the cache serves, with a warning.
	repo.Server.Close()
	run{}.do(t, "trust", "show").expect(t, ExitOK, "unreachable")

	// A tampered target on a fresh cache: exit 15 with the reason.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	repo2 := tuftest.New(t)
	tuftest.Write(t, repo2.TargetFile("trusted_root.json"), tuftest.TrustedRootJSON(t))
	tuftest.Write(t, rootFile, repo2.RootJSON)
	run{}.do(t, "trust", "init", "--mirror", repo2.URL(), "--root", rootFile).expect(t, ExitTrust, "tampered")
	// Nothing cached and the (still stored) first repository down: exit 15,
	// naming the ways out.
	r = run{}.do(t, "trust", "show")
	r.expect(t, ExitTrust, "--trusted-root")
	r.expect(t, ExitTrust, "imgsign trust init")
}
