package layout_test

import (
	"crypto"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
)

// signedArchive saves an image of 4 layers of 4 MiB, signed in both
// formats, as a tar archive and returns its path, the image and the key.
func signedArchive(b *testing.B) (string, name.Reference, crypto.PublicKey) {
	reg := testreg.Start(b, nil, registry.WithReferrersSupport(true))
	img, err := random.Image(4<<20, 4)
	if err != nil {
		b.Fatal(err)
	}
	ref, _ := name.NewTag(reg.Ref("bench/app:v1"))
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	key, _ := keys.Generate(keys.ECDSAP256)
	c, _ := oci.NewClient(oci.Options{})
	s, _ := sign.NewSigner(c, key)
	if _, err := s.Sign(ctx, ref, sign.Options{Upload: true, Format: sign.FormatBoth}); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "layout")
	if _, err := layout.Save(ctx, c, []name.Reference{ref}, dir, layout.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	f := filepath.Join(b.TempDir(), "a.tar")
	out, _ := os.Create(f)
	if err := layout.WriteTar(dir, out); err != nil {
		b.Fatal(err)
	}
	out.Close()
	return f, ref, key.Public()
}

// BenchmarkVerifyTarball is `imgsign verify --tarball` on a 16 MiB image:
// open the archive in place, re-hash all of the image's content, then
// verify its signatures through the layout. Reported in archive MB/s.
func BenchmarkVerifyTarball(b *testing.B) {
	f, ref, pub := signedArchive(b)
	st, _ := os.Stat(f)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := layout.OpenTar(f)
		if err != nil {
			b.Fatal(err)
		}
		d, err := s.Find(ref)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.CheckImage(d); err != nil {
			b.Fatal(err)
		}
		c, _ := oci.NewClient(oci.Options{Transport: layout.Transport(s), Retries: -1})
		v, _ := verify.NewVerifier(c, []crypto.PublicKey{pub})
		if _, err := v.Verify(ctx, ref, verify.Options{}); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
