// Package layout reads and writes OCI image layouts: a directory (or a tar
// archive of one, as `docker save` writes since Docker 25) holding images
// and what is attached to them, for air-gapped and before-load
// verification.
//
// A Store is a read-only view of a layout. Transport serves it with the
// read side of the registry API, so that an oci.Client, and everything
// built on one (verify, the policy gate, copy), reads a layout exactly as it
// reads a registry, with every digest check in place and no network at all.
// Save writes images from a registry, with their signatures and
// attestations in both storage schemes, into a new layout.
package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/pkg/tarindex"
)

// File names and annotations of an OCI image layout.
const (
	// LayoutFile marks a directory as an OCI image layout.
	LayoutFile = "oci-layout"
	// IndexFile lists the layout's entry points.
	IndexFile = "index.json"
	// DockerManifestFile is the list `docker load` reads in a
	// `docker save` archive.
	DockerManifestFile = "manifest.json"
	// RepositoriesFile is the legacy name list of a `docker save` archive
	// (repository -> tag -> layer ID), which `docker load` reads when
	// there is no manifest.json.
	RepositoriesFile = "repositories"
	// ImageNameAnnotation holds the full reference of an entry
	// (registry/repository:tag), as containerd and Docker write it.
	ImageNameAnnotation = "io.containerd.image.name"
	// RefNameAnnotation is the OCI standard name of an entry (a tag).
	RefNameAnnotation = "org.opencontainers.image.ref.name"
	// layoutVersion is the one imageLayoutVersion written and accepted.
	layoutVersion = "1.0.0"
)

// Limits on what a layout may declare: it is untrusted input.
const (
	// MaxIndexBytes is the largest index.json or manifest.json read.
	MaxIndexBytes = 4 << 20
	// MaxEntries is the most entries index.json may list.
	MaxEntries = 10000
)

// ErrNotLayout is wrapped when a directory or archive is not an OCI image
// layout.
var ErrNotLayout = errors.New("not an OCI image layout")

// ErrHostileArchive is wrapped when an archive is built to be read
// differently by a verifier and a loader (see package tarindex), or
// declares more than the limits allow.
var ErrHostileArchive = tarindex.ErrRefused

// Store is a read-only OCI image layout. It is safe for concurrent use.
type Store struct {
	// Index is the parsed index.json.
	Index v1.IndexManifest
	open  func(rel string) (io.ReadCloser, int64, error)
	close func() error
}

