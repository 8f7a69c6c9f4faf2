//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBlobInterop: files signed by imgsign verify with cosign v3 and v2, and
// files signed by cosign verify with imgsign, as signatures and bundles.
func TestBlobInterop(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	dir := t.TempDir()
	file := filepath.Join(dir, "release.tar.gz")
	os.WriteFile(file, []byte("pretend this is a release archive\n"), 0o644)
	pw := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")

	// imgsign signs; cosign verifies.
	sig, bundle := filepath.Join(dir, "i.sig"), filepath.Join(dir, "i.bundle")
	run(t, pw, bin, "sign-blob", "--key", k+".key", "--output-signature", sig, "--bundle", bundle, file).must(t, 0, "Bundle written")
	run(t, nil, c3, "verify-blob", "--key", k+".pub", "--bundle", bundle, "--insecure-ignore-tlog", file).must(t, 0, "Verified OK")
	run(t, nil, c3, "verify-blob", "--key", k+".pub", "--signature", sig, "--new-bundle-format=false", "--insecure-ignore-tlog", file).must(t, 0, "Verified OK")
	run(t, nil, c2, "verify-blob", "--key", k+".pub", "--signature", sig, "--insecure-ignore-tlog", file).must(t, 0, "Verified OK")

	// cosign signs; imgsign verifies.
	ck := filepath.Join(dir, "cosign")
	run(t, pw, c3, "generate-key-pair", "--output-key-prefix", ck).must(t, 0, "")
	cb, cs3, cs2 := filepath.Join(dir, "c.bundle"), filepath.Join(dir, "c3.sig"), filepath.Join(dir, "c2.sig")
	run(t, pw, c3, "sign-blob", "--key", ck+".key", "--tlog-upload=false", "--use-signing-config=false", "--bundle", cb, "-y", file).must(t, 0, "")
	run(t, pw, c3, "sign-blob", "--key", ck+".key", "--tlog-upload=false", "--use-signing-config=false", "--new-bundle-format=false", "--output-signature", cs3, "-y", file).must(t, 0, "")
	run(t, pw, c2, "sign-blob", "--key", ck+".key", "--tlog-upload=false", "--output-signature", cs2, "-y", file).must(t, 0, "")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--bundle", cb, file).must(t, 0, "Verified")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--signature", cs3, file).must(t, 0, "Verified")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--signature", cs2, file).must(t, 0, "Verified")
	// cosign v2's --bundle is its legacy format (base64Signature, cert, rekorBundle).
	cb2 := filepath.Join(dir, "c2.bundle")
	run(t, pw, c2, "sign-blob", "--key", ck+".key", "--tlog-upload=false", "--bundle", cb2, "-y", file).must(t, 0, "")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--bundle", cb2, file).must(t, 0, "Verified")

	// Tampering is caught, with exit code 12.
	os.WriteFile(file, []byte("pretend this is a release archive, modified\n"), 0o644)
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--bundle", cb, file).must(t, 12, "signs another file")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--signature", cs3, file).must(t, 12, "does not verify")
	run(t, nil, bin, "verify-blob", "--key", ck+".pub", "--bundle", cb2, file).must(t, 12, "does not verify")
	run(t, nil, bin, "verify-blob", "--key", k+".pub", "--bundle", cb, file).must(t, 12, "")
}
