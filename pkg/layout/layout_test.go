package layout_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
)

const slsa = "https://slsa.dev/provenance/v0.2"

var ctx = context.Background()

func newClient(t *testing.T, o oci.Options) *oci.Client {
	t.Helper()
	o.Retries = -1
	c, err := oci.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// layoutClient reads st, and nothing else.
func layoutClient(t *testing.T, st *layout.Store) *oci.Client {
	return newClient(t, oci.Options{Transport: layout.Transport(st)})
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signAndAttest signs ref in both formats (with its index children when
// recursive) and attests it in both formats.
func signAndAttest(t *testing.T, c *oci.Client, ref name.Reference, recursive bool) crypto.Signer {
	t.Helper()
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewSigner(c, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, ref, sign.Options{Upload: true, Format: sign.FormatBoth, Recursive: recursive}); err != nil {
		t.Fatalf("sign: %v", err)
	}
	a, err := attest.NewAttester(c, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attest(ctx, ref, attest.Options{PredicateType: slsa, Predicate: []byte(`{"builder":{"id":"ci"}}`)}); err != nil {
		t.Fatalf("attest: %v", err)
	}
	return key
}

// mustVerify checks the signatures and attestations of ref in each format.
func mustVerify(t *testing.T, c *oci.Client, ref name.Reference, key crypto.Signer, o verify.Options) {
	t.Helper()
	v, err := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []verify.Format{verify.FormatLegacy, verify.FormatBundle} {
		o.Format = f
		if res, err := v.Verify(ctx, ref, o); err != nil || !res.Verified {
			t.Errorf("verify %s (%s): %v", ref, f, err)
		}
		if res, err := v.VerifyAttestations(ctx, ref, verify.AttestationOptions{PredicateType: slsa, Format: f}); err != nil || !res.Verified {
			t.Errorf("verify attestations %s (%s): %v", ref, f, err)
		}
	}
}

// saved is a signed image and an index saved to a layout directory.
type saved struct {
	dir        string
	img, idx   name.Reference
	imgDigest  name.Digest
	idxDigest  name.Digest
	imgKey     crypto.Signer
	idxKey     crypto.Signer
	reg        *testreg.Registry
	saveResult *layout.SaveResult
}

func saveSigned(t *testing.T, referrersAPI bool) *saved {
	t.Helper()
	reg := testreg.Start(t, nil, registry.WithReferrersSupport(referrersAPI))
	c := newClient(t, oci.Options{})
	s := &saved{reg: reg, dir: filepath.Join(t.TempDir(), "layout")}
	s.imgDigest = reg.PushImage(t, reg.Ref("team/app:v1"))
	s.idxDigest, _ = reg.PushIndex(t, reg.Ref("team/multi:v2"))
	s.img, s.idx = mustRef(t, reg.Ref("team/app:v1")), mustRef(t, reg.Ref("team/multi:v2"))
	s.imgKey = signAndAttest(t, c, s.img, false)
	s.idxKey = signAndAttest(t, c, s.idx, true)
	res, err := layout.Save(ctx, c, []name.Reference{s.img, s.idx}, s.dir, layout.SaveOptions{})
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	s.saveResult = res
	return s
}

// A signed image and a signed index, saved with everything attached to
// them, verify from the layout alone (the registry is gone), in both
// storage formats, with attestations and re-hashed blobs; each platform of
// the index too. Loaded into another registry, they verify there.
func TestSaveVerifyLoad(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers-api", false: "fallback-tag"}[api], func(t *testing.T) {
			s := saveSigned(t, api)
			r := s.saveResult
			if len(r.Images) != 2 || r.Images[0].Digest != s.imgDigest.DigestStr() || r.Images[1].Manifests != 3 {
				t.Fatalf("saved %+v", r.Images)
			}
			// .sig, .att and two bundles for the image; for the index the
			// same, plus a .sig and a bundle per platform.
			if n := len(r.Images[0].Attached); n != 4 {
				t.Errorf("image: %d attachments saved, want 4: %v", n, r.Images[0].Attached)
			}
			if n := len(r.Images[1].Attached); n != 8 {
				t.Errorf("index: %d attachments saved, want 8: %v", n, r.Images[1].Attached)
			}
			s.reg.Server.Close() // from here on, nothing but the layout

			st, err := layout.OpenDir(s.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var names []string
			for _, img := range st.Images() {
				names = append(names, img.Name.Name())
			}
			if strings.Join(names, " ") != s.img.Name()+" "+s.idx.Name() {
				t.Fatalf("layout names %v", names)
			}
			lc := layoutClient(t, st)
			mustVerify(t, lc, s.img, s.imgKey, verify.Options{VerifyBlobs: true})
			mustVerify(t, lc, s.idx, s.idxKey, verify.Options{VerifyBlobs: true})
			mustVerify(t, lc, s.idx, s.idxKey, verify.Options{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})

			// The image's key does not verify the index.
			v, _ := verify.NewVerifier(lc, []crypto.PublicKey{s.imgKey.Public()})
			if _, err := v.Verify(ctx, s.idx, verify.Options{}); !errors.Is(err, verify.ErrNotVerified) {
				t.Fatalf("index with the image's key: %v, want not verified", err)
			}

			// Load both into a fresh registry, under new names.
			dstReg := testreg.Start(t, nil, registry.WithReferrersSupport(!api))
			dc := newClient(t, oci.Options{})
			for _, tc := range []struct {
				src  name.Reference
				dst  string
				key  crypto.Signer
				want name.Digest
			}{{s.img, "mirror/app:v1", s.imgKey, s.imgDigest}, {s.idx, "mirror/multi:v2", s.idxKey, s.idxDigest}} {
				dst := mustRef(t, dstReg.Ref(tc.dst))
				res, err := dc.Copy(ctx, tc.src, dst, oci.CopyOptions{Source: lc})
				if err != nil || res.Digest != tc.want.DigestStr() {
					t.Fatalf("load %s: %+v, %v", tc.src, res, err)
				}
				mustVerify(t, newClient(t, oci.Options{}), dst, tc.key, verify.Options{VerifyBlobs: true})
			}
		})
	}
}

// The layout transport answers reads only, finds tags by full name, and a
// bare tag when it is the only one.
func TestTransport(t *testing.T) {
	s := saveSigned(t, true)
	st, err := layout.OpenDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lc := layoutClient(t, st)
	if _, err := lc.Resolve(ctx, mustRef(t, "elsewhere.example/team/app:v1")); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("a tag of another repository: %v, want not found", err)
	}
	if _, err := lc.Resolve(ctx, mustRef(t, s.reg.Ref("team/app:v9"))); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("a missing tag: %v, want not found", err)
	}
	if r, err := lc.Resolve(ctx, s.imgDigest); err != nil || r.Ref.DigestStr() != s.imgDigest.DigestStr() {
		t.Errorf("by digest: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPut, "https://"+s.reg.Ref("team/app")+"/manifests/v1", nil)
	if resp, err := layout.Transport(st).RoundTrip(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v, want 405", resp.StatusCode, err)
	}

	// A layout naming entries by bare tag only (as other tools write it):
	// the tag is found for any repository while it is the only one.
	idx := readIndex(t, s.dir)
	for i := range idx.Manifests {
		delete(idx.Manifests[i].Annotations, layout.ImageNameAnnotation)
	}
	writeIndex(t, s.dir, idx)
	st2, err := layout.OpenDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if len(st2.Images()) != 0 {
		t.Errorf("bare tags are not full names: %v", st2.Images())
	}
	if r, err := layoutClient(t, st2).Resolve(ctx, mustRef(t, "mirror.example/any/name:v1")); err != nil || r.Ref.DigestStr() != s.imgDigest.DigestStr() {
		t.Errorf("bare tag v1: %v", err)
	}
	mustVerify(t, layoutClient(t, st2), s.img, s.imgKey, verify.Options{})
}

// Tampering with a saved layout is caught: a signature payload changed
// fails its digest, a layer overwritten fails --verify-blobs.
func TestTamperedLayout(t *testing.T) {
	s := saveSigned(t, true)
	st, err := layout.OpenDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := readManifest(t, s.dir, s.imgDigest.DigestStr())
	overwrite(t, blobFile(s.dir, m.Layers[0].Digest), []byte("evil layer"))
	v, _ := verify.NewVerifier(layoutClient(t, st), []crypto.PublicKey{s.imgKey.Public()})
	if _, err := v.Verify(ctx, s.img, verify.Options{}); err != nil {
		t.Fatalf("signatures alone do not cover layers: %v", err)
	}
	if _, err := v.Verify(ctx, s.img, verify.Options{VerifyBlobs: true}); !errors.Is(err, verify.ErrNotVerified) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("overwritten layer with blobs verified: %v, want not verified", err)
	}
	// Every signature payload of the legacy tag replaced: no signature
	// verifies.
	sig := readManifest(t, s.dir, tagDigest(t, s.dir, "sha256-"+s.imgDigest.DigestStr()[7:]+".sig"))
	for _, l := range sig.Layers {
		overwrite(t, blobFile(s.dir, l.Digest), []byte(`{"critical":{}}`))
	}
	if _, err := v.Verify(ctx, s.img, verify.Options{Format: verify.FormatLegacy}); !errors.Is(err, verify.ErrNotVerified) {
		t.Fatalf("tampered payload: %v, want not verified", err)
	}
}

// A save that fails part way leaves nothing behind, and a save never
// writes into a directory that holds something.
func TestSaveFailsCleanly(t *testing.T) {
	var evil bool
	reg := testreg.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if evil && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				rec := &capture{header: http.Header{}}
				h.ServeHTTP(rec, r)
				for k, v := range rec.header {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.code)
				b := rec.body.Bytes()
				if len(b) > 0 {
					b[0] ^= 0xff // same size, other bytes
				}
				w.Write(b)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	d := reg.PushImage(t, reg.Ref("team/app:v1"))
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	evil = true
	_, err := layout.Save(ctx, newClient(t, oci.Options{}), []name.Reference{d}, dir, layout.SaveOptions{})
	if !errors.Is(err, oci.ErrBlobMismatch) {
		t.Fatalf("save of a corrupted blob: %v, want a blob mismatch", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("a failed save left %v behind", ents)
	}
	evil = false
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644)
	if _, err := layout.Save(ctx, newClient(t, oci.Options{}), []name.Reference{d}, dir, layout.SaveOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("save into a non-empty directory: %v, want exists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "precious")); string(b) != "x" {
		t.Fatal("the existing directory was touched")
	}
	file := filepath.Join(parent, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := layout.Save(ctx, newClient(t, oci.Options{}), []name.Reference{d}, file, layout.SaveOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("save onto a file: %v, want exists", err)
	}
}

type capture struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) WriteHeader(code int)        { c.code = code }
func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }

// An archive written by WriteTar is read in place: its content checks,
// and signatures verify from it.
func TestArchiveRoundTrip(t *testing.T) {
	s := saveSigned(t, false)
	f := filepath.Join(t.TempDir(), "a.tar")
	writeTar(t, s.dir, f)
	st, err := layout.OpenTar(f)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var verified []layout.Verified
	for _, img := range st.Images() {
		c, err := st.CheckImage(img.Descriptor)
		if err != nil {
			t.Fatalf("check %s: %v", img.Name, err)
		}
		if c.Blobs == 0 || c.Bytes == 0 || len(c.Absent) != 0 {
			t.Fatalf("check %s: %+v", img.Name, c)
		}
		verified = append(verified, layout.Verified{Ref: img.Name, Checked: c})
	}
	if len(verified) != 2 {
		t.Fatalf("%d images in the archive", len(verified))
	}
	if err := st.CheckLoad(verified); err != nil {
		t.Fatalf("as saved: %v", err)
	}
	if err := st.CheckLoad(verified[:1]); !errors.Is(err, layout.ErrContentMismatch) || !strings.Contains(err.Error(), "not being verified") {
		t.Fatalf("one of two images verified: %v", err)
	}
	mustVerify(t, layoutClient(t, st), s.idx, s.idxKey, verify.Options{VerifyBlobs: true})
}

// member is one tar member of a hand-built archive.
type member struct {
	name string
	typ  byte
	body []byte
	link string
}

// archive builds a tar from the layout in dir, edited by edit.
func archive(t *testing.T, dir string, edit func([]member) []member) string {
	t.Helper()
	var ms []member
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		ms = append(ms, member{name: filepath.ToSlash(rel), typ: tar.TypeReg, body: b})
		return nil
	})
	if edit != nil {
		ms = edit(ms)
	}
	f := filepath.Join(t.TempDir(), "a.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.body)), Linkname: m.link}
		if m.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typ == tar.TypeReg {
			tw.Write(m.body)
		}
	}
	tw.Close()
	os.WriteFile(f, buf.Bytes(), 0o644)
	return f
}

