package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/diff"
)

// filesImage is an image of one layer holding the given files.
func filesImage(t *testing.T, files map[string]string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range []string{"etc/passwd", "etc/hosts", "app"} {
		if body, ok := files[n]; ok {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The vendor's archive against a registry copy with one file changed:
// diff names that file and exits 14; --key verifies each side first.
func TestDiffCommand(t *testing.T) {
	reg := testreg.Start(t, nil)
	ref := reg.Ref("vendor/app:v1")
	tag, _ := name.NewTag(ref)
	files := map[string]string{"etc/passwd": "root:x:0:0\n", "etc/hosts": "127.0.0.1\n", "app": "v1"}
	if err := remote.Write(tag, filesImage(t, files)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	env("pw").do(t, "sign", "--key", k+".key", ref).expect(t, ExitOK, "Signed")
	archive := filepath.Join(dir, "app.tar")
	env("").do(t, "save", "--tarball", archive, ref).expect(t, ExitOK, "Wrote")

	r := env("").do(t, "diff", ref, "docker-archive:"+archive)
	r.expect(t, ExitOK, "")
	if !strings.Contains(r.stdout, "Identical at the levels compared") {
		t.Errorf("stdout: %s", r.stdout)
	}
	r = env("").do(t, "diff", "--key", k+".pub", ref, "oci-archive:"+archive)
	r.expect(t, ExitOK, "Verified")
	if strings.Count(r.stdout, "verified: signed by key ") != 2 {
		t.Errorf("stdout: %s", r.stdout)
	}

	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s\n    keys: [{file: k.pub}]\n", reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = env("").do(t, "diff", "--policy", policy, ref, "oci-archive:"+archive)
	r.expect(t, ExitOK, "meet the policy")
	if strings.Count(r.stdout, "verified: signed by key ") != 2 {
		t.Errorf("stdout: %s", r.stdout)
	}
	env("").do(t, "diff", "--policy", policy, "--key", k+".pub", ref, ref).expect(t, ExitUsage, "one or the other")

	// Tamper: the registry's copy gets another /etc/passwd, same tag.
	files["etc/passwd"] = "root:x:0:0\nevil:x:0:0\n"
	if err := remote.Write(tag, filesImage(t, files)); err != nil {
		t.Fatal(err)
	}
	r = env("").do(t, "diff", "docker-archive:"+archive, ref)
	r.expect(t, ExitDifferent, "")
	if !strings.Contains(r.stdout, "changed (size, content) /etc/passwd") || strings.Contains(r.stdout, " /app\n") || strings.Contains(r.stdout, "/etc/hosts") {
		t.Errorf("stdout: %s", r.stdout)
	}
	r = env("").do(t, "diff", "-o", "json", "--level", "files", "docker-archive:"+archive, ref)
	r.expect(t, ExitDifferent, "")
	var rep diff.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Counts[diff.LevelFiles] != 1 || rep.Images[0].Files[0].Path != "/etc/passwd" || len(rep.Counts) != 1 {
		t.Errorf("json: %+v", rep)
	}
	// --ignore hides it; the layer list still differs.
	env("").do(t, "diff", "--level", "files", "--ignore", "/etc", "docker-archive:"+archive, ref).expect(t, ExitOK, "")
	// The tampered copy is not signed: --key and --policy refuse it
	// before comparing.
	env("").do(t, "diff", "--key", k+".pub", "docker-archive:"+archive, ref).expect(t, ExitNoSignatures, "FAILED")
	env("").do(t, "diff", "--policy", policy, "docker-archive:"+archive, ref).expect(t, ExitNoSignatures, "FAILED")

	env("").do(t, "diff", ref).expect(t, ExitUsage, "two images")
	env("").do(t, "diff", "--level", "bytes", ref, ref).expect(t, ExitUsage, "--level")
	env("").do(t, "diff", "oci:"+filepath.Join(dir, "nowhere"), ref).expect(t, ExitError, "open layout")
	env("").do(t, "diff", ref, reg.Ref("vendor/app:v2")).expect(t, ExitImageNotFound, "not found")
}
