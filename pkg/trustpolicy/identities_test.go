package trustpolicy

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// sigstoreRoot copies a real Sigstore trusted root (from the shared
// bundle-verify cases) into the fixture as sigstore_root.json.
func sigstoreRoot(t *testing.T, f *fixture) {
	t.Helper()
	data, err := os.ReadFile("../blob/testdata/sigstore/bundle-verify/happy-path-v0.3/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.dir, "sigstore_root.json", string(data))
}

func TestIdentities(t *testing.T) {
	f := newFixture(t)
	sigstoreRoot(t, f)
	p := f.mustParse(t, `version: 1
scopes:
  - scope: ghcr.io/org/**
    identities:
      - issuer: https://token.actions.githubusercontent.com
        subjectRegExp: https://github\.com/org/app/\.github/workflows/release\.yml@refs/tags/v.*
        githubWorkflowRepository: org/app
      - issuerRegExp: https://accounts\.google\.com
        subject: release@example.com
    keys: [{file: keys/a.pub}]
    threshold: 2
    trustedRoot: sigstore_root.json
`)
	req := p.Match("ghcr.io/org/app").Requirement
	if len(req.Identities) != 2 || req.Threshold != 2 || req.TrustedRoot == nil || len(req.Keys) != 1 {
		t.Fatalf("requirement %+v", req)
	}
	if id := req.Identities[1]; id.Subject != "release@example.com" || id.IssuerRegexp != `https://accounts\.google\.com` || id.Line != 8 {
		t.Fatalf("identity %+v", id)
	}
	var b bytes.Buffer
	p.Explain(&b)
	for _, want := range []string{
		"signatures by 2 different ones of these 3 signers",
		`a certificate (keyless) signer whose whole identity matches the regular expression "https://github\\.com/org/app/\\.github/workflows/release\\.yml@refs/tags/v.*", vouched for by the OIDC issuer "https://token.actions.githubusercontent.com", from the GitHub Actions workflow repository "org/app"`,
		`whose identity is "release@example.com", vouched for by an OIDC issuer whose whole URL matches`,
		"issued by a CA of the trusted root sigstore_root.json and valid at the verified signing time",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Explain lacks %q:\n%s", want, b.String())
		}
	}

	// Identities alone, without keys, are a requirement.
	p = f.mustParse(t, "version: 1\ndefault:\n  identities:\n    - {issuer: https://i.example, subject: a@example.com}\n")
	if p.Default == nil || len(p.Default.Identities) != 1 || p.Default.TrustedRoot != nil {
		t.Fatalf("default %+v", p.Default)
	}

	for doc, want := range map[string]string{
		"version: 1\ndefault:\n  identities:\n    - {subject: a@example.com}\n":                                              "policy.yaml:4: ",
		"version: 1\ndefault:\n  identities:\n    - {issuer: https://i.example}\n":                                           "needs a subject",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a, subjectRegExp: b}\n":                             "subject and subjectRegExp: give one",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subjectRegExp: \"(\"}\n":                                     "regular expression",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a, email: b}\n":                                     "email",
		"version: 1\ndefault:\n  identities: []\n":                                                                           "at least one identity",
		"version: 1\ndefault:\n  keys: [{file: keys/a.pub}]\n  trustedRoot: sigstore_root.json\n":                            "trustedRoot is for identities",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a}\n  trustedRoot: missing.json\n":                  "policy.yaml:5",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a}\n  keys: [{file: keys/a.pub}]\n  threshold: 3\n": "more than the 2 keys and identities",
	} {
		_, err := f.parse(t, doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", doc, err, want)
		}
	}
}
