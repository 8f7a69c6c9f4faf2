//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// keyPair makes an imgsign key pair and returns its prefix.
func keyPair(t testing.TB, dir, name string) string {
	t.Helper()
	prefix := filepath.Join(dir, name)
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, imgsign(t), "generate-key-pair", "--output-key-prefix", prefix).must(t, 0, "")
	return prefix
}

func args(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	return out
}

// TestSignVerifyRealRegistry signs and verifies against a real registry,
// over TLS with basic auth, and over plain HTTP on loopback.
func TestSignVerifyRealRegistry(t *testing.T) {
	bin := imgsign(t)
	for _, mode := range []struct {
		name      string
		tls, auth bool
	}{{"tls-auth", true, true}, {"plain-http", false, false}} {
		t.Run(mode.name, func(t *testing.T) {
			reg := startRegistry(t, mode.tls, mode.auth)
			dir := t.TempDir()
			k := keyPair(t, dir, "k")
			d := reg.pushImage(t, "team/app:v1")
			env := []string{"IMGSIGN_PASSWORD=pw"}

			run(t, env, bin, args("verify", "--key", k+".pub", reg.flags(), reg.ref("team/app:v1"))...).must(t, 10, "no signatures found")
			run(t, env, bin, args("sign", "--key", k+".key", "-a", "env=prod", reg.flags(), reg.ref("team/app:v1"))...).must(t, 0, "Signed "+d.String())
			run(t, env, bin, args("verify", "--key", k+".pub", "-a", "env=prod", "--check-identity", reg.flags(), reg.ref("team/app:v1"))...).must(t, 0, "Verified")
			run(t, env, bin, args("verify", "--key", k+".pub", reg.flags(), d.String())...).must(t, 0, "Verified")
			run(t, env, bin, args("verify", "--key", k+".pub", reg.flags(), reg.ref("team/app:missing"))...).must(t, 11, "image not found")

			// The stored layout is cosign's.
			hex := strings.TrimPrefix(d.DigestStr(), "sha256:")
			m := reg.manifest(t, reg.ref("team/app:sha256-"+hex+".sig"))
			if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" ||
				m.Layers[0].Annotations["dev.cosignproject.cosign/signature"] == "" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
				t.Fatalf("signature manifest is not cosign's layout: %+v", m)
			}
			if mode.auth {
				// Without credentials the registry refuses, and imgsign says so.
				run(t, env, bin, "verify", "--key", k+".pub", "--registry-cacert", reg.caFile, reg.ref("team/app:v1")).must(t, 1, "UNAUTHORIZED")
				// Without the CA, TLS verification fails.
				run(t, env, bin, "verify", "--key", k+".pub", "--registry-username", reg.username, "--registry-password", reg.password, reg.ref("team/app:v1")).must(t, 1, "certificate")
				// Credentials from the environment work too.
				run(t, append(env, "IMGSIGN_REGISTRY_USERNAME="+reg.username, "IMGSIGN_REGISTRY_PASSWORD="+reg.password), bin,
					"verify", "--key", k+".pub", "--registry-cacert", reg.caFile, reg.ref("team/app:v1")).must(t, 0, "Verified")
			}
		})
	}
}

// TestTwentyConcurrentSigners: twenty processes with twenty keys sign one
// image at the same moment; all twenty signatures must survive.
func TestTwentyConcurrentSigners(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	d := reg.pushImage(t, "race/app:v1")
	const n = 20
	prefixes := make([]string, n)
	for i := range prefixes {
		prefixes[i] = keyPair(t, dir, fmt.Sprintf("k%02d", i))
	}
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, args("sign", "--key", prefixes[i]+".key", reg.flags(), d.String())...)
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		r.must(t, 0, "Signed")
		_ = i
	}
	hex := strings.TrimPrefix(d.DigestStr(), "sha256:")
	m := reg.manifest(t, reg.ref("race/app:sha256-"+hex+".sig"))
	if len(m.Layers) != n {
		t.Fatalf("%d signatures after %d concurrent signers", len(m.Layers), n)
	}
	// Every key verifies on its own.
	verifyArgs := []string{"verify", "--threshold", fmt.Sprint(n)}
	for _, p := range prefixes {
		verifyArgs = append(verifyArgs, "--key", p+".pub")
	}
	run(t, nil, bin, args(verifyArgs, reg.flags(), d.String())...).must(t, 0, fmt.Sprintf("%d valid signature(s)", n))
}

