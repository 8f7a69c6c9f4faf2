package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations of OCI 1.1 referrers.
const (
	// EmptyMediaType is the config of an artifact manifest with no config.
	EmptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"
	// CreatedAnnotation is the standard creation time annotation.
	CreatedAnnotation = "org.opencontainers.image.created"
)

// emptyJSON is the content of the empty config blob, "{}".
var emptyJSON = []byte("{}")

// maxReferrerPages bounds how many pages of a paginated referrers answer
// are read.
const maxReferrerPages = 16

// Referrers lists what refers to a subject image.
type Referrers struct {
	// Descriptors are the referring manifests, at most
	// Limits.MaxReferrers of them.
	Descriptors []v1.Descriptor
	// API is true when the registry answered the OCI 1.1 referrers API;
	// false when the fallback tag was read instead.
	API bool
	// Warnings say what was ignored (a truncated list, a fallback tag that
	// is not an index, ...).
	Warnings []string
}

// FallbackTag is the tag of the referrers fallback index for subject:
// "<alg>-<hex>", no suffix.
func FallbackTag(subject name.Digest) (name.Tag, error) {
	h, err := v1.NewHash(subject.DigestStr())
	if err != nil {
		return name.Tag{}, err
	}
	return subject.Context().Tag(h.Algorithm + "-" + h.Hex), nil
}

// ListReferrers returns the manifests that refer to subject, from the
// referrers API (following Link pagination) when the registry has it, else
// from the fallback index. A registry that answers 200 without a valid OCI
// index is treated as having no API, as some do. Once a registry has
// answered without the API, later calls read the fallback index directly.
func (c *Client) ListReferrers(ctx context.Context, subject name.Digest) (*Referrers, error) {
	if api, known := c.referrersAPI(subject.RegistryStr()); known && !api {
		// This registry said it has no API: one request, not two.
		return c.fallbackReferrers(ctx, subject)
	}
	rt, err := c.transport(ctx, subject.Context(), false)
	if err != nil {
		return nil, err
	}
	hc := httpClient(rt)
	u := &url.URL{Scheme: "https", Host: subject.RegistryStr(), Path: "/v2/" + subject.RepositoryStr() + "/referrers/" + subject.DigestStr()}
	out := &Referrers{}
	for page := 0; u != nil; page++ {
		if page == maxReferrerPages {
			out.Warnings = append(out.Warnings, fmt.Sprintf("referrers list truncated after %d pages", maxReferrerPages))
			break
		}
		idx, next, ok, err := c.referrersPage(ctx, hc, u)
		if err != nil {
			return nil, err
		}
		if !ok {
			if page > 0 {
				return nil, fmt.Errorf("referrers of %s: page %d is not an OCI index", subject, page+1)
			}
			c.setReferrersAPI(subject.RegistryStr(), false)
			return c.fallbackReferrers(ctx, subject)
		}
		out.API = true
		for _, d := range idx.Manifests {
			if len(out.Descriptors) == c.limits.MaxReferrers {
				out.Warnings = append(out.Warnings, fmt.Sprintf("only the first %d referrers were considered", c.limits.MaxReferrers))
				return out, nil
			}
			out.Descriptors = append(out.Descriptors, d)
		}
		u = next
	}
	c.setReferrersAPI(subject.RegistryStr(), true)
	return out, nil
}

// referrersPage reads one page. ok is false when the answer is not a valid
// referrers index (no API).
func (c *Client) referrersPage(ctx context.Context, hc *http.Client, u *url.URL) (idx *v1.IndexManifest, next *url.URL, ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, false, err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, false, fmt.Errorf("referrers: %w", err)
	}
	defer resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || mt != string(types.OCIImageIndex) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		switch resp.StatusCode {
		case http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusMethodNotAllowed:
			return nil, nil, false, nil
		}
		return nil, nil, false, fmt.Errorf("referrers: unexpected answer %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.limits.MaxManifestBytes+1))
	if err != nil {
		return nil, nil, false, fmt.Errorf("referrers: %w", err)
	}
	if int64(len(body)) > c.limits.MaxManifestBytes {
		return nil, nil, false, fmt.Errorf("referrers: %w: more than %d bytes", ErrTooLarge, c.limits.MaxManifestBytes)
	}
	idx, err = v1.ParseIndexManifest(bytes.NewReader(body))
	if err != nil || idx.SchemaVersion != 2 || (idx.MediaType != "" && idx.MediaType != types.OCIImageIndex) {
		return nil, nil, false, nil
	}
	if link := resp.Header.Get("Link"); link != "" {
		next = nextLink(u, link)
	}
	return idx, next, true, nil
}

