package layout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/tarindex"
)

// ErrContentMismatch is wrapped when the layout's content does not match
// the manifests that name it: a blob that does not hash to its digest or
// has another size, a missing blob, a `docker load` list naming other
// content.
var ErrContentMismatch = errors.New("layout content does not match its manifests")

// Checked says what CheckImage read.
type Checked struct {
	// Digest is the image's manifest digest.
	Digest v1.Hash `json:"digest"`
	// Manifests, Blobs and Bytes count what was re-hashed.
	Manifests int   `json:"manifests"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	// Absent are the manifests of an index that the layout does not hold
	// (platforms not saved); what is absent cannot be loaded either.
	Absent []v1.Descriptor `json:"absent,omitempty"`
	// images are the image manifests checked whole; manifests are the
	// digests of every manifest checked (indexes included).
	images    []*v1.Manifest
	manifests []v1.Hash
}

// Find returns the index.json descriptor of ref: by digest (any entry or
// manifest blob of the layout with that digest) or by tag.
func (s *Store) Find(ref name.Reference) (v1.Descriptor, error) {
	switch r := ref.(type) {
	case name.Digest:
		h, err := v1.NewHash(r.DigestStr())
		if err != nil {
			return v1.Descriptor{}, err
		}
		for _, d := range s.Index.Manifests {
			if d.Digest == h {
				return d, nil
			}
		}
		raw, err := s.ReadBlob(h, MaxIndexBytes)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: %w", ref, oci.ErrNotFound)
		}
		return v1.Descriptor{MediaType: oci.ManifestType(raw), Size: int64(len(raw)), Digest: h}, nil
	case name.Tag:
		if d, ok := s.lookupTag(r.Context(), r.TagStr()); ok {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w in the layout", ref, oci.ErrNotFound)
}

// CheckManifest checks that the manifest d describes is in the layout and
// hashes to d's digest (and has its size), without looking further.
func (s *Store) CheckManifest(d v1.Descriptor) error {
	raw, err := s.ReadBlob(d.Digest, MaxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("manifest %s: %w in the layout", d.Digest, oci.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("manifest %s: %w: %w", d.Digest, ErrContentMismatch, err)
	}
	if err := matches(d, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	return nil
}

// CheckImage re-hashes the manifest root describes and everything under it
// that the layout holds, before anything is parsed or loaded: each manifest
// against the digest and size its parent (or index.json) gives, and every
// config and layer blob of each image manifest, streaming and never
// decompressing. The manifests of an index may be absent (an archive of one
// platform) and are listed in Absent; a blob of a manifest that is present
// may not be. At least one image manifest must be present whole.
func (s *Store) CheckImage(root v1.Descriptor) (*Checked, error) {
	out := &Checked{Digest: root.Digest}
	seenBlob := map[v1.Hash]bool{}
	queue := []v1.Descriptor{root}
	seen := map[v1.Hash]bool{root.Digest: true}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if out.Manifests == oci.MaxDeepManifests {
			return out, fmt.Errorf("%s: %w: more than %d manifests", root.Digest, oci.ErrTooMany, oci.MaxDeepManifests)
		}
		raw, err := s.ReadBlob(d.Digest, MaxIndexBytes)
		if errors.Is(err, fs.ErrNotExist) && d.Digest != root.Digest {
			out.Absent = append(out.Absent, d)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("manifest %s: %w: %w", d.Digest, ErrContentMismatch, err)
		}
		if err := matches(d, bytes.NewReader(raw)); err != nil {
			return out, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		out.Manifests++
		out.manifests = append(out.manifests, d.Digest)
		mt := oci.ManifestType(raw)
		switch {
		case mt.IsIndex():
			idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return out, fmt.Errorf("%s: %w: malformed index: %w", d.Digest, ErrContentMismatch, err)
			}
			for _, ch := range idx.Manifests {
				if !seen[ch.Digest] {
					seen[ch.Digest] = true
					queue = append(queue, ch)
				}
			}
		case mt.IsImage():
			m, err := v1.ParseManifest(bytes.NewReader(raw))
			if err != nil {
				return out, fmt.Errorf("%s: %w: malformed manifest: %w", d.Digest, ErrContentMismatch, err)
			}
			if len(m.Layers) >= oci.MaxDeepBlobs {
				return out, fmt.Errorf("%s: %w: %d layers", d.Digest, oci.ErrTooMany, len(m.Layers))
			}
			for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
				if seenBlob[b.Digest] {
					continue
				}
				// A foreign layer is not in the layout; if it is, a
				// loader may read it: it must match too.
				if !b.MediaType.IsDistributable() && !s.hasBlob(b.Digest) {
					continue
				}
				seenBlob[b.Digest] = true
				n, err := s.rehash(b)
				out.Bytes += n
				if err != nil {
					return out, err
				}
				out.Blobs++
			}
			out.images = append(out.images, m)
		default:
			return out, fmt.Errorf("%s: %w: media type %q is not a manifest", d.Digest, ErrContentMismatch, mt)
		}
	}
	if len(out.images) == 0 {
		return out, fmt.Errorf("%s: %w: no image manifest of it is in the layout", root.Digest, ErrContentMismatch)
	}
	return out, nil
}

// rehash streams one blob through SHA-256 and compares it with b.
func (s *Store) rehash(b v1.Descriptor) (int64, error) {
	rc, size, err := s.OpenBlob(b.Digest)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w: %w", b.Digest, ErrContentMismatch, err)
	}
	defer rc.Close()
	if size != b.Size {
		return 0, fmt.Errorf("blob %s: %w: %d bytes, the manifest says %d", b.Digest, ErrContentMismatch, size, b.Size)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(rc, b.Size+1))
	if err != nil {
		return n, fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != b.Size || got != b.Digest.Hex {
		return n, fmt.Errorf("blob %s: %w (%d bytes hashing to sha256:%s)", b.Digest, ErrContentMismatch, n, got)
	}
	return n, nil
}

// matches checks content against a descriptor's size and SHA-256 digest.
func matches(d v1.Descriptor, r io.Reader) error {
	if d.Digest.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", d.Digest.Algorithm)
	}
	h, n, err := v1.SHA256(r)
	if err != nil {
		return err
	}
	if h != d.Digest || (d.Size != 0 && n != d.Size) {
		return fmt.Errorf("%w: %d bytes hashing to %s, expected %d bytes hashing to %s", ErrContentMismatch, n, h, d.Size, d.Digest)
	}
	return nil
}

// dockerEntry is one entry of a `docker save` manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Verified is an image of a layout being verified: the reference it is
// verified as and what CheckImage read of it.
type Verified struct {
	Ref     name.Reference
	Checked *Checked
}

// CheckLoad checks that a loader reading the layout (docker load, podman
// load, ctr import) would load only what is verified, under only the names
// it is verified as. Each is refused with ErrContentMismatch:
//
//   - an index.json entry that names an image (io.containerd.image.name,
//     or org.opencontainers.image.ref.name as a reference or a bare tag)
//     that is not a verified image with that digest, or whose name cannot
//     be parsed; an entry named by an attachment tag (sha256-<hex>.sig,
//     .att, .sbom, a referrers fallback tag) that is not attached to a
//     manifest of a verified image in its repository; an unnamed entry that
//     is neither a manifest of a verified image nor a manifest whose
//     subject is one;
//   - a manifest.json entry whose config and layers are not exactly those
//     of a verified image manifest, or that tags it with a name it is not
//     verified as;
//   - a repositories file naming anything manifest.json does not, or
//     without a manifest.json (`docker load` would then load legacy layers).
//
// A name matches a verified reference when both are normalised by
// go-containerregistry (docker.io is index.docker.io, library/ and :latest
// implicit) and have the same repository and tag; a verified digest
// reference covers every tag of its repository that names its digest.
func (s *Store) CheckLoad(verified []Verified) error {
	for i, d := range s.Index.Manifests {
		if err := s.checkEntry(d, verified); err != nil {
			return fmt.Errorf("%s: %w: entry %d (%s): %w", IndexFile, ErrContentMismatch, i+1, d.Digest, err)
		}
	}
	tags, err := s.checkDockerList(verified)
	if err != nil {
		return err
	}
	return s.checkRepositories(tags)
}

// checkEntry checks one index.json entry (see CheckLoad).
func (s *Store) checkEntry(d v1.Descriptor, verified []Verified) error {
	full, ref := d.Annotations[ImageNameAnnotation], d.Annotations[RefNameAnnotation]
	if full == "" && ref == "" {
		if isVerifiedManifest(d.Digest, verified) {
			return nil
		}
		if subj, ok := s.subject(d); ok && isVerifiedManifest(subj, verified) {
			return nil
		}
		return errors.New("it names no image and is neither a verified image nor attached to one: a loader would load it unverified")
	}
	var fullRef name.Reference
	if full != "" {
		r, err := parseName(full)
		if err != nil {
			return err
		}
		if err := matchName(r, d.Digest, verified); err != nil {
			return err
		}
		fullRef = r
	}
	if ref == "" {
		return nil
	}
	if strings.ContainsAny(ref, "/:@") {
		r, err := parseName(ref)
		if err != nil {
			return err
		}
		return matchName(r, d.Digest, verified)
	}
	// A bare tag (the OCI way): the tag of the full name, else of a
	// verified reference with this digest.
	if isAttachmentTagName(ref) {
		return matchAttachment(nil, ref, verified)
	}
	if fullRef != nil {
		if t, ok := fullRef.(name.Tag); !ok || t.TagStr() != ref {
			return fmt.Errorf("its tag %q is not the tag of its name %s", ref, full)
		}
		return nil
	}
	for _, v := range verified {
		if t, ok := v.Ref.(name.Tag); ok && t.TagStr() == ref && v.Checked.Digest == d.Digest {
			return nil
		}
	}
	return fmt.Errorf("it is tagged %q, and no image verified with that tag has its digest: a loader would load it unverified", ref)
}

// parseName parses an image name of an archive as a loader would, or fails.
func parseName(n string) (name.Reference, error) {
	r, err := name.ParseReference(n)
	if err != nil {
		return nil, fmt.Errorf("it names an image as %q, which cannot be parsed (%w): a loader might name it otherwise", n, err)
	}
	return r, nil
}

// matchName checks that r, the name of content with digest h, is one that
// content is verified as (see CheckLoad), or an attachment tag of a
// verified manifest.
func matchName(r name.Reference, h v1.Hash, verified []Verified) error {
	if t, ok := r.(name.Tag); ok && isAttachmentTagName(t.TagStr()) {
		repo := t.Context()
		return matchAttachment(&repo, t.TagStr(), verified)
	}
	if dg, ok := r.(name.Digest); ok && dg.DigestStr() != h.String() {
		return fmt.Errorf("it is named %s but has digest %s", r, h)
	}
	for _, v := range verified {
		if v.Checked.Digest != h || v.Ref.Context().Name() != r.Context().Name() {
			continue
		}
		if _, byDigest := v.Ref.(name.Digest); byDigest || v.Ref.Identifier() == r.Identifier() {
			return nil
		}
	}
	return fmt.Errorf("it is named %s, which is not being verified with this digest: a loader would load it under that name", r.Name())
}

// matchAttachment checks that an attachment tag (sha256-<hex>[.suffix])
// names a manifest of a verified image, in that image's repository when
// the tag has one (repo not nil).
func matchAttachment(repo *name.Repository, tag string, verified []Verified) error {
	hexPart, _, _ := strings.Cut(strings.TrimPrefix(tag, "sha256-"), ".")
	h := v1.Hash{Algorithm: "sha256", Hex: hexPart}
	for _, v := range verified {
		if slices.Contains(v.Checked.manifests, h) && (repo == nil || repo.Name() == v.Ref.Context().Name()) {
			return nil
		}
	}
	where := ""
	if repo != nil {
		where = " in " + repo.Name()
	}
	return fmt.Errorf("it is tagged %s, attached to sha256:%s, which is not a verified manifest%s", tag, hexPart, where)
}

// isVerifiedManifest reports whether h is a manifest of a verified image.
func isVerifiedManifest(h v1.Hash, verified []Verified) bool {
	for _, v := range verified {
		if slices.Contains(v.Checked.manifests, h) {
			return true
		}
	}
	return false
}

// subject returns the subject of the image manifest d describes, if any.
func (s *Store) subject(d v1.Descriptor) (v1.Hash, bool) {
	raw, err := s.ReadBlob(d.Digest, MaxIndexBytes)
	if err != nil || matches(d, bytes.NewReader(raw)) != nil {
		return v1.Hash{}, false
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil || m.Subject == nil {
		return v1.Hash{}, false
	}
	return m.Subject.Digest, true
}

// checkDockerList checks the `docker load` list (manifest.json, when there
// is one): each entry's config and layers must be those of a verified
// image manifest, in order, as blobs of the layout, and each of its
// RepoTags a name that image is verified as. It returns the RepoTags, by
// normalised name.
func (s *Store) checkDockerList(verified []Verified) (map[string]bool, error) {
	raw, err := s.readSmall(DockerManifestFile, MaxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s: %w: malformed: %w", DockerManifestFile, ErrContentMismatch, err)
	}
	tags := map[string]bool{}
	for i, e := range entries {
		var holders []Verified
		for _, v := range verified {
			if v.Checked.holds(e) {
				holders = append(holders, v)
			}
		}
		if len(holders) == 0 {
			return nil, fmt.Errorf("%s: %w: entry %d (%s) is not a verified image: docker load would load it", DockerManifestFile, ErrContentMismatch, i+1, strings.Join(e.RepoTags, ", "))
		}
		for _, rt := range e.RepoTags {
			t, err := name.NewTag(rt)
			if err == nil {
				err = matchName(t, holders[0].Checked.Digest, holders)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w: entry %d tags it %q: %w", DockerManifestFile, ErrContentMismatch, i+1, rt, err)
			}
			tags[t.Name()] = true
		}
	}
	return tags, nil
}

// checkRepositories checks the legacy name list: `docker load` reads it
// (with legacy layer directories) only without a manifest.json, so it is
// refused without one, and may name only what manifest.json tags.
func (s *Store) checkRepositories(tags map[string]bool) error {
	raw, err := s.readSmall(RepositoriesFile, MaxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if tags == nil {
		return fmt.Errorf("%s: %w: a %s file without %s: docker load would load legacy layers named in it", RepositoriesFile, ErrContentMismatch, RepositoriesFile, DockerManifestFile)
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(raw, &repos); err != nil {
		return fmt.Errorf("%s: %w: malformed: %w", RepositoriesFile, ErrContentMismatch, err)
	}
	for repo, ts := range repos {
		for tag := range ts {
			t, err := name.NewTag(repo + ":" + tag)
			if err != nil || !tags[t.Name()] {
				return fmt.Errorf("%s: %w: it names %s:%s, which %s does not tag", RepositoriesFile, ErrContentMismatch, repo, tag, DockerManifestFile)
			}
		}
	}
	return nil
}

// holds reports whether e names exactly the config and layers of one of
// the image manifests checked.
func (c *Checked) holds(e dockerEntry) bool {
	for _, m := range c.images {
		if cleanBlobPath(e.Config) != blobPath(m.Config.Digest) || len(e.Layers) != len(m.Layers) {
			continue
		}
		same := true
		for i, l := range m.Layers {
			same = same && cleanBlobPath(e.Layers[i]) == blobPath(l.Digest)
		}
		if same {
			return true
		}
	}
	return false
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func cleanBlobPath(p string) string {
	c, ok := tarindex.Clean(p)
	if !ok {
		return ""
	}
	return c
}
