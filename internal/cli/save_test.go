package cli

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
)

// save, verify --local / --tarball and load, as the command line runs
// them, with the exit codes scripts branch on.
func TestSaveLoadCommands(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := reg.PushImage(t, reg.Ref("cli/app:v1"))
	other := reg.PushImage(t, reg.Ref("cli/other:v1"))
	dir := t.TempDir()
	k, wrong := filepath.Join(dir, "k"), filepath.Join(dir, "wrong")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", wrong).expect(t, ExitOK, "")
	ref := reg.Ref("cli/app:v1")
	env("pw").do(t, "sign", "--key", k+".key", ref).expect(t, ExitOK, "Signed")

	layoutDir := filepath.Join(dir, "layout")
	env("").do(t, "save", "--dir", layoutDir, ref, reg.Ref("cli/other:v1")).expect(t, ExitOK, "Saved "+ref)
	env("").do(t, "save", "--dir", layoutDir, ref).expect(t, ExitExist, "not empty")
	env("").do(t, "save", ref).expect(t, ExitUsage, "--dir or --tarball")
	archive := filepath.Join(dir, "app.tar")
	env("").do(t, "save", "--tarball", archive, ref).expect(t, ExitOK, "Wrote "+archive)
	env("").do(t, "save", "--tarball", archive, ref).expect(t, ExitExist, "exists")
	reg.Server.Close() // from here on, no registry

	env("").do(t, "verify", "--key", k+".pub", "--local", layoutDir, ref).expect(t, ExitOK, "Verified "+ref)
	env("").do(t, "verify", "--key", k+".pub", "--local", layoutDir, "--verify-blobs", ref).expect(t, ExitOK, "content re-hashed")
	// Every image of the layout: the unsigned one fails.
	env("").do(t, "verify", "--key", k+".pub", "--local", layoutDir).expect(t, ExitNoSignatures, "FAILED "+reg.Ref("cli/other:v1"))
	env("").do(t, "verify", "--key", wrong+".pub", "--local", layoutDir, ref).expect(t, ExitNotVerified, "FAILED")
	env("").do(t, "verify", "--key", k+".pub", "--local", layoutDir, reg.Ref("cli/app:v2")).expect(t, ExitImageNotFound, "")
	env("").do(t, "verify", "--key", k+".pub", "--local", layoutDir, "--rekor-url", "https://rekor.example", ref).expect(t, ExitUsage, "offline")
	env("").do(t, "verify", "--key", k+".pub", "--local", layoutDir, "--tarball", archive, ref).expect(t, ExitUsage, "one of them")
	env("").do(t, "verify", "--key", k+".pub", "--local", filepath.Join(dir, "nowhere"), ref).expect(t, ExitError, "open layout")

	r := env("").do(t, "verify", "--key", k+".pub", "--tarball", archive)
	r.expect(t, ExitOK, "matches its digests")
	r.expect(t, ExitOK, "Verified "+ref)
	env("").do(t, "verify", "--key", k+".pub", "--tarball", archive, reg.Ref("cli/other:v1")).expect(t, ExitImageNotFound, "not in the layout")

	// A layer of the archive replaced by bytes of the same length: refused
	// before any signature is read.
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.tar")
	os.WriteFile(tampered, tamperMember(t, raw, "blobs/sha256/"+layerOf(t, layoutDir, img.DigestStr())), 0o644)
	env("").do(t, "verify", "--key", k+".pub", "--tarball", tampered).expect(t, ExitNotVerified, "does not match")

	// Load into a fresh registry; the layout holds two images, so --name
	// chooses.
	dst := testreg.Start(t, nil)
	env("").do(t, "load", "--dir", layoutDir, dst.Ref("mirror/app:v1")).expect(t, ExitUsage, "--name")
	env("").do(t, "load", "--dir", layoutDir, "--name", ref, dst.Ref("mirror/app:v1")).expect(t, ExitOK, "Copied image "+img.DigestStr())
	env("").do(t, "load", "--tarball", archive, dst.Ref("mirror/app2:v1")).expect(t, ExitOK, "Copied image "+img.DigestStr())
	env("").do(t, "verify", "--key", k+".pub", dst.Ref("mirror/app:v1")).expect(t, ExitOK, "Verified")
	env("").do(t, "verify", "--key", k+".pub", dst.Ref("mirror/app2:v1")).expect(t, ExitOK, "Verified")
	fresh := testreg.Start(t, nil)
	env("").do(t, "load", "--tarball", tampered, fresh.Ref("mirror/evil:v1")).expect(t, ExitError, "does not match")
	_ = other
}

