package oci

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// CopyOptions say what Copy copies.
type CopyOptions struct {
	// Platform, with an index, copies only the child manifest for this
	// platform (and what is attached to that child). nil copies the index
	// with every child.
	Platform *v1.Platform
	// Progress, when set, receives go-containerregistry's progress updates
	// while the image's blobs are written (not the attached artifacts'). It
	// must be drained; Copy never closes it.
	Progress chan<- v1.Update
	// SkipAttached copies the image only, nothing attached to it.
	SkipAttached bool
	// Source, when set, is read for src instead of the copying client: a
	// client over an OCI image layout (package layout) loads a saved image
	// into a registry. nil reads src through the copying client.
	Source *Client
	// SignatureRepo is where src's attachments are stored (sign and verify
	// --signature-repository); nil means src's own repository. They are
	// copied next to dst either way.
	SignatureRepo *name.Repository
}

// CopyResult says what Copy did.
type CopyResult struct {
	// Digest is the manifest digest copied, identical at both ends.
	Digest string
	// Manifests is how many image manifests were copied: 1, or an index
	// and its children.
	Manifests int
	// Attached are the attachments copied (or already present at the
	// destination): legacy tags and referrer manifests, as destination
	// references.
	Attached []string
	// Warnings say what was left out (a referrer that is not an image
	// manifest or names another subject, a truncated referrers list, ...).
	Warnings []string
}