// nextLink parses an RFC 8288 Link header for rel="next", resolved against
// base and kept on the same host.
func nextLink(base *url.URL, header string) *url.URL {
	for _, part := range strings.Split(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		ref, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return nil
		}
		next := base.ResolveReference(ref)
		if next.Host != base.Host {
			return nil // never follow a registry to another host
		}
		return next
	}
	return nil
}

// fallbackReferrers reads the fallback index at tag <alg>-<hex>.
func (c *Client) fallbackReferrers(ctx context.Context, subject name.Digest) (*Referrers, error) {
	out := &Referrers{}
	descs, _, warning, err := c.readFallback(ctx, subject)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		out.Warnings = append(out.Warnings, warning)
	}
	if len(descs) > c.limits.MaxReferrers {
		out.Warnings = append(out.Warnings, fmt.Sprintf("only the first %d referrers were considered", c.limits.MaxReferrers))
		descs = descs[:c.limits.MaxReferrers]
	}
	out.Descriptors = descs
	return out, nil
}

// readFallback returns the manifests of the fallback index. A missing tag is
// an empty list; a tag holding something other than an index is ignored
// with a warning (and would be replaced by a write).
func (c *Client) readFallback(ctx context.Context, subject name.Digest) ([]v1.Descriptor, v1.Hash, string, error) {
	tag, err := FallbackTag(subject)
	if err != nil {
		return nil, v1.Hash{}, "", err
	}
	opts, err := c.options(ctx, tag.Context(), false)
	if err != nil {
		return nil, v1.Hash{}, "", err
	}
	d, err := remote.Get(tag, opts...)
	if isNotFound(err) {
		return nil, v1.Hash{}, "", nil
	}
	if err != nil {
		return nil, v1.Hash{}, "", fmt.Errorf("%s: %w", tag, err)
	}
	if d.MediaType != types.OCIImageIndex {
		return nil, d.Digest, fmt.Sprintf("fallback tag %s holds %s, not an OCI index; ignored", tag, d.MediaType), nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(d.Manifest))
	if err != nil {
		return nil, d.Digest, fmt.Sprintf("fallback tag %s is not a valid index; ignored", tag), nil
	}
	return idx.Manifests, d.Digest, "", nil
}

// Artifact is a manifest to attach to a subject as a referrer.
type Artifact struct {
	// ArtifactType is the manifest's artifactType.
	ArtifactType string
	// Layer is the one blob of the artifact, with its media type.
	Layer          []byte
	LayerMediaType types.MediaType
	// Annotations go on the manifest (and so on its referrers entry).
	Annotations map[string]string
}

// PushReferrer pushes art as a manifest whose subject is the image subject
// (with its descriptor), by digest: blobs first, then the manifest. Where
// the registry has no referrers API, the fallback index is updated too,
// safely against concurrent writers. It returns the manifest's descriptor.
func (c *Client) PushReferrer(ctx context.Context, subject name.Digest, subjectDesc v1.Descriptor, art Artifact) (v1.Descriptor, error) {
	repo := subject.Context()
	opts, err := c.options(ctx, repo, true)
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, b := range []struct {
		data []byte
		mt   types.MediaType
	}{{emptyJSON, EmptyMediaType}, {art.Layer, art.LayerMediaType}} {
		if err := remote.WriteLayer(repo, static.NewLayer(b.data, b.mt), opts...); err != nil {
			return v1.Descriptor{}, fmt.Errorf("upload to %s: %w", repo, err)
		}
	}
	cfgHash, cfgSize, _ := v1.SHA256(bytes.NewReader(emptyJSON))
	layerHash, layerSize, _ := v1.SHA256(bytes.NewReader(art.Layer))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  art.ArtifactType,
		Config:        v1.Descriptor{MediaType: EmptyMediaType, Size: cfgSize, Digest: cfgHash},
		Layers:        []v1.Descriptor{{MediaType: art.LayerMediaType, Size: layerSize, Digest: layerHash}},
		Annotations:   art.Annotations,
		Subject:       &v1.Descriptor{MediaType: subjectDesc.MediaType, Size: subjectDesc.Size, Digest: subjectDesc.Digest},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, size, _ := v1.SHA256(bytes.NewReader(raw))
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: size, Digest: h, ArtifactType: art.ArtifactType, Annotations: art.Annotations}
	api, err := c.putManifest(ctx, repo.Digest(h.String()), raw, types.OCIManifestSchema1)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if api {
		return desc, nil
	}
	if known, ok := c.referrersAPI(subject.RegistryStr()); !ok {
		r, err := c.ListReferrers(ctx, subject)
		if err != nil {
			return v1.Descriptor{}, err
		}
		api = r.API
	} else {
		api = known
	}
	if api {
		return desc, nil
	}
	_, err = c.addToFallback(ctx, subject, desc)
	return desc, err
}

