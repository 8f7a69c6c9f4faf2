package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/pkg/oci"
)

// SaveOptions say what Save writes.
type SaveOptions struct {
	// SkipAttached saves the images only, nothing attached to them.
	SkipAttached bool
	// SignatureRepo is where the images' attachments are stored (sign and
	// verify --signature-repository); nil means each image's repository.
	// They are saved as attached to the image (named in its repository),
	// as the layout holds each image with its signatures.
	SignatureRepo *name.Repository
}

// SavedImage is one image Save wrote.
type SavedImage struct {
	// Name is the reference it is saved under (its index.json name).
	Name string `json:"name"`
	// Digest is its manifest digest.
	Digest string `json:"digest"`
	// Manifests is how many manifests it has: 1, or an index and its
	// children.
	Manifests int `json:"manifests"`
	// Attached are the attachments saved with it: legacy tags and
	// referrer manifests, as registry references.
	Attached []string `json:"attached,omitempty"`
}

// SaveResult says what Save wrote.
type SaveResult struct {
	Images []SavedImage `json:"images"`
	// Blobs and Bytes count the blobs written (manifests included).
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// Warnings say what was left out (a referrer that is not an image
	// manifest with that subject, a truncated referrers list, ...).
	Warnings []string `json:"warnings,omitempty"`
}

// Save writes the images refs name, read through c, into a new OCI image
// layout at dir, each with everything attached to it in both storage
// schemes (unless o.SkipAttached): for the image and, for an index, for each
// of its manifests, the legacy tags sha256-<hex>.sig, .att and .sbom and
// every referrer. Each reference is resolved once; manifests are written
// as read, so digests are unchanged, and every manifest and blob is checked
// against its digest while it streams to disk.
//
// index.json names each image by its full reference (annotation
// io.containerd.image.name, and the tag in org.opencontainers.image.ref.name)
// and lists its legacy tags by name and its referrers by digest, which is
// what Transport serves. dir must not exist or be empty; the layout is
// written beside it and renamed into place when complete, so a failed save
// leaves nothing behind.
func Save(ctx context.Context, c *oci.Client, refs []name.Reference, dir string, o SaveOptions) (*SaveResult, error) {
	if err := checkEmpty(dir); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".partial-")
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	w := &writer{c: c, dir: tmp, blobs: map[v1.Hash]bool{}, entries: map[string]bool{}, out: &SaveResult{}}
	for _, ref := range refs {
		if err := w.saveImage(ctx, ref, o); err != nil {
			return nil, err
		}
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	done = true
	return w.out, nil
}

// checkEmpty refuses a dir that exists and is not an empty directory.
func checkEmpty(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("save: %w", err)
	case !st.IsDir():
		return fmt.Errorf("save: %s: %w and is not a directory", dir, fs.ErrExist)
	}
	ents, err := os.ReadDir(dir)
	switch {
	case err != nil:
		return fmt.Errorf("save: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("save: %s: %w and is not empty", dir, fs.ErrExist)
	}
	return nil
}

// writer accumulates one layout.
type writer struct {
	c        *oci.Client
	dir      string
	blobs    map[v1.Hash]bool
	index    []v1.Descriptor
	entries  map[string]bool // name or digest of each index.json entry
	out      *SaveResult
	attached []string
}

// saveImage writes one image, its manifests' blobs and its attachments.
func (w *writer) saveImage(ctx context.Context, ref name.Reference, o SaveOptions) error {
	root, err := w.c.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	subjects, err := w.writeTree(ctx, root)
	if err != nil {
		return err
	}
	ann := map[string]string{ImageNameAnnotation: ref.Name()}
	if t, ok := ref.(name.Tag); ok {
		ann[RefNameAnnotation] = t.TagStr()
	}
	w.addEntry(ref.Name(), v1.Descriptor{MediaType: root.Descriptor.MediaType, Size: root.Descriptor.Size, Digest: root.Descriptor.Digest, Annotations: ann})
	w.attached = nil
	if !o.SkipAttached {
		attRepo := root.Ref.Context()
		if o.SignatureRepo != nil {
			attRepo = *o.SignatureRepo
		}
		for _, s := range subjects {
			if err := w.saveAttached(ctx, attRepo.Digest(s.String()), root.Ref.Context().Digest(s.String())); err != nil {
				return err
			}
		}
	}
	w.out.Images = append(w.out.Images, SavedImage{Name: ref.Name(), Digest: root.Ref.DigestStr(), Manifests: len(subjects), Attached: w.attached})
	return nil
}

// writeTree writes the manifest r and, for an index, every manifest under
// it, each with its blobs. It returns the digests of the manifests written.
func (w *writer) writeTree(ctx context.Context, r *oci.Resolved) ([]v1.Hash, error) {
	var written []v1.Hash
	queue := []*oci.Resolved{r}
	seen := map[v1.Hash]bool{r.Descriptor.Digest: true}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if len(written) == oci.MaxDeepManifests {
			return nil, fmt.Errorf("%s: %w: more than %d manifests", r.Ref, oci.ErrTooMany, oci.MaxDeepManifests)
		}
		written = append(written, cur.Descriptor.Digest)
		children, err := w.writeManifest(ctx, cur)
		if err != nil {
			return nil, err
		}
		for _, ch := range children {
			if seen[ch.Digest] {
				continue
			}
			seen[ch.Digest] = true
			next, err := w.c.Resolve(ctx, r.Ref.Context().Digest(ch.Digest.String()))
			if err != nil {
				return nil, err
			}
			queue = append(queue, next)
		}
	}
	return written, nil
}