// Copy copies the image src to dst, with what is attached to it, so that
// signatures and attestations verify at dst. src is resolved once; dst is a
// tag (the image is tagged there) or a digest, which must be src's. The
// manifest bytes are copied as they are, so the digest the signatures name
// is identical at dst (which is checked); blobs stream from registry to
// registry and are mounted within one. With an index (and no Platform),
// what is attached to the index and to each child is copied.
//
// Attached are the legacy tags sha256-<hex>.sig, .att and .sbom (an
// existing tag at dst is merged with, not replaced) and every referrer,
// which is listed at dst by the referrers API where dst has it and in the
// fallback index otherwise, keeping the entries already there.
func (c *Client) Copy(ctx context.Context, src, dst name.Reference, o CopyOptions) (*CopyResult, error) {
	s := c
	if o.Source != nil {
		s = o.Source
	}
	root, err := s.Resolve(ctx, src)
	if err != nil {
		return nil, err
	}
	if o.Platform != nil {
		if root, err = s.resolvePlatform(ctx, root, *o.Platform); err != nil {
			return nil, err
		}
	}
	d := root.Ref
	if dd, ok := dst.(name.Digest); ok && dd.DigestStr() != d.DigestStr() {
		return nil, fmt.Errorf("destination %s names another digest than the source's %s", dst, d.DigestStr())
	}
	srcRepo, dstRepo := d.Context(), dst.Context()
	if err := c.Authenticate(ctx, dstRepo, true); err != nil {
		return nil, err
	}
	srcOpts, err := s.options(ctx, srcRepo, false)
	if err != nil {
		return nil, err
	}
	dstOpts, err := c.options(ctx, dstRepo, true)
	if err != nil {
		return nil, err
	}

	out := &CopyResult{Digest: d.DigestStr(), Manifests: 1}
	subjects := []v1.Descriptor{root.Descriptor}
	var taggable remote.Taggable
	if root.Descriptor.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(root.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed index: %w", d, err)
		}
		if len(idx.Manifests) >= MaxDeepManifests {
			return nil, fmt.Errorf("%s: %w: %d manifests", d, ErrTooMany, len(idx.Manifests))
		}
		out.Manifests += len(idx.Manifests)
		subjects = append(subjects, idx.Manifests...)
		if taggable, err = remote.Index(d, srcOpts...); err != nil {
			return nil, wrapNotFound(d.String(), err)
		}
	} else if taggable, err = remote.Image(d, srcOpts...); err != nil {
		return nil, wrapNotFound(d.String(), err)
	}
	if err := c.push(ctx, dst, taggable, dstOpts, o.Progress); err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", d, dst, err)
	}
	got, err := c.Resolve(ctx, dst)
	if err != nil {
		return nil, err
	}
	if got.Ref.DigestStr() != d.DigestStr() {
		return nil, fmt.Errorf("%s: %w: the destination holds %s, not %s", dst, ErrDigestMismatch, got.Ref.DigestStr(), d.DigestStr())
	}
	if o.SkipAttached {
		return out, nil
	}
	attRepo, attOpts := srcRepo, srcOpts
	if o.SignatureRepo != nil {
		attRepo = *o.SignatureRepo
		if attOpts, err = s.options(ctx, attRepo, false); err != nil {
			return nil, err
		}
	}
	for _, subj := range subjects {
		if err := c.copyAttached(ctx, s, attRepo.Digest(subj.Digest.String()), dstRepo.Digest(subj.Digest.String()), attOpts, dstOpts, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// resolvePlatform returns the child of the index r for platform p.
func (c *Client) resolvePlatform(ctx context.Context, r *Resolved, p v1.Platform) (*Resolved, error) {
	child, err := r.PlatformManifest(p)
	if err != nil {
		return nil, err
	}
	return c.Resolve(ctx, r.Ref.Context().Digest(child.Digest.String()))
}

// push writes t (an image or index read from a registry: blobs stream, and
// the manifest is written as read) to ref, forwarding progress updates
// without closing progress.
func (c *Client) push(ctx context.Context, ref name.Reference, t remote.Taggable, opts []remote.Option, progress chan<- v1.Update) error {
	if progress == nil {
		return remote.Push(ref, t, opts...)
	}
	ch := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range ch { // closed by remote.Push
			select {
			case progress <- u:
			case <-ctx.Done():
			}
		}
	}()
	err := remote.Push(ref, t, append(opts[:len(opts):len(opts)], remote.WithProgress(ch))...)
	<-done
	return err
}

// copyAttached copies the legacy attachment tags and the referrers of src
// (a subject digest, read through s) to dst (the same digest in the
// destination).
func (c *Client) copyAttached(ctx context.Context, s *Client, src, dst name.Digest, srcOpts, dstOpts []remote.Option, out *CopyResult) error {
	for _, suffix := range []string{SignatureTagSuffix, AttestationTagSuffix, SBOMTagSuffix} {
		copied, err := c.copyLegacy(ctx, src, dst, suffix, srcOpts, dstOpts)
		if err != nil {
			return err
		}
		if copied != "" {
			out.Attached = append(out.Attached, copied)
		}
	}

	refs, err := s.ListReferrers(ctx, src)
	if err != nil {
		return err
	}
	out.Warnings = append(out.Warnings, refs.Warnings...)
	var (
		entries []v1.Descriptor
		api     bool
	)
	for _, r := range refs.Descriptors {
		entry, ok, gotAPI, err := c.copyReferrer(ctx, src, dst, r, srcOpts, dstOpts)
		if err != nil {
			return err
		}
		if !ok {
			out.Warnings = append(out.Warnings, fmt.Sprintf("referrer %s of %s: not an image manifest with that subject; not copied", r.Digest, src.DigestStr()))
			continue
		}
		api = api || gotAPI
		entries = append(entries, entry)
		out.Attached = append(out.Attached, dst.Context().Digest(entry.Digest.String()).String())
	}
	if len(entries) == 0 || api {
		return nil
	}
	if known, ok := c.referrersAPI(dst.RegistryStr()); ok {
		api = known
	} else {
		r, err := c.ListReferrers(ctx, dst)
		if err != nil {
			return err
		}
		api = r.API
	}
	if api {
		return nil
	}
	return c.addAllToFallback(ctx, dst, entries)
}

// copyLegacy copies the legacy tag of kind suffix of src, if there is one,
// and returns the destination tag. A tag missing at dst is copied as is; a
// different one there gets the layers it lacks.
func (c *Client) copyLegacy(ctx context.Context, src, dst name.Digest, suffix string, srcOpts, dstOpts []remote.Option) (string, error) {
	srcTag, err := AttachedTag(src, nil, suffix)
	if err != nil {
		return "", err
	}
	dstTag, err := AttachedTag(dst, nil, suffix)
	if err != nil {
		return "", err
	}
	desc, err := remote.Get(srcTag, srcOpts...)
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", srcTag, err)
	}
	if !desc.MediaType.IsImage() {
		return "", fmt.Errorf("%s: media type %q is not an image manifest", srcTag, desc.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return "", fmt.Errorf("%s: malformed manifest: %w", srcTag, err)
	}
	if n := len(m.Layers); n > c.limits.MaxSignatures {
		return "", fmt.Errorf("%s: %w: manifest declares %d layers (limit %d)", srcTag, ErrTooMany, n, c.limits.MaxSignatures)
	}
	_, dstDigest, err := c.readAttachments(ctx, dstTag)
	if err != nil {
		return "", err
	}
	switch {
	case dstDigest == desc.Digest:
		return dstTag.String(), nil // copied before
	case dstDigest == (v1.Hash{}):
		img, err := desc.Image()
		if err != nil {
			return "", err
		}
		if err := remote.Write(dstTag, img, dstOpts...); err != nil {
			return "", fmt.Errorf("copy %s to %s: %w", srcTag, dstTag, err)
		}
		return dstTag.String(), nil
	}
	// Merge into the destination's own tag, keeping its layers.
	upload := func() error { return c.copyBlobs(src.Context(), dst.Context(), m.Layers, srcOpts, dstOpts) }
	if err := upload(); err != nil {
		return "", err
	}
	_, err = c.converge(ctx, list{
		name:    dstTag.String(),
		read:    func() ([]v1.Descriptor, v1.Hash, error) { return c.readAttachments(ctx, dstTag) },
		prepare: func(layers []v1.Descriptor) error { return c.uploadAttachmentConfig(ctx, dstTag, layers) },
		write: func(layers []v1.Descriptor, cond precondition) (v1.Hash, error) {
			return c.putAttachmentManifest(ctx, dstTag, layers, cond)
		},
		reload: upload,
	}, m.Layers, func(layers []v1.Descriptor, i int) bool {
		for _, l := range layers {
			if l.Digest == m.Layers[i].Digest && l.Annotations[SignatureAnnotation] == m.Layers[i].Annotations[SignatureAnnotation] {
				return true
			}
		}
		return false
	})
	if err != nil {
		return "", err
	}
	return dstTag.String(), nil
}

// copyReferrer copies the referrer r of src: its blobs, then its manifest
// by digest. ok is false (and nothing copied) when r is not an image
// manifest whose subject is src. api reports whether the destination
// registry said it processed the subject. entry is the descriptor a
// referrers list holds for it.
func (c *Client) copyReferrer(ctx context.Context, src, dst name.Digest, r v1.Descriptor, srcOpts, dstOpts []remote.Option) (entry v1.Descriptor, ok, api bool, err error) {
	ref := src.Context().Digest(r.Digest.String())
	desc, err := remote.Get(ref, srcOpts...) // checked against the digest
	if err != nil {
		return v1.Descriptor{}, false, false, wrapNotFound(ref.String(), err)
	}
	if !desc.MediaType.IsImage() {
		return v1.Descriptor{}, false, false, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil || m.Subject == nil || m.Subject.Digest.String() != src.DigestStr() {
		return v1.Descriptor{}, false, false, nil
	}
	if len(m.Layers) >= MaxDeepBlobs {
		return v1.Descriptor{}, false, false, fmt.Errorf("%s: %w: %d layers", ref, ErrTooMany, len(m.Layers))
	}
	if err := c.copyBlobs(src.Context(), dst.Context(), append([]v1.Descriptor{m.Config}, m.Layers...), srcOpts, dstOpts); err != nil {
		return v1.Descriptor{}, false, false, err
	}
	api, err = c.putManifest(ctx, dst.Context().Digest(desc.Digest.String()), desc.Manifest, desc.MediaType)
	if err != nil {
		return v1.Descriptor{}, false, false, err
	}
	entry = v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if entry.ArtifactType == "" {
		entry.ArtifactType = string(m.Config.MediaType)
	}
	return entry, true, api, nil
}

// copyBlobs copies blobs from one repository to another, streaming (or
// mounting within a registry); blobs already there are skipped.
func (c *Client) copyBlobs(src, dst name.Repository, blobs []v1.Descriptor, srcOpts, dstOpts []remote.Option) error {
	for _, b := range blobs {
		if !b.MediaType.IsDistributable() {
			continue
		}
		l, err := remote.Layer(src.Digest(b.Digest.String()), srcOpts...)
		if err != nil {
			return err
		}
		if err := remote.WriteLayer(dst, l, dstOpts...); err != nil {
			return fmt.Errorf("copy blob %s to %s: %w", b.Digest, dst, err)
		}
	}
	return nil
}

// addAllToFallback adds entries to the fallback index of subject, keeping
// what is there, in one converge.
func (c *Client) addAllToFallback(ctx context.Context, subject name.Digest, entries []v1.Descriptor) error {
	tag, err := FallbackTag(subject)
	if err != nil {
		return err
	}
	_, err = c.converge(ctx, list{
		name: tag.String(),
		read: func() ([]v1.Descriptor, v1.Hash, error) {
			d, h, _, err := c.readFallback(ctx, subject)
			return d, h, err
		},
		write: func(e []v1.Descriptor, cond precondition) (v1.Hash, error) { return c.putIndex(ctx, tag, e, cond) },
	}, entries, func(current []v1.Descriptor, i int) bool {
		for _, e := range current {
			if e.Digest == entries[i].Digest {
				return true
			}
		}
		return false
	})
	return err
}
