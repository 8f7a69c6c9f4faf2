package trustpolicy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// logsOnly writes sigstore_root.json without its timestamp authorities
// as logs_only_root.json.
func logsOnly(t *testing.T, f *fixture) {
	t.Helper()
	var m map[string]any
	data, _ := os.ReadFile(filepath.Join(f.dir, "sigstore_root.json"))
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "timestampAuthorities")
	out, _ := json.Marshal(m)
	writeFile(t, f.dir, "logs_only_root.json", string(out))
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
        notAfter: 2026-06-30T00:00:00Z
    keys: [{file: keys/a.pub, notBefore: 2025-01-01T00:00:00Z}]
    threshold: 2
    trustedRoot: sigstore_root.json
`)
	req := p.Match("ghcr.io/org/app").Requirement
	if len(req.Identities) != 2 || req.Threshold != 2 || req.TrustedRoot == nil || len(req.Keys) != 1 || req.Keys[0].NotBefore.Year() != 2025 {
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
		"counted only for signatures whose verified signing time is up to 2026-06-30T00:00:00Z",
		"counted only for signatures whose verified signing time is from 2025-01-01T00:00:00Z on",
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

	// Keys with a trusted root: its TSAs verify their timestamps; a root
	// without TSAs has nothing to offer keys.
	p = f.mustParse(t, "version: 1\ndefault:\n  keys: [{file: keys/a.pub}]\n  trustedRoot: sigstore_root.json\n")
	if p.Default.TrustedRoot == nil || len(p.Default.TrustedRoot.TimestampingAuthorities()) == 0 {
		t.Fatalf("default %+v", p.Default)
	}
	logsOnly(t, f)

	for doc, want := range map[string]string{
		"version: 1\ndefault:\n  identities:\n    - {subject: a@example.com}\n":                                                                 "policy.yaml:4: ",
		"version: 1\ndefault:\n  identities:\n    - {issuer: https://i.example}\n":                                                              "needs a subject",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a, subjectRegExp: b}\n":                                                "subject and subjectRegExp: give one",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subjectRegExp: \"(\"}\n":                                                        "regular expression",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a, email: b}\n":                                                        "email",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a, notBefore: yesterday}\n":                                            "not an RFC 3339 time",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a, notBefore: 2026-02-01T00:00:00Z, notAfter: 2026-01-01T00:00:00Z}\n": "notBefore is not before notAfter",
		"version: 1\ndefault:\n  keys: [{file: keys/a.pub, notAfter: soon}]\n":                                                                  "not an RFC 3339 time",
		"version: 1\ndefault:\n  tlog:\n    keys: [{file: rekor.pub, notAfter: 2026-01-01T00:00:00Z}]\n  keys: [{file: keys/a.pub}]\n":          "notAfter",
		"version: 1\ndefault:\n  identities: []\n":                                                                                              "at least one identity",
		"version: 1\ndefault:\n  keys: [{file: keys/a.pub}]\n  trustedRoot: logs_only_root.json\n":                                              "lists no timestamp authority",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a}\n  trustedRoot: missing.json\n":                                     "policy.yaml:5",
		"version: 1\ndefault:\n  identities:\n    - {issuer: x, subject: a}\n  keys: [{file: keys/a.pub}]\n  threshold: 3\n":                    "more than the 2 keys and identities",
	} {
		_, err := f.parse(t, doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", doc, err, want)
		}
	}
}
