package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrTooMany is wrapped when a registry object declares more entries than
// the limits allow.
var ErrTooMany = errors.New("too many entries")

// ErrDigestMismatch is wrapped when content does not hash to its digest.
var ErrDigestMismatch = errors.New("content does not match its digest")

// AttachedTag returns the legacy tag that holds attachments of kind suffix
// (SignatureTagSuffix, AttestationTagSuffix, ...) for img: "<alg>-<hex>.<suffix>"
// in repo, or in img's own repository when repo is nil.
func AttachedTag(img name.Digest, repo *name.Repository, suffix string) (name.Tag, error) {
	h, err := v1.NewHash(img.DigestStr())
	if err != nil {
		return name.Tag{}, err
	}
	r := img.Context()
	if repo != nil {
		r = *repo
	}
	return r.Tag(h.Algorithm + "-" + h.Hex + "." + suffix), nil
}

// ReadManifest fetches the image manifest at ref (usually an attachment
// tag) and parses it, refusing an index or a manifest declaring more than
// Limits.MaxSignatures layers. A missing tag is ErrNotFound. It returns the
// manifest and its digest, computed from the bytes received.
func (c *Client) ReadManifest(ctx context.Context, ref name.Reference) (*v1.Manifest, v1.Hash, error) {
	opts, err := c.options(ctx, ref.Context(), false)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	d, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, v1.Hash{}, wrapNotFound(ref.String(), err)
	}
	desc, err := checkManifest(ref, d.Descriptor, d.Manifest)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if !d.MediaType.IsImage() {
		return nil, v1.Hash{}, fmt.Errorf("%s: media type %q is not an image manifest", ref, d.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(d.Manifest))
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%s: malformed manifest: %w", ref, err)
	}
	if n := len(m.Layers); n > c.limits.MaxSignatures {
		return nil, v1.Hash{}, fmt.Errorf("%s: %w: manifest declares %d layers (limit %d)", ref, ErrTooMany, n, c.limits.MaxSignatures)
	}
	return m, desc.Digest, nil
}

// FetchBlob downloads the blob desc describes from repo, reading at most max
// bytes, and checks it hashes to desc.Digest. A declared size above max is
// refused before any request is made.
func (c *Client) FetchBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("blob %s: %w: declared size %d (limit %d)", desc.Digest, ErrTooLarge, desc.Size, max)
	}
	if desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: unsupported digest algorithm", desc.Digest)
	}
	opts, err := c.options(asDocument(ctx), repo, false)
	if err != nil {
		return nil, err
	}
	l, err := remote.Layer(repo.Digest(desc.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, wrapNotFound("blob "+desc.Digest.String(), err)
	}
	defer rc.Close()
	// go-containerregistry hashes while reading and fails at EOF on a
	// mismatch; reading one byte past max detects an oversized blob. A
	// declared size is read into a buffer of exactly that size (plus the
	// byte that detects more), not one grown by doubling.
	data, err := readAtMost(rc, desc.Size, max)
	if errors.Is(err, ErrRequestTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w: %v", desc.Digest, ErrDigestMismatch, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("blob %s: %w: more than %d bytes", desc.Digest, ErrTooLarge, max)
	}
	if desc.Size > 0 && int64(len(data)) != desc.Size {
		return nil, fmt.Errorf("blob %s: %w: %d bytes, descriptor says %d", desc.Digest, ErrDigestMismatch, len(data), desc.Size)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(data)); h != desc.Digest {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, ErrDigestMismatch)
	}
	return data, nil
}

// readAtMost reads r to its end, at most max+1 bytes; size, when positive,
// is the expected length, allocated at once.
func readAtMost(r io.Reader, size, max int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(io.LimitReader(r, max+1))
	}
	buf := make([]byte, size+1)
	n, err := io.ReadFull(r, buf)
	switch err {
	case io.ErrUnexpectedEOF, io.EOF:
		return buf[:n], nil
	case nil: // more than size bytes: read on to tell the limit apart
		rest, err := io.ReadAll(io.LimitReader(r, max+1-int64(n)))
		return append(buf, rest...), err
	}
	return buf[:n], err
}

// Attachment is a layer to add to a legacy attachment manifest.
type Attachment struct {
	Payload     []byte
	MediaType   types.MediaType
	Annotations map[string]string
}

// Descriptor returns the layer descriptor of the attachment.
func (a Attachment) Descriptor() v1.Descriptor {
	h, size, _ := v1.SHA256(bytes.NewReader(a.Payload))
	return v1.Descriptor{MediaType: a.MediaType, Size: size, Digest: h, Annotations: a.Annotations}
}

// Matcher reports whether an existing layer already holds what a new
// attachment would add (so adding it again would add nothing).
type Matcher func(existing v1.Descriptor) bool

// AddResult says what AddAttachments did.
type AddResult struct {
	// Added is how many of the attachments were new.
	Added int
	// Writes is how many times the manifest was written (more than one when
	// a concurrent writer's update had to be merged).
	Writes int
	// Digest is the manifest digest after the last write, or of the
	// manifest found when nothing was added.
	Digest v1.Hash
}

