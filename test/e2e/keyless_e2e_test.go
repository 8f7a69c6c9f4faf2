//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/oidctest"
)

// keylessSigned is what keylessFixtures signed with real cosign v3.
type keylessSigned struct {
	k                *keylessStack
	reg              *registry
	rekor1, rekor2   *rekorLog
	root             string // trusted_root.json: the stack, Rekor v1 and v2
	email            string // the signer's identity
	workflow         oidctest.GitHubWorkflow
	legacyV1         name.Digest // legacy .sig, Rekor v1
	bundleV1         name.Digest // bundle, Rekor v1
	bundleV2         name.Digest // bundle, Rekor v2 + TSA
	github           name.Digest // bundle, Rekor v2 + TSA, signed by a GitHub Actions identity
	attested         name.Digest // attestation (bundle, Rekor v1)
	blob, blobBundle string      // a file and its sign-blob bundle (Rekor v2 + TSA)
	predicateType    string
}

// keylessFixtures signs images, an attestation and a blob keyless with real
// cosign v3 and identity tokens of our issuers, in every layout imgsign
// must verify.
func keylessFixtures(t *testing.T) keylessSigned {
	t.Helper()
	c3 := tool(t, cosign3)
	s := keylessSigned{k: startKeyless(t), rekor1: startRekorV1(t), rekor2: startRekorV2Origin(t, "rekor-v2.imgsign.test"), reg: startRegistry(t, true, true),
		email: "release-bot@imgsign.test", predicateType: "slsaprovenance"}
	s.workflow = oidctest.GitHubWorkflow{Repository: "imgsign-e2e/app", Ref: "refs/tags/v1.0.0", EventName: "push"}
	dir := t.TempDir()
	s.root = s.k.trustedRoot(t, dir, s.rekor1, s.rekor2)
	tok := s.k.emailToken(t, dir, s.email)
	ghTok := s.k.githubToken(t, dir, s.workflow)
	scV1 := s.k.signingConfig(t, dir, s.rekor1, false)
	scV2 := s.k.signingConfig(t, dir, s.rekor2, true)
	reg := s.reg.flags()

	s.legacyV1 = s.reg.pushImage(t, "keyless/legacy:v1")
	run(t, nil, c3, args("sign", "--use-signing-config=false", "--fulcio-url", s.k.FulcioURL, "--rekor-url", s.rekor1.URL,
		"--new-bundle-format=false", "--trusted-root", s.root, "--identity-token", tok, "-y", reg, s.legacyV1.String())...).must(t, 0, "")
	s.bundleV1 = s.reg.pushImage(t, "keyless/bundle-v1:v1")
	run(t, nil, c3, args("sign", "--signing-config", scV1, "--trusted-root", s.root, "--identity-token", tok, "-y", reg, s.bundleV1.String())...).must(t, 0, "")
	s.bundleV2 = s.reg.pushImage(t, "keyless/bundle-v2:v1")
	run(t, nil, c3, args("sign", "--signing-config", scV2, "--trusted-root", s.root, "--identity-token", tok, "-y", reg, s.bundleV2.String())...).must(t, 0, "")
	s.github = s.reg.pushImage(t, "keyless/github:v1")
	run(t, nil, c3, args("sign", "--signing-config", scV2, "--trusted-root", s.root, "--identity-token", ghTok, "-y", reg, s.github.String())...).must(t, 0, "")

	s.attested = s.reg.pushImage(t, "keyless/attested:v1")
	pred := filepath.Join(dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.imgsign.test/builder"},"buildType":"https://imgsign.test/build/v1"}`), 0o644)
	run(t, nil, c3, args("attest", "--type", s.predicateType, "--predicate", pred, "--signing-config", scV1, "--trusted-root", s.root,
		"--identity-token", tok, "-y", reg, s.attested.String())...).must(t, 0, "")

	s.blob = filepath.Join(dir, "release.tar.gz")
	os.WriteFile(s.blob, []byte("a release archive, signed keyless\n"), 0o644)
	s.blobBundle = filepath.Join(dir, "release.sigstore.json")
	run(t, nil, c3, "sign-blob", "--signing-config", scV2, "--trusted-root", s.root, "--identity-token", tok,
		"--bundle", s.blobBundle, "-y", s.blob).must(t, 0, "")
	return s
}

// TestKeylessStackCosign proves the local keyless stack with cosign itself:
// cosign v3 signs keyless (legacy and bundle, Rekor v1 and v2 + TSA, an
// attestation, a blob) and verifies by identity against the trusted root
// the harness wrote; cosign v2 verifies the legacy Rekor v1 signature. A
// wrong identity or issuer is refused, so the roots prove something.
func TestKeylessStackCosign(t *testing.T) {
	s := keylessFixtures(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	reg := s.reg.flags()
	id := []string{"--trusted-root", s.root, "--certificate-identity", s.email, "--certificate-oidc-issuer", s.k.Email.URL}
	for _, d := range []name.Digest{s.legacyV1, s.bundleV1, s.bundleV2} {
		run(t, nil, c3, args("verify", id, reg, d.String())...).must(t, 0, d.DigestStr())
	}
	run(t, nil, c3, args("verify", "--trusted-root", s.root, "--certificate-identity", s.workflow.Identity(),
		"--certificate-oidc-issuer", s.k.GitHub.URL, "--certificate-github-workflow-repository", s.workflow.Repository,
		"--certificate-github-workflow-ref", s.workflow.Ref, reg, s.github.String())...).must(t, 0, s.github.DigestStr())
	run(t, nil, c3, args("verify-attestation", "--type", s.predicateType, id, reg, s.attested.String())...).must(t, 0, "")
	run(t, nil, c3, args("verify-blob", "--bundle", s.blobBundle, id, s.blob)...).must(t, 0, "Verified OK")

	// cosign v2 reads the legacy layout, Rekor v1.
	run(t, s.k.cosign2Env(s.rekor1), c2, args("verify", id, reg, s.legacyV1.String())...).must(t, 0, s.legacyV1.DigestStr())

	// Refusals: another identity, another issuer, a root without the CA.
	if r := run(t, nil, c3, args("verify", "--trusted-root", s.root, "--certificate-identity", "mallory@imgsign.test",
		"--certificate-oidc-issuer", s.k.Email.URL, reg, s.bundleV2.String())...); r.code == 0 {
		t.Fatalf("cosign accepted a wrong identity:\n%s", r.stderr)
	}
	if r := run(t, nil, c3, args("verify", "--trusted-root", s.root, "--certificate-identity", s.email,
		"--certificate-oidc-issuer", s.k.GitHub.URL, reg, s.legacyV1.String())...); r.code == 0 {
		t.Fatalf("cosign accepted a wrong issuer:\n%s", r.stderr)
	}
}