// checkArchive opens an archive and checks the images refs name (every
// image it names by full reference when none), then what a loader loads.
func checkArchive(f string, refs ...name.Reference) error {
	st, err := layout.OpenTar(f)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(refs) == 0 {
		for _, img := range st.Images() {
			refs = append(refs, img.Name)
		}
	}
	var verified []layout.Verified
	for _, ref := range refs {
		d, err := st.Find(ref)
		if err != nil {
			return err
		}
		c, err := st.CheckImage(d)
		if err != nil {
			return err
		}
		verified = append(verified, layout.Verified{Ref: ref, Checked: c})
	}
	return st.CheckLoad(verified)
}

// Archives built to be read one way by a verifier and another by a loader
// are refused before anything is verified or loaded.
func TestHostileArchives(t *testing.T) {
	s := saveSigned(t, true)
	m := readManifest(t, s.dir, s.imgDigest.DigestStr())
	layer := "blobs/sha256/" + m.Layers[0].Digest.Hex
	config := "blobs/sha256/" + m.Config.Digest.Hex
	dockerListTagged := func(tag, cfg string, layers ...string) member {
		b, _ := json.Marshal([]map[string]any{{"Config": cfg, "RepoTags": []string{tag}, "Layers": layers}})
		return member{name: "manifest.json", typ: tar.TypeReg, body: b}
	}
	dockerList := func(cfg string, layers ...string) member { return dockerListTagged(s.img.String(), cfg, layers...) }
	file := func(name, body string) member { return member{name: name, typ: tar.TypeReg, body: []byte(body)} }
	// addEntry adds an index.json entry for digest with annotations.
	addEntry := func(digest string, ann ...string) func([]member) []member {
		return func(ms []member) []member {
			for i := range ms {
				if ms[i].name != "index.json" {
					continue
				}
				idx, _ := v1.ParseIndexManifest(bytes.NewReader(ms[i].body))
				h, _ := v1.NewHash(digest)
				d := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 0, Digest: h}
				if len(ann) > 0 {
					d.Annotations = map[string]string{}
					for j := 0; j+1 < len(ann); j += 2 {
						d.Annotations[ann[j]] = ann[j+1]
					}
				}
				idx.Manifests = append(idx.Manifests, d)
				ms[i].body, _ = json.Marshal(idx)
			}
			return ms
		}
	}
	img := s.imgDigest.DigestStr()
	name, ref := layout.ImageNameAnnotation, layout.RefNameAnnotation
	replace := func(name string, with member) func([]member) []member {
		return func(ms []member) []member {
			for i := range ms {
				if ms[i].name == name {
					ms[i] = with
				}
			}
			return ms
		}
	}
	for _, tc := range []struct {
		name string
		edit func([]member) []member
		want error // nil: accepted
		text string
	}{
		{"untouched", nil, nil, ""},
		{"docker load list of the signed image", func(ms []member) []member {
			return append(ms, dockerList("./"+config, layer))
		}, nil, ""},
		{"layer overwritten", replace(layer, member{name: layer, typ: tar.TypeReg, body: []byte("evil")}), layout.ErrContentMismatch, ""},
		{"layer twice", func(ms []member) []member {
			return append(ms, member{name: "./" + layer, typ: tar.TypeReg, body: []byte("evil")})
		}, layout.ErrHostileArchive, "appears twice"},
		{"layer is a symlink", replace(layer, member{name: layer, typ: tar.TypeSymlink, link: "/etc/passwd"}), layout.ErrHostileArchive, "symbolic link"},
		{"path climbs out", func(ms []member) []member {
			return append(ms, member{name: "blobs/../../etc/x", typ: tar.TypeReg, body: []byte("x")})
		}, layout.ErrHostileArchive, "leaves the archive"},
		{"docker load list names another layer", func(ms []member) []member {
			return append(ms, member{name: "blobs/sha256/" + strings.Repeat("ab", 32), typ: tar.TypeReg, body: []byte("unsigned")},
				dockerList(config, "blobs/sha256/"+strings.Repeat("ab", 32)))
		}, layout.ErrContentMismatch, "manifest.json"},
		{"docker load list with an extra image", func(ms []member) []member {
			b, _ := json.Marshal([]map[string]any{
				{"Config": config, "Layers": []string{layer}},
				{"Config": "blobs/sha256/" + strings.Repeat("cd", 32), "Layers": []string{}},
			})
			return append(ms, member{name: "manifest.json", typ: tar.TypeReg, body: b})
		}, layout.ErrContentMismatch, "entry 2"},
		{"index.json with too many entries", func(ms []member) []member {
			idx := v1.IndexManifest{SchemaVersion: 2, Manifests: make([]v1.Descriptor, layout.MaxEntries+1)}
			for i := range idx.Manifests {
				idx.Manifests[i] = v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1, Digest: m.Config.Digest}
			}
			b, _ := json.Marshal(idx)
			return replace("index.json", member{name: "index.json", typ: tar.TypeReg, body: b})(ms)
		}, layout.ErrHostileArchive, "entries"},
		// Anything a loader reads that verification would not.
		{"a symlink outside blobs", func(ms []member) []member {
			return append(ms, member{name: "other/link", typ: tar.TypeSymlink, link: "../blobs"})
		}, layout.ErrHostileArchive, "symbolic link"},
		{"a hard link", func(ms []member) []member {
			return append(ms, member{name: "blobs/sha256/" + strings.Repeat("ab", 32), typ: tar.TypeLink, link: layer})
		}, layout.ErrHostileArchive, "hard link"},
		{"a fifo", func(ms []member) []member { return append(ms, member{name: "fifo", typ: tar.TypeFifo}) }, layout.ErrHostileArchive, "a fifo"},
		{"a legacy layer directory", func(ms []member) []member {
			return append(ms, file("0123abcd/layer.tar", "evil"), file("0123abcd/json", "{}"))
		}, layout.ErrHostileArchive, "not part of an OCI image layout"},
		{"a sha512 blob", func(ms []member) []member {
			return append(ms, file("blobs/sha512/"+strings.Repeat("ab", 64), "x"))
		}, layout.ErrHostileArchive, "not part of an OCI image layout"},
		{"an upper-case blob name", func(ms []member) []member {
			return append(ms, file("blobs/sha256/"+strings.Repeat("AB", 32), "x"))
		}, layout.ErrHostileArchive, "not part of an OCI image layout"},
		{"repositories without manifest.json", func(ms []member) []member {
			return append(ms, file("repositories", `{"`+s.img.Context().Name()+`":{"v1":"0123abcd"}}`))
		}, layout.ErrContentMismatch, "without manifest.json"},
		{"repositories naming what manifest.json tags", func(ms []member) []member {
			return append(ms, dockerList(config, layer), file("repositories", `{"`+s.img.Context().Name()+`":{"v1":"0123abcd"}}`))
		}, nil, ""},
		{"repositories naming another image", func(ms []member) []member {
			return append(ms, dockerList(config, layer), file("repositories", `{"`+s.img.Context().Name()+`":{"latest":"0123abcd"}}`))
		}, layout.ErrContentMismatch, "does not tag"},
		// manifest.json names the verified content under another name.
		{"docker load list with a short name", func(ms []member) []member {
			return append(ms, dockerListTagged("app:v1", config, layer))
		}, layout.ErrContentMismatch, "index.docker.io/library/app:v1, which is not being verified"},
		{"docker load list naming the other image", func(ms []member) []member {
			return append(ms, dockerListTagged(s.idx.String(), config, layer))
		}, layout.ErrContentMismatch, "not being verified"},
		{"docker load list with an unparsable tag", func(ms []member) []member {
			return append(ms, dockerListTagged("Bad Name:v1", config, layer))
		}, layout.ErrContentMismatch, "tags it"},
		// index.json entries in every naming form.
		{"index entry with a short name", addEntry(img, name, "app:v1"), layout.ErrContentMismatch, "index.docker.io/library/app:v1, which is not being verified"},
		{"index entry with a name without a tag", addEntry(img, name, s.img.Context().Name()), layout.ErrContentMismatch, ":latest, which is not being verified"},
		{"index entry with a short ref.name", addEntry(img, ref, "app:v1"), layout.ErrContentMismatch, "not being verified"},
		{"index entry with a bare name", addEntry(img, ref, "app"), layout.ErrContentMismatch, `tagged "app"`},
		{"index entry with the verified bare tag", addEntry(img, ref, "v1"), nil, ""},
		{"index entry with a bare tag of another digest", addEntry(s.idxDigest.DigestStr(), ref, "v1"), layout.ErrContentMismatch, `tagged "v1"`},
		{"index entry whose tag is not its name's", addEntry(img, name, s.img.String(), ref, "v9"), layout.ErrContentMismatch, "not the tag of its name"},
		{"index entry with an unparsable name", addEntry(img, name, "Bad Name!"), layout.ErrContentMismatch, "cannot be parsed"},
		{"index entry by digest of another image", addEntry(img, name, s.idx.Context().Name()+"@"+s.idxDigest.DigestStr()), layout.ErrContentMismatch, "has digest"},
		{"unnamed index entry of a verified image", addEntry(img), nil, ""},
		{"unnamed index entry of something else", addEntry(m.Config.Digest.String()), layout.ErrContentMismatch, "names no image"},
		{"attachment tag of no verified manifest", addEntry(img, name, s.img.Context().Tag("sha256-"+strings.Repeat("ab", 32)+".sig").String()), layout.ErrContentMismatch, "not a verified manifest"},
		{"attachment tag of a verified manifest in another repository", addEntry(img, name, s.idx.Context().Tag("sha256-"+s.imgDigest.DigestStr()[len("sha256:"):]+".sig").String()), layout.ErrContentMismatch, "not a verified manifest in " + s.idx.Context().Name()},
		{"attachment tag of a verified manifest", addEntry(img, name, s.img.Context().Tag("sha256-"+s.imgDigest.DigestStr()[len("sha256:"):]+".att").String()), nil, ""},
		{"unnamed index entry of a platform manifest", addEntry(readIndexManifest(t, s.dir, s.idxDigest.DigestStr()).Manifests[0].Digest.String()), nil, ""},
		{"bare attachment tag of no verified manifest", addEntry(img, ref, "sha256-"+strings.Repeat("ab", 32)), layout.ErrContentMismatch, "not a verified manifest"},
		{"no oci-layout (docker before 25)", func(ms []member) []member {
			out := ms[:0]
			for _, m := range ms {
				if m.name != "oci-layout" {
					out = append(out, m)
				}
			}
			return append(out, dockerList(config, layer))
		}, layout.ErrNotLayout, "Docker before 25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkArchive(archive(t, s.dir, tc.edit), s.img, s.idx)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}

	// Verifying one image of two is refused: a loader loads both. A
	// digest reference covers the tags of its repository naming it.
	all := archive(t, s.dir, nil)
	if err := checkArchive(all, s.img); !errors.Is(err, layout.ErrContentMismatch) || !strings.Contains(err.Error(), s.idx.String()+", which is not being verified") {
		t.Fatalf("one image of two verified: %v", err)
	}
	if err := checkArchive(all, s.imgDigest, s.idx); err != nil {
		t.Fatalf("verified by digest: %v", err)
	}
	if err := checkArchive(all, s.img.Context().Digest(s.idxDigest.DigestStr()), s.idx); err == nil || !strings.Contains(err.Error(), s.img.String()+", which is not being verified") {
		t.Fatalf("the other digest verified: %v", err)
	}

	// A gzip-compressed archive is refused with advice.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	raw, _ := os.ReadFile(archive(t, s.dir, nil))
	zw.Write(raw)
	zw.Close()
	f := filepath.Join(t.TempDir(), "a.tar.gz")
	os.WriteFile(f, gz.Bytes(), 0o644)
	if _, err := layout.OpenTar(f); err == nil || !strings.Contains(err.Error(), "gunzip") {
		t.Fatalf("gzip archive: %v", err)
	}
}