// OpenDir opens the layout in directory dir.
func OpenDir(dir string) (*Store, error) {
	root, err := os.OpenRoot(dir) // no path read through the layout escapes dir
	if err != nil {
		return nil, fmt.Errorf("open layout: %w", err)
	}
	s := &Store{
		open: func(rel string) (io.ReadCloser, int64, error) {
			f, err := root.Open(filepath.FromSlash(rel))
			if err != nil {
				return nil, 0, err
			}
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			if !st.Mode().IsRegular() {
				f.Close()
				return nil, 0, fmt.Errorf("%s: not a regular file", rel)
			}
			return f, st.Size(), nil
		},
		close: root.Close,
	}
	if err := s.load(dir); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// OpenTar opens the layout inside the tar archive at path without
// unpacking it: members are read in place. The archive is refused
// (ErrHostileArchive) when package tarindex refuses it (compressed, a member
// twice, a member that is not a regular file or a directory, a path that is
// absolute or climbs out with "..") and when it holds a member that is not
// part of an OCI image layout or a `docker save` archive of Docker 25+ (see
// layoutMembers): a loader might read what verification does not.
func OpenTar(p string) (*Store, error) {
	a, err := tarindex.Open(p)
	if err != nil {
		return nil, err
	}
	if err := layoutMembers(a.Names()); err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s := &Store{
		open: func(rel string) (io.ReadCloser, int64, error) {
			r, size, err := a.Open(rel)
			if err != nil {
				return nil, 0, err
			}
			return io.NopCloser(r), size, nil
		},
		close: a.Close,
	}
	if err := s.load(p); err != nil {
		a.Close()
		return nil, err
	}
	return s, nil
}

// layoutMembers refuses members that are not part of an OCI image layout
// as Docker 25+, podman and imgsign write it: oci-layout, index.json,
// manifest.json and repositories (the `docker load` lists, checked by
// CheckLoad), blobs/sha256/ and SHA-256 named blobs in it. Anything else
// (legacy layer directories <id>/layer.tar and <id>/json, which `docker
// load` reads without manifest.json, blobs of other algorithms, other files)
// is content a loader might read and verification would not.
func layoutMembers(names []string) error {
	sort.Strings(names)
	for _, n := range names {
		switch n {
		case LayoutFile, IndexFile, DockerManifestFile, RepositoriesFile, "blobs", "blobs/sha256":
			continue
		}
		if hex, ok := strings.CutPrefix(n, "blobs/sha256/"); ok && isSHA256Hex(hex) {
			continue
		}
		return fmt.Errorf("%w: %q is not part of an OCI image layout (a loader may read it, imgsign does not verify it)", ErrHostileArchive, n)
	}
	return nil
}

// isSHA256Hex reports whether s is 64 lower-case hex digits.
func isSHA256Hex(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// load reads oci-layout and index.json.
func (s *Store) load(where string) error {
	raw, err := s.readSmall(LayoutFile, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := s.readSmall(DockerManifestFile, MaxIndexBytes); err == nil {
			return fmt.Errorf("%s: %w: a `docker save` archive from Docker before 25 (no oci-layout): it holds no registry manifest, so the signed digest cannot be checked; save with Docker 25 or later, or with 'imgsign save'", where, ErrNotLayout)
		}
		return fmt.Errorf("%s: %w: no %s file", where, ErrNotLayout, LayoutFile)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	var lf struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(raw, &lf); err != nil || lf.Version != layoutVersion {
		return fmt.Errorf("%s: %w: %s is not {\"imageLayoutVersion\": %q}", where, ErrNotLayout, LayoutFile, layoutVersion)
	}
	raw, err = s.readSmall(IndexFile, MaxIndexBytes)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", where, ErrNotLayout, err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w: malformed %s: %w", where, ErrNotLayout, IndexFile, err)
	}
	if len(idx.Manifests) > MaxEntries {
		return fmt.Errorf("%s: %w: %s lists %d entries (limit %d)", where, ErrHostileArchive, IndexFile, len(idx.Manifests), MaxEntries)
	}
	s.Index = *idx
	return nil
}

// readSmall reads a whole file of the layout, failing if it has more than
// max bytes.
func (s *Store) readSmall(rel string, max int64) ([]byte, error) {
	rc, size, err := s.open(rel)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > max {
		return nil, fmt.Errorf("%s: %d bytes (limit %d)", rel, size, max)
	}
	return io.ReadAll(io.LimitReader(rc, max))
}

// Close releases the directory or archive.
func (s *Store) Close() error { return s.close() }

// OpenBlob opens the blob with digest h and returns it with its size. The
// content is not checked here: readers check it against the digest they
// asked for (an oci.Client always does).
func (s *Store) OpenBlob(h v1.Hash) (io.ReadCloser, int64, error) {
	if h.Algorithm != "sha256" || !isSHA256Hex(h.Hex) {
		return nil, 0, fmt.Errorf("blob %s: %w: not a SHA-256 digest", h, fs.ErrNotExist)
	}
	return s.open("blobs/sha256/" + h.Hex)
}

// ReadBlob reads a whole blob of at most max bytes.
func (s *Store) ReadBlob(h v1.Hash, max int64) ([]byte, error) {
	rc, size, err := s.OpenBlob(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > max {
		return nil, fmt.Errorf("blob %s: %d bytes (limit %d)", h, size, max)
	}
	return io.ReadAll(rc)
}

// Image is an image named in the layout's index.
type Image struct {
	// Name is the reference the image was saved as.
	Name name.Reference
	// Descriptor is its index.json entry.
	Descriptor v1.Descriptor
}

// Images returns the images index.json names by full reference
// (registry/repository:tag, in the io.containerd.image.name annotation, or
// org.opencontainers.image.ref.name when that holds a full reference), in
// order, except the attachment tags saved with them (sha256-<hex>.sig,
// .att, .sbom and referrers fallback tags). Entries named by a bare tag
// only are not returned: Transport finds them when asked for any
// repository with that tag.
func (s *Store) Images() []Image {
	var out []Image
	for _, d := range s.Index.Manifests {
		ref, ok := fullName(d)
		if !ok || isAttachmentTag(ref) {
			continue
		}
		out = append(out, Image{Name: ref, Descriptor: d})
	}
	return out
}

// fullName returns the full reference an index.json entry is saved under.
func fullName(d v1.Descriptor) (name.Reference, bool) {
	n := d.Annotations[ImageNameAnnotation]
	if n == "" && strings.Contains(d.Annotations[RefNameAnnotation], "/") {
		n = d.Annotations[RefNameAnnotation]
	}
	if n == "" {
		return nil, false
	}
	r, err := name.ParseReference(n)
	return r, err == nil
}

// isAttachmentTag reports whether ref is a tag of cosign's legacy storage
// or a referrers fallback tag: sha256-<64 hex>[.suffix].
func isAttachmentTag(ref name.Reference) bool {
	t, ok := ref.(name.Tag)
	return ok && isAttachmentTagName(t.TagStr())
}

// isAttachmentTagName reports whether tag is sha256-<64 hex>[.suffix].
func isAttachmentTagName(tag string) bool {
	hex, ok := strings.CutPrefix(tag, "sha256-")
	if !ok {
		return false
	}
	hex, _, _ = strings.Cut(hex, ".")
	return len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == ""
}

// lookupTag returns the index.json entry saved as repo:tag. An entry with
// a full name matches only that repository; one named by the bare tag only
// matches any repository when no other bare entry has that tag.
func (s *Store) lookupTag(repo name.Repository, tag string) (v1.Descriptor, bool) {
	var bare []v1.Descriptor
	for _, d := range s.Index.Manifests {
		if ref, ok := fullName(d); ok {
			if t, isTag := ref.(name.Tag); isTag && t.TagStr() == tag && t.Context().Name() == repo.Name() {
				return d, true
			}
			continue
		}
		if d.Annotations[RefNameAnnotation] == tag {
			bare = append(bare, d)
		}
	}
	if len(bare) == 1 {
		return bare[0], true
	}
	return v1.Descriptor{}, false
}

// isManifestType reports whether mt is a manifest or index media type.
func isManifestType(mt types.MediaType) bool { return mt.IsImage() || mt.IsIndex() }
