package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/verify"
)

func TestSignVerifyCommands(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := reg.PushImage(t, reg.Ref("cli/app:v1"))
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	otherPrefix := filepath.Join(dir, "other")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", otherPrefix).expect(t, ExitOK, "")
	ref := reg.Ref("cli/app:v1")

	env("pw").do(t, "verify", "--key", prefix+".pub", ref).expect(t, ExitNoSignatures, "no signatures found")
	env("pw").do(t, "verify", "--key", prefix+".pub", reg.Ref("cli/app:missing")).expect(t, ExitImageNotFound, "image not found")

	r := env("pw").do(t, "sign", "--key", prefix+".key", "-a", "team=web", ref)
	r.expect(t, ExitOK, "Signed "+img.String())
	env("wrong").do(t, "sign", "--key", prefix+".key", ref).expect(t, ExitKey, "incorrect password")

	v := env("").do(t, "verify", "--key", prefix+".pub", "-a", "team=web", "-o", "json", ref)
	v.expect(t, ExitOK, "Verified "+ref)
	var results []verify.Result
	if err := json.Unmarshal([]byte(v.stdout), &results); err != nil || len(results) != 1 || !results[0].Verified || results[0].Digest != img.DigestStr() {
		t.Fatalf("json output %q (%v)", v.stdout, err)
	}
	env("").do(t, "verify", "--key", otherPrefix+".pub", ref).expect(t, ExitNotVerified, "does not verify with any trusted key")
	env("").do(t, "verify", "--key", prefix+".pub", "-a", "team=db", ref).expect(t, ExitNotVerified, "annotation")
	env("").do(t, "verify", "--key", prefix+".pub", "--key", otherPrefix+".pub", "--threshold", "2", ref).expect(t, ExitNotVerified, "2 required")
	env("").do(t, "verify", "--key", prefix+".pub", "--threshold", "2", ref).expect(t, ExitUsage, "--threshold")
	env("").do(t, "verify", "--key", prefix+".key", ref).expect(t, ExitKey, "private key was given")
	env("").do(t, "verify", ref).expect(t, ExitUsage, "--key or --policy is required")
	env("").do(t, "verify", "--key", prefix+".pub", "not a ref!").expect(t, ExitUsage, "image reference")
	env("").do(t, "verify", "--key", prefix+".pub", "--platform", "linux", ref).expect(t, ExitUsage, "--platform")

	// Several images: exit code of the first failure, every image reported.
	m := env("").do(t, "verify", "--key", prefix+".pub", ref, reg.Ref("cli/app:missing"))
	m.expect(t, ExitImageNotFound, "Verified "+ref)
	if !strings.Contains(m.stderr, "FAILED "+reg.Ref("cli/app:missing")) {
		t.Errorf("second image not reported: %s", m.stderr)
	}
}

func TestSignWithoutUpload(t *testing.T) {
	reg := testreg.Start(t, nil)
	reg.PushImage(t, reg.Ref("cli/off:v1"))
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	sigFile, payloadFile := filepath.Join(dir, "sig"), filepath.Join(dir, "payload.json")
	env("pw").do(t, "sign", "--key", prefix+".key", "--upload=false", "--output-signature", sigFile, "--output-payload", payloadFile, reg.Ref("cli/off:v1")).
		expect(t, ExitOK, "not uploaded")
	p, err := os.ReadFile(payloadFile)
	if err != nil || !strings.Contains(string(p), `"docker-manifest-digest":"sha256:`) {
		t.Fatalf("payload file: %q %v", p, err)
	}
	if s, err := os.ReadFile(sigFile); err != nil || len(s) < 40 {
		t.Fatalf("signature file: %q %v", s, err)
	}
	// Nothing reached the registry.
	env("").do(t, "verify", "--key", prefix+".pub", reg.Ref("cli/off:v1")).expect(t, ExitNoSignatures, "")
	// Existing output files are not overwritten without --force.
	env("pw").do(t, "sign", "--key", prefix+".key", "--upload=false", "--output-signature", sigFile, reg.Ref("cli/off:v1")).expect(t, ExitExist, "exists")
}
