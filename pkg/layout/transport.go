package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/pkg/oci"
)

// Transport returns an http.RoundTripper that answers the read side of the
// OCI distribution API from s, whatever registry host a request names:
//
//	GET  /v2/                                  200, no authentication
//	GET  /v2/<repo>/manifests/<tag or digest>  (and HEAD) a manifest or index
//	GET  /v2/<repo>/blobs/<digest>             (and HEAD) a blob
//	GET  /v2/<repo>/referrers/<digest>         manifests in index.json whose subject is digest
//
// A tag is looked up in index.json (see Store.Images); a digest names any
// blob of the layout. Content is served as stored, unchecked: an
// oci.Client checks every manifest and blob against its digest, as it does
// with a registry. Every other request is refused with 405 (a layout is
// read-only). No request leaves the process.
func Transport(s *Store) http.RoundTripper { return &transport{s: s} }

// Oversized manifests are refused by the client too; this bounds what the
// transport itself reads into memory to answer one request.
const maxServedManifest = MaxIndexBytes

type transport struct {
	s *Store

	once      sync.Once
	referrers map[v1.Hash][]v1.Descriptor
	err       error
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	p := req.URL.Path
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return answer(req, http.StatusMethodNotAllowed, "UNSUPPORTED", "an OCI image layout is read-only"), nil
	}
	if p == "/v2/" || p == "/v2" {
		return respond(req, http.StatusOK, "application/json", []byte("{}"), nil), nil
	}
	for _, kind := range []string{"/manifests/", "/blobs/", "/referrers/"} {
		i := strings.LastIndex(p, kind)
		if !strings.HasPrefix(p, "/v2/") || i < len("/v2/") {
			continue
		}
		repo, err := name.NewRepository(req.URL.Host + "/" + p[len("/v2/"):i])
		if err != nil {
			return answer(req, http.StatusNotFound, "NAME_INVALID", err.Error()), nil
		}
		id := p[i+len(kind):]
		switch kind {
		case "/manifests/":
			return t.manifest(req, repo, id), nil
		case "/blobs/":
			return t.blob(req, id), nil
		default:
			return t.listReferrers(req, id), nil
		}
	}
	return answer(req, http.StatusNotFound, "UNSUPPORTED", "not part of the registry API an OCI image layout answers"), nil
}

