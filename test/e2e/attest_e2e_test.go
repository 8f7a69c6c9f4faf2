//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAttestationInterop: cosign attestations (legacy .att and v3 bundles)
// verify with imgsign, imgsign attestations verify with cosign, and the
// policy and type checks hold, on a real registry and on one with the
// referrers API.
func TestAttestationInterop(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	dir := t.TempDir()
	pw := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")
	root := emptyTrustedRoot(t, dir)
	pred := filepath.Join(dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/build/v1"}`), 0o644)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("conditions:\n  - name: built by our CI\n    expression: predicate.builder.id == \"https://ci.example/builder\"\n"), 0o644)
	strict := filepath.Join(dir, "strict.yaml")
	os.WriteFile(strict, []byte("conditions:\n  - name: hermetic\n    expression: has(predicate.hermetic) && predicate.hermetic == true\n"), 0o644)

	for _, reg := range bundleRegistries(t) {
		t.Run(reg.name, func(t *testing.T) {
			// cosign v3 attests, legacy and bundle; cosign v2 legacy.
			for _, c := range []struct {
				name string
				bin  string
				args []string
			}{
				{"cosign3-bundle", c3, []string{"--use-signing-config=false"}},
				{"cosign3-legacy", c3, []string{"--use-signing-config=false", "--new-bundle-format=false"}},
				{"cosign2", c2, nil},
			} {
				d := reg.push(t, "att-"+c.name+"/app:v1")
				run(t, pw, c.bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, "--tlog-upload=false", "-y", c.args, reg.cflag, d.String())...).must(t, 0, "")
				out := run(t, nil, bin, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--policy", pol, reg.flags, d.String())...)
				if out.code != 0 {
					t.Log(run(t, nil, bin, args("tree", "-o", "json", reg.flags, d.String())...).stdout)
				}
				out.must(t, 0, "Verified 1 attestation(s)")
				var stmts []struct {
					PredicateType string `json:"predicateType"`
				}
				if err := json.Unmarshal([]byte(out.stdout), &stmts); err != nil || len(stmts) != 1 || stmts[0].PredicateType != "https://slsa.dev/provenance/v0.2" {
					t.Fatalf("%s: stdout %q (%v)", c.name, out.stdout, err)
				}
				run(t, nil, bin, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--policy", strict, reg.flags, d.String())...).must(t, 12, `"hermetic"`)
				run(t, nil, bin, args("verify-attestation", "--key", k+".pub", "--type", "cyclonedx", reg.flags, d.String())...).must(t, 10, "other types exist")
			}

			// imgsign attests (both formats); cosign v3 and v2 verify.
			d := reg.push(t, "att-imgsign/app:v1")
			run(t, pw, bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, reg.flags, d.String())...).must(t, 0, "Attested")
			out := run(t, nil, c3, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--insecure-ignore-tlog", reg.cflag, d.String())...)
			out.must(t, 0, "")
			if !strings.Contains(out.stdout+out.stderr, "payload") {
				t.Fatalf("cosign v3 output: %s %s", out.stdout, out.stderr)
			}
			run(t, nil, c2, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--insecure-ignore-tlog", "--trusted-root", root, reg.cflag, d.String())...).must(t, 0, "")
			// And cosign refuses the wrong key, so the checks above mean something.
			other := keyPair(t, dir, "other-"+reg.name)
			if r := run(t, nil, c3, args("verify-attestation", "--key", other+".pub", "--type", "slsaprovenance", "--insecure-ignore-tlog", reg.cflag, d.String())...); r.code == 0 {
				t.Fatal("cosign accepted an attestation by another key")
			}
		})
	}
}
