package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// conformanceDir holds the shared bundle-verify cases (with their README
// and attribution).
const conformanceDir = "../../pkg/blob/testdata/sigstore/bundle-verify"

// TestVerifyBlobConformance runs every case as its README says a verifier
// is run: verify-blob --bundle B --trusted-root R (--key K |
// --certificate-identity I --certificate-oidc-issuer O) ARTIFACT exits 0
// exactly when the case expects a pass (12, or 3 for a key that does not
// parse, otherwise).
func TestVerifyBlobConformance(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(conformanceDir, "*"))
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Bundle, Artifact, Key, Identity, Issuer, Expect string
				TrustedRoot                                     string `json:"trusted_root"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			args := []string{"verify-blob", "--bundle", filepath.Join(dir, c.Bundle), "--trusted-root", filepath.Join(dir, c.TrustedRoot)}
			if c.Key != "" {
				args = append(args, "--key", filepath.Join(dir, c.Key))
			} else {
				args = append(args, "--certificate-identity", c.Identity, "--certificate-oidc-issuer", c.Issuer)
			}
			r := run{}.do(t, append(args, filepath.Join(dir, c.Artifact))...)
			switch {
			case c.Expect == "pass":
				r.expect(t, ExitOK, "Verified")
			case r.code != ExitNotVerified && r.code != ExitKey:
				t.Fatalf("exit %d, want %d or %d: %s", r.code, ExitNotVerified, ExitKey, r.stderr)
			}
		})
	}
}

func TestVerifyBlobKeylessFlags(t *testing.T) {
	dir := filepath.Join(conformanceDir, "happy-path-v0.3")
	var c struct{ Identity, Issuer string }
	raw, _ := os.ReadFile(filepath.Join(dir, "case.json"))
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	b, tr, art := filepath.Join(dir, "bundle.sigstore.json"), filepath.Join(dir, "trusted_root.json"), filepath.Join(dir, "artifact")
	vb := func(extra ...string) result {
		return run{}.do(t, append(append([]string{"verify-blob", "--bundle", b}, extra...), art)...)
	}
	id, iss := "--certificate-identity", "--certificate-oidc-issuer"

	vb("--trusted-root", tr, id, c.Identity, iss, c.Issuer).expect(t, ExitOK, "Verified "+art+": signed by "+c.Identity)
	vb("--trusted-root", tr, id, c.Identity, iss, c.Issuer, "--use-signed-timestamps").expect(t, ExitOK, "signed at ")
	// Whole-value regexps pass; one that matches only part of the value
	// fails, and says so.
	vb("--trusted-root", tr, "--certificate-identity-regexp", `https://github\.com/sigstore-conformance/.*`, "--certificate-oidc-issuer-regexp", `https://token\.actions\.githubusercontent\.com`).expect(t, ExitOK, "Verified")
	r := vb("--trusted-root", tr, "--certificate-identity-regexp", `github\.com/sigstore-conformance/`, iss, c.Issuer)
	r.expect(t, ExitNotVerified, "matches the WHOLE value")
	vb("--trusted-root", tr, id, c.Identity+"x", iss, c.Issuer).expect(t, ExitNotVerified, "expected SAN value")
	vb("--trusted-root", tr, id, c.Identity, iss, "https://accounts.google.com").expect(t, ExitNotVerified, "expected issuer value")
	vb("--trusted-root", tr, id, c.Identity, iss, c.Issuer, "--certificate-github-workflow-repository", "attacker/repo").expect(t, ExitNotVerified, "attacker/repo")
	// Without a log entry only a signed timestamp could date the signature:
	// this bundle has none.
	vb("--trusted-root", tr, id, c.Identity, iss, c.Issuer, "--insecure-ignore-tlog").expect(t, ExitNotVerified, "no verified signing time")

	// Command-line errors.
	vb("--trusted-root", tr).expect(t, ExitUsage, "--key is required, or a certificate identity")
	vb("--trusted-root", tr, id, c.Identity).expect(t, ExitUsage, "needs an OIDC issuer")
	vb("--trusted-root", tr, iss, c.Issuer).expect(t, ExitUsage, "needs a subject")
	vb("--trusted-root", tr, "--certificate-identity-regexp", "(", iss, c.Issuer).expect(t, ExitUsage, "regular expression")
	vb("--trusted-root", tr, "--key", tr, id, c.Identity, iss, c.Issuer).expect(t, ExitUsage, "not both")
	r = vb(id, c.Identity, iss, c.Issuer)
	if r.code == ExitOK || !regexp.MustCompile(`--trusted-root.*imgsign trust init`).MatchString(r.stderr) {
		t.Fatalf("no trusted root: exit %d, %s", r.code, r.stderr)
	}
}