// layerOf returns the hex digest of the first layer of the manifest
// digest in the layout dir.
func layerOf(t *testing.T, dir, digest string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Digest.Hex
}

// tamperMember flips a byte inside the tar member named member, keeping
// its length.
func tamperMember(t *testing.T, raw []byte, member string) []byte {
	t.Helper()
	out := append([]byte(nil), raw...)
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no member %s: %v", member, err)
		}
		if h.Name != member {
			continue
		}
		body, _ := io.ReadAll(tr)
		i := bytes.Index(out, body)
		if i < 0 || len(body) == 0 {
			t.Fatal("member content not found")
		}
		out[i+len(body)/2] ^= 0xff
		return out
	}
}

// An archive without signatures (as docker save writes them) verifies with
// the registry's signatures, but only ever as the image it holds: the
// registry's tag is never consulted.
func TestTarballWithRegistrySignatures(t *testing.T) {
	reg := testreg.Start(t, nil)
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	ref := reg.Ref("cli/app:v1")
	signed := reg.PushImage(t, ref)
	env("pw").do(t, "sign", "--key", k+".key", ref).expect(t, ExitOK, "Signed")
	bare := filepath.Join(dir, "bare.tar")
	env("").do(t, "save", "--no-attached", "--tarball", bare, ref).expect(t, ExitOK, "Saved")

	env("").do(t, "verify", "--key", k+".pub", "--tarball", bare).expect(t, ExitNoSignatures, "no signatures")
	r := env("").do(t, "verify", "--key", k+".pub", "--tarball", bare, "--registry-signatures")
	r.expect(t, ExitOK, "Verified "+ref+" ("+signed.DigestStr()+")")
	env("").do(t, "verify", "--key", k+".pub", "--registry-signatures", ref).expect(t, ExitUsage, "--local or --tarball")

	// An unsigned image saved under the same tag, which then moves back to
	// the signed image: the archive's image is what is verified, and fails.
	unsigned := reg.PushImage(t, ref)
	evil := filepath.Join(dir, "evil.tar")
	env("").do(t, "save", "--no-attached", "--tarball", evil, ref).expect(t, ExitOK, unsigned.DigestStr())
	env("").do(t, "load", "--tarball", bare, ref).expect(t, ExitOK, "Copied image "+signed.DigestStr())
	env("").do(t, "verify", "--key", k+".pub", ref).expect(t, ExitOK, signed.DigestStr())
	env("").do(t, "verify", "--key", k+".pub", "--tarball", evil, "--registry-signatures").expect(t, ExitNoSignatures, unsigned.DigestStr())
}

// A layout whose manifest bytes are not the digest index.json names is
// refused before verification (exit 12), by digest or tag; missing content
// under --verify-blobs is "not verified" too.
func TestLocalTampering(t *testing.T) {
	reg := testreg.Start(t, nil)
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	ref := reg.Ref("cli/app:v1")
	img := reg.PushImage(t, ref)
	env("pw").do(t, "sign", "--key", k+".key", ref).expect(t, ExitOK, "Signed")
	for _, tc := range []struct {
		name   string
		tamper func(layoutDir string)
		args   []string
		code   int
		want   string
	}{
		{"manifest changed, by digest", func(l string) { appendTo(t, blobPath(l, img.DigestStr()), " ") }, []string{img.String()}, ExitNotVerified, "does not match"},
		{"manifest changed, by tag", func(l string) { appendTo(t, blobPath(l, img.DigestStr()), " ") }, []string{ref}, ExitNotVerified, "does not match"},
		{"manifest removed", func(l string) { os.Remove(blobPath(l, img.DigestStr())) }, []string{ref}, ExitImageNotFound, "not found"},
		{"layer removed, --verify-blobs", func(l string) { os.Remove(blobPath(l, "sha256:"+layerOf(t, l, img.DigestStr()))) }, []string{"--verify-blobs", ref}, ExitNotVerified, "not found"},
		{"layer removed, signatures only", func(l string) { os.Remove(blobPath(l, "sha256:"+layerOf(t, l, img.DigestStr()))) }, []string{ref}, ExitOK, "Verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := filepath.Join(t.TempDir(), "layout")
			env("").do(t, "save", "--dir", l, ref).expect(t, ExitOK, "Saved")
			tc.tamper(l)
			env("").do(t, append([]string{"verify", "--key", k + ".pub", "--local", l}, tc.args...)...).expect(t, tc.code, tc.want)
		})
	}
}

func blobPath(layoutDir, digest string) string {
	return filepath.Join(layoutDir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(s)
}
