package cli

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
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

// TestKeylessPrivateCAFlags: an enterprise CA without Fulcio, as cosign
// names its flags: --ca-roots with --ca-intermediates, or --certificate-chain;
// --certificate pins the signing certificate. The trusted root still gives
// the log, the TSA and the CT log. Each flag is tested both ways, with the
// reason asserted.
func TestKeylessPrivateCAFlags(t *testing.T) {
	reg := testreg.Start(t, nil)
	client, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ks := keylesstest.New(t)
	other := keylesstest.New(t) // another CA
	dir := t.TempDir()
	file := func(name string, certs ...*x509.Certificate) string {
		p := filepath.Join(dir, name)
		keylesstest.WritePEM(t, p, certs...)
		return p
	}
	trNoCA := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(trNoCA, ks.TrustedRootJSON(t, true), 0o644); err != nil {
		t.Fatal(err)
	}
	roots, inter := file("roots.pem", ks.Root), file("inter.pem", ks.Intermediate)
	chain, otherChain := file("chain.pem", ks.Intermediate, ks.Root), file("other-chain.pem", other.Intermediate, other.Root)
	otherRoots := file("other-roots.pem", other.Root)

	const subject, issuer = "release@corp.example", "https://idp.corp.example"
	ref := reg.Ref("corp/app:v1")
	d := reg.PushImage(t, ref)
	leaf, key := ks.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer})
	ks.Attach(t, client, d, leaf, key, statement.CosignSign)
	leafFile := file("leaf.pem", leaf)
	otherLeaf, _ := ks.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer})
	otherLeafFile := file("other-leaf.pem", otherLeaf)

	v := func(extra ...string) result {
		args := append([]string{"verify", "--trusted-root", trNoCA, "--certificate-identity", subject, "--certificate-oidc-issuer", issuer}, extra...)
		return run{}.do(t, append(args, ref)...)
	}
	v("--ca-roots", roots, "--ca-intermediates", inter).expect(t, ExitOK, "bundle signature by "+subject)
	v("--certificate-chain", chain).expect(t, ExitOK, "Verified")
	v("--certificate-chain", chain, "--certificate", leafFile).expect(t, ExitOK, "Verified")

	// The trusted root lists no CA: without a private CA nothing chains.
	v().expect(t, ExitNotVerified, "leaf certificate verification failed")
	// A root without the intermediate the bundle does not carry.
	v("--ca-roots", roots).expect(t, ExitNotVerified, "leaf certificate verification failed")
	// Another CA's root, or chain.
	v("--ca-roots", otherRoots, "--ca-intermediates", inter).expect(t, ExitNotVerified, "leaf certificate verification failed")
	v("--certificate-chain", otherChain).expect(t, ExitNotVerified, "leaf certificate verification failed")
	// A certificate that is not the signing one.
	v("--certificate-chain", chain, "--certificate", otherLeafFile).expect(t, ExitNotVerified, "not the one given with --certificate")
	// Command-line errors.
	v("--ca-intermediates", inter).expect(t, ExitUsage, "--ca-intermediates needs --ca-roots")
	v("--ca-roots", filepath.Join(dir, "trusted_root.json")).expect(t, ExitError, "no PEM certificate")
}

// TestVerifyPolicyIdentities: `verify --policy` with identities, through
// the command: a signer the policy names passes, another is refused with
// the reason (exit 12).
func TestVerifyPolicyIdentities(t *testing.T) {
	reg := testreg.Start(t, nil)
	client, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ks := keylesstest.New(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), ks.TrustedRootJSON(t, false), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: 1\ndefault:\n  identities:\n    - {issuer: https://issuer.example.com, subjectRegExp: '.*@release\\.example\\.com'}\n  trustedRoot: trusted_root.json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	signed := func(repo, subject string) string {
		ref := reg.Ref(repo + ":v1")
		d := reg.PushImage(t, ref)
		c, k := ks.Issue(t, keylesstest.Cert{Subject: subject, Issuer: "https://issuer.example.com"})
		ks.Attach(t, client, d, c, k, statement.CosignSign)
		return ref
	}
	good, bad := signed("app/good", "ci@release.example.com"), signed("app/bad", "ci@release.example.com.attacker.example")
	run{}.do(t, "verify", "--policy", policy, good).expect(t, ExitOK, "ci@release.example.com")
	r := run{}.do(t, "verify", "--policy", policy, good, bad)
	r.expect(t, ExitNotVerified, "FAILED "+bad)
	r.expect(t, ExitNotVerified, "expected SAN value to match regex")
}

// TestKeylessDiffAndDockerfile: diff and dockerfile verify take the same
// certificate identity flags as verify (one shared verifyRefs) and name a
// keyless signer by its identity.
func TestKeylessDiffAndDockerfile(t *testing.T) {
	reg := testreg.Start(t, nil)
	client, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ks := keylesstest.New(t)
	dir := t.TempDir()
	tr := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(tr, ks.TrustedRootJSON(t, false), 0o644); err != nil {
		t.Fatal(err)
	}
	const subject, issuer = "release@example.com", "https://issuer.example.com"
	ref := reg.Ref("df/base:v1")
	d := reg.PushImage(t, ref)
	c, k := ks.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer})
	ks.Attach(t, client, d, c, k, statement.CosignSign)
	id := []string{"--trusted-root", tr, "--certificate-identity", subject, "--certificate-oidc-issuer", issuer}

	r := run{}.do(t, append(append([]string{"diff"}, id...), ref, d.String())...)
	r.expect(t, ExitOK, "Verified")
	if strings.Count(r.stdout, "signed by "+subject+" (issuer "+issuer+")") != 2 {
		t.Errorf("diff does not name the keyless signer of both sides:\n%s", r.stdout)
	}

	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM "+ref+"\nRUN true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run{}.do(t, append(append([]string{"dockerfile", "verify"}, id...), df)...).expect(t, ExitOK, "line 1 FROM "+ref+": verified")
	r = run{}.do(t, "dockerfile", "verify", "--trusted-root", tr, "--certificate-identity", "mallory@example.com", "--certificate-oidc-issuer", issuer, df)
	r.expect(t, ExitNotVerified, "line 1 FROM "+ref+": FAILED")
	r.expect(t, ExitNotVerified, `expected SAN value "mallory@example.com"`)
}