// addToFallback adds desc to the fallback index of subject.
func (c *Client) addToFallback(ctx context.Context, subject name.Digest, desc v1.Descriptor) (AddResult, error) {
	tag, err := FallbackTag(subject)
	if err != nil {
		return AddResult{}, err
	}
	return c.converge(ctx, list{
		name: tag.String(),
		read: func() ([]v1.Descriptor, v1.Hash, error) {
			d, h, _, err := c.readFallback(ctx, subject)
			return d, h, err
		},
		write: func(entries []v1.Descriptor, cond precondition) (v1.Hash, error) {
			return c.putIndex(ctx, tag, entries, cond)
		},
	}, []v1.Descriptor{desc}, func(entries []v1.Descriptor, i int) bool {
		for _, e := range entries {
			if e.Digest == desc.Digest {
				return true
			}
		}
		return false
	})
}

// putIndex writes an OCI index of entries at tag.
func (c *Client) putIndex(ctx context.Context, tag name.Tag, entries []v1.Descriptor, cond precondition) (v1.Hash, error) {
	raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries})
	if err != nil {
		return v1.Hash{}, err
	}
	if _, err := c.putManifestIf(ctx, tag, raw, types.OCIImageIndex, cond); err != nil {
		return v1.Hash{}, err
	}
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	return h, nil
}

// putManifest PUTs a manifest as-is (go-containerregistry's Put would also
// update the fallback index itself, without protection against concurrent
// writers). It reports whether the registry processed the subject, per the
// OCI-Subject answer header.
func (c *Client) putManifest(ctx context.Context, ref name.Reference, raw []byte, mt types.MediaType) (bool, error) {
	return c.putManifestIf(ctx, ref, raw, mt, precondition{off: true})
}

// errPrecondition is returned when a conditional write found the tag
// changed (HTTP 412).
var errPrecondition = errors.New("the tag changed since it was read")

// precondition is what a tag must still hold for a write to go ahead:
// the manifest digest (the ETag registries send with a manifest), or
// nothing (the tag is missing: If-None-Match: *). Registries that do not
// implement conditional requests ignore it.
type precondition struct {
	digest v1.Hash // zero: the tag was missing
	off    bool    // send no condition
}

// putManifestIf is putManifest on condition cond (errPrecondition when the
// registry refuses it).
func (c *Client) putManifestIf(ctx context.Context, ref name.Reference, raw []byte, mt types.MediaType, cond precondition) (bool, error) {
	rt, err := c.transport(ctx, ref.Context(), true)
	if err != nil {
		return false, err
	}
	u := url.URL{Scheme: "https", Host: ref.Context().RegistryStr(), Path: "/v2/" + ref.Context().RepositoryStr() + "/manifests/" + ref.Identifier()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(raw))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", string(mt))
	switch {
	case cond.off:
	case cond.digest == v1.Hash{}:
		req.Header.Set("If-None-Match", "*")
	default:
		req.Header.Set("If-Match", `"`+cond.digest.String()+`"`)
	}
	resp, err := (httpClient(rt)).Do(req)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusPreconditionFailed && !cond.off {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("write %s: %w", ref, errPrecondition)
	}
	// A *transport.Error (with the registry's error codes) for a refusal.
	if err := transport.CheckError(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return false, fmt.Errorf("write %s: %w", ref, err)
	}
	return resp.Header.Get("OCI-Subject") != "", nil
}

// referrersAPI reports what is known of a registry's referrers API.
func (c *Client) referrersAPI(registry string) (api, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	api, known = c.apis[registry]
	return api, known
}

func (c *Client) setReferrersAPI(registry string, api bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apis[registry] = api
}

// FetchReferrer reads the referrer manifest desc in repo and its one layer,
// which must have media type mt and at most max bytes. The manifest and the
// blob are each checked against their digests.
func (c *Client) FetchReferrer(ctx context.Context, repo name.Repository, desc v1.Descriptor, mt types.MediaType, max int64) (*v1.Manifest, []byte, error) {
	m, _, err := c.ReadManifest(ctx, repo.Digest(desc.Digest.String()))
	if err != nil {
		return nil, nil, err
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != mt {
		return nil, nil, fmt.Errorf("referrer %s: want one %s layer, found %d layer(s)", desc.Digest, mt, len(m.Layers))
	}
	b, err := c.FetchBlob(ctx, repo, m.Layers[0], max)
	return m, b, err
}
