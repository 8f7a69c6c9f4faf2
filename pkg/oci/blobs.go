package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
	rt, err := c.transport(ctx, d.Context(), false)
	if err != nil {
		return check, err
	}
	hc := httpClient(rt)
	seen := map[v1.Hash]bool{}
	queue := []name.Digest{d}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if check.Manifests == MaxDeepManifests {
			return check, fmt.Errorf("%s: %w: more than %d manifests", d, ErrTooMany, MaxDeepManifests)
		}
		check.Manifests++
		raw, mt, err := c.getManifest(ctx, hc, ref)
		if err != nil {
			return check, err
		}
		switch {
		case mt.IsIndex():
			idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return check, fmt.Errorf("%s: malformed index: %w", ref, err)
			}
			for _, m := range idx.Manifests {
				if !seen[m.Digest] {
					seen[m.Digest] = true
					queue = append(queue, ref.Context().Digest(m.Digest.String()))
				}
			}
		case mt.IsImage():
			m, err := v1.ParseManifest(bytes.NewReader(raw))
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
		default:
			return check, fmt.Errorf("%s: %w: media type %q is not a manifest", ref, ErrBlobMismatch, mt)
		}
	}
	return check, nil
}

// manifestAccept lists the manifest media types VerifyBlobs asks for.
var manifestAccept = strings.Join([]string{string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2)}, ", ")

// getManifest fetches the manifest ref (a digest) as the registry serves
// it, at most Limits.MaxManifestBytes, and checks it against the digest: a
// mismatch is ErrBlobMismatch. It returns the bytes and their media type.
func (c *Client) getManifest(ctx context.Context, hc *http.Client, ref name.Digest) ([]byte, types.MediaType, error) {
	want, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return nil, "", err
	}
	u := url.URL{Scheme: "https", Host: ref.RegistryStr(), Path: "/v2/" + ref.RepositoryStr() + "/manifests/" + ref.DigestStr()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", ref, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", fmt.Errorf("manifest %s: %w", ref, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("manifest %s: unexpected answer %s", ref, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.limits.MaxManifestBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", ref, err)
	}
	if int64(len(raw)) > c.limits.MaxManifestBytes {
		return nil, "", fmt.Errorf("manifest %s: %w", ref, ErrTooLarge)
	}
	if _, err := checkManifest(ref, v1.Descriptor{MediaType: ManifestType(raw)}, raw); errors.Is(err, ErrSchema1) {
		return nil, "", err
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(raw)); got != want {
		return nil, "", fmt.Errorf("manifest %s: %w (the bytes served hash to %s)", ref, ErrBlobMismatch, got)
	}
	return raw, ManifestType(raw), nil
}

// ManifestType returns the media type of a manifest from its own bytes
// (never from a header a server chose): its mediaType field or, without
// one, the OCI type its shape implies (an index lists manifests; an image
// manifest has a config). "" when it is neither.
func ManifestType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType  `json:"mediaType"`
		Manifests json.RawMessage  `json:"manifests"`
		Config    *json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return ""
}

// rehash streams one blob through SHA-256 and compares digest and size.
func (c *Client) rehash(ctx context.Context, hc *http.Client, repo name.Repository, b v1.Descriptor) (int64, error) {
	rc, err := c.getBlob(ctx, hc, repo, b)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// OpenBlob streams the blob desc describes from repo. The bytes are read as
// the registry serves them, at most one byte past desc.Size; a read fails
// with ErrBlobMismatch at the end when they do not hash to desc.Digest or do
// not have its size, so a consumer that reads to EOF without error got
// exactly the blob. The caller closes the reader.
func (c *Client) OpenBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor) (io.ReadCloser, error) {
	rt, err := c.transport(ctx, repo, false)
	if err != nil {
		return nil, err
	}
	return c.getBlob(ctx, httpClient(rt), repo, desc)
}

// getBlob requests one blob and returns its body, checked as it is read.
func (c *Client) getBlob(ctx context.Context, hc *http.Client, repo name.Repository, b v1.Descriptor) (io.ReadCloser, error) {
	if b.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: unsupported digest algorithm", b.Digest)
	}
	if b.Size < 0 {
		return nil, fmt.Errorf("blob %s: negative size %d", b.Digest, b.Size)
	}
	u := url.URL{Scheme: "https", Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + b.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		what := "blob " + b.Digest.String()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: unexpected answer %s", what, resp.Status)
	}
	return &checkedBlob{body: resp.Body, r: io.LimitReader(resp.Body, b.Size+1), h: sha256.New(), want: b}, nil
}

// checkedBlob hashes a blob as it is read and fails the read that reaches
// its end if the digest or size is wrong.
type checkedBlob struct {
	body io.Closer
	r    io.Reader
	h    hash.Hash
	n    int64
	want v1.Descriptor
}

func (b *checkedBlob) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	if err == io.EOF || b.n > b.want.Size {
		if got := hex.EncodeToString(b.h.Sum(nil)); b.n != b.want.Size || got != b.want.Digest.Hex {
			return n, fmt.Errorf("blob %s: %w (read %d bytes hashing to sha256:%s; the manifest says %d bytes)", b.want.Digest, ErrBlobMismatch, b.n, got, b.want.Size)
		}
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("blob %s: %w", b.want.Digest, err)
	}
	return n, err
}

func (b *checkedBlob) Close() error { return b.body.Close() }
