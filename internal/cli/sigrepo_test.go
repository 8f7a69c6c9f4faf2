package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/testreg"
)

// TestCopyAndSaveSignatureRepository: signatures stored in another
// repository are copied next to the destination with
// --signature-repository (and not without it), and saved under their own
// as attached to the image, where verify --local finds them.
func TestCopyAndSaveSignatureRepository(t *testing.T) {
	reg := testreg.Start(t, nil)
	reg.PushImage(t, reg.Ref("src/app:v1"))
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	ref, sigs := reg.Ref("src/app:v1"), reg.Ref("sigs/store")
	env("pw").do(t, "sign", "--key", k+".key", "--signature-repository", sigs, ref).expect(t, ExitOK, "Signed")
	env("").do(t, "verify", "--key", k+".pub", ref).expect(t, ExitNoSignatures, "")

	// Without the flag, nothing is attached to copy: the copy does not verify.
	env("").do(t, "copy", ref, reg.Ref("dst/plain:v1")).expect(t, ExitOK, "Copied")
	env("").do(t, "verify", "--key", k+".pub", reg.Ref("dst/plain:v1")).expect(t, ExitNoSignatures, "")
	// With it, the signatures (legacy and bundle) land next to the copy.
	env("").do(t, "copy", "--signature-repository", sigs, "--verify", "--key", k+".pub", ref, reg.Ref("dst/app:v1")).expect(t, ExitOK, "Verified")
	for _, format := range []string{"legacy", "bundle"} {
		env("").do(t, "verify", "--key", k+".pub", "--format", format, reg.Ref("dst/app:v1")).expect(t, ExitOK, "Verified")
	}
	// The environment works as for sign and verify.
	r := env("")
	r.env["IMGSIGN_REPOSITORY"] = sigs
	r.do(t, "copy", ref, reg.Ref("dst/env:v1")).expect(t, ExitOK, "Copied")
	env("").do(t, "verify", "--key", k+".pub", reg.Ref("dst/env:v1")).expect(t, ExitOK, "Verified")

	layoutDir, plain := filepath.Join(dir, "layout"), filepath.Join(dir, "plain")
	env("").do(t, "save", "--dir", layoutDir, "--signature-repository", sigs, ref).expect(t, ExitOK, "Saved "+ref)
	env("").do(t, "save", "--dir", plain, ref).expect(t, ExitOK, "Saved "+ref)
	reg.Server.Close() // from here on, no registry
	for _, format := range []string{"legacy", "bundle"} {
		env("").do(t, "verify", "--key", k+".pub", "--format", format, "--local", layoutDir, ref).expect(t, ExitOK, "Verified "+ref)
	}
	// Saved without the flag: nothing attached.
	env("").do(t, "verify", "--key", k+".pub", "--local", plain, ref).expect(t, ExitNoSignatures, "")
}

// TestSignManyJobs: sign --jobs signs every image given (here three, two
// at a time), each once; --jobs 0 is refused before the key is read.
func TestSignManyJobs(t *testing.T) {
	reg := testreg.Start(t, nil)
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	var refs []string
	for _, n := range []string{"a", "b", "c"} {
		reg.PushImage(t, reg.Ref("many/"+n+":v1"))
		refs = append(refs, reg.Ref("many/"+n+":v1"))
	}
	env("").do(t, append([]string{"sign", "--key", k + ".key", "--jobs", "0"}, refs...)...).expect(t, ExitUsage, "--jobs")
	r := env("pw").do(t, append([]string{"sign", "--key", k + ".key", "--jobs", "2"}, refs...)...)
	for _, ref := range refs {
		r.expect(t, ExitOK, "Signed "+strings.Split(ref, ":v1")[0]+"@sha256:")
	}
	env("").do(t, append([]string{"verify", "--key", k + ".pub"}, refs...)...).expect(t, ExitOK, "Verified "+refs[2])
	// One image missing: an error naming it, and nothing signed.
	reg.PushImage(t, reg.Ref("many/d:v1"))
	bad := env("pw").do(t, "sign", "--key", k+".key", reg.Ref("many/d:v1"), reg.Ref("many/none:v1"))
	bad.expect(t, ExitError, "many/none:v1: not found")
	env("").do(t, "verify", "--key", k+".pub", reg.Ref("many/d:v1")).expect(t, ExitNoSignatures, "")
}
