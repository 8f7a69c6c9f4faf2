package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/imgsign/imgsign/internal/testreg"
)

func TestAttestCommands(t *testing.T) {
	reg := testreg.Start(t, nil, registry.WithReferrersSupport(true))
	img := reg.PushImage(t, reg.Ref("a/app:v1"))
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	pred := filepath.Join(dir, "sbom.json")
	os.WriteFile(pred, []byte(`{"bomFormat":"CycloneDX","components":[{"name":"openssl","version":"3.0.13"}]}`), 0o644)
	pol := filepath.Join(dir, "p.yaml")
	os.WriteFile(pol, []byte("conditions:\n  - name: no old openssl\n    expression: '!predicate.components.exists(c, c.name == \"openssl\" && c.version.startsWith(\"1.\"))'\n"), 0o644)

	env("pw").do(t, "attest", "--key", prefix+".key", "--type", "cyclonedx", "--predicate", pred, img.String()).expect(t, ExitOK, "Attested")
	r := env("").do(t, "verify-attestation", "--key", prefix+".pub", "--type", "cyclonedx", "--policy", pol, img.String())
	r.expect(t, ExitOK, "Verified 2 attestation(s)")
	var stmts []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &stmts); err != nil || len(stmts) != 2 || stmts[0]["predicateType"] != "https://cyclonedx.org/bom" {
		t.Fatalf("stdout %q (%v)", r.stdout, err)
	}
	env("").do(t, "verify-attestation", "--key", prefix+".pub", "--type", "spdxjson", img.String()).expect(t, ExitNoSignatures, "other types exist")
	os.WriteFile(pol, []byte("conditions:\n  - name: no openssl at all\n    expression: '!predicate.components.exists(c, c.name == \"openssl\")'\n"), 0o644)
	env("").do(t, "verify-attestation", "--key", prefix+".pub", "--type", "cyclonedx", "--policy", pol, img.String()).expect(t, ExitNotVerified, `"no openssl at all"`)

	// Bad input.
	os.WriteFile(pred, []byte(`not json`), 0o644)
	env("pw").do(t, "attest", "--key", prefix+".key", "--type", "cyclonedx", "--predicate", pred, img.String()).expect(t, ExitUsage, "not a JSON object")
	env("pw").do(t, "attest", "--key", prefix+".key", "--type", "nonsense", "--predicate", pred, img.String()).expect(t, ExitUsage, "predicate type")
	os.WriteFile(pol, []byte("conditions:\n  - name: broken\n    expression: 'predicate.('\n"), 0o644)
	env("").do(t, "verify-attestation", "--key", prefix+".pub", "--type", "cyclonedx", "--policy", pol, img.String()).expect(t, ExitUsage, "invalid policy")
	env("").do(t, "verify-attestation", "--key", prefix+".pub", img.String()).expect(t, ExitUsage, "--type are required")
}
