package oci

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// HeadDigest returns the digest a tag names with one HEAD request, taking
// the registry's Docker-Content-Digest header at its word. That is safe
// only where the digest is what gets verified and then used (an admission
// webhook verifies the digest and pins the Pod to it; the kubelet checks
// the content against it); Resolve, which hashes the manifest it reads, is
// the choice everywhere else. A digest reference is returned as it is, with
// no request. A registry that answers HEAD without a digest is asked with a
// GET (Resolve).
func (c *Client) HeadDigest(ctx context.Context, ref name.Reference) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	opts, err := c.options(ctx, ref.Context(), false)
	if err != nil {
		return name.Digest{}, err
	}
	desc, err := remote.Head(ref, opts...)
	if err != nil {
		if isNotFound(err) {
			return name.Digest{}, wrapNotFound(ref.String(), err)
		}
		if ctx.Err() != nil {
			return name.Digest{}, fmt.Errorf("%s: %w", ref, err)
		}
		r, gerr := c.Resolve(ctx, ref)
		if gerr != nil {
			return name.Digest{}, gerr
		}
		return r.Ref, nil
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}