func TestVerifyKeylessUsage(t *testing.T) {
	run{}.do(t, "verify", "example.com/app@sha256:"+sixtyFour).expect(t, ExitUsage, "--key or --policy is required")
	run{}.do(t, "verify", "--certificate-identity", "a@example.com", "example.com/app@sha256:"+sixtyFour).expect(t, ExitUsage, "needs an OIDC issuer")
	run{}.do(t, "verify-attestation", "--type", "slsaprovenance1", "example.com/app@sha256:"+sixtyFour).expect(t, ExitUsage, "--certificate-identity")
	run{}.do(t, "verify", "--policy", "p.yaml", "--certificate-identity", "a@example.com", "example.com/app@sha256:"+sixtyFour).expect(t, ExitUsage, "give one or the other")
	r := run{}.do(t, "verify", "--certificate-identity", "a@example.com", "--certificate-oidc-issuer", "https://issuer.example.com", "example.com/app@sha256:"+sixtyFour)
	if r.code == ExitOK || !regexp.MustCompile(`--trusted-root.*imgsign trust init`).MatchString(r.stderr) {
		t.Fatalf("no trusted root: exit %d, %s", r.code, r.stderr)
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestMalformedTrustedRoot: a --trusted-root file, or a policy scope's
// trustedRoot, that is not a trusted root is refused trust material (exit
// 15), naming the file, wherever it is given.
func TestMalformedTrustedRoot(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad_root.json")
	if err := os.WriteFile(bad, []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": "not a list"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cd := filepath.Join(conformanceDir, "happy-path-v0.3")
	id := []string{"--certificate-identity", "a@example.com", "--certificate-oidc-issuer", "https://issuer.example.com"}
	for _, args := range [][]string{
		append([]string{"verify-blob", "--bundle", filepath.Join(cd, "bundle.sigstore.json"), "--trusted-root", bad, filepath.Join(cd, "artifact")}, id...),
		append([]string{"verify", "--trusted-root", bad, "example.com/app@sha256:" + sixtyFour}, id...),
		append([]string{"verify-attestation", "--trusted-root", bad, "--type", "slsaprovenance1", "example.com/app@sha256:" + sixtyFour}, id...),
	} {
		r := run{}.do(t, args...)
		r.expect(t, ExitTrust, "malformed trust material")
		r.expect(t, ExitTrust, bad)
	}
	// A key-based verify-blob reads the trusted root for its TSAs.
	kd := filepath.Join(conformanceDir, "managed-key-happy-path")
	r := run{}.do(t, "verify-blob", "--bundle", filepath.Join(kd, "bundle.sigstore.json"), "--trusted-root", bad, "--key", filepath.Join(kd, "key.pub"), filepath.Join(kd, "artifact"))
	r.expect(t, ExitTrust, "malformed trust material")

	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: 1\ndefault:\n  identities:\n    - {issuer: https://issuer.example.com, subject: a@example.com}\n  trustedRoot: bad_root.json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run{}.do(t, "verify", "--policy", policy, "example.com/app@sha256:"+sixtyFour)
	r.expect(t, ExitTrust, "malformed trust material")
	r.expect(t, ExitTrust, "policy.yaml:5")
}
