package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Bounds of one deep verification (VerifyBlobs).
const (
	// MaxDeepManifests is the most manifests walked under one digest (an
	// index and its children).
	MaxDeepManifests = 256
	// MaxDeepBlobs is the most blobs of one manifest re-hashed.
	MaxDeepBlobs = 1000
)

// ErrBlobMismatch is wrapped when a blob's bytes do not hash to its digest
// or do not have its size: content changed in the registry's storage.
var ErrBlobMismatch = errors.New("blob content does not match its digest")

// BlobCheck says what VerifyBlobs read.
type BlobCheck struct {
	Manifests int   `json:"manifests"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
}

// VerifyBlobs fetches every manifest under d (each checked against its
// digest; an index's children too) and re-hashes every config and layer
// blob they name, streaming and never decompressing, so that a blob
// overwritten in the registry's storage is detected. A blob named by
// several manifests is read once.
func (c *Client) VerifyBlobs(ctx context.Context, d name.Digest) (BlobCheck, error) {
	var check BlobCheck
	opts, err := c.options(ctx, d.Context(), false)
	if err != nil {
		return check, err
	}
	rt, err := c.transport(ctx, d.Context(), false)
	if err != nil {
		return check, err
	}
	hc := &http.Client{Transport: rt}
	seen := map[v1.Hash]bool{}
	queue := []name.Digest{d}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if check.Manifests == MaxDeepManifests {
			return check, fmt.Errorf("%s: %w: more than %d manifests", d, ErrTooMany, MaxDeepManifests)
		}
		check.Manifests++
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return check, wrapNotFound(ref.String(), err)
		}
		switch {
		case desc.MediaType.IsIndex():
			idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
			if err != nil {
				return check, fmt.Errorf("%s: malformed index: %w", ref, err)
			}
			for _, m := range idx.Manifests {
				if !seen[m.Digest] {
					seen[m.Digest] = true
					queue = append(queue, ref.Context().Digest(m.Digest.String()))
				}
			}
		default:
			m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
			if err != nil {
				return check, fmt.Errorf("%s: malformed manifest: %w", ref, err)
			}
			if len(m.Layers) >= MaxDeepBlobs {
				return check, fmt.Errorf("%s: %w: %d layers", ref, ErrTooMany, len(m.Layers))
			}
			for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
				if seen[b.Digest] || !b.MediaType.IsDistributable() {
					continue // read already, or a foreign layer the registry does not hold
				}
				seen[b.Digest] = true
				n, err := c.rehash(ctx, hc, ref.Context(), b)
				check.Bytes += n
				if err != nil {
					return check, err
				}
				check.Blobs++
			}
		}
	}
	return check, nil
}

// rehash streams one blob through SHA-256 and compares digest and size.
// The blob is read as the registry serves it (no client-side check in the
// way), at most one byte past its declared size.
func (c *Client) rehash(ctx context.Context, hc *http.Client, repo name.Repository, b v1.Descriptor) (int64, error) {
	if b.Digest.Algorithm != "sha256" {
		return 0, fmt.Errorf("blob %s: unsupported digest algorithm", b.Digest)
	}
	u := url.URL{Scheme: "https", Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + b.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		what := "blob " + b.Digest.String()
		if resp.StatusCode == http.StatusNotFound {
			return 0, fmt.Errorf("%s: %w (HTTP 404)", what, ErrNotFound)
		}
		return 0, fmt.Errorf("%s: unexpected answer %s", what, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(resp.Body, b.Size+1))
	if err != nil {
		return n, fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != b.Size || got != b.Digest.Hex {
		return n, fmt.Errorf("blob %s: %w (read %d bytes hashing to sha256:%s; the manifest says %d bytes)", b.Digest, ErrBlobMismatch, n, got, b.Size)
	}
	return n, nil
}
