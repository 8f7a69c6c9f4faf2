package layout_test

import (
	"archive/tar"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgsign/imgsign/pkg/layout"
)

// FuzzOpenTar: whatever an archive holds, opening it, checking its images
// and its docker load list, and serving it return errors, never panic or
// hang.
func FuzzOpenTar(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct{ name, body string }{
		{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`},
		{"index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","annotations":{"io.containerd.image.name":"r.example/a:v1"}}]}`},
		{"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", `{}`},
		{"manifest.json", `[{"Config":"blobs/sha256/x","Layers":[]}]`},
	} {
		tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Size: int64(len(m.body)), Mode: 0o644})
		tw.Write([]byte(m.body))
	}
	tw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 0})
	f.Add(append([]byte{0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, buf.Bytes()...))
	// Hostile forms: a link, a legacy layer directory, names in every form.
	var hostile bytes.Buffer
	tw = tar.NewWriter(&hostile)
	for _, m := range []struct {
		name, body string
		typ        byte
	}{
		{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`, tar.TypeReg},
		{"index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","annotations":{"org.opencontainers.image.ref.name":"app:1"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","annotations":{"io.containerd.image.name":"r.example/a:sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a.sig"}}]}`, tar.TypeReg},
		{"manifest.json", `[{"Config":"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","RepoTags":["app:1"],"Layers":[]}]`, tar.TypeReg},
		{"repositories", `{"app":{"1":"abc"}}`, tar.TypeReg},
		{"blobs/sha256/", "", tar.TypeDir},
		{"abc/layer.tar", "x", tar.TypeReg},
		{"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "abc/layer.tar", tar.TypeSymlink},
	} {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644}
		if m.typ == tar.TypeReg {
			h.Size = int64(len(m.body))
		} else {
			h.Linkname = m.body
		}
		tw.WriteHeader(h)
		if m.typ == tar.TypeReg {
			tw.Write([]byte(m.body))
		}
	}
	tw.Close()
	f.Add(hostile.Bytes())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "a.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := layout.OpenTar(p)
		if err != nil {
			return
		}
		defer st.Close()
		var verified []layout.Verified
		for _, img := range st.Images() {
			if c, err := st.CheckImage(img.Descriptor); err == nil {
				verified = append(verified, layout.Verified{Ref: img.Name, Checked: c})
			}
			req, _ := http.NewRequest(http.MethodGet, "https://"+img.Name.Context().RegistryStr()+"/v2/"+img.Name.Context().RepositoryStr()+"/manifests/"+img.Name.Identifier(), nil)
			if resp, err := layout.Transport(st).RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		}
		st.CheckLoad(verified)
	})
}
