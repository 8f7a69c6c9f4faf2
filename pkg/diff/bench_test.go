package diff_test

import (
	"archive/tar"
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/imgsign/imgsign/pkg/diff"
	"github.com/imgsign/imgsign/pkg/imagesrc"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/klauspost/compress/gzip"
)

// Shape of the benchmark images: 8 layers of 64 files of 2 MiB, 1 GiB
// uncompressed per image. File content is random over 16 symbols: it
// compresses about 2:1, like binaries, and never to nothing.
const (
	benchLayers        = 8
	benchFilesPerLayer = 64
	benchFileBytes     = 2 << 20
)

// benchLayer writes a gzip layer to dir and returns it. seed picks the
// content; changed, when >= 0, alters that one file.
func benchLayer(b *testing.B, dir string, seed uint64, changed int) v1.Layer {
	b.Helper()
	p := filepath.Join(dir, fmt.Sprintf("layer-%d-%d.tar.gz", seed, changed))
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := gzip.NewWriter(bw)
	tw := tar.NewWriter(zw)
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	buf := make([]byte, benchFileBytes)
	for i := range benchFilesPerLayer {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = 'A' + byte(v>>(8*k))&0x0f
			}
		}
		if i == changed {
			copy(buf, "tampered")
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/file%03d", seed, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(buf))})
		tw.Write(buf)
	}
	tw.Close()
	zw.Close()
	bw.Flush()
	f.Close()
	l, err := tarball.LayerFromFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// benchLayout writes, once per process, an OCI layout holding image "a"
// and two images differing from it in one file: "top" in its top layer,
// "bottom" in its bottom layer (so that no layer is shared at the bottom
// and every layer is read).
var benchDir string

func benchLayout(b *testing.B) string {
	if benchDir != "" {
		return benchDir
	}
	// $IMGSIGN_DIFF_BENCH_DIR keeps the images (made once) for measuring
	// the command line, or other tools, on them.
	if keep := os.Getenv("IMGSIGN_DIFF_BENCH_DIR"); keep != "" {
		if _, err := os.Stat(filepath.Join(keep, "layout", "index.json")); err == nil {
			return keep
		}
		if err := os.MkdirAll(keep, 0o755); err != nil {
			b.Fatal(err)
		}
		return writeBenchLayout(b, keep)
	}
	dir, err := os.MkdirTemp("", "imgsign-diff-bench-")
	if err != nil {
		b.Fatal(err)
	}
	benchDir = writeBenchLayout(b, dir) // removed by TestMain
	return benchDir
}

func writeBenchLayout(b *testing.B, dir string) string {
	layers := make([]v1.Layer, benchLayers)
	for i := range layers {
		layers[i] = benchLayer(b, dir, uint64(i), -1)
	}
	top := append(append([]v1.Layer(nil), layers[:benchLayers-1]...), benchLayer(b, dir, benchLayers-1, 7))
	bottom := append([]v1.Layer{benchLayer(b, dir, 0, 7)}, layers[1:]...)
	lp, err := ggcrlayout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		b.Fatal(err)
	}
	for _, im := range []struct {
		tag    string
		layers []v1.Layer
	}{{"a", layers}, {"top", top}, {"bottom", bottom}} {
		img, err := mutate.AppendLayers(empty.Image, im.layers...)
		if err != nil {
			b.Fatal(err)
		}
		if err := lp.AppendImage(img, ggcrlayout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": im.tag})); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkDiff1GiB compares two 1 GiB images (in an OCI layout on disk,
// through the layout transport and the registry client, as `imgsign diff
// oci:DIR:a oci:DIR:top` does) that differ in one file of one layer, and
// reports the bytes read per side and the peak RSS of the comparison.
func BenchmarkDiff1GiB(b *testing.B) {
	dir := filepath.Join(benchLayout(b), "layout")
	for _, other := range []string{"top", "bottom"} {
		b.Run(other, func(b *testing.B) {
			open := func(spec string) diff.Side {
				sp, _ := imagesrc.Parse(spec)
				src, err := imagesrc.Open(sp)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { src.Close() })
				c, _ := oci.NewClient(oci.Options{Transport: src.Transport()})
				return diff.Side{Name: spec, Client: c, Ref: src.Ref}
			}
			a, o := open("oci:"+dir+":a"), open("oci:"+dir+":"+other)
			runtime.GC()
			debug.FreeOSMemory()
			resetPeakRSS()
			var rep *diff.Report
			b.ResetTimer()
			for b.Loop() {
				var err error
				if rep, err = diff.Compare(ctx, a, o, diff.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n := rep.Counts[diff.LevelFiles]; n != 1 {
				b.Fatalf("%d file differences, want 1", n)
			}
			var comp, unc int64
			for _, r := range rep.Reads {
				comp += r.Compressed
				unc += r.Uncompressed
			}
			b.ReportMetric(float64(len(rep.Reads)), "layers-read")
			b.ReportMetric(float64(comp)/(1<<20), "MiB-compressed-read")
			b.ReportMetric(float64(unc)/(1<<20), "MiB-uncompressed-read")
			b.ReportMetric(float64(peakRSS())/(1<<20), "MiB-peak-RSS")
		})
	}
}

// resetPeakRSS resets the kernel's peak RSS of this process (Linux).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM, the peak resident set size, in bytes.
func peakRSS() int64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
