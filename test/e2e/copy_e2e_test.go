//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopy: an image signed by imgsign in both formats, copied with
// `imgsign copy` between two docker-registry servers (TLS with basic auth,
// and plain HTTP without), verifies at the destination with imgsign (legacy
// and bundle) and with cosign v3, and so do its attestations; copying
// again adds nothing.
func TestCopy(t *testing.T) {
	bin := imgsign(t)
	c3 := tool(t, cosign3)
	dir := t.TempDir()
	pw := []string{"IMGSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")
	pred := filepath.Join(dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/build/v1"}`), 0o644)
	secure := startRegistry(t, true, true)
	plain := startRegistry(t, false, false)
	secureCosign := []string{"--registry-cacert", secure.caFile, "--registry-username", secure.username, "--registry-password", secure.password}
	plainCosign := []string{"--allow-http-registry"}

	for _, tc := range []struct {
		name     string
		src, dst *registry
		cflags   []string // cosign's flags for dst
	}{
		{"tls-auth-to-plain", secure, plain, plainCosign},
		{"plain-to-tls-auth", plain, secure, secureCosign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One set of flags for both registries: credentials and CA of
			// the secure one (the plain one asks for neither).
			flags := secure.flags()
			d := tc.src.pushImage(t, tc.name+"/app:v1")
			run(t, pw, bin, args("sign", "--key", k+".key", flags, d.String())...).must(t, 0, ".sig and bundle referrer")
			run(t, pw, bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, flags, d.String())...).must(t, 0, "Attested")

			dstTag := tc.dst.ref("mirror/" + tc.name + ":v1")
			out := run(t, nil, bin, args("copy", flags, tc.src.ref(tc.name+"/app:v1"), dstTag)...)
			out.must(t, 0, "Copied image "+d.DigestStr())
			out.must(t, 0, "sha256-"+strings.TrimPrefix(d.DigestStr(), "sha256:")+".sig")

			dstDigest := tc.dst.ref("mirror/"+tc.name) + "@" + d.DigestStr()
			for _, format := range []string{"legacy", "bundle"} {
				run(t, nil, bin, args("verify", "--key", k+".pub", "--format", format, flags, dstTag)...).must(t, 0, d.DigestStr())
				run(t, nil, bin, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--format", format, flags, dstTag)...).must(t, 0, "")
			}
			run(t, nil, c3, args("verify", "--key", k+".pub", "--insecure-ignore-tlog", tc.cflags, dstDigest)...).must(t, 0, d.DigestStr())
			run(t, nil, c3, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--insecure-ignore-tlog", tc.cflags, dstDigest)...).must(t, 0, "")

			// Copying again adds nothing; --verify checks the copy where it
			// landed, and fails with another key.
			before := run(t, nil, bin, args("tree", flags, dstDigest)...).must(t, 0, "signature")
			run(t, nil, bin, args("copy", "--verify", "--key", k+".pub", flags, d.String(), dstTag)...).must(t, 0, "Verified "+dstDigest)
			other := keyPair(t, t.TempDir(), "other")
			run(t, nil, bin, args("copy", "--verify", "--key", other+".pub", flags, d.String(), dstTag)...).must(t, 12, "FAILED "+dstDigest)
			run(t, nil, bin, args("copy", "--verify", flags, d.String(), dstTag)...).must(t, 2, "--verify needs --key or --policy")
			policy := filepath.Join(dir, tc.name+"-policy.yaml")
			os.WriteFile(policy, []byte("version: 1\nscopes:\n  - scope: "+tc.dst.host+"/mirror\n    keys: [{file: k.pub}]\n"), 0o644)
			run(t, nil, bin, args("copy", "--verify", "--policy", policy, flags, d.String(), dstTag)...).must(t, 0, "All 1 image(s) meet the policy")
			after := run(t, nil, bin, args("tree", flags, dstDigest)...).must(t, 0, "signature")
			if before.stdout != after.stdout {
				t.Fatalf("a second copy changed what is attached:\nbefore:\n%s\nafter:\n%s", before.stdout, after.stdout)
			}
			if strings.Count(after.stdout, "signature ") != 2 || strings.Count(after.stdout, "attestation ") != 2 {
				t.Fatalf("want a legacy and a bundle signature and attestation at the destination:\n%s", after.stdout)
			}
		})
	}
}
