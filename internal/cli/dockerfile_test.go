package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/dockerfile"
)

// TestDockerfileVerifyPin: every image a Dockerfile uses (the syntax
// frontend, FROM, COPY --from, RUN --mount from=) is verified, reported
// with its line and kind, and pinned; one unsigned image fails the
// Dockerfile and leaves it untouched.
func TestDockerfileVerifyPin(t *testing.T) {
	reg := testreg.Start(t, nil)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	front, base, tool, cache := reg.Ref("docker/dockerfile:1"), reg.Ref("team/base:v1"), reg.Ref("team/tool:v1"), reg.Ref("team/cache:v1")
	digests := map[string]string{}
	for _, ref := range []string{front, base, tool, cache} {
		digests[ref] = reg.PushImage(t, ref).DigestStr()
		env("pw").do(t, "sign", "--key", prefix+".key", ref).expect(t, ExitOK, "Signed")
	}
	unsigned := reg.Ref("team/unsigned:v1")
	reg.PushImage(t, unsigned)

	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s\n    keys: [{file: k.pub}]\n", reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	df := filepath.Join(dir, "Dockerfile")
	content := "# syntax=" + front + "\r\n" +
		"ARG BASE=" + base + "\r\n" +
		"FROM ${BASE} AS build\r\n" +
		"COPY --from=" + tool + " /bin/tool /usr/bin/tool\r\n" +
		"RUN --mount=type=cache,target=/root/.cache \\\r\n" +
		"    --mount=type=bind,from=" + cache + ",source=/x,target=/y \\\r\n" +
		"    make\r\n" +
		"RUN <<EOF\r\nCOPY --from=" + unsigned + " / /\r\nEOF\r\n" +
		"COPY --from=" + tool + " /bin/tool2 /usr/bin/tool2\r\n" +
		"FROM scratch\r\n" +
		"COPY --from=build /app /app\r\n" +
		"COPY --from=0 /app /app2\r\n"
	if err := os.WriteFile(df, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	v := env("").do(t, "dockerfile", "verify", "--policy", policy, df)
	v.expect(t, ExitOK, "All 4 image(s) meet the policy")
	for _, want := range []string{
		"line 1 # syntax=" + front + ": verified",
		"line 3 FROM " + base + ": verified",
		"line 4 COPY --from " + tool + ": verified",
		"line 5 RUN --mount from=" + cache + ": verified",
		"line 11 COPY --from " + tool + ": verified",
	} {
		if !strings.Contains(v.stderr, want) {
			t.Errorf("verify stderr lacks %q:\n%s", want, v.stderr)
		}
	}
	if strings.Contains(v.stderr, unsigned) {
		t.Errorf("an image in a heredoc body was reported:\n%s", v.stderr)
	}

	// The frontend named by BUILDKIT_SYNTAX is verified too, but cannot be
	// pinned in the file.
	env("").do(t, "dockerfile", "verify", "--policy", policy, "--build-arg", "BUILDKIT_SYNTAX="+front, df).
		expect(t, ExitOK, "build argument BUILDKIT_SYNTAX "+front+": verified")

	p := env("").do(t, "dockerfile", "pin", "--policy", policy, df)
	p.expect(t, ExitOK, "Pinned 1 syntax frontend, 1 base image(s), 2 COPY --from image(s), 1 RUN --mount image(s) in "+df)
	want := content
	for _, r := range []struct{ old, new string }{
		{"# syntax=" + front + "\r\n", "# syntax=" + front + "@" + digests[front] + "\r\n"},
		{"FROM ${BASE} AS", "FROM " + base + "@" + digests[base] + " AS"},
		{"--from=" + tool + " ", "--from=" + tool + "@" + digests[tool] + " "},
		{"from=" + cache + ",", "from=" + cache + "@" + digests[cache] + ","},
	} {
		if !strings.Contains(want, r.old) {
			t.Fatalf("test content lacks %q", r.old)
		}
		want = strings.ReplaceAll(want, r.old, r.new)
	}
	got, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("pinned Dockerfile:\n%q\nwant:\n%q", got, want)
	}
	if st, err := os.Stat(df); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("pinned file mode: %v %v", st.Mode(), err)
	}
	// Pinned references verify, and pinning again changes nothing.
	env("").do(t, "dockerfile", "verify", "--policy", policy, df).expect(t, ExitOK, "line 4 COPY --from "+tool+"@"+digests[tool]+": verified")
	env("").do(t, "dockerfile", "pin", "--policy", policy, df).expect(t, ExitOK, "Pinned 0 image(s)")
	if again, _ := os.ReadFile(df); string(again) != want {
		t.Fatalf("second pin changed the file:\n%q", again)
	}
	// A frontend named by BUILDKIT_SYNTAX cannot be pinned in the file: the
	// pin is printed instead.
	o := env("").do(t, "dockerfile", "pin", "--policy", policy, "--build-arg", "BUILDKIT_SYNTAX="+front, "--output", "-", df)
	o.expect(t, ExitOK, "The BUILDKIT_SYNTAX build argument is not in "+df+": pin it where the build is configured: "+front+"@"+digests[front])
	if o.stdout != want {
		t.Fatalf("pin --output - wrote:\n%q", o.stdout)
	}

	// One unsigned COPY --from image: verify and pin fail, the file is kept.
	bad := filepath.Join(dir, "Dockerfile.bad")
	badContent := "# syntax=" + front + "\n" +
		"FROM " + base + "\n" +
		"COPY --from=" + unsigned + " / /\n" +
		"RUN --mount=from=" + cache + ",target=/c true\n"
	if err := os.WriteFile(bad, []byte(badContent), 0o644); err != nil {
		t.Fatal(err)
	}
	b := env("").do(t, "dockerfile", "verify", "--policy", policy, bad)
	b.expect(t, ExitNoSignatures, "line 3 COPY --from "+unsigned+": FAILED")
	for _, want := range []string{"1 of 4 image(s) failed the policy", "line 2 FROM " + base + ": verified"} {
		if !strings.Contains(b.stderr, want) {
			t.Errorf("verify stderr lacks %q:\n%s", want, b.stderr)
		}
	}
	env("").do(t, "dockerfile", "pin", "--policy", policy, bad).expect(t, ExitNoSignatures, "line 3 COPY --from "+unsigned+": FAILED")
	if kept, _ := os.ReadFile(bad); string(kept) != badContent {
		t.Fatalf("a refused Dockerfile was rewritten:\n%s", kept)
	}

	// A reference that cannot be rewritten in place: verified, not pinned.
	quoted := filepath.Join(dir, "Dockerfile.quoted")
	quotedContent := "FROM " + base + "\nCOPY --from=\"" + tool + "\" / /\n"
	if err := os.WriteFile(quoted, []byte(quotedContent), 0o644); err != nil {
		t.Fatal(err)
	}
	env("").do(t, "dockerfile", "pin", "--policy", policy, quoted).expect(t, ExitError, "cannot rewrite it safely")
	if kept, _ := os.ReadFile(quoted); string(kept) != quotedContent {
		t.Fatalf("a Dockerfile that could not be pinned was rewritten:\n%s", kept)
	}

	// A --from that names a variable is refused before any registry access.
	varDf := filepath.Join(dir, "Dockerfile.var")
	if err := os.WriteFile(varDf, []byte("ARG T="+tool+"\nFROM "+base+"\nCOPY --from=$T / /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env("").do(t, "dockerfile", "verify", "--policy", policy, varDf).expect(t, ExitUsage, "line 3: COPY: --from=$T: variable expansion")
}

// TestDockerfilePlatforms: a FROM that depends on the automatic platform
// arguments is resolved as BuildKit resolves it for each target platform
// (this machine's by default), never with the default written in the file;
// it is verified for each platform and is not pinned.
func TestDockerfilePlatforms(t *testing.T) {
	reg := testreg.Start(t, nil)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	host := dockerfile.HostPlatform().Architecture
	for _, arch := range []string{"amd64", "arm64", host} {
		ref := reg.Ref("team/app:" + arch)
		reg.PushImage(t, ref)
		env("pw").do(t, "sign", "--key", prefix+".key", ref).expect(t, ExitOK, "Signed")
	}
	decoy := reg.Ref("team/app:v1") // what a reader taking the default would verify
	reg.PushImage(t, decoy)
	reg.PushImage(t, reg.Ref("team/app:s390x")) // unsigned
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s\n    keys: [{file: k.pub}]\n", reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	df := filepath.Join(dir, "Dockerfile")
	content := "FROM " + reg.Ref("team/app") + ":${TARGETARCH:-v1}\nFROM --platform=$BUILDPLATFORM " + reg.Ref("team/app") + ":${BUILDARCH}\n"
	if err := os.WriteFile(df, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// This machine's platform by default.
	r := env("").do(t, "dockerfile", "verify", "--policy", policy, df)
	r.expect(t, ExitOK, "line 1 FROM "+reg.Ref("team/app:"+host)+": verified")
	r.expect(t, ExitOK, "line 2 FROM "+reg.Ref("team/app:"+host)+": verified")
	if strings.Contains(r.stderr, decoy) {
		t.Fatalf("the default was verified:\n%s", r.stderr)
	}
	// Each platform given, repeated or as a list; the build platform is
	// this machine's.
	for _, flags := range [][]string{{"--platform", "linux/amd64,linux/arm64"}, {"--platform", "linux/amd64", "--platform", "linux/aarch64"}} {
		r = env("").do(t, append(append([]string{"dockerfile", "verify", "--policy", policy}, flags...), df)...)
		r.expect(t, ExitOK, "line 1 FROM "+reg.Ref("team/app:amd64")+" for linux/amd64: verified")
		r.expect(t, ExitOK, "line 1 FROM "+reg.Ref("team/app:arm64")+" for linux/arm64: verified")
		r.expect(t, ExitOK, "line 2 FROM "+reg.Ref("team/app:"+host)+": verified")
	}
	// A platform whose image is unsigned fails the Dockerfile.
	env("").do(t, "dockerfile", "verify", "--policy", policy, "--platform", "linux/amd64,linux/s390x", df).
		expect(t, ExitNoSignatures, "line 1 FROM "+reg.Ref("team/app:s390x")+" for linux/s390x: FAILED")
	env("").do(t, "dockerfile", "verify", "--policy", policy, "--platform", "linux", df).expect(t, ExitUsage, "--platform: platform \"linux\" is not os/arch[/variant]")
	// The reference depends on the platform: it cannot be pinned.
	env("").do(t, "dockerfile", "pin", "--policy", policy, "--platform", "linux/amd64,linux/arm64", df).expect(t, ExitError, "depends on the build's platform")
	env("").do(t, "dockerfile", "pin", "--policy", policy, "--platform", "linux/amd64", df).expect(t, ExitError, "depends on the build's platform")
	if kept, _ := os.ReadFile(df); string(kept) != content {
		t.Fatalf("a platform-dependent Dockerfile was pinned:\n%s", kept)
	}
}

// TestDockerfileByKey: dockerfile verify and pin with --key verify each
// image as 'imgsign verify --key' does; the wrong key fails and pins
// nothing; --key and --policy together are refused.
func TestDockerfileByKey(t *testing.T) {
	reg := testreg.Start(t, nil)
	dir := t.TempDir()
	k, wrong := filepath.Join(dir, "k"), filepath.Join(dir, "wrong")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", wrong).expect(t, ExitOK, "")
	base, tool := reg.Ref("team/base:v1"), reg.Ref("team/tool:v1")
	digests := map[string]string{}
	for _, ref := range []string{base, tool} {
		digests[ref] = reg.PushImage(t, ref).DigestStr()
		env("pw").do(t, "sign", "--key", k+".key", ref).expect(t, ExitOK, "Signed")
	}
	df := filepath.Join(dir, "Dockerfile")
	content := "FROM " + base + "\nCOPY --from=" + tool + " /bin/tool /usr/bin/tool\n"
	if err := os.WriteFile(df, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	v := env("").do(t, "dockerfile", "verify", "--key", k+".pub", df)
	v.expect(t, ExitOK, "line 1 FROM "+base+": verified")
	v.expect(t, ExitOK, "line 2 COPY --from "+tool+": verified")
	env("").do(t, "dockerfile", "verify", "--key", wrong+".pub", df).expect(t, ExitNotVerified, "line 1 FROM "+base+": FAILED")
	env("").do(t, "dockerfile", "pin", "--key", wrong+".pub", df).expect(t, ExitNotVerified, "FAILED")
	if got, _ := os.ReadFile(df); string(got) != content {
		t.Fatalf("a failed pin changed the Dockerfile:\n%s", got)
	}
	env("").do(t, "dockerfile", "pin", "--key", k+".pub", "--threshold", "1", df).expect(t, ExitOK, "Pinned 1 base image(s), 1 COPY --from image(s)")
	got, _ := os.ReadFile(df)
	if want := "FROM " + base + "@" + digests[base] + "\nCOPY --from=" + tool + "@" + digests[tool] + " /bin/tool /usr/bin/tool\n"; string(got) != want {
		t.Fatalf("pinned:\n%s\nwant:\n%s", got, want)
	}
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("version: 1\n"), 0o644)
	env("").do(t, "dockerfile", "verify", "--key", k+".pub", "--policy", policy, df).expect(t, ExitUsage, "one or the other")
	env("").do(t, "dockerfile", "verify", df).expect(t, ExitUsage, "one or the other")
	env("").do(t, "dockerfile", "verify", "--key", k+".pub", "--threshold", "2", df).expect(t, ExitUsage, "--threshold")
}