// TestCosignVerifiesImgsign: signatures imgsign writes verify with cosign v3
// and v2.
func TestCosignVerifiesImgsign(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	d := reg.pushImage(t, "interop/app:v1")
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, args("sign", "--key", k+".key", "-a", "team=web", reg.flags(), reg.ref("interop/app:v1"))...).must(t, 0, "Signed")

	root := emptyTrustedRoot(t, dir)
	cosignFlags := []string{"--registry-cacert", reg.caFile, "--registry-username", reg.username, "--registry-password", reg.password}
	out := run(t, nil, c3, args("verify", "--key", k+".pub", "--insecure-ignore-tlog", "-a", "team=web", cosignFlags, reg.ref("interop/app:v1"))...)
	out.must(t, 0, d.DigestStr())
	out = run(t, nil, c2, args("verify", "--key", k+".pub", "--insecure-ignore-tlog", "--trusted-root", root, "-a", "team=web", cosignFlags, reg.ref("interop/app:v1"))...)
	out.must(t, 0, d.DigestStr())
	// And cosign refuses what it should: another key.
	other := keyPair(t, dir, "other")
	if r := run(t, nil, c3, args("verify", "--key", other+".pub", "--insecure-ignore-tlog", cosignFlags, reg.ref("interop/app:v1"))...); r.code == 0 {
		t.Fatal("cosign accepted a signature by another key: the test is not testing anything")
	}
}

// TestImgsignVerifiesCosign: legacy signatures written by cosign v3 and v2
// verify with imgsign, and tampering with them is caught.
func TestImgsignVerifiesCosign(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	cosignFlags := []string{"--registry-cacert", reg.caFile, "--registry-username", reg.username, "--registry-password", reg.password}
	for _, tc := range []struct {
		cosign string
		extra  []string
	}{
		{cosign3, []string{"--use-signing-config=false", "--new-bundle-format=false"}},
		{cosign2, nil},
	} {
		t.Run(tc.cosign, func(t *testing.T) {
			c := tool(t, tc.cosign)
			prefix := filepath.Join(dir, tc.cosign)
			pw := []string{"COSIGN_PASSWORD=cpw"}
			run(t, pw, c, "generate-key-pair", "--output-key-prefix", prefix).must(t, 0, "")
			d := reg.pushImage(t, "fromcosign/"+tc.cosign+":v1")
			run(t, pw, c, args("sign", "--key", prefix+".key", "--tlog-upload=false", "-y", "-a", "team=web", tc.extra, cosignFlags, d.String())...).must(t, 0, "")
			run(t, nil, bin, args("verify", "--key", prefix+".pub", "-a", "team=web", "--check-identity", reg.flags(), reg.ref("fromcosign/"+tc.cosign+":v1"))...).must(t, 0, "Verified")
			run(t, nil, bin, args("verify", "--key", prefix+".pub", "-a", "team=db", reg.flags(), d.String())...).must(t, 12, "annotation")
			// A cosign signature of one image attached to another is refused.
			d2 := reg.pushImage(t, "fromcosign/"+tc.cosign+":v2")
			copyManifest(t, reg, sigTag(reg, d.Context().RepositoryStr(), d.DigestStr()), sigTag(reg, d2.Context().RepositoryStr(), d2.DigestStr()))
			run(t, nil, bin, args("verify", "--key", prefix+".pub", reg.flags(), d2.String())...).must(t, 12, "not this image")
		})
	}
}

func sigTag(reg *registry, repo, digest string) string {
	return reg.ref(repo + ":" + strings.Replace(digest, ":", "-", 1) + ".sig")
}

func emptyTrustedRoot(t testing.TB, dir string) string {
	p := filepath.Join(dir, "trusted_root.json")
	os.WriteFile(p, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}`), 0o644)
	return p
}