// AddAttachments adds each attachment to the legacy manifest at tag (creating
// it when missing), keeping every layer already there. An attachment for
// which same reports an existing layer is not added again.
//
// Blobs are uploaded before any manifest is written, so the manifest never
// points at missing blobs. Registries have no compare-and-swap for tags, so
// the manifest is read back after writing and merged again if a concurrent
// writer dropped one of ours (see converge).
func (c *Client) AddAttachments(ctx context.Context, tag name.Tag, adds []Attachment, same []Matcher) (AddResult, error) {
	repo := tag.Context()
	descs := make([]v1.Descriptor, len(adds))
	for i, a := range adds {
		descs[i] = a.Descriptor()
	}
	opts, err := c.options(ctx, repo, true)
	if err != nil {
		return AddResult{}, err
	}
	upload := func() error {
		for _, a := range adds {
			if err := remote.WriteLayer(repo, static.NewLayer(a.Payload, a.MediaType), opts...); err != nil {
				return fmt.Errorf("upload payload to %s: %w", repo, err)
			}
		}
		return nil
	}
	if err := upload(); err != nil {
		return AddResult{}, err
	}
	present := func(layers []v1.Descriptor, i int) bool {
		for _, l := range layers {
			if l.Digest == descs[i].Digest && (l.Annotations[SignatureAnnotation] == descs[i].Annotations[SignatureAnnotation] || (same != nil && same[i] != nil && same[i](l))) {
				return true
			}
		}
		return false
	}
	return c.converge(ctx, list{
		name:    tag.String(),
		read:    func() ([]v1.Descriptor, v1.Hash, error) { return c.readAttachments(ctx, tag) },
		prepare: func(layers []v1.Descriptor) error { return c.uploadAttachmentConfig(ctx, tag, layers) },
		write: func(layers []v1.Descriptor, cond precondition) (v1.Hash, error) {
			return c.putAttachmentManifest(ctx, tag, layers, cond)
		},
		reload: upload,
	}, descs, present)
}

// readAttachments returns the layers at tag, none when the tag is missing.
func (c *Client) readAttachments(ctx context.Context, tag name.Tag) ([]v1.Descriptor, v1.Hash, error) {
	m, h, err := c.ReadManifest(ctx, tag)
	if errors.Is(err, ErrNotFound) {
		return nil, v1.Hash{}, nil
	}
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return m.Layers, h, nil
}

// imageConfig is the JSON shape of attachmentConfig.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
	} `json:"config"`
	RootFS struct {
		Type    string    `json:"type"`
		DiffIDs []v1.Hash `json:"diff_ids"`
	} `json:"rootfs"`
}

// putAttachmentManifest writes the manifest of layers at tag (its config
// blob uploaded before, by uploadAttachmentConfig), on condition cond.
func (c *Client) putAttachmentManifest(ctx context.Context, tag name.Tag, layers []v1.Descriptor, cond precondition) (v1.Hash, error) {
	cfgBytes := attachmentConfig(layers)
	cfgHash, cfgSize, _ := v1.SHA256(bytes.NewReader(cfgBytes))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgSize, Digest: cfgHash},
		Layers:        layers,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	if _, err := c.putManifestIf(ctx, tag, raw, types.OCIManifestSchema1, cond); err != nil {
		return v1.Hash{}, err
	}
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	return h, nil
}

// uploadAttachmentConfig uploads the config blob a manifest of layers
// needs, before the manifest is written.
func (c *Client) uploadAttachmentConfig(ctx context.Context, tag name.Tag, layers []v1.Descriptor) error {
	opts, err := c.options(ctx, tag.Context(), true)
	if err != nil {
		return err
	}
	if err := remote.WriteLayer(tag.Context(), static.NewLayer(attachmentConfig(layers), types.OCIConfigJSON), opts...); err != nil {
		return fmt.Errorf("upload config to %s: %w", tag.Context(), err)
	}
	return nil
}

// attachmentConfig is the config blob of an attachment manifest: an empty
// image whose root file system lists the layers, as go-containerregistry
// (and so cosign) writes it.
func attachmentConfig(layers []v1.Descriptor) []byte {
	var cfg imageConfig
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = make([]v1.Hash, len(layers))
	for i, l := range layers {
		cfg.RootFS.DiffIDs[i] = l.Digest // payload layers are stored uncompressed
	}
	b, _ := json.Marshal(cfg) // cannot fail: plain strings and hashes
	return b
}

// isBlobUnknown reports whether a manifest write failed because the
// registry does not (yet) know a blob it references.
func isBlobUnknown(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.ManifestBlobUnknownErrorCode, transport.BlobUnknownErrorCode, transport.DigestInvalidErrorCode:
			return true
		}
	}
	return false
}

// rawManifest is a manifest to PUT as-is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func jitter() time.Duration { return time.Duration(10+rand.IntN(90)) * time.Millisecond }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