// manifest answers a manifest request by tag or digest.
func (t *transport) manifest(req *http.Request, repo name.Repository, id string) *http.Response {
	var (
		h    v1.Hash
		mt   types.MediaType
		err  error
		what = repo.Name() + ":" + id
	)
	if strings.Contains(id, ":") {
		if h, err = v1.NewHash(id); err != nil {
			return answer(req, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		}
		what = repo.Name() + "@" + id
	} else {
		d, ok := t.s.lookupTag(repo, id)
		if !ok {
			return answer(req, http.StatusNotFound, "MANIFEST_UNKNOWN", what+" is not in the layout")
		}
		h, mt = d.Digest, d.MediaType
	}
	raw, err := t.s.ReadBlob(h, maxServedManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return answer(req, http.StatusNotFound, "MANIFEST_UNKNOWN", what+" is not in the layout")
	}
	if err != nil {
		return answer(req, http.StatusInternalServerError, "UNKNOWN", err.Error())
	}
	if got := oci.ManifestType(raw); got != "" {
		mt = got
	}
	if !isManifestType(mt) {
		return answer(req, http.StatusNotFound, "MANIFEST_UNKNOWN", what+" is not a manifest")
	}
	return respond(req, http.StatusOK, string(mt), raw, http.Header{"Docker-Content-Digest": {h.String()}})
}

// blob answers a blob request, streaming from the layout.
func (t *transport) blob(req *http.Request, id string) *http.Response {
	h, err := v1.NewHash(id)
	if err != nil {
		return answer(req, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
	}
	rc, size, err := t.s.OpenBlob(h)
	if errors.Is(err, fs.ErrNotExist) {
		return answer(req, http.StatusNotFound, "BLOB_UNKNOWN", "blob "+id+" is not in the layout")
	}
	if err != nil {
		return answer(req, http.StatusInternalServerError, "UNKNOWN", err.Error())
	}
	hdr := http.Header{"Docker-Content-Digest": {h.String()}, "Content-Type": {"application/octet-stream"}}
	resp := &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: hdr, ContentLength: size, Body: rc, Request: req,
	}
	if req.Method == http.MethodHead {
		rc.Close()
		resp.Body = http.NoBody
	}
	return resp
}

// listReferrers answers the referrers API from index.json.
func (t *transport) listReferrers(req *http.Request, id string) *http.Response {
	h, err := v1.NewHash(id)
	if err != nil {
		return answer(req, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
	}
	t.once.Do(t.scanReferrers)
	if t.err != nil {
		return answer(req, http.StatusInternalServerError, "UNKNOWN", t.err.Error())
	}
	want := req.URL.Query().Get("artifactType")
	out := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, d := range t.referrers[h] {
		if want == "" || d.ArtifactType == want {
			out.Manifests = append(out.Manifests, d)
		}
	}
	raw, _ := json.Marshal(out) // cannot fail: plain descriptors
	hdr := http.Header{}
	if want != "" {
		hdr.Set("OCI-Filters-Applied", "artifactType")
	}
	return respond(req, http.StatusOK, string(types.OCIImageIndex), raw, hdr)
}

// scanReferrers reads every image manifest index.json lists, once, and
// files those with a subject under it.
func (t *transport) scanReferrers() {
	t.referrers = map[v1.Hash][]v1.Descriptor{}
	seen := map[v1.Hash]bool{}
	for _, d := range t.s.Index.Manifests {
		if seen[d.Digest] || (d.MediaType != "" && !d.MediaType.IsImage()) {
			continue
		}
		seen[d.Digest] = true
		raw, err := t.s.ReadBlob(d.Digest, maxServedManifest)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a missing manifest is reported when it is asked for
		}
		if err != nil {
			t.err = err
			return
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil || m.Subject == nil {
			continue
		}
		e := v1.Descriptor{MediaType: oci.ManifestType(raw), Size: int64(len(raw)), Digest: d.Digest, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if e.ArtifactType == "" {
			e.ArtifactType = string(m.Config.MediaType)
		}
		t.referrers[m.Subject.Digest] = append(t.referrers[m.Subject.Digest], e)
	}
}

// respond builds an answer with body (none for HEAD).
func respond(req *http.Request, code int, contentType string, body []byte, hdr http.Header) *http.Response {
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	resp := &http.Response{
		StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: hdr, ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body)), Request: req,
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp
}

// answer builds a registry error answer.
func answer(req *http.Request, code int, errCode, msg string) *http.Response {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": errCode, "message": msg}}})
	return respond(req, code, "application/json", body, nil)
}

// Overlay returns an http.RoundTripper that answers image content from s
// and what is attached to images from network, for an archive that carries
// no signatures (as `docker save` writes it) whose signatures are in the
// registry it came from:
//
//   - a manifest by tag is read from s only, never from the network (the
//     image verified is the one in the layout), except the tags of cosign's
//     legacy storage and referrers fallback tags (sha256-<hex>[.suffix]);
//   - a manifest or blob by digest is read from s when s holds it, else
//     from the network (content addressed: either is checked against the
//     digest);
//   - referrers, the API version check and authentication go to the network.
//
// The image's digest is thus always the layout's, and every signature
// checked names that digest.
func Overlay(s *Store, network http.RoundTripper) http.RoundTripper {
	return &overlay{local: &transport{s: s}, network: network}
}

type overlay struct {
	local   *transport
	network http.RoundTripper
}

func (o *overlay) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return o.network.RoundTrip(req)
	}
	if i := strings.LastIndex(p, "/manifests/"); i > 0 {
		id := p[i+len("/manifests/"):]
		switch {
		case !strings.Contains(id, ":"): // a tag
			if isAttachmentTagName(id) {
				return o.network.RoundTrip(req)
			}
			return o.local.RoundTrip(req)
		case o.local.has(id):
			return o.local.RoundTrip(req)
		}
		return o.network.RoundTrip(req)
	}
	if i := strings.LastIndex(p, "/blobs/"); i > 0 && o.local.has(p[i+len("/blobs/"):]) {
		return o.local.RoundTrip(req)
	}
	return o.network.RoundTrip(req)
}

// has reports whether the layout holds the blob with digest id.
func (t *transport) has(id string) bool {
	h, err := v1.NewHash(id)
	return err == nil && t.s.hasBlob(h)
}

// hasBlob reports whether the layout holds the blob with digest h.
func (s *Store) hasBlob(h v1.Hash) bool {
	rc, _, err := s.OpenBlob(h)
	if err != nil {
		return false
	}
	rc.Close()
	return true
}
