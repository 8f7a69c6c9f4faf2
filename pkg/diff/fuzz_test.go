package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// FuzzIndexLayer feeds arbitrary bytes to the layer reader as a layer
// (plain, gzip or zstd by its first bytes): it must return entries or an
// error, never panic, hang or allocate without bound.
func FuzzIndexLayer(f *testing.F) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("root"))
	tw.WriteHeader(&tar.Header{Name: "etc/.wh.hosts", Typeflag: tar.TypeReg})
	tw.WriteHeader(&tar.Header{Name: "var/.wh..wh..opq", Typeflag: tar.TypeReg})
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}})
	tw.Close()
	f.Add(tb.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	f.Add(gz.Bytes())
	enc, _ := zstd.NewWriter(nil)
	f.Add(enc.EncodeAll(tb.Bytes(), nil))
	lim := Limits{MaxEntries: 1000, MaxPathBytes: 256, MaxExpansion: 10, ExpansionSlack: 1 << 20}.orDefault()
	f.Fuzz(func(t *testing.T, raw []byte) {
		desc := v1.Descriptor{Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: "00"}}
		var mu sync.Mutex
		li, err := indexLayer(context.Background(), bytes.NewReader(raw), desc, v1.Hash{}, lim, &entryBudget{left: lim.MaxEntries}, &mu)
		if err != nil {
			return
		}
		if li.Uncompressed > desc.Size*lim.MaxExpansion+lim.ExpansionSlack || len(li.entries) > lim.MaxEntries {
			t.Fatalf("limits passed: %d bytes, %d entries", li.Uncompressed, len(li.entries))
		}
		buildTree([]*layerIndex{li})
	})
}
