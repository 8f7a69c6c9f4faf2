package verify_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestUntypedFallbackEntries: a fallback index whose entries say nothing
// of their type (go-containerregistry records the empty config's media
// type and no annotations, as cosign v2 --new-bundle-format leaves it)
// still yields the bundle signature, typed by its manifest; an untyped
// entry that is some other artifact is neither a signature nor a
// rejection.
func TestUntypedFallbackEntries(t *testing.T) {
	f := newBundleFixture(t, false)
	d := f.reg.PushImage(t, f.reg.Ref("u/app:v1"))
	f.sign(t, d.String(), f.key, sign.Options{Format: sign.FormatBundle})

	// Another artifact referring to the image: not a bundle.
	sbom, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, oci.EmptyMediaType), types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer([]byte(`{"spdx":1}`), "application/spdx+json")})
	if err != nil {
		t.Fatal(err)
	}
	sbom = mutate.Subject(sbom, v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: mustHash(t, d.DigestStr()), Size: 1}).(v1.Image)
	sd, _ := sbom.Digest()
	if err := remote.Write(d.Context().Digest(sd.String()), sbom); err != nil {
		t.Fatal(err)
	}

	tag, _ := oci.FallbackTag(d)
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	sz, _ := sbom.Size()
	im.Manifests = append(im.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: sd, Size: sz})
	for i := range im.Manifests {
		im.Manifests[i].ArtifactType, im.Manifests[i].Annotations = string(oci.EmptyMediaType), nil
	}
	raw, _ := jsonMarshal(im)
	if err := remote.Put(tag, rawIndex(raw)); err != nil {
		t.Fatal(err)
	}

	res, err := f.verify(t, d.String(), verify.Options{Format: verify.FormatBundle}, f.key.Public())
	if err != nil || len(res.Signatures) != 1 || res.Signatures[0].Source != verify.SourceBundle {
		t.Fatalf("untyped entries: %+v %v", res, err)
	}
	if len(res.Rejected) != 0 {
		t.Fatalf("the other artifact was counted as a rejected signature: %+v", res.Rejected)
	}
	// Another key: the untyped bundle is found and refused, with a reason.
	other := newBundleFixture(t, false).key
	res, err = f.verify(t, d.String(), verify.Options{Format: verify.FormatBundle}, other.Public())
	if err == nil || len(res.Rejected) != 1 || !bytes.Contains([]byte(err.Error()), []byte("no valid signature")) {
		t.Fatalf("another key: %+v %v", res, err)
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// rawIndex is an index manifest to PUT as is.
type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
