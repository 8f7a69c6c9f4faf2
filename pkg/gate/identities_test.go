package gate_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
)

// TestIdentityRules: a scope's identities (issuer or issuerRegExp, subject
// or subjectRegExp, GitHub workflow extensions) decide at the gate, with the
// certificate's SCT required; a threshold counts distinct identity+issuer
// pairs, so two signatures by one identity count once.
func TestIdentityRules(t *testing.T) {
	e := newEnv(t)
	ks := keylesstest.New(t)
	if err := os.WriteFile(filepath.Join(e.dir, "trusted_root.json"), ks.TrustedRootJSON(t, false), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		gh       = "https://token.actions.githubusercontent.com"
		google   = "https://accounts.google.com"
		workflow = "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.2.3"
	)
	sign := func(repo string, certs ...keylesstest.Cert) name.Digest {
		t.Helper()
		d := e.reg.PushImage(t, e.reg.Ref(repo+":v1"))
		for _, c := range certs {
			cert, key := ks.Issue(t, c)
			ks.Attach(t, e.client, d, cert, key, statement.CosignSign)
		}
		return d
	}
	wf := func(repo string) keylesstest.Cert {
		return keylesstest.Cert{Subject: workflow, Issuer: gh, Extensions: []pkix.Extension{keylesstest.Ext(keylesstest.OIDGithubWorkflowRepository, repo)}}
	}
	release := keylesstest.Cert{Subject: "release@example.com", Issuer: google}
	releaseGH := keylesstest.Cert{Subject: "release@example.com", Issuer: gh}

	p := e.policy(t, `
version: 1
scopes:
  - scope: REG/exact/*
    identities: [{issuer: https://accounts.google.com, subject: release@example.com}]
    trustedRoot: trusted_root.json
  - scope: REG/workflow/*
    identities:
      - issuerRegExp: https://token\.actions\.githubusercontent\.com
        subjectRegExp: https://github\.com/org/app/\.github/workflows/release\.yml@refs/tags/v.*
        githubWorkflowRepository: org/app
    trustedRoot: trusted_root.json
  - scope: REG/partial/*
    identities: [{issuer: https://token.actions.githubusercontent.com, subjectRegExp: github\.com/org/app/}]
    trustedRoot: trusted_root.json
  - scope: REG/two/*
    identities:
      - {issuer: https://accounts.google.com, subject: release@example.com}
      - {issuer: https://token.actions.githubusercontent.com, subject: release@example.com}
    threshold: 2
    trustedRoot: trusted_root.json
`)
	g := gate.New(e.client, p, gate.Options{})
	for _, tc := range []struct {
		name string
		d    name.Digest
		want string // "" verifies
	}{
		{"exact identity", sign("exact/ok", release), ""},
		{"another subject", sign("exact/subject", keylesstest.Cert{Subject: "intern@example.com", Issuer: google}), `expected SAN value "release@example.com"`},
		{"another issuer", sign("exact/issuer", releaseGH), "expected issuer value"},
		{"no SCT", sign("exact/nosct", keylesstest.Cert{Subject: "release@example.com", Issuer: google, NoSCT: true}), "embeds no SCT"},
		{"forged SCT", sign("exact/forged", keylesstest.Cert{Subject: "release@example.com", Issuer: google, SCTKey: keylesstest.NewKey(t)}), "none signed over this certificate by a CT log"},
		{"workflow regexps and repository", sign("workflow/ok", wf("org/app")), ""},
		{"workflow of another repository", sign("workflow/fork", wf("attacker/app")), "attacker/app"},
		{"regexp matching only unanchored", sign("partial/app", wf("org/app")), "matches the WHOLE value"},
		{"two identities, threshold 2", sign("two/both", release, releaseGH), ""},
		{"one identity twice, threshold 2", sign("two/same", release, release), "2 required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := g.Check(context.Background(), []name.Reference{tc.d})[0]
			if tc.want == "" {
				if !res.Verified || res.Err() != nil {
					t.Fatalf("refused: %v %+v", res.Err(), res.Signatures)
				}
				if s := res.Signatures.Signatures[0]; s.Identity == nil || s.Identity.Subject == "" || len(s.SignedAt) == 0 {
					t.Fatalf("verified signature lacks its identity or time: %+v", s)
				}
				return
			}
			all := res.Error
			if res.Signatures != nil {
				for _, r := range res.Signatures.Rejected {
					all += " | " + r.Reason
				}
			}
			if res.Verified || !errors.Is(res.Err(), verify.ErrNotVerified) || !strings.Contains(all, tc.want) {
				t.Fatalf("err = %v (%s), want %v mentioning %q", res.Err(), all, verify.ErrNotVerified, tc.want)
			}
		})
	}
}