// An archive of one platform of an index (as docker save writes it) checks:
// the absent platforms are listed, the present one whole.
func TestArchiveOnePlatform(t *testing.T) {
	s := saveSigned(t, true)
	idx := readIndexManifest(t, s.dir, s.idxDigest.DigestStr())
	drop := "blobs/sha256/" + idx.Manifests[1].Digest.Hex
	f := archive(t, s.dir, func(ms []member) []member {
		out := ms[:0]
		for _, m := range ms {
			if m.name != drop {
				out = append(out, m)
			}
		}
		return out
	})
	st, err := layout.OpenTar(f)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.Find(s.idx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CheckImage(d)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if len(c.Absent) != 1 || c.Absent[0].Digest != idx.Manifests[1].Digest || c.Manifests != 2 {
		t.Fatalf("check %+v, want the second platform absent", c)
	}
}

func readIndex(t *testing.T, dir string) *v1.IndexManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func writeIndex(t *testing.T, dir string, idx *v1.IndexManifest) {
	t.Helper()
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func blobFile(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }

func readManifest(t *testing.T, dir, digest string) *v1.Manifest {
	t.Helper()
	h, _ := v1.NewHash(digest)
	b, err := os.ReadFile(blobFile(dir, h))
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readIndexManifest(t *testing.T, dir, digest string) *v1.IndexManifest {
	t.Helper()
	h, _ := v1.NewHash(digest)
	b, err := os.ReadFile(blobFile(dir, h))
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tagDigest returns the digest of the index.json entry tagged tag.
func tagDigest(t *testing.T, dir, tag string) string {
	t.Helper()
	for _, d := range readIndex(t, dir).Manifests {
		if d.Annotations[layout.RefNameAnnotation] == tag {
			return d.Digest.String()
		}
	}
	t.Fatalf("no entry tagged %s", tag)
	return ""
}

func overwrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTar(t *testing.T, dir, f string) {
	t.Helper()
	out, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := layout.WriteTar(dir, out); err != nil {
		t.Fatal(err)
	}
}