// writeManifest writes a manifest (as read, already checked against its
// digest) and the blobs of an image manifest, streaming each from the
// registry. It returns the children of an index.
func (w *writer) writeManifest(ctx context.Context, r *oci.Resolved) ([]v1.Descriptor, error) {
	if err := w.putBlob(r.Descriptor.Digest, bytes.NewReader(r.Manifest)); err != nil {
		return nil, err
	}
	if r.Descriptor.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(r.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed index: %w", r.Ref, err)
		}
		return idx.Manifests, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(r.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: malformed manifest: %w", r.Ref, err)
	}
	if len(m.Layers) >= oci.MaxDeepBlobs {
		return nil, fmt.Errorf("%s: %w: %d layers", r.Ref, oci.ErrTooMany, len(m.Layers))
	}
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if w.blobs[b.Digest] || !b.MediaType.IsDistributable() {
			continue // written already, or a foreign layer the registry does not hold
		}
		rc, err := w.c.OpenBlob(ctx, r.Ref.Context(), b)
		if err != nil {
			return nil, err
		}
		err = w.putBlob(b.Digest, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// saveAttached writes the legacy attachment tags and the referrers of
// subject, read where from names it (subject itself, or its digest in a
// signature repository) and named as attached to subject.
func (w *writer) saveAttached(ctx context.Context, from, subject name.Digest) error {
	for _, suffix := range []string{oci.SignatureTagSuffix, oci.AttestationTagSuffix, oci.SBOMTagSuffix} {
		src, err := oci.AttachedTag(from, nil, suffix)
		if err != nil {
			return err
		}
		tag, err := oci.AttachedTag(subject, nil, suffix)
		if err != nil {
			return err
		}
		r, err := w.c.Resolve(ctx, src)
		if errors.Is(err, oci.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !r.Descriptor.MediaType.IsImage() {
			return fmt.Errorf("%s: media type %q is not an image manifest", tag, r.Descriptor.MediaType)
		}
		if _, err := w.writeManifest(ctx, r); err != nil {
			return err
		}
		w.addEntry(tag.Name(), v1.Descriptor{MediaType: r.Descriptor.MediaType, Size: r.Descriptor.Size, Digest: r.Descriptor.Digest,
			Annotations: map[string]string{ImageNameAnnotation: tag.Name(), RefNameAnnotation: tag.TagStr()}})
		w.attached = append(w.attached, tag.Name())
	}
	refs, err := w.c.ListReferrers(ctx, from)
	if err != nil {
		return err
	}
	w.out.Warnings = append(w.out.Warnings, refs.Warnings...)
	for _, d := range refs.Descriptors {
		ref := subject.Context().Digest(d.Digest.String())
		r, err := w.c.Resolve(ctx, from.Context().Digest(d.Digest.String()))
		if err != nil {
			return err
		}
		if !r.Descriptor.MediaType.IsImage() || !hasSubject(r.Manifest, subject) {
			w.out.Warnings = append(w.out.Warnings, fmt.Sprintf("referrer %s of %s: not an image manifest with that subject; not saved", d.Digest, subject.DigestStr()))
			continue
		}
		if _, err := w.writeManifest(ctx, r); err != nil {
			return err
		}
		w.addEntry(d.Digest.String(), v1.Descriptor{MediaType: r.Descriptor.MediaType, Size: r.Descriptor.Size, Digest: r.Descriptor.Digest, ArtifactType: d.ArtifactType})
		w.attached = append(w.attached, ref.String())
	}
	return nil
}

// hasSubject reports whether the image manifest raw names subject.
func hasSubject(raw []byte, subject name.Digest) bool {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	return err == nil && m.Subject != nil && m.Subject.Digest.String() == subject.DigestStr()
}

// addEntry adds an index.json entry once per key.
func (w *writer) addEntry(key string, d v1.Descriptor) {
	if w.entries[key] {
		return
	}
	w.entries[key] = true
	w.index = append(w.index, d)
}

// putBlob writes a blob under blobs/sha256, through a temporary file
// renamed into place once all of r was read without error (r checks the
// digest as it is read).
func (w *writer) putBlob(h v1.Hash, r io.Reader) error {
	if w.blobs[h] {
		return nil
	}
	if h.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm", h)
	}
	dir := filepath.Join(w.dir, "blobs", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, h.Hex))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("save blob %s: %w", h, err)
	}
	w.blobs[h] = true
	w.out.Blobs++
	w.out.Bytes += n
	return nil
}

// finish writes oci-layout and index.json.
func (w *writer) finish() error {
	idx, err := json.MarshalIndent(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: w.index}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(w.dir, LayoutFile), []byte(`{"imageLayoutVersion":"`+layoutVersion+`"}`), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(w.dir, IndexFile), idx, 0o644)
}
