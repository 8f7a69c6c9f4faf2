//go:build linux

package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/oidctest"
	"github.com/imgsign/imgsign/internal/tuftest"
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
	attested         name.Digest // attestation and signature (bundles, Rekor v1)
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
	// Signed too, so that a policy can require the attestation of a signed image.
	run(t, nil, c3, args("sign", "--signing-config", scV1, "--trusted-root", s.root, "--identity-token", tok, "-y", reg, s.attested.String())...).must(t, 0, "")

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

	// Refusals: another identity, another issuer, a root without the
	// stack's CA; Fulcio refuses an expired token.
	run(t, nil, c3, args("verify", "--trusted-root", s.root, "--certificate-identity", "mallory@imgsign.test",
		"--certificate-oidc-issuer", s.k.Email.URL, reg, s.bundleV2.String())...).must(t, 1, `expected SAN value "mallory@imgsign.test", got "release-bot@imgsign.test"`)
	run(t, nil, c3, args("verify", "--trusted-root", s.root, "--certificate-identity", s.email,
		"--certificate-oidc-issuer", s.k.GitHub.URL, reg, s.legacyV1.String())...).must(t, 12, "none of the expected identities matched what was in the certificate")
	dir := t.TempDir()
	other := startKeylessOtherRoot(t, s, dir)
	run(t, nil, c3, args("verify", "--trusted-root", other, "--certificate-identity", s.email,
		"--certificate-oidc-issuer", s.k.Email.URL, reg, s.bundleV1.String())...).must(t, 1, "certificate")
	expired, err := s.k.Email.Token(oidctest.Claims{Email: s.email, ExpiresIn: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(dir, "b")
	os.WriteFile(blob, []byte("x"), 0o644)
	run(t, nil, c3, "sign-blob", "--signing-config", s.k.signingConfig(t, dir, s.rekor1, false), "--trusted-root", s.root,
		"--identity-token", tokenFile(t, dir, "expired", expired), "--bundle", filepath.Join(dir, "b.json"), "-y", blob).must(t, 1, "error processing the identity token")
	if logs := s.k.logTail(); !strings.Contains(logs, "token is expired") {
		t.Fatalf("Fulcio's log does not say why it refused the token:\n%s", logs)
	}
}

// startKeylessOtherRoot writes a trusted root naming the same logs, CT log
// and TSA but another Fulcio CA.
func startKeylessOtherRoot(t *testing.T, s keylessSigned, dir string) string {
	t.Helper()
	other := *s.k
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := x509.Certificate{SerialNumber: s.k.fulcioRoot.SerialNumber, Subject: s.k.fulcioRoot.Subject,
		NotBefore: s.k.fulcioRoot.NotBefore, NotAfter: s.k.fulcioRoot.NotAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if other.fulcioRoot, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	other.fulcioInter = other.fulcioRoot
	sub := filepath.Join(dir, "other")
	os.MkdirAll(sub, 0o755)
	return other.trustedRoot(t, sub, s.rekor1, s.rekor2)
}

// TestKeylessTrustRootFromTUF: the stack's trusted root and signing config
// published in a local TUF repository (go-tuf, served over HTTP); `imgsign
// trust init` chooses it, `trust show` prints it and exports it for
// cosign, which verifies a keyless signature with it; with the repository
// gone the cache serves, and with nothing cached the refusal exits 15.
func TestKeylessTrustRootFromTUF(t *testing.T) {
	bin, c3 := imgsign(t), tool(t, cosign3)
	k, rekor := startKeyless(t), startRekorV1(t)
	dir := t.TempDir()
	trusted, err := os.ReadFile(k.trustedRoot(t, dir, rekor))
	if err != nil {
		t.Fatal(err)
	}
	sc := k.signingConfig(t, dir, rekor, true)
	scData, err := os.ReadFile(sc)
	if err != nil {
		t.Fatal(err)
	}
	repo := tuftest.New(t)
	repo.SetTarget("trusted_root.json", trusted)
	repo.SetTarget("signing_config.v0.2.json", scData)
	tufRoot := filepath.Join(dir, "tuf-root.json")
	tuftest.Write(t, tufRoot, repo.RootJSON)
	config := t.TempDir()
	env := []string{"XDG_CACHE_HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + config}

	run(t, env, bin, "trust", "init", "--mirror", repo.URL(), "--root", tufRoot).must(t, 0, "root version 1")
	r := run(t, env, bin, "trust", "show").must(t, 0, "")
	for _, want := range []string{repo.URL(), "chosen with 'imgsign trust init'", k.FulcioURL, k.CTURL, k.TSAURL, rekor.URL,
		"Certificate authorities: 1", "Certificate-transparency logs: 1", "Rekor transparency logs: 1", "Timestamp authorities: 1"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("trust show lacks %q:\n%s", want, r.stdout)
		}
	}
	exported := filepath.Join(dir, "exported_root.json")
	os.WriteFile(exported, []byte(run(t, env, bin, "trust", "show", "--json").must(t, 0, "").stdout), 0o644)

	blob := filepath.Join(dir, "artifact.txt")
	os.WriteFile(blob, []byte("signed keyless, verified with a root from TUF\n"), 0o644)
	bundle := filepath.Join(dir, "artifact.sigstore.json")
	run(t, nil, c3, "sign-blob", "--signing-config", sc, "--trusted-root", exported,
		"--identity-token", k.emailToken(t, dir, "tuf@imgsign.test"), "--bundle", bundle, "-y", blob).must(t, 0, "")
	run(t, nil, c3, "verify-blob", "--bundle", bundle, "--trusted-root", exported, "--certificate-identity", "tuf@imgsign.test",
		"--certificate-oidc-issuer", k.Email.URL, blob).must(t, 0, "Verified OK")

	// The repository gone: the cache serves, and says so.
	repo.Server.Close()
	run(t, env, bin, "trust", "show").must(t, 0, "unreachable")
	// Nothing cached either: exit 15, naming the ways out.
	r = run(t, []string{"XDG_CACHE_HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + config}, bin, "trust", "show").must(t, 15, "nothing cached")
	r.must(t, 15, "--trusted-root")
	r.must(t, 15, "imgsign trust init")
}

// TestKeylessImgsignVerify: imgsign verifies what real cosign v3 signed
// keyless (legacy and bundle layouts, Rekor v1 and v2 + TSA, a GitHub
// Actions identity, an attestation, a blob) by identity against the
// harness's trusted root, and refuses another identity, another issuer,
// an identity that only matches unanchored and a root without the CA,
// saying which. With a private TUF repository chosen (trust init) the
// trusted root comes from it when --trusted-root is not given.
func TestKeylessImgsignVerify(t *testing.T) {
	bin := imgsign(t)
	s := keylessFixtures(t)
	reg := s.reg.flags()
	id := []string{"--trusted-root", s.root, "--certificate-identity", s.email, "--certificate-oidc-issuer", s.k.Email.URL}

	t.Run("blob", func(t *testing.T) {
		run(t, nil, bin, args("verify-blob", "--bundle", s.blobBundle, id, s.blob)...).must(t, 0, "")
		run(t, nil, bin, "verify-blob", "--bundle", s.blobBundle, "--trusted-root", s.root, "--certificate-identity", "mallory@imgsign.test",
			"--certificate-oidc-issuer", s.k.Email.URL, s.blob).must(t, 12, "mallory@imgsign.test")
		run(t, nil, bin, "verify-blob", "--bundle", s.blobBundle, "--trusted-root", s.root, "--certificate-identity", s.email,
			"--certificate-oidc-issuer", s.k.GitHub.URL, s.blob).must(t, 12, s.k.GitHub.URL)
		// cosign's regexps are unanchored; imgsign's match the whole value.
		run(t, nil, bin, "verify-blob", "--bundle", s.blobBundle, "--trusted-root", s.root, "--certificate-identity-regexp", "release-bot",
			"--certificate-oidc-issuer", s.k.Email.URL, s.blob).must(t, 12, "matches the WHOLE value")
		run(t, nil, bin, "verify-blob", "--bundle", s.blobBundle, "--trusted-root", s.root, "--certificate-identity-regexp", `release-bot@imgsign\.test`,
			"--certificate-oidc-issuer-regexp", `http://127\.0\.0\.1:[0-9]+`, s.blob).must(t, 0, "")
		other := startKeylessOtherRoot(t, s, t.TempDir())
		run(t, nil, bin, "verify-blob", "--bundle", s.blobBundle, "--trusted-root", other, "--certificate-identity", s.email,
			"--certificate-oidc-issuer", s.k.Email.URL, s.blob).must(t, 12, "certificate")
	})

	t.Run("images", func(t *testing.T) {
		for _, d := range []name.Digest{s.legacyV1, s.bundleV1, s.bundleV2} {
			run(t, nil, bin, args("verify", id, reg, d.String())...).must(t, 0, "Verified")
		}
		run(t, nil, bin, args("verify", "--trusted-root", s.root, "--certificate-identity", s.workflow.Identity(),
			"--certificate-oidc-issuer", s.k.GitHub.URL, "--certificate-github-workflow-repository", s.workflow.Repository,
			"--certificate-github-workflow-ref", s.workflow.Ref, reg, s.github.String())...).must(t, 0, "Verified")
		run(t, nil, bin, args("verify", "--trusted-root", s.root, "--certificate-identity", s.workflow.Identity(),
			"--certificate-oidc-issuer", s.k.GitHub.URL, "--certificate-github-workflow-repository", "imgsign-e2e/other",
			reg, s.github.String())...).must(t, 12, "imgsign-e2e/other")
		for _, d := range []name.Digest{s.legacyV1, s.bundleV2} {
			run(t, nil, bin, args("verify", "--trusted-root", s.root, "--certificate-identity", "mallory@imgsign.test",
				"--certificate-oidc-issuer", s.k.Email.URL, reg, d.String())...).must(t, 12, "mallory@imgsign.test")
			run(t, nil, bin, args("verify", "--trusted-root", s.root, "--certificate-identity", s.email,
				"--certificate-oidc-issuer", s.k.GitHub.URL, reg, d.String())...).must(t, 12, s.k.GitHub.URL)
		}
		run(t, nil, bin, args("verify", "--trusted-root", s.root, "--certificate-identity-regexp", "release-bot",
			"--certificate-oidc-issuer", s.k.Email.URL, reg, s.bundleV1.String())...).must(t, 12, "matches the WHOLE value")
	})

	t.Run("attestation", func(t *testing.T) {
		run(t, nil, bin, args("verify-attestation", "--type", s.predicateType, id, reg, s.attested.String())...).must(t, 0, "")
		run(t, nil, bin, args("verify-attestation", "--type", s.predicateType, "--trusted-root", s.root,
			"--certificate-identity", "mallory@imgsign.test", "--certificate-oidc-issuer", s.k.Email.URL,
			reg, s.attested.String())...).must(t, 12, "mallory@imgsign.test")
	})

	// A trust policy with identities, at the gate: a scope per repository,
	// the real stack's SCTs required (no way to turn them off in a policy).
	t.Run("policy", func(t *testing.T) {
		dir := t.TempDir()
		host := s.legacyV1.Context().RegistryStr()
		policy := filepath.Join(dir, "policy.yaml")
		os.WriteFile(policy, []byte(`version: 1
scopes:
  - scope: `+host+`/keyless/github
    identities:
      - issuer: `+s.k.GitHub.URL+`
        subjectRegExp: https://github\.com/imgsign-e2e/app/\.github/workflows/.*
        githubWorkflowRepository: `+s.workflow.Repository+`
    trustedRoot: `+s.root+`
  - scope: `+host+`/keyless/bundle-v2
    identities: [{issuer: "`+s.k.Email.URL+`", subject: mallory@imgsign.test}]
    trustedRoot: `+s.root+`
  - scope: `+host+`/keyless/attested
    identities: [{issuer: "`+s.k.Email.URL+`", subject: `+s.email+`}]
    trustedRoot: `+s.root+`
    attestations: [{type: slsaprovenance}]
default:
  identities: [{issuer: "`+s.k.Email.URL+`", subject: `+s.email+`}]
  trustedRoot: `+s.root+`
`), 0o644)
		r := run(t, nil, bin, args("verify", "--policy", policy, reg, s.legacyV1.String(), s.bundleV1.String(), s.github.String(), s.attested.String())...).must(t, 0, "All 4 image(s) meet the policy")
		r.must(t, 0, "signature by "+s.email+" (issuer "+s.k.Email.URL+")")
		r.must(t, 0, "signature by "+s.workflow.Identity())
		r = run(t, nil, bin, args("verify", "--policy", policy, reg, s.bundleV2.String())...).must(t, 12, "FAILED "+s.bundleV2.String())
		r.must(t, 12, `expected SAN value "mallory@imgsign.test"`)
	})

	// An enterprise CA given as files (the stack's Fulcio CA) instead of
	// the trusted root's: the trusted root named here lists another CA, so
	// only --ca-roots/--ca-intermediates or --certificate-chain can verify.
	t.Run("enterprise CA", func(t *testing.T) {
		dir := t.TempDir()
		other := startKeylessOtherRoot(t, s, dir)
		inter := filepath.Join(dir, "fulcio-intermediate.pem")
		os.WriteFile(inter, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.k.fulcioInter.Raw}), 0o644)
		ca := []string{"--trusted-root", other, "--certificate-identity", s.email, "--certificate-oidc-issuer", s.k.Email.URL}
		for _, d := range []name.Digest{s.legacyV1, s.bundleV2} {
			run(t, nil, bin, args("verify", ca, "--ca-roots", s.k.FulcioRootPEM, "--ca-intermediates", inter, reg, d.String())...).must(t, 0, "Verified")
			run(t, nil, bin, args("verify", ca, "--certificate-chain", s.k.FulcioChainPEM, reg, d.String())...).must(t, 0, "Verified")
			run(t, nil, bin, args("verify", ca, reg, d.String())...).must(t, 12, "certificate")
		}
		// The root alone: the intermediate is neither in a bundle nor given.
		run(t, nil, bin, args("verify", ca, "--ca-roots", s.k.FulcioRootPEM, reg, s.bundleV2.String())...).must(t, 12, "leaf certificate verification failed")
	})

	t.Run("trust init default", func(t *testing.T) {
		data, err := os.ReadFile(s.root)
		if err != nil {
			t.Fatal(err)
		}
		repo := tuftest.New(t)
		repo.SetTarget("trusted_root.json", data)
		dir := t.TempDir()
		tufRoot := filepath.Join(dir, "tuf-root.json")
		tuftest.Write(t, tufRoot, repo.RootJSON)
		config := t.TempDir()
		env := []string{"XDG_CACHE_HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + config}
		run(t, env, bin, "trust", "init", "--mirror", repo.URL(), "--root", tufRoot).must(t, 0, "")
		byTUF := []string{"--certificate-identity", s.email, "--certificate-oidc-issuer", s.k.Email.URL}
		r := run(t, env, bin, args("verify-blob", "--bundle", s.blobBundle, byTUF, s.blob)...)
		r.must(t, 0, "")
		// Nothing cached and the repository gone: exit 15, naming the ways out.
		repo.Server.Close()
		run(t, []string{"XDG_CACHE_HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + config}, bin,
			args("verify-blob", "--bundle", s.blobBundle, byTUF, s.blob)...).must(t, 15, "--trusted-root")
	})
}

// attLayer reads the one layer of d's legacy attestation tag (.att): its
// annotations and its bytes, as stored.
func attLayer(t testing.TB, r *registry, d name.Digest) (map[string]string, []byte) {
	t.Helper()
	tag, err := name.ParseReference(d.Context().String() + ":" + strings.Replace(d.DigestStr(), ":", "-", 1) + ".att")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag, r.remoteOptions()...)
	if err != nil {
		t.Fatalf("read %s: %v", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 || len(m.Layers) != 1 {
		t.Fatalf("%s: %d layers (%v), want 1", tag, len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Annotations, body
}

// timestampImprint says what the layer's RFC 3161 timestamp annotation
// covers: "layer" (the whole envelope as stored), "signature" (the
// envelope's signature) or "other".
func timestampImprint(t testing.TB, ann map[string]string, body []byte) string {
	t.Helper()
	s, ok := ann["dev.sigstore.cosign/rfc3161timestamp"]
	if !ok {
		t.Fatalf("no timestamp annotation: %v", ann)
	}
	var j struct{ SignedRFC3161Timestamp []byte }
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		t.Fatal(err)
	}
	ts, err := timestamp.ParseResponse(j.SignedRFC3161Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Signatures []struct{ Sig []byte } }
	if err := json.Unmarshal(body, &env); err != nil || len(env.Signatures) != 1 {
		t.Fatalf("layer is not a one-signature envelope: %v", err)
	}
	l, sig := sha256.Sum256(body), sha256.Sum256(env.Signatures[0].Sig)
	switch {
	case ts.HashAlgorithm != crypto.SHA256:
		return "other"
	case bytes.Equal(ts.HashedMessage, l[:]):
		return "layer"
	case bytes.Equal(ts.HashedMessage, sig[:]):
		return "signature"
	}
	return "other"
}

// TestKeylessLegacyAttestationTimestampCosign: real cosign attests keyless
// in the legacy layout (.att) with a timestamp authority, with Rekor v1 and
// without any log; imgsign verify-attestation verifies each by identity
// (without a log, the timestamp is the only signing time). What each
// cosign timestamps is asserted, as measured: cosign v2.6.5 the whole
// layer, cosign v3.1.3 the envelope's signature; cosign's verifiers check
// the layer (--use-signed-timestamps), so they refuse v3's own token.
func TestKeylessLegacyAttestationTimestampCosign(t *testing.T) {
	bin, c3, c2 := imgsign(t), tool(t, cosign3), tool(t, cosign2)
	e := newKeylessSignEnv(t)
	reg := e.reg.flags()
	pred := filepath.Join(e.dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.imgsign.test/builder"},"buildType":"https://imgsign.test/build/v1"}`), 0o644)
	env2 := e.k.cosign2Env(e.rekor1)
	cases := []struct {
		name    string
		bin     string
		env     []string
		flags   []string
		tlog    bool
		imprint string
	}{
		{"cosign-v3-rekor-v1", c3, nil, []string{"--use-signing-config=false", "--new-bundle-format=false", "--rekor-url", e.rekor1.URL}, true, "signature"},
		{"cosign-v3-tsa-only", c3, nil, []string{"--use-signing-config=false", "--new-bundle-format=false", "--tlog-upload=false"}, false, "signature"},
		{"cosign-v2-rekor-v1", c2, env2, []string{"--rekor-url", e.rekor1.URL}, true, "layer"},
		{"cosign-v2-tsa-only", c2, env2, []string{"--tlog-upload=false"}, false, "layer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.reg.pushImage(t, "keyless-att-tsa/"+c.name+":v1")
			run(t, c.env, c.bin, args("attest", "--type", "slsaprovenance", "--predicate", pred, "--fulcio-url", e.k.FulcioURL,
				"--timestamp-server-url", e.k.TSAURL, "--trusted-root", e.root, "--identity-token", e.tokenFile, "-y", c.flags, reg, d.String())...).must(t, 0, "")
			ann, body := attLayer(t, e.reg, d)
			if _, ok := ann["dev.sigstore.cosign/bundle"]; ok != c.tlog {
				t.Fatalf("Rekor bundle annotation present=%v, want %v", ok, c.tlog)
			}
			if got := timestampImprint(t, ann, body); got != c.imprint {
				t.Fatalf("%s timestamps the %s, the test expects the %s", c.name, got, c.imprint)
			}
			verify := args("verify-attestation", "--format", "legacy", "--type", "slsaprovenance", e.id(), reg)
			if !c.tlog {
				verify = append(verify, "--insecure-ignore-tlog")
				// No log: without a verified timestamp there is no signing time.
				run(t, nil, bin, args("verify-attestation", "--format", "legacy", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 12, "not enough verified log entries")
			}
			run(t, nil, bin, append(verify, d.String())...).must(t, 0, "Verified 1 attestation")
			run(t, nil, bin, args("verify-attestation", "--format", "legacy", "--type", "slsaprovenance", "--trusted-root", e.root,
				"--certificate-identity", "mallory@imgsign.test", "--certificate-oidc-issuer", e.k.Email.URL, "--insecure-ignore-tlog", reg, d.String())...).must(t, 12, "mallory@imgsign.test")
			// cosign checks the token over the layer.
			cosignTS := args("verify-attestation", "--type", "slsaprovenance", e.id(), "--insecure-ignore-tlog", "--use-signed-timestamps", reg, d.String())
			if c.imprint == "layer" {
				run(t, nil, c3, cosignTS...).must(t, 0, "")
				// cosign v2 takes the roots from its environment (env2).
				run(t, env2, c2, args("verify-attestation", "--type", "slsaprovenance", "--certificate-identity", e.email, "--certificate-oidc-issuer", e.k.Email.URL,
					"--insecure-ignore-tlog", "--use-signed-timestamps", reg, d.String())...).must(t, 0, "")
			} else {
				run(t, nil, c3, cosignTS...).must(t, 1, "hashed messages don't match")
			}
		})
	}
}
