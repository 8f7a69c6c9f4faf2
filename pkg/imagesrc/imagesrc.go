// Package imagesrc names and opens the places an image is read from, in
// the forms skopeo users know: a registry reference ("docker://REF" or
// plain REF), an OCI image layout directory ("oci:DIR[:REF]"), or a tar
// archive of one ("oci-archive:FILE[:REF]", "docker-archive:FILE[:REF]",
// as `docker save` of Docker 25+ and 'imgsign save --tarball' write).
// Layouts and archives are served by package layout's transport, so an
// oci.Client reads them as it reads a registry, with every digest check.
package imagesrc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/layout"
)

// Kinds of source.
const (
	KindRegistry      = "docker"
	KindLayout        = "oci"
	KindOCIArchive    = "oci-archive"
	KindDockerArchive = "docker-archive"
)

// layoutRepo is the repository an image of a layout is named under when
// the layout does not give it a full reference; the layout's transport
// answers any host.
const layoutRepo = "layout.invalid/image"

// ErrBadSpec is wrapped when a source cannot be parsed.
var ErrBadSpec = errors.New("bad image source")

// Spec is a parsed source.
type Spec struct {
	// Kind is one of the Kind constants.
	Kind string
	// Path is the layout directory or archive file.
	Path string
	// Ref is the image reference (registry), or the reference, tag or
	// digest inside a layout ("" for its only image).
	Ref string
}

// Parse parses a source as skopeo writes it.
func Parse(s string) (Spec, error) {
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && (kind == KindLayout || kind == KindOCIArchive || kind == KindDockerArchive):
		p, ref, _ := strings.Cut(rest, ":")
		if p == "" {
			return Spec{}, fmt.Errorf("%w %q: no path after %s:", ErrBadSpec, s, kind)
		}
		return Spec{Kind: kind, Path: p, Ref: ref}, nil
	case ok && kind == KindRegistry:
		return Spec{Kind: KindRegistry, Ref: strings.TrimPrefix(rest, "//")}, nil
	}
	return Spec{Kind: KindRegistry, Ref: s}, nil
}

// Source is an opened source.
type Source struct {
	Spec
	// Ref is the image to read.
	Ref name.Reference
	// Store is the layout (nil for a registry).
	Store *layout.Store
}

// Open opens a source: a registry reference is parsed; a layout or
// archive is opened (an archive in place, never unpacked) and the image is
// found in it.
func Open(sp Spec) (*Source, error) {
	if sp.Kind == KindRegistry {
		ref, err := name.ParseReference(sp.Ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSpec, err)
		}
		return &Source{Spec: sp, Ref: ref}, nil
	}
	var st *layout.Store
	var err error
	if sp.Kind == KindLayout {
		st, err = layout.OpenDir(sp.Path)
	} else {
		st, err = layout.OpenTar(sp.Path)
	}
	if err != nil {
		return nil, err
	}
	ref, err := find(st, sp.Ref)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("%s: %w", sp.Path, err)
	}
	return &Source{Spec: sp, Ref: ref, Store: st}, nil
}

// find names the image ref designates in st.
func find(st *layout.Store, ref string) (name.Reference, error) {
	switch {
	case ref == "":
		if imgs := st.Images(); len(imgs) == 1 {
			return imgs[0].Name, nil
		}
		if len(st.Index.Manifests) == 1 {
			return name.NewDigest(layoutRepo + "@" + st.Index.Manifests[0].Digest.String())
		}
		var names []string
		for _, img := range st.Images() {
			names = append(names, img.Name.String())
		}
		return nil, fmt.Errorf("%w: it holds %d entries (%s): name one after the path (PATH:REF)", ErrBadSpec, len(st.Index.Manifests), strings.Join(names, ", "))
	case strings.HasPrefix(ref, "sha256:"):
		return name.NewDigest(layoutRepo + "@" + ref)
	case !strings.ContainsAny(ref, "/@"):
		for _, img := range st.Images() {
			if t, ok := img.Name.(name.Tag); ok && t.TagStr() == ref {
				return t, nil
			}
		}
		return name.NewTag(layoutRepo + ":" + ref)
	}
	return name.ParseReference(ref)
}

// Transport returns the round tripper serving a layout or archive; nil for
// a registry.
func (s *Source) Transport() http.RoundTripper {
	if s.Store == nil {
		return nil
	}
	return layout.Transport(s.Store)
}

// Close releases a layout or archive.
func (s *Source) Close() error {
	if s.Store == nil {
		return nil
	}
	return s.Store.Close()
}

// String is the source as the user would write it.
func (s *Source) String() string {
	if s.Kind == KindRegistry {
		return s.Ref.String()
	}
	out := s.Kind + ":" + s.Path
	if s.Spec.Ref != "" {
		out += ":" + s.Spec.Ref
	}
	return out
}
