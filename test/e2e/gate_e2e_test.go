//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyGate: the deploy gate on a real registry (TLS, auth): a policy
// file, images from Kubernetes manifests, a Dockerfile verified and pinned.
func TestPolicyGate(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	env := []string{"IMGSIGN_PASSWORD=pw"}
	ci, other := keyPair(t, dir, "ci"), keyPair(t, dir, "other")
	good := reg.pushImage(t, "team/app:v1")
	bad := reg.pushImage(t, "team/bad:v1")
	open := reg.pushImage(t, "sandbox/tool:v1")
	blocked := reg.pushImage(t, "elsewhere/app:v1")
	run(t, env, bin, args("sign", "--key", ci+".key", reg.flags(), good.String())...).must(t, 0, "Signed")
	run(t, env, bin, args("sign", "--key", other+".key", reg.flags(), bad.String())...).must(t, 0, "Signed")

	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`version: 1
scopes:
  - scope: %[1]s/team
    keys: [{file: ci.pub}]
    identity: {requireMatch: true}
  - scope: %[1]s/sandbox/**
    unsigned: accept
`, reg.host)), 0o644)
	run(t, nil, bin, "policy", "validate", policy).must(t, 0, "Any other image is rejected")
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("version: 1\nscopes:\n  - scope: a.example/b\n    keys: [{file: ci.pub}]\n    treshold: 2\n"), 0o644)
	run(t, nil, bin, "policy", "validate", broken).must(t, 2, `broken.yaml:5: unknown field "treshold"`)

	manifests := filepath.Join(dir, "release.yaml")
	os.WriteFile(manifests, []byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers: [{name: init, image: %[1]s}]
      containers: [{name: web, image: %[1]s}, {name: tool, image: %[2]s}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: %[3]s}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: stray}
    spec:
      containers: [{name: stray, image: %[4]s}]
`, reg.ref("team/app:v1"), reg.ref("sandbox/tool:v1"), bad.String(), blocked.String())), 0o644)

	r := run(t, nil, bin, args("verify", "--policy", policy, "-f", manifests, "-o", "json", reg.flags())...).must(t, 12, "2 of 4 image(s) failed the policy")
	for _, want := range []string{"Verified " + reg.ref("team/app:v1"), "Accepted " + reg.ref("sandbox/tool:v1"), "FAILED " + bad.String(), "FAILED " + blocked.String(), "no scope of the policy matches it"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	var results []struct {
		Image    string `json:"image"`
		Digest   string `json:"digest"`
		Verified bool   `json:"verified"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil || len(results) != 4 {
		t.Fatalf("json report: %v\n%s", err, r.stdout)
	}
	if !results[0].Verified || results[0].Digest != good.DigestStr() || results[2].Verified || results[3].Verified {
		t.Fatalf("json report: %+v", results)
	}
	// Only the good images: a pass.
	run(t, nil, bin, args("verify", "--policy", policy, reg.flags(), reg.ref("team/app:v1"), open.String())...).must(t, 0, "All 2 image(s) meet the policy")
	// --policy replaces --key.
	run(t, nil, bin, args("verify", "--policy", policy, "--key", ci+".pub", reg.flags(), good.String())...).must(t, 2, "give one or the other")

	// A Dockerfile: ARG substitution, a named stage, scratch; verified,
	// then pinned to the digests verified.
	df := filepath.Join(dir, "Dockerfile")
	content := fmt.Sprintf("ARG BASE=%s\nFROM ${BASE} AS build\nRUN make\n\nFROM scratch\nCOPY --from=build /app /app\n\nFROM build AS test\n", reg.ref("team/app:v1"))
	os.WriteFile(df, []byte(content), 0o644)
	run(t, nil, bin, args("dockerfile", "verify", "--policy", policy, reg.flags(), df)...).must(t, 0, "All 1 image(s) meet the policy")
	run(t, nil, bin, args("dockerfile", "pin", "--policy", policy, reg.flags(), df)...).must(t, 0, "Pinned 1 base image(s)")
	pinned, _ := os.ReadFile(df)
	want := strings.Replace(content, "FROM ${BASE} AS build", "FROM "+reg.ref("team/app:v1")+"@"+good.DigestStr()+" AS build", 1)
	if string(pinned) != want {
		t.Fatalf("pinned Dockerfile:\n%s\nwant:\n%s", pinned, want)
	}
	run(t, nil, bin, args("dockerfile", "verify", "--policy", policy, reg.flags(), df)...).must(t, 0, "All 1 image(s) meet the policy")
	// A FROM that depends on the target platform: the default written in
	// the file (a signed :v1) is not what the build pulls for linux/arm64
	// (an unsigned :arm64), which is what is verified, and fails.
	decoy := reg.pushImage(t, "team/plat:v1")
	run(t, env, bin, args("sign", "--key", ci+".key", reg.flags(), decoy.String())...).must(t, 0, "Signed")
	reg.pushImage(t, "team/plat:arm64")
	platDf := filepath.Join(dir, "Dockerfile.platform")
	os.WriteFile(platDf, []byte("FROM "+reg.ref("team/plat")+":${TARGETARCH:-v1}\n"), 0o644)
	r = run(t, nil, bin, args("dockerfile", "verify", "--policy", policy, "--platform", "linux/arm64", reg.flags(), platDf)...)
	r.must(t, 10, "line 1 FROM "+reg.ref("team/plat:arm64")+": FAILED")
	if strings.Contains(r.stderr, reg.ref("team/plat:v1")) {
		t.Fatalf("the default was verified:\n%s", r.stderr)
	}

	// A base image the policy refuses: nothing is pinned, the file is kept.
	badDf := filepath.Join(dir, "Dockerfile.bad")
	badContent := "FROM " + reg.ref("team/bad:v1") + "\n"
	os.WriteFile(badDf, []byte(badContent), 0o644)
	run(t, nil, bin, args("dockerfile", "pin", "--policy", policy, reg.flags(), badDf)...).must(t, 12, "FAILED")
	if kept, _ := os.ReadFile(badDf); string(kept) != badContent {
		t.Fatalf("a refused Dockerfile was rewritten:\n%s", kept)
	}

	// Every image a build uses: the syntax frontend, COPY --from and
	// RUN --mount from= images are verified too, and pinned with FROM.
	buildDf := filepath.Join(dir, "Dockerfile.build")
	buildTmpl := "# syntax=%[1]s\nFROM %[2]s\nCOPY --from=%[2]s /bin/app /app\nRUN --mount=type=bind,from=%[3]s,source=/x,target=/y make\n"
	refused := fmt.Sprintf(buildTmpl, reg.ref("sandbox/tool:v1"), reg.ref("team/app:v1"), reg.ref("team/bad:v1"))
	os.WriteFile(buildDf, []byte(refused), 0o644)
	r = run(t, nil, bin, args("dockerfile", "pin", "--policy", policy, reg.flags(), buildDf)...).must(t, 12, "RUN --mount from="+reg.ref("team/bad:v1")+": FAILED")
	r.must(t, 12, "COPY --from "+reg.ref("team/app:v1")+": verified")
	if kept, _ := os.ReadFile(buildDf); string(kept) != refused {
		t.Fatalf("a refused Dockerfile was rewritten:\n%s", kept)
	}
	accepted := fmt.Sprintf(buildTmpl, reg.ref("sandbox/tool:v1"), reg.ref("team/app:v1"), reg.ref("team/app:v1"))
	os.WriteFile(buildDf, []byte(accepted), 0o644)
	run(t, nil, bin, args("dockerfile", "pin", "--policy", policy, reg.flags(), buildDf)...).must(t, 0, "Pinned")
	pinned, _ = os.ReadFile(buildDf)
	want = fmt.Sprintf(buildTmpl, reg.ref("sandbox/tool:v1")+"@"+open.DigestStr(), reg.ref("team/app:v1")+"@"+good.DigestStr(), reg.ref("team/app:v1")+"@"+good.DigestStr())
	if string(pinned) != want {
		t.Fatalf("pinned Dockerfile:\n%s\nwant:\n%s", pinned, want)
	}
}

