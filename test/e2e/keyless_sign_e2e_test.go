//go:build linux

package e2e

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/oidctest"
	"github.com/imgsign/imgsign/internal/tuftest"
	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// keylessSignEnv is what the keyless signing tests share: the real
// keyless stack (Fulcio, CT log, TSA, our OIDC issuers), Rekor v1 and v2,
// a TLS registry with authentication, and a trusted root naming them all.
type keylessSignEnv struct {
	k              *keylessStack
	reg            *registry
	rekor1, rekor2 *rekorLog
	root           string
	scV1, scV2     string // signing configs: Rekor v1 (no TSA), Rekor v2 + TSA
	scV1TSA        string // Rekor v1 + TSA
	dir            string
	email          string
	tokenFile      string
	token          string
}

func newKeylessSignEnv(t *testing.T) *keylessSignEnv { return newKeylessSignEnvTB(t) }

func newKeylessSignEnvTB(t testing.TB) *keylessSignEnv {
	t.Helper()
	e := &keylessSignEnv{k: startKeyless(t), rekor1: startRekorV1(t), rekor2: startRekorV2Origin(t, "rekor-v2.imgsign.test"),
		reg: startRegistry(t, true, true), dir: t.TempDir(), email: "ci-signer@imgsign.test"}
	e.root = e.k.trustedRoot(t, e.dir, e.rekor1, e.rekor2)
	e.scV1 = e.k.signingConfig(t, e.dir, e.rekor1, false)
	e.scV2 = e.k.signingConfig(t, e.dir, e.rekor2, true)
	e.scV1TSA = e.k.signingConfig(t, e.dir, e.rekor1, true)
	e.tokenFile = e.k.emailToken(t, e.dir, e.email)
	tok, err := os.ReadFile(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	e.token = string(tok)
	return e
}

// id are the identity flags cosign v3 and imgsign verify the email
// signer with.
func (e *keylessSignEnv) id() []string {
	return []string{"--trusted-root", e.root, "--certificate-identity", e.email, "--certificate-oidc-issuer", e.k.Email.URL}
}

// noSecret fails if the token appears in a command's output.
func (e *keylessSignEnv) noSecret(t *testing.T, r result) result {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, e.token) || strings.Contains(r.stdout+r.stderr, strings.Split(e.token, ".")[2]) {
		t.Fatalf("the identity token appears in the output:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
	return r
}

// TestKeylessSignImgsign: imgsign signs keyless against the real stack in
// every layout (legacy, bundle, both; Rekor v1; Rekor v2 + TSA; Rekor v1 +
// TSA), and real cosign v3 verifies each by identity and issuer, imgsign
// verifies each, and cosign v2 verifies the legacy Rekor v1 ones. Several
// images in one call share one certificate. The token never shows, even
// with --verbose.
func TestKeylessSignImgsign(t *testing.T) {
	bin, c3, c2 := imgsign(t), tool(t, cosign3), tool(t, cosign2)
	e := newKeylessSignEnv(t)
	reg := e.reg.flags()
	cases := []struct {
		name, format, sc string
		legacy, cosign2  bool
		wantLog, wantTSA bool
	}{
		{"legacy-rekor-v1", "legacy", e.scV1, true, true, true, false},
		{"bundle-rekor-v1", "bundle", e.scV1, false, false, true, false},
		{"both-rekor-v1-tsa", "both", e.scV1TSA, true, true, true, true},
		{"bundle-rekor-v2-tsa", "bundle", e.scV2, false, false, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.reg.pushImage(t, "keyless-sign/"+c.name+":v1")
			r := e.noSecret(t, run(t, nil, bin, args("sign", "--signing-config", c.sc, "--trusted-root", e.root,
				"--identity-token", e.tokenFile, "--format", c.format, "--verbose", reg, d.String())...).must(t, 0, "Signing keyless as "+e.email))
			r.must(t, 0, "1 Fulcio request(s)")
			if c.wantLog {
				r.must(t, 0, "recorded in transparency log")
			}
			if c.legacy {
				m := e.reg.manifest(t, e.reg.ref("keyless-sign/"+c.name+":"+strings.Replace(d.DigestStr(), ":", "-", 1)+".sig"))
				ann := m.Layers[0].Annotations
				for _, k := range []string{"dev.sigstore.cosign/certificate", "dev.sigstore.cosign/chain", "dev.cosignproject.cosign/signature"} {
					if ann[k] == "" {
						t.Fatalf("legacy layer lacks %s: %v", k, ann)
					}
				}
				if _, ok := ann["dev.sigstore.cosign/bundle"]; ok != c.wantLog {
					t.Fatalf("cosign bundle annotation present=%v, want %v", ok, c.wantLog)
				}
				if _, ok := ann["dev.sigstore.cosign/rfc3161timestamp"]; ok != c.wantTSA {
					t.Fatalf("timestamp annotation present=%v, want %v", ok, c.wantTSA)
				}
			}
			run(t, nil, c3, args("verify", e.id(), reg, d.String())...).must(t, 0, d.DigestStr())
			run(t, nil, bin, args("verify", e.id(), reg, d.String())...).must(t, 0, "Verified")
			if c.cosign2 {
				run(t, e.k.cosign2Env(e.rekor1), c2, args("verify", e.id(), reg, d.String())...).must(t, 0, d.DigestStr())
			}
			// Another identity is refused: the certificate names the token's.
			run(t, nil, bin, args("verify", "--trusted-root", e.root, "--certificate-identity", "mallory@imgsign.test",
				"--certificate-oidc-issuer", e.k.Email.URL, reg, d.String())...).must(t, 12, "mallory@imgsign.test")
		})
	}

	t.Run("many-images-one-certificate", func(t *testing.T) {
		var refs []string
		for i := range 5 {
			refs = append(refs, e.reg.pushImage(t, fmt.Sprintf("keyless-sign/many%d:v1", i)).String())
		}
		r := run(t, nil, bin, args("sign", "--signing-config", e.scV2, "--trusted-root", e.root, "--identity-token", e.tokenFile,
			"--format", "bundle", "--verbose", reg, refs)...).must(t, 0, "")
		r.must(t, 0, "Keyless: 1 Fulcio request(s), 5 signature(s), 5 log entr(ies), 5 timestamp request(s)")
		run(t, nil, c3, args("verify", e.id(), reg, refs[4])...).must(t, 0, "")
		run(t, nil, bin, args("verify", e.id(), reg, refs)...).must(t, 0, "Verified")
	})

	t.Run("attest", func(t *testing.T) {
		pred := filepath.Join(e.dir, "provenance.json")
		os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.imgsign.test/builder"},"buildType":"https://imgsign.test/build/v1"}`), 0o644)
		for _, c := range []struct{ name, format, sc string }{{"both-rekor-v1", "both", e.scV1TSA}, {"bundle-rekor-v2-tsa", "bundle", e.scV2}} {
			d := e.reg.pushImage(t, "keyless-attest/"+c.name+":v1")
			e.noSecret(t, run(t, nil, bin, args("attest", "--type", "slsaprovenance", "--predicate", pred, "--signing-config", c.sc, "--trusted-root", e.root,
				"--identity-token", e.tokenFile, "--format", c.format, "--verbose", reg, d.String())...).must(t, 0, "1 Fulcio request(s), 1 signature(s), 1 log entr(ies)"))
			run(t, nil, c3, args("verify-attestation", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 0, "")
			run(t, nil, bin, args("verify-attestation", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 0, "bundle attestation by "+e.email)
			if c.format == "both" {
				run(t, nil, bin, args("verify-attestation", "--format", "legacy", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 0, "Verified 1 attestation")
				run(t, e.k.cosign2Env(e.rekor1), c2, args("verify-attestation", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 0, "")
			}
		}
	})

	// The legacy layer's own timestamp, over the whole layer, as cosign
	// verifies it: with Rekor v1 (the signing config) and TSA-only (no log
	// given). cosign v3 and v2 verify it with --use-signed-timestamps,
	// without the log; imgsign too.
	t.Run("attest-legacy-timestamp", func(t *testing.T) {
		pred := filepath.Join(e.dir, "provenance.json")
		os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.imgsign.test/builder"},"buildType":"https://imgsign.test/build/v1"}`), 0o644)
		for _, c := range []struct {
			name     string
			services []string
			tlog     bool
		}{
			{"legacy-rekor-v1-tsa", []string{"--signing-config", e.scV1TSA}, true},
			{"legacy-tsa-only", []string{"--fulcio-url", e.k.FulcioURL, "--timestamp-server-url", e.k.TSAURL}, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				d := e.reg.pushImage(t, "keyless-attest/"+c.name+":v1")
				e.noSecret(t, run(t, nil, bin, args("attest", "--type", "slsaprovenance", "--predicate", pred, c.services, "--trusted-root", e.root,
					"--identity-token", e.tokenFile, "--format", "legacy", "--verbose", reg, d.String())...).must(t, 0, "2 timestamp request(s)"))
				ann, body := attLayer(t, e.reg, d)
				if got := timestampImprint(t, ann, body); got != "layer" {
					t.Fatalf("the legacy layer's timestamp covers the %s, want the whole layer", got)
				}
				if _, ok := ann["dev.sigstore.cosign/bundle"]; ok != c.tlog {
					t.Fatalf("Rekor bundle annotation present=%v, want %v", ok, c.tlog)
				}
				run(t, nil, c3, args("verify-attestation", "--type", "slsaprovenance", e.id(), "--insecure-ignore-tlog", "--use-signed-timestamps", reg, d.String())...).must(t, 0, "")
				run(t, e.k.cosign2Env(e.rekor1), c2, args("verify-attestation", "--type", "slsaprovenance", "--certificate-identity", e.email, "--certificate-oidc-issuer", e.k.Email.URL,
					"--insecure-ignore-tlog", "--use-signed-timestamps", reg, d.String())...).must(t, 0, "")
				if c.tlog {
					run(t, nil, c3, args("verify-attestation", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 0, "")
					run(t, e.k.cosign2Env(e.rekor1), c2, args("verify-attestation", "--type", "slsaprovenance", "--certificate-identity", e.email,
						"--certificate-oidc-issuer", e.k.Email.URL, reg, d.String())...).must(t, 0, "")
					run(t, nil, bin, args("verify-attestation", "--type", "slsaprovenance", e.id(), reg, d.String())...).must(t, 0, "Verified 1 attestation")
				}
				run(t, nil, bin, args("verify-attestation", "--type", "slsaprovenance", e.id(), "--insecure-ignore-tlog", reg, d.String())...).must(t, 0, "Verified 1 attestation")
			})
		}
	})

	t.Run("sign-blob", func(t *testing.T) {
		blob := filepath.Join(e.dir, "release.tar.gz")
		os.WriteFile(blob, []byte("a release archive, signed keyless by imgsign\n"), 0o644)
		for _, sc := range []string{e.scV1, e.scV2} {
			b := filepath.Join(t.TempDir(), "release.sigstore.json")
			e.noSecret(t, run(t, nil, bin, "sign-blob", "--signing-config", sc, "--trusted-root", e.root, "--identity-token", e.tokenFile,
				"--bundle", b, blob).must(t, 0, "Bundle written to "+b))
			run(t, nil, c3, args("verify-blob", "--bundle", b, e.id(), blob)...).must(t, 0, "Verified OK")
			run(t, nil, bin, args("verify-blob", "--bundle", b, e.id(), blob)...).must(t, 0, "")
			os.WriteFile(blob+".other", []byte("another file\n"), 0o644)
			run(t, nil, bin, args("verify-blob", "--bundle", b, e.id(), blob+".other")...).must(t, 12, "")
		}
		// Signature and certificate files, as cosign writes them.
		dir := t.TempDir()
		sig, cert := filepath.Join(dir, "release.sig"), filepath.Join(dir, "release.pem")
		run(t, nil, bin, "sign-blob", "--signing-config", e.scV1, "--trusted-root", e.root, "--identity-token", e.tokenFile,
			"--output-signature", sig, "--output-certificate", cert, blob).must(t, 0, "Certificate written to "+cert)
		pemData, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(pemData)
		if blk == nil {
			t.Fatalf("certificate file is not PEM: %s", pemData)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil || !slices.Contains(c.EmailAddresses, e.email) {
			t.Fatalf("certificate %v for %v, want %s", err, c.EmailAddresses, e.email)
		}
		sigData, _ := os.ReadFile(sig)
		raw, err := base64.StdEncoding.DecodeString(string(sigData))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte("a release archive, signed keyless by imgsign\n"))
		if !ecdsa.VerifyASN1(c.PublicKey.(*ecdsa.PublicKey), sum[:], raw) {
			t.Fatal("the signature file does not verify with the certificate's key")
		}
	})

	t.Run("legacy-needs-rekor-v1", func(t *testing.T) {
		d := e.reg.pushImage(t, "keyless-sign/legacy-v2:v1")
		run(t, nil, bin, args("sign", "--signing-config", e.scV2, "--trusted-root", e.root, "--identity-token", e.tokenFile,
			"--format", "legacy", reg, d.String())...).must(t, 2, "the legacy layout needs a Rekor v1 log: give --format bundle")
		run(t, nil, bin, args("sign", "--signing-config", e.scV1TSA, "--rekor-url", e.rekor2.URL, "--trusted-root", e.root, "--identity-token", e.tokenFile,
			reg, d.String())...).must(t, 2, "is Rekor v2: use --format bundle with Rekor v2")
		e.assertUntouched(t, d, nil)
	})

	t.Run("token-from-environment", func(t *testing.T) {
		d := e.reg.pushImage(t, "keyless-sign/env:v1")
		e.noSecret(t, run(t, []string{"SIGSTORE_ID_TOKEN=" + e.token}, bin, args("sign", "--signing-config", e.scV1, "--trusted-root", e.root,
			"--format", "bundle", "--verbose", reg, d.String())...).must(t, 0, "identity token from SIGSTORE_ID_TOKEN"))
		run(t, nil, c3, args("verify", e.id(), reg, d.String())...).must(t, 0, "")
	})

	t.Run("overrides-without-signing-config", func(t *testing.T) {
		d := e.reg.pushImage(t, "keyless-sign/flags:v1")
		run(t, nil, bin, args("sign", "--fulcio-url", e.k.FulcioURL, "--rekor-url", e.rekor1.URL, "--timestamp-server-url", e.k.TSAURL,
			"--trusted-root", e.root, "--identity-token", e.tokenFile, reg, d.String())...).must(t, 0, "recorded in transparency log "+e.rekor1.URL)
		run(t, nil, c3, args("verify", e.id(), reg, d.String())...).must(t, 0, "")
	})
}

// TestKeylessSignGitHubActions: a GitHub Actions job simulated by a local
// token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN): imgsign asks it
// for a token of audience "sigstore" with the job's bearer, Fulcio puts the
// workflow into the certificate, and cosign v3 and imgsign verify it with
// the --certificate-github-workflow-* flags.
func TestKeylessSignGitHubActions(t *testing.T) {
	bin, c3 := imgsign(t), tool(t, cosign3)
	e := newKeylessSignEnv(t)
	reg := e.reg.flags()
	w := oidctest.GitHubWorkflow{Repository: "imgsign-e2e/release", Ref: "refs/tags/v2.0.0", EventName: "push", Workflow: "release"}
	const bearer = "job-request-token-0123456789"
	var asked []string
	endpoint := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+bearer {
			http.Error(rw, "bad bearer", http.StatusUnauthorized)
			return
		}
		asked = append(asked, r.URL.Query().Get("audience"))
		c := w.Claims()
		c.Audience = r.URL.Query().Get("audience")
		tok, err := e.k.GitHub.Token(c)
		if err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		fmt.Fprintf(rw, `{"count":1,"value":%q}`, tok)
	}))
	defer endpoint.Close()
	env := []string{"GITHUB_ACTIONS=true", "ACTIONS_ID_TOKEN_REQUEST_URL=" + endpoint.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + bearer}
	d := e.reg.pushImage(t, "keyless-sign/github:v1")
	r := run(t, env, bin, args("sign", "--signing-config", e.scV2, "--trusted-root", e.root, "--verbose", "--format", "bundle", reg, d.String())...).
		must(t, 0, "Signing keyless as "+w.Identity())
	if strings.Contains(r.stdout+r.stderr, bearer) {
		t.Fatalf("the job's request token appears in the output:\n%s", r.stderr)
	}
	if !slices.Equal(asked, []string{"sigstore"}) {
		t.Fatalf("token endpoint asked for audiences %v, want [sigstore] once", asked)
	}
	gh := []string{"--trusted-root", e.root, "--certificate-identity", w.Identity(), "--certificate-oidc-issuer", e.k.GitHub.URL,
		"--certificate-github-workflow-repository", w.Repository, "--certificate-github-workflow-ref", w.Ref,
		"--certificate-github-workflow-trigger", "push", "--certificate-github-workflow-name", "release"}
	run(t, nil, c3, args("verify", gh, reg, d.String())...).must(t, 0, d.DigestStr())
	run(t, nil, bin, args("verify", gh, reg, d.String())...).must(t, 0, "Verified")
	run(t, nil, bin, args("verify", "--trusted-root", e.root, "--certificate-identity", w.Identity(), "--certificate-oidc-issuer", e.k.GitHub.URL,
		"--certificate-github-workflow-repository", "imgsign-e2e/other", reg, d.String())...).must(t, 12, "imgsign-e2e/other")

	// In GitHub Actions without "id-token: write" there is no endpoint:
	// the error says what to add.
	d2 := e.reg.pushImage(t, "keyless-sign/github-noperm:v1")
	run(t, []string{"GITHUB_ACTIONS=true"}, bin, args("sign", "--signing-config", e.scV2, "--trusted-root", e.root, reg, d2.String())...).
		must(t, 16, "permissions: id-token: write")
	e.assertUntouched(t, d2, nil)
}

// registryState lists a repository's tags and an image's referrers.
func (e *keylessSignEnv) registryState(t *testing.T, d name.Digest) []string {
	t.Helper()
	tags, err := remote.List(d.Context(), e.reg.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d, e.reg.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := append([]string{}, tags...)
	for _, r := range m.Manifests {
		out = append(out, "referrer "+r.Digest.String())
	}
	slices.Sort(out)
	return out
}

// assertUntouched fails if the image's repository gained tags or referrers
// (before == nil: it must hold only the image's own tag).
func (e *keylessSignEnv) assertUntouched(t *testing.T, d name.Digest, before []string) {
	t.Helper()
	after := e.registryState(t, d)
	if before == nil {
		before = []string{"v1"}
	}
	if !slices.Equal(before, after) {
		t.Fatalf("the registry was written to: before %v, after %v", before, after)
	}
}

// TestKeylessSignFaults: Fulcio down, Rekor down, the TSA down, an expired
// token, a token for another audience, no token at all: each a clear error
// (the reason asserted), exit 16, the token never shown, and nothing
// written to the registry.
func TestKeylessSignFaults(t *testing.T) {
	bin := imgsign(t)
	e := newKeylessSignEnv(t)
	reg := e.reg.flags()
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	deadRekorSC := e.k.signingConfig(t, t.TempDir(), &rekorLog{URL: dead, Version: 1}, false)
	expired, err := e.k.Email.Token(oidctest.Claims{Email: e.email, ExpiresIn: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	otherAud, err := e.k.Email.Token(oidctest.Claims{Email: e.email, Audience: "not-sigstore"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		env   []string
		flags []string
		want  []string
	}{
		{"fulcio-down", nil, []string{"--signing-config", e.scV1, "--fulcio-url", dead, "--identity-token", e.tokenFile},
			[]string{"Fulcio " + dead + " did not issue a certificate", "connection refused"}},
		{"rekor-down", nil, []string{"--signing-config", deadRekorSC, "--identity-token", e.tokenFile},
			[]string{"transparency log " + dead + " (Rekor v1) did not record the signature", "nothing was written to the registry"}},
		{"tsa-down", nil, []string{"--signing-config", e.scV2, "--timestamp-server-url", dead + "/api/v1/timestamp", "--identity-token", e.tokenFile, "--format", "bundle"},
			[]string{"timestamp authority " + dead + "/api/v1/timestamp did not timestamp the signature", "nothing was written to the registry"}},
		{"token-expired", nil, []string{"--signing-config", e.scV1, "--identity-token", tokenFile(t, t.TempDir(), "expired", expired)},
			[]string{"the OIDC identity token has expired", "fetch a fresh token"}},
		{"token-wrong-audience", nil, []string{"--signing-config", e.scV1, "--identity-token", tokenFile(t, t.TempDir(), "aud", otherAud)},
			[]string{"did not issue a certificate", "audience not-sigstore", `"sigstore"`}},
		{"no-token", nil, []string{"--signing-config", e.scV1},
			[]string{"no OIDC identity token for keyless signing", "SIGSTORE_ID_TOKEN", "id-token: write", "id_tokens"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.reg.pushImage(t, "keyless-fault/"+c.name+":v1")
			before := e.registryState(t, d)
			r := run(t, c.env, bin, args("sign", "--trusted-root", e.root, "--verbose", c.flags, reg, d.String())...)
			t.Logf("%s", r.stderr)
			for _, w := range c.want {
				r.must(t, 16, w)
			}
			for _, tok := range []string{e.token, expired, otherAud} {
				if strings.Contains(r.stdout+r.stderr, tok) {
					t.Fatalf("a token appears in the output:\n%s", r.stderr)
				}
			}
			e.assertUntouched(t, d, before)
		})
	}
}

// countingProxy forwards to target and counts requests by "METHOD path".
type countingProxy struct {
	URL    string
	mu     sync.Mutex
	counts map[string]int
}

func newCountingProxy(t testing.TB, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+r.URL.Path]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL + u.Path
	return p
}

// take returns the counts so far and starts afresh.
func (p *countingProxy) take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	p.counts = map[string]int{}
	return c
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// keylessBench is 10 images and the stack behind counting proxies.
type keylessBench struct {
	e                 *keylessSignEnv
	fulcio, rekor, ts *countingProxy
	refs              []string
}

func newKeylessBench(t testing.TB, e *keylessSignEnv, n int) *keylessBench {
	kb := &keylessBench{e: e, fulcio: newCountingProxy(t, e.k.FulcioURL), rekor: newCountingProxy(t, e.rekor1.URL), ts: newCountingProxy(t, e.k.TSAURL)}
	for i := range n {
		kb.refs = append(kb.refs, e.reg.pushImage(t, fmt.Sprintf("keyless-bench/app%d:v1", i)).String())
	}
	return kb
}

// sign signs every image keyless in one call (bundle layout: one
// signature per image).
func (kb *keylessBench) sign(t testing.TB, bin string, round int) result {
	return run(t, nil, bin, args("sign", "--fulcio-url", kb.fulcio.URL, "--rekor-url", kb.rekor.URL, "--rekor-version", "1",
		"--timestamp-server-url", kb.ts.URL, "--trusted-root", kb.e.root, "--identity-token", kb.e.tokenFile,
		"--format", "bundle", "-a", fmt.Sprintf("round=%d", round), kb.e.reg.flags(), kb.refs)...).must(t, 0, "Signing keyless")
}

// TestKeylessSignServiceCalls counts, at the real services, what signing
// 10 images keyless in one call costs: ONE Fulcio certificate, one log
// entry and one timestamp per image, and nothing else.
func TestKeylessSignServiceCalls(t *testing.T) {
	bin := imgsign(t)
	e := newKeylessSignEnv(t)
	const n = 10
	kb := newKeylessBench(t, e, n)
	kb.sign(t, bin, 0)
	f, r, ts := kb.fulcio.take(), kb.rekor.take(), kb.ts.take()
	t.Logf("Fulcio %v; Rekor %v; TSA %v", f, r, ts)
	if f["POST /api/v2/signingCert"] != 1 || total(f) != 1 {
		t.Fatalf("Fulcio requests %v, want exactly one certificate request", f)
	}
	if r["POST /api/v1/log/entries"] != n || total(r) != n {
		t.Fatalf("Rekor requests %v, want %d entries and nothing else", r, n)
	}
	if total(ts) != n {
		t.Fatalf("TSA requests %v, want %d", ts, n)
	}
	for _, ref := range kb.refs {
		run(t, nil, bin, args("verify", e.id(), e.reg.flags(), ref)...).must(t, 0, "Verified")
	}
}

// BenchmarkKeylessSign10 signs 10 images keyless in one imgsign call per
// iteration against the real stack (Fulcio, Rekor v1, TSA), reporting
// images/s and the requests each service received:
//
//	IMGSIGN_E2E_REQUIRE=1 go test -run '^$' -bench KeylessSign10 -benchtime 5x ./test/e2e/
func BenchmarkKeylessSign10(b *testing.B) {
	bin, c3 := imgsign(b), tool(b, cosign3)
	e := newKeylessSignEnvTB(b)
	const n = 10
	kb := newKeylessBench(b, e, n)
	report := func(b *testing.B) {
		f, r, ts := kb.fulcio.take(), kb.rekor.take(), kb.ts.take()
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		b.ReportMetric(float64(total(f))/float64(b.N), "fulcio-calls/run")
		b.ReportMetric(float64(r["POST /api/v1/log/entries"])/float64(n*b.N), "log-writes/image")
		b.ReportMetric(float64(total(ts))/float64(n*b.N), "timestamps/image")
	}
	b.Run("imgsign", func(b *testing.B) {
		kb.take()
		for i := 0; i < b.N; i++ {
			kb.sign(b, bin, i)
		}
		b.StopTimer()
		report(b)
	})
	// The same 10 images, the same services, cosign v3 (bundle format).
	b.Run("cosign-v3", func(b *testing.B) {
		sc := kb.signingConfig(b)
		kb.take()
		for i := 0; i < b.N; i++ {
			run(b, nil, c3, args("sign", "--signing-config", sc, "--trusted-root", e.root, "--identity-token", e.tokenFile,
				"-a", fmt.Sprintf("round=%d", i), "-y", e.reg.flags(), kb.refs)...).must(b, 0, "")
		}
		b.StopTimer()
		report(b)
	})
}

// take forgets the counts so far.
func (kb *keylessBench) take() { kb.fulcio.take(); kb.rekor.take(); kb.ts.take() }

// signingConfig names the counting proxies (Rekor v1 and the TSA).
func (kb *keylessBench) signingConfig(t testing.TB) string {
	t.Helper()
	svc := func(u string) root.Service {
		return root.Service{URL: u, MajorAPIVersion: 1, ValidityPeriodStart: kb.e.k.ValidFrom}
	}
	anyOne := root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY}
	sc, err := root.NewSigningConfig(root.SigningConfigMediaType02, []root.Service{svc(kb.fulcio.URL)}, []root.Service{svc(kb.e.k.Email.URL)},
		[]root.Service{svc(kb.rekor.URL)}, anyOne, []root.Service{svc(kb.ts.URL)}, anyOne)
	if err != nil {
		t.Fatal(err)
	}
	data, err := sc.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(kb.e.dir, "signing_config-proxies.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeylessSignFromTUF: with a private TUF repository chosen ('imgsign
// trust init') that publishes the stack's trusted root and signing config,
// imgsign signs keyless with neither --signing-config nor --trusted-root:
// both come from TUF, as cosign v3 does; cosign v3 verifies.
func TestKeylessSignFromTUF(t *testing.T) {
	bin, c3 := imgsign(t), tool(t, cosign3)
	e := newKeylessSignEnv(t)
	trusted, err := os.ReadFile(e.root)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := os.ReadFile(e.scV1TSA)
	if err != nil {
		t.Fatal(err)
	}
	repo := tuftest.New(t)
	repo.SetTarget("trusted_root.json", trusted)
	repo.SetTarget("signing_config.v0.2.json", sc)
	tufRoot := filepath.Join(e.dir, "tuf-root.json")
	tuftest.Write(t, tufRoot, repo.RootJSON)
	env := []string{"XDG_CACHE_HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir()}
	run(t, env, bin, "trust", "init", "--mirror", repo.URL(), "--root", tufRoot).must(t, 0, "")
	d := e.reg.pushImage(t, "keyless-tuf/app:v1")
	run(t, env, bin, args("sign", "--identity-token", e.tokenFile, "--verbose", e.reg.flags(), d.String())...).
		must(t, 0, "Transparency log: "+e.rekor1.URL).must(t, 0, "Timestamp authority: "+e.k.TSAURL)
	run(t, nil, c3, args("verify", e.id(), e.reg.flags(), d.String())...).must(t, 0, d.DigestStr())
	run(t, env, bin, args("verify", "--certificate-identity", e.email, "--certificate-oidc-issuer", e.k.Email.URL, e.reg.flags(), d.String())...).must(t, 0, "Verified")
}
