package imagesrc_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/imagesrc"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]imagesrc.Spec{
		"registry.example.com/app:1":                           {Kind: imagesrc.KindRegistry, Ref: "registry.example.com/app:1"},
		"docker://registry.example.com/app:1":                  {Kind: imagesrc.KindRegistry, Ref: "registry.example.com/app:1"},
		"oci:/tmp/l":                                           {Kind: imagesrc.KindLayout, Path: "/tmp/l"},
		"oci:/tmp/l:v1":                                        {Kind: imagesrc.KindLayout, Path: "/tmp/l", Ref: "v1"},
		"oci-archive:a.tar:reg:5000/app:v1":                    {Kind: imagesrc.KindOCIArchive, Path: "a.tar", Ref: "reg:5000/app:v1"},
		"docker-archive:a.tar":                                 {Kind: imagesrc.KindDockerArchive, Path: "a.tar"},
		"localhost:5000/app@sha256:" + strings.Repeat("a", 64): {Kind: imagesrc.KindRegistry, Ref: "localhost:5000/app@sha256:" + strings.Repeat("a", 64)},
	} {
		got, err := imagesrc.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := imagesrc.Parse("oci:"); !errors.Is(err, imagesrc.ErrBadSpec) {
		t.Errorf("oci: without a path: %v", err)
	}
}

// A layout of two images needs REF; a tag, a full name and a digest find one.
func TestOpenLayout(t *testing.T) {
	reg := testreg.Start(t, nil)
	d1 := reg.PushImage(t, reg.Ref("src/a:v1"))
	reg.PushImage(t, reg.Ref("src/b:v2"))
	c, _ := oci.NewClient(oci.Options{})
	dir := filepath.Join(t.TempDir(), "l")
	ra, _ := name.ParseReference(reg.Ref("src/a:v1"))
	rb, _ := name.ParseReference(reg.Ref("src/b:v2"))
	refs := []name.Reference{ra, rb}
	if _, err := layout.Save(context.Background(), c, refs, dir, layout.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := imagesrc.Open(imagesrc.Spec{Kind: imagesrc.KindLayout, Path: dir}); !errors.Is(err, imagesrc.ErrBadSpec) || !strings.Contains(err.Error(), "name one") {
		t.Fatalf("no REF: %v", err)
	}
	for _, ref := range []string{"v1", reg.Ref("src/a:v1"), d1.DigestStr()} {
		src, err := imagesrc.Open(imagesrc.Spec{Kind: imagesrc.KindLayout, Path: dir, Ref: ref})
		if err != nil {
			t.Fatal(ref, err)
		}
		lc, _ := oci.NewClient(oci.Options{Transport: src.Transport()})
		res, err := lc.Resolve(context.Background(), src.Ref)
		src.Close()
		if err != nil || res.Ref.DigestStr() != d1.DigestStr() {
			t.Errorf("%s: %v %v", ref, res, err)
		}
	}
}
