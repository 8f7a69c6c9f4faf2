package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignVerifyBlobCommands(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix, "--algorithm", "ed25519").expect(t, ExitOK, "")
	file := filepath.Join(dir, "f.txt")
	os.WriteFile(file, []byte("content"), 0o644)

	// Signature on stdout by default.
	r := env("pw").do(t, "sign-blob", "--key", prefix+".key", file)
	r.expect(t, ExitOK, "")
	sig := filepath.Join(dir, "f.sig")
	os.WriteFile(sig, []byte(strings.TrimSpace(r.stdout)+"\n"), 0o644)
	env("").do(t, "verify-blob", "--key", prefix+".pub", "--signature", sig, file).expect(t, ExitOK, "Verified")

	// From standard input, with a bundle.
	b := filepath.Join(dir, "f.bundle")
	run{env: map[string]string{"IMGSIGN_PASSWORD": "pw"}, stdin: "content"}.do(t, "sign-blob", "--key", prefix+".key", "--bundle", b, "-").expect(t, ExitOK, "Bundle written")
	env("").do(t, "verify-blob", "--key", prefix+".pub", "--bundle", b, file).expect(t, ExitOK, "Verified")
	run{stdin: "content"}.do(t, "verify-blob", "--key", prefix+".pub", "--bundle", b, "-").expect(t, ExitOK, "Verified")

	// Failures.
	os.WriteFile(file, []byte("changed"), 0o644)
	env("").do(t, "verify-blob", "--key", prefix+".pub", "--bundle", b, file).expect(t, ExitNotVerified, "signs another file")
	env("").do(t, "verify-blob", "--key", prefix+".pub", "--signature", sig, file).expect(t, ExitNotVerified, "does not verify")
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("%%%"), 0o644)
	env("").do(t, "verify-blob", "--key", prefix+".pub", "--signature", junk, file).expect(t, ExitNotVerified, "not a base64 signature")
	env("").do(t, "verify-blob", "--key", prefix+".pub", "--bundle", junk, file).expect(t, ExitNotVerified, "invalid bundle")
	env("").do(t, "verify-blob", "--key", prefix+".pub", file).expect(t, ExitUsage, "exactly one of")
	env("").do(t, "verify-blob", "--signature", sig, file).expect(t, ExitUsage, "--key is required")
	env("pw").do(t, "sign-blob", "--key", prefix+".key", filepath.Join(dir, "missing")).expect(t, ExitError, "no such file")
}
