package oci

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// LegacyAttachment is one legacy attachment tag of an image.
type LegacyAttachment struct {
	// Suffix is SignatureTagSuffix, AttestationTagSuffix or SBOMTagSuffix.
	Suffix string
	Tag    name.Tag
	// Digest is the manifest digest at the tag.
	Digest v1.Hash
	// Layers are the manifest's layers (one per signature or attestation).
	Layers []v1.Descriptor
}

// Attached is everything attached to an image, in both storage schemes.
type Attached struct {
	Legacy    []LegacyAttachment
	Referrers *Referrers
}

// ListAttached reads the legacy attachment tags of img (in repo, or img's
// repository when nil) and its referrers.
func (c *Client) ListAttached(ctx context.Context, img name.Digest, repo *name.Repository) (*Attached, error) {
	out := &Attached{}
	for _, suffix := range []string{SignatureTagSuffix, AttestationTagSuffix, SBOMTagSuffix} {
		tag, err := AttachedTag(img, repo, suffix)
		if err != nil {
			return nil, err
		}
		m, h, err := c.ReadManifest(ctx, tag)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Legacy = append(out.Legacy, LegacyAttachment{Suffix: suffix, Tag: tag, Digest: h, Layers: m.Layers})
	}
	subject := img
	if repo != nil {
		subject = repo.Digest(img.DigestStr())
	}
	refs, err := c.ListReferrers(ctx, subject)
	if err != nil {
		return nil, err
	}
	out.Referrers = refs
	return out, nil
}

// Delete deletes the manifest with digest d. Registries must allow deletes
// (distribution: storage.delete.enabled).
func (c *Client) Delete(ctx context.Context, d name.Digest) error {
	opts, err := c.options(ctx, d.Context(), true)
	if err != nil {
		return err
	}
	if err := remote.Delete(d, opts...); err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", d, err)
	}
	return nil
}

// DeleteTagged deletes the manifest with digest d that tag points at. Most
// registries drop the tag with the manifest; for those that keep tags
// apart (or only delete by tag), the tag is deleted too, and a refusal to
// delete by tag (distribution refuses) is ignored.
func (c *Client) DeleteTagged(ctx context.Context, tag name.Tag, d v1.Hash) error {
	if err := c.Delete(ctx, tag.Context().Digest(d.String())); err != nil {
		return err
	}
	opts, err := c.options(ctx, tag.Context(), true)
	if err != nil {
		return err
	}
	_ = remote.Delete(tag, opts...)
	return nil
}

// RemoveReferrers deletes the referrer manifests of subject for which drop
// reports true and, where the registry has no referrers API, removes them
// from the fallback index (deleting the index when nothing is left). It
// returns how many were removed.
func (c *Client) RemoveReferrers(ctx context.Context, subject name.Digest, drop func(v1.Descriptor) bool) (int, error) {
	refs, err := c.ListReferrers(ctx, subject)
	if err != nil {
		return 0, err
	}
	removed := map[v1.Hash]bool{}
	for _, r := range refs.Descriptors {
		if !drop(r) {
			continue
		}
		if err := c.Delete(ctx, subject.Context().Digest(r.Digest.String())); err != nil {
			return len(removed), err
		}
		removed[r.Digest] = true
	}
	if refs.API || len(removed) == 0 {
		return len(removed), nil
	}
	// Fallback index: read, drop, write, and check; a concurrent signer's
	// new entry is kept because each pass starts from what is stored.
	tag, err := FallbackTag(subject)
	if err != nil {
		return len(removed), err
	}
	for attempt := 0; attempt < writeAttempts; attempt++ {
		entries, digest, _, err := c.readFallback(ctx, subject)
		if err != nil {
			return len(removed), err
		}
		kept := entries[:0:0]
		for _, e := range entries {
			if !removed[e.Digest] {
				kept = append(kept, e)
			}
		}
		if len(kept) == len(entries) {
			return len(removed), nil
		}
		if len(kept) == 0 {
			if err := c.DeleteTagged(ctx, tag, digest); err != nil {
				return len(removed), err
			}
		} else if _, err := c.putIndex(ctx, tag, kept, precondition{digest: digest}); errors.Is(err, errPrecondition) {
			continue // changed since read: read again
		} else if err != nil {
			return len(removed), err
		}
		sleep(ctx, jitter())
	}
	return len(removed), fmt.Errorf("%s: concurrent writers kept replacing it", tag)
}
