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
	// images are the image manifests checked whole.
	images []*v1.Manifest
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
				if seenBlob[b.Digest] || !b.MediaType.IsDistributable() {
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

// CheckLoadList checks that the `docker load` list of an archive
// (manifest.json, when there is one) names only content that was checked:
// each entry's config and layers must be those of an image manifest of
// checked, in order, as blobs of the layout. Without this, an archive could
// carry a verified image for the verifier and other content for the loader.
func (s *Store) CheckLoadList(checked []*Checked) error {
	raw, err := s.readSmall(DockerManifestFile, MaxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return fmt.Errorf("%s: %w: malformed: %w", DockerManifestFile, ErrContentMismatch, err)
	}
	for i, e := range entries {
		if !slices.ContainsFunc(checked, func(c *Checked) bool { return c.holds(e) }) {
			return fmt.Errorf("%s: %w: entry %d (%s) is not a verified image: docker load would load it", DockerManifestFile, ErrContentMismatch, i+1, strings.Join(e.RepoTags, ", "))
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
