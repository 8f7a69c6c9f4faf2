//go:build linux

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarLayer is a gzip layer holding files (path -> content), in order.
func tarLayer(t *testing.T, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[i+1]))})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The vendor scenario against the real registry (TLS and auth): the
// vendor's signed image is saved to an archive, the registry's copy is
// replaced under the same tag by one with a single file changed, and
// `imgsign diff` names exactly that file with exit code 14.
func TestDiffVendorArchiveAgainstRegistry(t *testing.T) {
	bin := imgsign(t)
	dir := t.TempDir()
	k := keyPair(t, dir, "vendor")
	reg := startRegistry(t, true, true)
	base := tarLayer(t, "etc/os-release", "ID=test\n", "bin/sh", "ELF...")
	mk := func(conf string) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, base, tarLayer(t, "app/server", "binary v1", "app/config.yaml", conf))
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/app/server"}})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	ref := reg.ref("vendor/app:1.0")
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, mk("debug: false\n"), reg.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
	pw := []string{"IMGSIGN_PASSWORD=pw"}
	run(t, pw, bin, args("sign", "--key", k+".key", reg.flags(), ref)...).must(t, 0, "Signed")
	archive := filepath.Join(dir, "vendor-app.tar")
	run(t, nil, bin, args("save", "--tarball", archive, reg.flags(), ref)...).must(t, 0, "Wrote")
	layoutDir := filepath.Join(dir, "layout")
	run(t, nil, bin, args("save", "--dir", layoutDir, reg.flags(), ref)...).must(t, 0, "Saved")

	// Registry, layout and archive of the same image are identical, and
	// both sides verify.
	run(t, nil, bin, args("diff", reg.flags(), ref, "docker-archive:"+archive)...).must(t, 0, "Identical")
	run(t, nil, bin, args("diff", "oci:"+layoutDir, "oci-archive:"+archive+":"+ref)...).must(t, 0, "Identical")
	r := run(t, nil, bin, args("diff", "--key", k+".pub", reg.flags(), "docker-archive:"+archive, ref)...).must(t, 0, "Identical")
	if strings.Count(r.stdout, "verified: signed by key") != 2 {
		t.Fatalf("stdout: %s", r.stdout)
	}

	// Tamper: one file of the registry's copy changed, same tag.
	if err := remote.Write(tag, mk("debug: true\n"), reg.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, bin, args("diff", "--ignore-timestamps", reg.flags(), "docker-archive:"+archive, ref)...).must(t, 14, "changed (size, content) /app/config.yaml")
	var paths []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "changed") || strings.HasPrefix(line, "added") || strings.HasPrefix(line, "removed") {
			paths = append(paths, line)
		}
	}
	if len(paths) != 1 {
		t.Fatalf("want exactly /app/config.yaml named, got %q\n%s", paths, r.stdout)
	}
	r = run(t, nil, bin, args("diff", "-o", "json", reg.flags(), "docker-archive:"+archive, ref)...).must(t, 14, "")
	var rep struct {
		Counts map[string]int
		Images []struct {
			Files []struct{ Path, Kind string }
		}
		LayersRead []struct{ Side, Digest string } `json:"layersRead"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Counts["files"] != 1 || rep.Counts["config"] != 0 || rep.Images[0].Files[0].Path != "/app/config.yaml" {
		t.Fatalf("json: %+v", rep)
	}
	// The shared base layer was read on neither side: one layer each.
	bd, _ := base.Digest()
	if len(rep.LayersRead) != 2 || rep.LayersRead[0].Digest == bd.String() || rep.LayersRead[1].Digest == bd.String() {
		t.Fatalf("layers read: %+v", rep.LayersRead)
	}
	// With --key, the unsigned copy fails verification before comparing.
	run(t, nil, bin, args("diff", "--key", k+".pub", reg.flags(), "docker-archive:"+archive, ref)...).must(t, 10, "no signatures")
}

// Two multi-platform indexes in the real registry: compared platform by
// platform, and --platform picks one.
func TestDiffIndexes(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	push := func(tagName, armBody string) string {
		var idx v1.ImageIndex = empty.Index
		for arch, body := range map[string]string{"amd64": "amd64", "arm64": armBody} {
			img, err := mutate.AppendLayers(empty.Image, tarLayer(t, "arch", body))
			if err != nil {
				t.Fatal(err)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		}
		tag, _ := name.NewTag(reg.ref("multi/app:" + tagName))
		if err := remote.WriteIndex(tag, idx, reg.remoteOptions()...); err != nil {
			t.Fatal(err)
		}
		return tag.String()
	}
	a, b := push("a", "arm64"), push("b", "arm64 patched")
	r := run(t, nil, bin, args("diff", reg.flags(), a, b)...).must(t, 14, "== linux/arm64")
	if strings.Contains(r.stdout, "== linux/amd64") || !strings.Contains(r.stdout, "/arch") {
		t.Fatalf("stdout: %s", r.stdout)
	}
	run(t, nil, bin, args("diff", "--platform", "linux/amd64", reg.flags(), a, b)...).must(t, 0, "Identical")
	run(t, nil, bin, args("diff", "--platform", "linux/s390x", reg.flags(), a, b)...).must(t, 11, "not found")
}
