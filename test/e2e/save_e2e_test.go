//go:build linux

package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// signedImage pushes HOST/repoTag to reg and signs it with imgsign in both
// formats (legacy .sig tag and bundle referrer) and attests it.
func signedImage(t *testing.T, bin string, reg *registry, k, repoTag string) name.Digest {
	t.Helper()
	pred := filepath.Join(t.TempDir(), "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/build/v1"}`), 0o644)
	d := reg.pushImage(t, repoTag)
	pw := []string{"IMGSIGN_PASSWORD=pw"}
	run(t, pw, bin, args("sign", "--key", k+".key", "-a", "by=imgsign", reg.flags(), d.String())...).must(t, 0, ".sig and bundle referrer")
	run(t, pw, bin, args("attest", "--key", k+".key", "--type", "slsaprovenance", "--predicate", pred, reg.flags(), d.String())...).must(t, 0, "Attested")
	return d
}

// savedManifest finds the image saved as ref in the layout at dir through
// index.json (its digest must be d) and returns its parsed manifest.
func savedManifest(t *testing.T, dir, ref string, d name.Digest) *v1.Manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["io.containerd.image.name"] != ref {
			continue
		}
		if m.Digest.String() != d.DigestStr() {
			t.Fatalf("index.json names %s with digest %s, want %s", ref, m.Digest, d.DigestStr())
		}
		f, err := os.Open(filepath.Join(dir, "blobs", m.Digest.Algorithm, m.Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		man, err := v1.ParseManifest(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(man.Layers) == 0 {
			t.Fatalf("saved manifest of %s has no layers", ref)
		}
		return man
	}
	t.Fatalf("index.json names no image %s:\n%s", ref, raw)
	return nil
}

func blobMember(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// member is one tar entry: a regular file with data, or a symlink.
type member struct {
	name, link string
	data       []byte
}

// tarLayout writes the layout at dir as a tar archive at out (members in
// lexical order, as their relative paths), with replace substituting
// members by name and extra appended at the end.
func tarLayout(t *testing.T, dir, out string, replace map[string]member, extra ...member) string {
	t.Helper()
	var members []member
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if m, ok := replace[rel]; ok {
			members = append(members, m)
			return nil
		}
		data, err := os.ReadFile(p)
		members = append(members, member{name: rel, data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range append(members, extra...) {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}
		if m.link != "" {
			h = &tar.Header{Name: m.name, Mode: 0o777, Linkname: m.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// flipped returns a copy of b with its bytes inverted: same size, other
// digest.
func flipped(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = ^c
	}
	return out
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSaveLoadVerifyLocal: an image on a TLS registry with basic auth,
// signed by imgsign (legacy and bundle) and by cosign v3, and attested,
// saved with `imgsign save --dir`, verifies from the layout with no
// registry flags (no credentials, no CA: the registry is never asked), in
// each format, by attestation, for every image of the layout, and with
// every blob re-hashed; another key, a tampered layer and a non-empty
// target directory are refused.
func TestSaveLoadVerifyLocal(t *testing.T) {
	bin := imgsign(t)
	c3 := tool(t, cosign3)
	dir := t.TempDir()
	k, other := keyPair(t, dir, "k"), keyPair(t, dir, "other")
	reg := startRegistry(t, true, true)
	ref := reg.ref("team/app:v1")
	d := signedImage(t, bin, reg, k, "team/app:v1")
	cosignFlags := []string{"--registry-cacert", reg.caFile, "--registry-username", reg.username, "--registry-password", reg.password}
	run(t, []string{"COSIGN_PASSWORD=pw"}, c3, args("sign", "--key", k+".key", "--tlog-upload=false", "--use-signing-config=false", "-y", "-a", "by=cosign", cosignFlags, d.String())...).must(t, 0, "")

	layoutDir := filepath.Join(dir, "layout")
	hx := strings.TrimPrefix(d.DigestStr(), "sha256:")
	out := run(t, nil, bin, args("save", "--dir", layoutDir, reg.flags(), ref)...)
	for _, want := range []string{"Saved " + ref + " (" + d.DigestStr(), "+ " + reg.ref("team/app:sha256-"+hx+".sig"), "+ " + reg.ref("team/app:sha256-"+hx+".att"), "Wrote " + layoutDir} {
		out.must(t, 0, want)
	}
	// Referrers: imgsign's signature and attestation bundles and cosign's
	// signature bundle.
	if n := strings.Count(out.stderr, "  + "+reg.ref("team/app@sha256:")); n != 3 {
		t.Fatalf("want 3 referrers saved, got %d:\n%s", n, out.stderr)
	}

	// Offline: no registry flags at all, so any registry request would be
	// refused (unknown CA, no credentials).
	local := []string{"--local", layoutDir}
	run(t, nil, bin, args("verify", "--key", k+".pub", "--format", "legacy", local, ref)...).must(t, 0, d.DigestStr())
	// imgsign's bundle and cosign's, told apart by their annotations.
	for _, by := range []string{"imgsign", "cosign"} {
		run(t, nil, bin, args("verify", "--key", k+".pub", "--format", "bundle", "-a", "by="+by, local, ref)...).must(t, 0, "bundle signature by key")
	}
	run(t, nil, bin, args("verify", "--key", k+".pub", "--format", "bundle", "-a", "by=nobody", local, ref)...).must(t, 12, "missing or different annotation")
	run(t, nil, bin, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", local, ref)...).must(t, 0, d.DigestStr())
	run(t, nil, bin, args("verify", "--key", k+".pub", local)...).must(t, 0, ref)
	run(t, nil, bin, args("verify", "--key", k+".pub", "--verify-blobs", local, ref)...).must(t, 0, "content re-hashed")
	run(t, nil, bin, args("verify", "--key", other+".pub", local, ref)...).must(t, 12, d.DigestStr())
	run(t, nil, bin, args("verify-attestation", "--key", other+".pub", "--type", "slsaprovenance", local, ref)...).must(t, 12, "")
	run(t, nil, bin, args("verify", "--key", k+".pub", "--rekor-url", "https://rekor.example", local, ref)...).must(t, 2, "--rekor-url")
	run(t, nil, bin, args("verify", "--key", k+".pub", local, reg.ref("team/absent:v1"))...).must(t, 11, "")
	// The registry itself refuses the same verification without flags:
	// the layout really was what answered.
	if r := run(t, nil, bin, "verify", "--key", k+".pub", ref); r.code == 0 {
		t.Fatalf("verify without --local or registry flags passed:\n%s", r.stderr)
	}

	// A layer replaced on disk: the signatures still verify (they sign the
	// manifest), --verify-blobs finds the layer does not match.
	man := savedManifest(t, layoutDir, ref, d)
	layer := filepath.Join(layoutDir, blobMember(man.Layers[0].Digest))
	os.Chmod(layer, 0o644)
	if err := os.WriteFile(layer, flipped(readFile(t, layer)), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, bin, args("verify", "--key", k+".pub", "--verify-blobs", local, ref)...).must(t, 12, man.Layers[0].Digest.String())

	// save never writes into a non-empty directory nor over a file.
	run(t, nil, bin, args("save", "--dir", layoutDir, reg.flags(), ref)...).must(t, 4, "")
	taken := filepath.Join(dir, "taken.tar")
	os.WriteFile(taken, []byte("keep"), 0o644)
	run(t, nil, bin, args("save", "--tarball", taken, reg.flags(), ref)...).must(t, 4, "")
	if got := string(readFile(t, taken)); got != "keep" {
		t.Fatalf("save --tarball overwrote an existing file: %q", got)
	}
	// An empty directory is fine; --no-attached saves the image alone.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	out = run(t, nil, bin, args("save", "--dir", empty, "--no-attached", reg.flags(), ref)...).must(t, 0, "Saved "+ref)
	if strings.Contains(out.stderr, "  + ") {
		t.Fatalf("--no-attached saved attachments:\n%s", out.stderr)
	}
	run(t, nil, bin, args("verify", "--key", k+".pub", "--local", empty, ref)...).must(t, 10, "")
}

// TestSaveLoadToAnotherRegistry: an archive saved from a TLS registry with
// auth, loaded into a plain HTTP registry, verifies there with imgsign in
// both formats and with cosign v3.
func TestSaveLoadToAnotherRegistry(t *testing.T) {
	bin := imgsign(t)
	c3 := tool(t, cosign3)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	a, b := startRegistry(t, true, true), startRegistry(t, false, false)
	d := signedImage(t, bin, a, k, "team/app:v1")
	archive := filepath.Join(dir, "app.tar")
	run(t, nil, bin, args("save", "--tarball", archive, a.flags(), a.ref("team/app:v1"))...).must(t, 0, "Wrote "+archive)

	dst := b.ref("mirror/app:v1")
	out := run(t, nil, bin, "load", "--tarball", archive, dst).must(t, 0, "Copied image "+d.DigestStr()+" to "+dst)
	out.must(t, 0, "sha256-"+strings.TrimPrefix(d.DigestStr(), "sha256:")+".sig")
	dstDigest := b.ref("mirror/app") + "@" + d.DigestStr()
	for _, format := range []string{"legacy", "bundle"} {
		run(t, nil, bin, "verify", "--key", k+".pub", "--format", format, dst).must(t, 0, d.DigestStr())
		run(t, nil, bin, "verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--format", format, dst).must(t, 0, "")
	}
	run(t, nil, c3, "verify", "--key", k+".pub", "--insecure-ignore-tlog", "--allow-http-registry", dstDigest).must(t, 0, d.DigestStr())
	run(t, nil, c3, "verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--insecure-ignore-tlog", "--allow-http-registry", dstDigest).must(t, 0, "")

	// Loading again (from the unpacked form of the same layout, by name)
	// adds nothing.
	before := run(t, nil, bin, "tree", dstDigest).must(t, 0, "signature")
	unpacked := filepath.Join(dir, "unpacked")
	run(t, nil, bin, args("save", "--dir", unpacked, a.flags(), a.ref("team/app:v1"))...).must(t, 0, "Wrote")
	run(t, nil, bin, "load", "--dir", unpacked, "--name", a.ref("team/app:v1"), dst).must(t, 0, "Copied image "+d.DigestStr())
	after := run(t, nil, bin, "tree", dstDigest).must(t, 0, "signature")
	if before.stdout != after.stdout {
		t.Fatalf("a second load changed what is attached:\nbefore:\n%s\nafter:\n%s", before.stdout, after.stdout)
	}
	if strings.Count(after.stdout, "signature ") != 2 || strings.Count(after.stdout, "attestation ") != 2 {
		t.Fatalf("want a legacy and a bundle signature and attestation at the destination:\n%s", after.stdout)
	}

	// A layer tampered with in the archive is refused, whether the
	// destination repository has the real layer or not, and no tag lands.
	man := savedManifest(t, unpacked, a.ref("team/app:v1"), d)
	layer := blobMember(man.Layers[0].Digest)
	evil := tarLayout(t, unpacked, filepath.Join(dir, "evil.tar"), map[string]member{layer: {name: layer, data: flipped(readFile(t, filepath.Join(unpacked, layer)))}})
	for _, to := range []string{b.ref("evil/app:v1"), b.ref("mirror/app:v2")} {
		if r := run(t, nil, bin, "load", "--tarball", evil, to); r.code == 0 || !strings.Contains(r.stderr, man.Layers[0].Digest.String()) {
			t.Fatalf("load of a tampered archive to %s: exit %d\n%s", to, r.code, r.stderr)
		}
		run(t, nil, bin, "verify", "--key", k+".pub", to).must(t, 11, "")
	}
}

// TestVerifyTarballRejectsTampering: `verify --tarball` re-hashes the
// archive's content and checks its docker load list before any signature,
// refusing an archive whose layer does not match, that carries a member
// twice or a blob as a symlink, or whose manifest.json names other content.
func TestVerifyTarballRejectsTampering(t *testing.T) {
	bin := imgsign(t)
	dir := t.TempDir()
	k, other := keyPair(t, dir, "k"), keyPair(t, dir, "other")
	reg := startRegistry(t, false, false)
	ref := reg.ref("team/app:v1")
	d := signedImage(t, bin, reg, k, "team/app:v1")
	layoutDir := filepath.Join(dir, "layout")
	run(t, nil, bin, "save", "--dir", layoutDir, ref).must(t, 0, "Wrote")
	man := savedManifest(t, layoutDir, ref, d)
	layer := blobMember(man.Layers[0].Digest)
	layerData := readFile(t, filepath.Join(layoutDir, layer))
	evil := member{name: layer, data: flipped(layerData)}
	verify := func(archive string, extra ...string) result {
		t.Helper()
		return run(t, nil, bin, args("verify", "--tarball", archive, extra)...)
	}
	file := func(n string) string { return filepath.Join(dir, n+".tar") }

	// (a) Untouched archives, written here and by save --tarball.
	good := tarLayout(t, layoutDir, file("good"), nil)
	verify(good, "--key", k+".pub", ref).must(t, 0, "Content of "+ref+" ("+d.DigestStr()+") matches its digests")
	verify(good, "--key", k+".pub").must(t, 0, "matches its digests")
	verify(good, "--key", k+".pub", "--format", "bundle", ref).must(t, 0, "bundle signature by key")
	run(t, nil, bin, "verify-attestation", "--tarball", good, "--key", k+".pub", "--type", "slsaprovenance", ref).must(t, 0, "matches its digests")
	saved := filepath.Join(dir, "saved.tar")
	run(t, nil, bin, "save", "--tarball", saved, ref).must(t, 0, "Wrote "+saved)
	verify(saved, "--key", k+".pub").must(t, 0, "matches its digests")
	verify(good, "--key", k+".pub", reg.ref("team/absent:v1")).must(t, 11, "")
	// An archive with a second image: verifying only one is refused
	// (docker load would load the other); naming none verifies both.
	reg.pushImage(t, "team/unsigned:v1")
	two := filepath.Join(dir, "two.tar")
	run(t, nil, bin, "save", "--tarball", two, ref, reg.ref("team/unsigned:v1")).must(t, 0, "2 image(s)")
	verify(two, "--key", k+".pub", ref).must(t, 12, "which is not being verified")
	verify(two, "--key", k+".pub").must(t, 10, "FAILED "+reg.ref("team/unsigned:v1"))

	// (b) A layer's bytes replaced, same member and size.
	r := verify(tarLayout(t, layoutDir, file("replaced"), map[string]member{layer: evil}), "--key", k+".pub", ref)
	r.must(t, 12, "does not match")
	r.must(t, 12, man.Layers[0].Digest.String())
	if strings.Contains(r.stderr, "matches its digests") {
		t.Fatalf("tampered archive reported as matching:\n%s", r.stderr)
	}
	// A wrong size is refused too.
	verify(tarLayout(t, layoutDir, file("short"), map[string]member{layer: {name: layer, data: layerData[1:]}}), "--key", k+".pub", ref).must(t, 12, "does not match")

	// (c) The layer twice: the original, then an evil copy a loader would take.
	verify(tarLayout(t, layoutDir, file("twice"), nil, evil), "--key", k+".pub", ref).must(t, 12, "appears twice")
	verify(tarLayout(t, layoutDir, file("twice-same"), nil, member{name: "./" + layer, data: layerData}), "--key", k+".pub", ref).must(t, 12, "appears twice")

	// A blob that is a symlink.
	verify(tarLayout(t, layoutDir, file("symlink"), map[string]member{layer: {name: layer, link: "/etc/passwd"}}), "--key", k+".pub", ref).must(t, 12, "symbolic link")
	// A zstd skippable frame before a valid tar: docker load would
	// decompress it (and read what follows the frame).
	zst := file("skippable")
	os.WriteFile(zst, append([]byte{0x5a, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, readFile(t, good)...), 0o644)
	verify(zst, "--key", k+".pub", ref).must(t, 12, "zstd-compressed archive")
	// A second index.json entry naming the signed image by a short name
	// that is not verified: docker load would tag it docker.io/library/app:v1.
	var idx map[string]any
	json.Unmarshal(readFile(t, filepath.Join(layoutDir, "index.json")), &idx)
	entries := idx["manifests"].([]any)
	first := entries[0].(map[string]any)
	idx["manifests"] = append(entries, map[string]any{"mediaType": first["mediaType"], "size": first["size"], "digest": first["digest"],
		"annotations": map[string]any{"io.containerd.image.name": "app:v1"}})
	short, _ := json.Marshal(idx)
	verify(tarLayout(t, layoutDir, file("shortname"), map[string]member{"index.json": {name: "index.json", data: short}}), "--key", k+".pub", ref).must(t, 12, "index.docker.io/library/app:v1, which is not being verified")

	// (d) A docker load list: naming the signed image's config and layers
	// exactly passes; naming an extra blob instead of a layer does not.
	loadList := func(layers ...string) member {
		b, _ := json.Marshal([]map[string]any{{"Config": blobMember(man.Config.Digest), "RepoTags": []string{ref}, "Layers": layers}})
		return member{name: "manifest.json", data: b}
	}
	var layers []string
	for _, l := range man.Layers {
		layers = append(layers, blobMember(l.Digest))
	}
	verify(tarLayout(t, layoutDir, file("docker"), nil, loadList(layers...)), "--key", k+".pub", ref).must(t, 0, "matches its digests")
	sum := sha256.Sum256(evil.data)
	extraBlob := member{name: "blobs/sha256/" + hex.EncodeToString(sum[:]), data: evil.data}
	swapped := append([]string{extraBlob.name}, layers[1:]...)
	r = verify(tarLayout(t, layoutDir, file("docker-evil"), nil, extraBlob, loadList(swapped...)), "--key", k+".pub", ref)
	r.must(t, 12, "manifest.json")
	r.must(t, 12, "docker load would load it")
	verify(tarLayout(t, layoutDir, file("docker-fewer"), nil, loadList(layers[:1]...)), "--key", k+".pub", ref).must(t, 12, "manifest.json")

	// (e) The wrong key; a policy trusting k for the registry's scope.
	verify(good, "--key", other+".pub", ref).must(t, 12, d.DigestStr())
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("version: 1\nscopes:\n  - scope: "+reg.host+"/team\n    keys: [{file: k.pub}]\n"), 0o644)
	verify(good, "--policy", policy, ref).must(t, 0, "meet the policy")
	verify(good, "--policy", policy).must(t, 0, "meet the policy")
	strict := filepath.Join(dir, "strict.yaml")
	os.WriteFile(strict, []byte("version: 1\nscopes:\n  - scope: "+reg.host+"/team\n    keys: [{file: other.pub}]\n"), 0o644)
	verify(good, "--policy", strict, ref).must(t, 12, "")
}

// TestTarballRegistrySignatures: an archive without signatures (as docker
// save writes them) verifies with the signatures of a TLS registry with
// basic auth (--registry-signatures), and only as the image the archive
// holds: an unsigned image saved under the tag fails even after the tag
// moves back to the signed image in the registry.
func TestTarballRegistrySignatures(t *testing.T) {
	bin := imgsign(t)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	reg := startRegistry(t, true, true)
	ref := reg.ref("team/app:v1")
	d := signedImage(t, bin, reg, k, "team/app:v1")
	bare := filepath.Join(dir, "bare.tar")
	run(t, nil, bin, args("save", "--no-attached", "--tarball", bare, reg.flags(), ref)...).must(t, 0, "Wrote "+bare)

	run(t, nil, bin, "verify", "--key", k+".pub", "--tarball", bare).must(t, 10, "no signatures")
	run(t, nil, bin, args("verify", "--key", k+".pub", "--tarball", bare, "--registry-signatures", reg.flags())...).must(t, 0, "Verified "+ref+" ("+d.DigestStr()+")")
	run(t, nil, bin, args("verify-attestation", "--key", k+".pub", "--type", "slsaprovenance", "--tarball", bare, "--registry-signatures", reg.flags())...).must(t, 0, d.DigestStr())
	// Without credentials the registry refuses: the signatures really come
	// from it.
	run(t, nil, bin, "verify", "--key", k+".pub", "--tarball", bare, "--registry-signatures", "--registry-cacert", reg.caFile).must(t, 1, "UNAUTHORIZED")

	unsigned := reg.pushImage(t, "team/app:v1")
	evil := filepath.Join(dir, "evil.tar")
	run(t, nil, bin, args("save", "--no-attached", "--tarball", evil, reg.flags(), ref)...).must(t, 0, unsigned.DigestStr())
	run(t, nil, bin, args("load", "--tarball", bare, reg.flags(), ref)...).must(t, 0, "Copied image "+d.DigestStr())
	run(t, nil, bin, args("verify", "--key", k+".pub", "--tarball", evil, "--registry-signatures", reg.flags())...).must(t, 10, unsigned.DigestStr())
}