// TestVerifyBlobsStorageTampered: a layer overwritten in the registry's
// storage directory is served as is by the registry; --verify-blobs
// catches it, a signature check alone cannot.
func TestVerifyBlobsStorageTampered(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	env := []string{"IMGSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")
	d := reg.pushImage(t, "deep/app:v1")
	run(t, env, bin, args("sign", "--key", k+".key", reg.flags(), d.String())...).must(t, 0, "Signed")
	run(t, nil, bin, args("verify", "--key", k+".pub", "--verify-blobs", reg.flags(), d.String())...).must(t, 0, "content re-hashed: 1 manifest(s), 3 blob(s)")

	m := reg.manifest(t, d.String())
	hex := m.Layers[0].Digest.Hex
	data := filepath.Join(reg.storage, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatalf("layer in storage: %v", err)
	}
	tampered := append([]byte(nil), orig...)
	tampered[len(tampered)/2] ^= 0xff // same size, other bytes
	if err := os.WriteFile(data, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, bin, args("verify", "--key", k+".pub", reg.flags(), d.String())...).must(t, 0, "Verified")
	run(t, nil, bin, args("verify", "--key", k+".pub", "--verify-blobs", reg.flags(), d.String())...).must(t, 12, "content does not match")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/deep\n    keys: [{file: k.pub}]\n", reg.host)), 0o644)
	run(t, nil, bin, args("verify", "--policy", policy, "--verify-blobs", reg.flags(), d.String())...).must(t, 12, "content does not match")
}

// TestPolicyWithRekor: a scope requiring a verified entry of the local
// Rekor v1 and a maximum age; cosign's logged signatures count too.
func TestPolicyWithRekor(t *testing.T) {
	bin := imgsign(t)
	c2 := tool(t, cosign2)
	rekor := startRekorV1(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	env := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")
	logged := reg.pushImage(t, "prod/logged:v1")
	unlogged := reg.pushImage(t, "prod/unlogged:v1")
	byCosign := reg.pushImage(t, "prod/cosign:v1")
	run(t, env, bin, args("sign", "--key", k+".key", "--rekor-url", rekor.URL, reg.flags(), logged.String())...).must(t, 0, "recorded")
	run(t, env, bin, args("sign", "--key", k+".key", reg.flags(), unlogged.String())...).must(t, 0, "Signed")
	run(t, env, c2, "sign", "--key", k+".key", "--rekor-url", rekor.URL, "--tlog-upload=true", "-y", "--allow-http-registry", byCosign.String()).must(t, 0, "")
	os.WriteFile(filepath.Join(dir, "rekor.pub"), mustRead(t, rekor.PublicKeyPEM), 0o644)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`version: 1
scopes:
  - scope: %s/prod
    keys: [{file: k.pub}]
    tlog: {required: true, keys: [{file: rekor.pub}]}
    maxAge: 1h
`, reg.host)), 0o644)
	r := run(t, nil, bin, args("verify", "--policy", policy, reg.flags(), logged.String(), byCosign.String(), unlogged.String())...).must(t, 12, "1 of 3 image(s) failed")
	if !strings.Contains(r.stderr, "FAILED "+unlogged.String()) || !strings.Contains(r.stderr, "no transparency-log entry") {
		t.Fatalf("the unlogged image's failure is not explained:\n%s", r.stderr)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
