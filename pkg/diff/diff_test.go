package diff_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/diff"
	"github.com/imgsign/imgsign/pkg/imagesrc"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
)

var ctx = context.Background()

// file is one tar entry of a test layer.
type file struct {
	name, body, link string
	typ              byte
	mode             int64
	uid              int
}

func tarBytes(t testing.TB, files []file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Uid: f.uid, Linkname: f.link, ModTime: time.Unix(1700000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func layer(t testing.TB, files []file, opts ...tarball.LayerOption) v1.Layer {
	t.Helper()
	raw := tarBytes(t, files)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/app"}, Env: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var baseFiles = []file{
	{name: "etc/", typ: tar.TypeDir, mode: 0o755},
	{name: "etc/passwd", body: "root:x:0:0\n"},
	{name: "etc/hosts", body: "127.0.0.1 localhost\n"},
	{name: "bin/", typ: tar.TypeDir, mode: 0o755},
	{name: "bin/sh", body: "ELF", mode: 0o755},
	{name: "bin/ash", typ: tar.TypeSymlink, link: "sh"},
	{name: "var/", typ: tar.TypeDir, mode: 0o755},
	{name: "var/cache/", typ: tar.TypeDir, mode: 0o755},
	{name: "var/cache/a", body: "a"},
	{name: "var/cache/b", body: "b"},
}

func push(t testing.TB, reg *testreg.Registry, ref string, img v1.Image) diff.Side {
	t.Helper()
	tag, _ := name.NewTag(reg.Ref(ref))
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	c, _ := oci.NewClient(oci.Options{})
	return diff.Side{Name: ref, Client: c, Ref: tag}
}

func files(r *diff.Report) map[string]diff.FileDifference {
	out := map[string]diff.FileDifference{}
	for _, im := range r.Images {
		for _, f := range im.Files {
			out[f.Path] = f
		}
	}
	return out
}

func TestFileTreeDifferences(t *testing.T) {
	reg := testreg.Start(t, nil)
	base := layer(t, baseFiles)
	a := push(t, reg, "app:a", image(t, base, layer(t, []file{{name: "app", body: "v1", mode: 0o755}})))
	b := push(t, reg, "app:b", image(t, base, layer(t, []file{
		{name: "app", body: "v2", mode: 0o755},
		{name: "etc/passwd", body: "root:x:0:0\n", mode: 0o600, uid: 7}, // mode and owner
		{name: "bin/ash", typ: tar.TypeSymlink, link: "busybox"},        // symlink target
		{name: "etc/.wh.hosts", body: ""},                               // whiteout
		{name: "var/cache/.wh..wh..opq", body: ""},                      // opaque
		{name: "var/cache/c", body: "c"},                                // kept under the opaque dir
		{name: "new", body: "new"},                                      // added
	})))
	r, err := diff.Compare(ctx, a, b, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := files(r)
	want := map[string]string{
		"/app":         "changed content",
		"/etc/passwd":  "changed mode uid",
		"/bin/ash":     "changed link",
		"/etc/hosts":   "added", // B's layers delete it: B lacks what A keeps from the base
		"/var/cache":   "changed opaque",
		"/var/cache/c": "changed layer",
		"/new":         "changed layer",
	}
	_ = want
	if f := got["/app"]; f.Kind != diff.KindChanged || !strings.Contains(strings.Join(f.Changed, " "), "content") {
		t.Errorf("/app: %+v", f)
	}
	// A's /etc/passwd comes from the shared base, which is not read.
	if f := got["/etc/passwd"]; f.Kind != diff.KindChanged || f.A != nil || f.B.Mode != "0600" || f.B.UID != 7 || !strings.Contains(f.Note, "shared layers") {
		t.Errorf("/etc/passwd: %+v", f)
	}
	if f := got["/bin/ash"]; f.Kind != diff.KindChanged || f.B.Link != "busybox" {
		t.Errorf("/bin/ash: %+v", f)
	}
	if f, ok := got["/etc/hosts"]; !ok || f.Kind != diff.KindAdded {
		t.Errorf("/etc/hosts (whiteout in B): %+v", f)
	}
	if f, ok := got["/var/cache"]; !ok || f.Changed[0] != "opaque" {
		t.Errorf("/var/cache (opaque in B): %+v", f)
	}
	if _, ok := got["/new"]; !ok {
		t.Errorf("/new not reported")
	}
	if r.Counts[diff.LevelConfig] != 0 || r.Counts[diff.LevelLayers] != 1 || r.Images[0].Layers[0].Kind != diff.KindChanged {
		t.Errorf("counts %v", r.Counts)
	}
	// The shared base layer is never read; each top layer once.
	if len(r.Reads) != 2 {
		t.Errorf("layers read: %+v", r.Reads)
	}
	for _, rd := range r.Reads {
		if bd, _ := base.Digest(); rd.Digest == bd.String() {
			t.Errorf("shared base layer read: %+v", rd)
		}
	}
	// --ignore hides paths and what is under them.
	r, err = diff.Compare(ctx, a, b, diff.Options{Ignore: []string{"/var", "etc/*", "/bin/ash"}})
	if err != nil {
		t.Fatal(err)
	}
	for p := range files(r) {
		if strings.HasPrefix(p, "/var") || strings.HasPrefix(p, "/etc/") || p == "/bin/ash" {
			t.Errorf("%s not ignored", p)
		}
	}
}

// Without a shared base every side is read whole: a whiteout and an opaque
// directory are applied exactly.
func TestWhiteoutsApplied(t *testing.T) {
	reg := testreg.Start(t, nil)
	a := push(t, reg, "w:a", image(t, layer(t, baseFiles), layer(t, []file{{name: "etc/.wh.hosts"}, {name: "var/cache/.wh..wh..opq"}, {name: "var/cache/c", body: "c"}})))
	b := push(t, reg, "w:b", image(t, layer(t, append(slices(baseFiles), file{name: "z", body: "z"}))))
	r, err := diff.Compare(ctx, a, b, diff.Options{IgnoreHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	got := files(r)
	for p, kind := range map[string]string{"/etc/hosts": "added", "/var/cache/a": "added", "/var/cache/b": "added", "/var/cache/c": "removed", "/z": "added"} {
		if got[p].Kind != kind {
			t.Errorf("%s: %+v, want %s", p, got[p], kind)
		}
	}
	if len(got) != 5 {
		t.Errorf("differences: %+v", got)
	}
}

func slices(f []file) []file { return append([]file(nil), f...) }

func TestRecompressedLayers(t *testing.T) {
	reg := testreg.Start(t, nil)
	a := push(t, reg, "z:a", image(t, layer(t, baseFiles)))
	b := push(t, reg, "z:b", image(t, layer(t, baseFiles, tarball.WithCompression("zstd"), tarball.WithMediaType(types.OCILayerZStd))))
	r, err := diff.Compare(ctx, a, b, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(files(r)) != 0 {
		t.Errorf("file differences: %+v", files(r))
	}
	if l := r.Images[0].Layers; len(l) != 1 || l[0].Kind != diff.KindEncoding || !l[0].Counted {
		t.Fatalf("layers: %+v", l)
	}
	if !r.Different() {
		t.Error("an encoding difference is a difference without --semantic")
	}
	r, err = diff.Compare(ctx, a, b, diff.Options{Semantic: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Different() {
		t.Errorf("--semantic: %+v", r.Counts)
	}
}

func TestConfigOnly(t *testing.T) {
	reg := testreg.Start(t, nil)
	l := layer(t, baseFiles)
	img := image(t, l)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Env = append(cf.Config.Env, "DEBUG=1")
	cf.Config.User = "nobody"
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	img2, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	a, b := push(t, reg, "c:a", img), push(t, reg, "c:b", img2)
	r, err := diff.Compare(ctx, a, b, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, d := range r.Images[0].Config {
		fields = append(fields, d.Field)
	}
	if strings.Join(fields, ",") != "env,user,exposedPorts" || r.Counts[diff.LevelFiles] != 0 || r.Counts[diff.LevelLayers] != 0 {
		t.Errorf("config fields %v, counts %v", fields, r.Counts)
	}
	if len(r.Reads) != 0 {
		t.Errorf("layers read for a config-only change: %+v", r.Reads)
	}
	r, _ = diff.Compare(ctx, a, a, diff.Options{})
	if r.Different() {
		t.Errorf("an image differs from itself: %+v", r.Counts)
	}
}

func TestIndexPlatformByPlatform(t *testing.T) {
	reg := testreg.Start(t, nil)
	mk := func(arm string) v1.ImageIndex {
		var idx v1.ImageIndex = empty.Index
		for _, arch := range []string{"amd64", "arm64"} {
			body := arch
			if arch == "arm64" {
				body = arm
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: image(t, layer(t, []file{{name: "arch", body: body}})), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		}
		return idx
	}
	c, _ := oci.NewClient(oci.Options{})
	sides := []diff.Side{}
	for _, tag := range []string{"i:a", "i:b"} {
		ref, _ := name.NewTag(reg.Ref(tag))
		body := "arm64"
		if tag == "i:b" {
			body = "changed"
		}
		if err := remote.WriteIndex(ref, mk(body)); err != nil {
			t.Fatal(err)
		}
		sides = append(sides, diff.Side{Name: tag, Client: c, Ref: ref})
	}
	r, err := diff.Compare(ctx, sides[0], sides[1], diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Images) != 2 || len(r.Images[0].Files) != 0 || len(r.Images[1].Files) != 1 || r.Images[1].Platform != "linux/arm64" {
		t.Fatalf("per platform: %+v", r.Images)
	}
	r, err = diff.Compare(ctx, sides[0], sides[1], diff.Options{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil || r.Different() || len(r.Images) != 1 {
		t.Fatalf("--platform linux/amd64: %v %+v", err, r)
	}
}

// The same image from a registry, an OCI layout and an archive of it is
// identical.
func TestSourcesIdentical(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := image(t, layer(t, baseFiles), layer(t, []file{{name: "app", body: "x"}}))
	rs := push(t, reg, "s:v1", img)
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := layout.Save(ctx, rs.Client, []name.Reference{rs.Ref}, dir, layout.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	arch := filepath.Join(t.TempDir(), "a.tar")
	f, _ := os.Create(arch)
	if err := layout.WriteTar(dir, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, spec := range []string{"oci:" + dir, "oci-archive:" + arch, "docker-archive:" + arch + ":" + rs.Ref.String()} {
		sp, err := imagesrc.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		src, err := imagesrc.Open(sp)
		if err != nil {
			t.Fatal(spec, err)
		}
		c, _ := oci.NewClient(oci.Options{Transport: src.Transport()})
		r, err := diff.Compare(ctx, rs, diff.Side{Name: spec, Client: c, Ref: src.Ref}, diff.Options{})
		src.Close()
		if err != nil {
			t.Fatal(spec, err)
		}
		if r.Different() || r.A.Digest != r.B.Digest {
			t.Errorf("%s differs from the registry's copy: %+v", spec, r.Counts)
		}
	}
}

// hostile pushes an image whose one layer is raw (uncompressed tar bytes
// or a gzip stream) and compares it with an empty image.
func hostile(t *testing.T, raw []byte, lim diff.Limits) error {
	t.Helper()
	reg := testreg.Start(t, nil)
	l := static.NewLayer(raw, types.OCILayer)
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	a := push(t, reg, "h:a", image(t, layer(t, nil)))
	b := push(t, reg, "h:b", img)
	_, err = diff.Compare(ctx, a, b, diff.Options{Limits: lim})
	return err
}

func TestHostileLayers(t *testing.T) {
	t.Run("traversal", func(t *testing.T) {
		err := hostile(t, tarBytes(t, []file{{name: "../../etc/passwd", body: "x"}}), diff.Limits{})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "climbs out") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("hard link out", func(t *testing.T) {
		err := hostile(t, tarBytes(t, []file{{name: "x", typ: tar.TypeLink, link: "../../etc/shadow"}}), diff.Limits{})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "points out of the root") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("long name", func(t *testing.T) {
		err := hostile(t, tarBytes(t, []file{{name: strings.Repeat("a/", 3000) + "f", body: "x"}}), diff.Limits{})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "name of more than 4096 bytes") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("huge header", func(t *testing.T) {
		// A PAX extended header of 8 MiB: archive/tar refuses more
		// than 1 MiB before reading it.
		raw := tarBytes(t, []file{{name: "x", body: strings.Repeat("x", 8<<20)}})
		retype(raw, tar.TypeXHeader)
		err := hostile(t, raw, diff.Limits{})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "too long") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("many entries", func(t *testing.T) {
		var fs []file
		for i := range 1001 {
			fs = append(fs, file{name: "f" + strconv.Itoa(i)})
		}
		err := hostile(t, tarBytes(t, fs), diff.Limits{MaxEntries: 1000})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "more than 1000 entries") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("sparse bomb", func(t *testing.T) {
		// A PAX sparse file of 1 TiB of holes in 513 bytes: archive/tar
		// expands the holes without reading anything.
		// archive/tar's writer drops GNU.sparse records: the PAX header
		// is written as a file, then retyped.
		var recs string
		for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "x"}, {"GNU.sparse.realsize", "1099511627776"}} {
			line := " " + kv[0] + "=" + kv[1] + "\n"
			n := len(line) + 2
			if n >= 100 || len(line)+len(strconv.Itoa(n)) != n {
				t.Fatal("record length")
			}
			recs += strconv.Itoa(n) + line
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "pax", Typeflag: tar.TypeReg, Size: int64(len(recs)), Format: tar.FormatUSTAR})
		tw.Write([]byte(recs))
		m := "1\n1099511627775\n1\n"
		data := append(append([]byte(m), make([]byte, 512-len(m))...), 'z')
		tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: int64(len(data)), Format: tar.FormatUSTAR})
		tw.Write(data)
		tw.Close()
		retype(buf.Bytes(), tar.TypeXHeader)
		err := hostile(t, buf.Bytes(), diff.Limits{ExpansionSlack: 64 << 20})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "sparse") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("decompression bomb", func(t *testing.T) {
		// 64 MiB of zeros in one file gzip to about 64 KiB.
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: 64 << 20, Mode: 0o644})
		tw.Write(make([]byte, 64<<20))
		tw.Close()
		l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb.Bytes())), nil })
		rc, _ := l.Compressed()
		gz, _ := io.ReadAll(rc)
		err := hostile(t, gz, diff.Limits{MaxExpansion: 100, ExpansionSlack: 1 << 20})
		if !errors.Is(err, diff.ErrHostileLayer) || !strings.Contains(err.Error(), "decompression bomb") {
			t.Fatalf("got %v", err)
		}
	})
}

// A config whose diff ID does not match its layer's uncompressed content.
func TestDiffIDMismatch(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := image(t, layer(t, baseFiles))
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	forged, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	a, b := push(t, reg, "d:a", image(t, layer(t, nil))), push(t, reg, "d:b", forged)
	_, err = diff.Compare(ctx, a, b, diff.Options{})
	if !errors.Is(err, diff.ErrContentMismatch) {
		t.Fatalf("got %v", err)
	}
}

// Attributes changed in the layers both sides have at one position are
// named exactly, and the registry serves each differing layer once and the
// shared base layer never.
func TestAttributeChangesAndRequests(t *testing.T) {
	var mu sync.Mutex
	gets := map[string]int{}
	reg := testreg.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				mu.Lock()
				gets[path.Base(r.URL.Path)]++
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	base := layer(t, baseFiles)
	top := func(mode int64, uid int, link, xattr string) v1.Layer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "etc/shadow", Typeflag: tar.TypeReg, Mode: mode, Uid: uid, Size: 1, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": xattr}, Format: tar.FormatPAX})
		tw.Write([]byte("x"))
		tw.WriteHeader(&tar.Header{Name: "bin/ash", Typeflag: tar.TypeSymlink, Linkname: link, Mode: 0o777})
		tw.Close()
		raw := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	la, lb := top(0o640, 0, "sh", "a"), top(0o4755, 42, "busybox", "b")
	a := push(t, reg, "attr:a", image(t, base, la))
	b := push(t, reg, "attr:b", image(t, base, lb))
	mu.Lock()
	clear(gets)
	mu.Unlock()
	r, err := diff.Compare(ctx, a, b, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := files(r)
	if f := got["/etc/shadow"]; strings.Join(f.Changed, " ") != "mode uid xattrs" || f.A.Mode != "0640" || f.B.Mode != "4755" || f.B.Xattrs["security.capability"] != "b" {
		t.Errorf("/etc/shadow: %+v", f)
	}
	if f := got["/bin/ash"]; strings.Join(f.Changed, " ") != "link" || f.A.Link != "sh" || f.B.Link != "busybox" {
		t.Errorf("/bin/ash: %+v", f)
	}
	if len(got) != 2 {
		t.Errorf("differences: %+v", got)
	}
	bd, _ := base.Digest()
	da, _ := la.Digest()
	db, _ := lb.Digest()
	if gets[bd.String()] != 0 || gets[da.String()] != 1 || gets[db.String()] != 1 {
		t.Errorf("blob GETs: base %d, A's top %d, B's top %d (want 0, 1, 1)", gets[bd.String()], gets[da.String()], gets[db.String()])
	}
}

// retype changes the type of the first header of a tar archive and fixes
// its checksum.
func retype(raw []byte, typ byte) {
	raw[156] = typ
	copy(raw[148:156], "        ")
	sum := 0
	for _, c := range raw[:512] {
		sum += int(c)
	}
	copy(raw[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// A rebuild that changed only mtimes: different without options, identical
// with --ignore-timestamps --semantic.
func TestRebuiltWithOtherTimes(t *testing.T) {
	reg := testreg.Start(t, nil)
	mk := func(when int64) v1.Layer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: 3, ModTime: time.Unix(when, 0)})
		tw.Write([]byte("bin"))
		tw.Close()
		raw := buf.Bytes()
		l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
		return l
	}
	a := push(t, reg, "t:a", image(t, mk(1)))
	b := push(t, reg, "t:b", image(t, mk(2)))
	r, err := diff.Compare(ctx, a, b, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f := files(r)["/app"]; strings.Join(f.Changed, " ") != "mtime" || r.Images[0].Layers[0].Kind != diff.KindChanged {
		t.Fatalf("%+v %+v", f, r.Images[0].Layers)
	}
	r, err = diff.Compare(ctx, a, b, diff.Options{IgnoreTimestamps: true, Semantic: true})
	if err != nil || r.Different() {
		t.Fatalf("%v %+v %+v", err, r.Counts, r.Images[0].Layers)
	}
}
