package tarindex_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/tarindex"
)

type member struct {
	name string
	typ  byte
	body string
}

func archive(t testing.TB, ms ...member) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644, Linkname: "target"}
		if m.typ == tar.TypeReg {
			h.Size = int64(len(m.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typ == tar.TypeReg {
			tw.Write([]byte(m.body))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// Members are found by clean path and read in place, whatever the header
// format (a long name takes a PAX or GNU header before the member's).
func TestReadInPlace(t *testing.T) {
	long := "blobs/sha256/" + strings.Repeat("a", 120)
	p := archive(t,
		member{"./", tar.TypeDir, ""},
		member{"./index.json", tar.TypeReg, `{"a":1}`},
		member{long, tar.TypeReg, "long-named content"},
		member{"empty", tar.TypeReg, ""},
		member{"blobs/", tar.TypeDir, ""},
	)
	a, err := tarindex.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for rel, want := range map[string]string{"index.json": `{"a":1}`, long: "long-named content", "empty": ""} {
		r, size, err := a.Open(rel)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != want || size != int64(len(want)) {
			t.Errorf("%s: %q (%d bytes), want %q", rel, got, size, want)
		}
	}
	if _, _, err := a.Open("blobs"); !errors.Is(err, tarindex.ErrRefused) {
		t.Errorf("a directory opened: %v", err)
	}
	if _, _, err := a.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing member: %v", err)
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []member
		want string
	}{
		{"twice", []member{{"a", tar.TypeReg, "1"}, {"./a", tar.TypeReg, "2"}}, "appears twice"},
		{"twice, once as a directory", []member{{"a", tar.TypeReg, "1"}, {"a/", tar.TypeDir, ""}}, "appears twice"},
		{"twice after cleaning", []member{{"blobs/sha256/x", tar.TypeReg, "1"}, {"blobs//./sha256/y/../x", tar.TypeReg, "2"}}, "appears twice"},
		{"symlink", []member{{"blobs/sha256", tar.TypeSymlink, ""}}, "symbolic link"},
		{"symlink anywhere", []member{{"a", tar.TypeReg, "1"}, {"other/dir/l", tar.TypeSymlink, ""}}, "symbolic link"},
		{"hard link", []member{{"a", tar.TypeReg, "1"}, {"b", tar.TypeLink, ""}}, "hard link"},
		{"character device", []member{{"dev", tar.TypeChar, ""}}, "a device"},
		{"block device", []member{{"dev", tar.TypeBlock, ""}}, "a device"},
		{"fifo", []member{{"fifo", tar.TypeFifo, ""}}, "a fifo"},
		{"contiguous file", []member{{"c", tar.TypeCont, ""}}, "contiguous"},
		{"unknown type", []member{{"c", 'Z', ""}}, "of type"},
		{"root as a symlink", []member{{"./", tar.TypeSymlink, ""}, {"a", tar.TypeReg, "1"}}, "the archive root"},
		{"root as a file", []member{{".", tar.TypeReg, "1"}}, "the archive root"},
		{"climbs out", []member{{"blobs/../../x", tar.TypeReg, "1"}}, "leaves the archive"},
		{"absolute", []member{{"/etc/x", tar.TypeReg, "1"}}, "leaves the archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tarindex.Open(archive(t, tc.ms...))
			if !errors.Is(err, tarindex.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want refused: %s", err, tc.want)
			}
		})
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, bytes.Repeat([]byte("x"), 1000), 0o644)
	if _, err := tarindex.Open(junk); err == nil || !strings.Contains(err.Error(), "not a readable tar archive") {
		t.Fatalf("junk opened as an archive: %v", err)
	}
}

// Whatever a loader would decompress is refused, named, with the command
// that decompresses it; what follows the magic number does not matter (a
// valid tar follows it here: a verifier reading it in place and a loader
// decompressing it would see two archives).
func TestCompressedRefused(t *testing.T) {
	plain, _ := os.ReadFile(archive(t, member{"a", tar.TypeReg, "1"}))
	for _, tc := range []struct {
		magic      []byte
		name, tool string
	}{
		{[]byte{0x1f, 0x8b, 8}, "gzip", "gunzip"},
		{[]byte{0x1f, 0x8b, 0}, "gzip", "gunzip"},
		{[]byte("BZh9"), "bzip2", "bunzip2"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz", "unxz"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd", "unzstd"},
		{[]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0}, "zstd", "unzstd"}, // skippable frame 0x184D2A50
		{[]byte{0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, "zstd", "unzstd"}, // skippable frame 0x184D2A5F
		{[]byte{0x04, 0x22, 0x4d, 0x18}, "lz4", "unlz4"},
		{[]byte("PK\x03\x04"), "zip", "unzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.tar")
			os.WriteFile(p, append(append([]byte{}, tc.magic...), plain...), 0o644)
			_, err := tarindex.Open(p)
			if !errors.Is(err, tarindex.ErrRefused) || !strings.Contains(err.Error(), "a "+tc.name+"-compressed archive") || !strings.Contains(err.Error(), "("+tc.tool+")") {
				t.Fatalf("got %v, want refused as %s", err, tc.name)
			}
		})
	}
	// A tar whose first member's name starts like a magic number is
	// ambiguous too: a loader would try to decompress it.
	_, err := tarindex.Open(archive(t, member{"BZh-named", tar.TypeReg, "1"}))
	if !errors.Is(err, tarindex.ErrRefused) || !strings.Contains(err.Error(), "bzip2") {
		t.Fatalf("tar starting with BZh: %v", err)
	}
	// Near misses are plain tar archives.
	for _, name := range []string{"PK-named", "B-named", "\x50\x2a\x4d\x19"} {
		if _, err := tarindex.Open(archive(t, member{name, tar.TypeReg, "1"})); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// A sparse member, a global header and data after the end-of-archive
// marker are read differently by different readers: refused.
func TestAmbiguousRefused(t *testing.T) {
	sparse := func() []byte {
		// A PAX sparse 0.1 member: 4 bytes stored at offset 0, 1 KiB
		// expanded (tar fills the rest with zeros). archive/tar writes no
		// sparse records: the PAX header is a regular member retyped.
		var recs string
		for _, kv := range [][2]string{{"GNU.sparse.size", "1024"}, {"GNU.sparse.numblocks", "1"}, {"GNU.sparse.offset", "0"}, {"GNU.sparse.numbytes", "4"}} {
			rec := " " + kv[0] + "=" + kv[1] + "\n"
			n := len(rec) + 2
			recs += strconv.Itoa(n) + rec
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "PaxHeaders/s", Typeflag: tar.TypeReg, Size: int64(len(recs)), Mode: 0o644, Format: tar.FormatUSTAR})
		tw.Write([]byte(recs))
		tw.WriteHeader(&tar.Header{Name: "s", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644, Format: tar.FormatUSTAR})
		tw.Write([]byte("data"))
		tw.Close()
		b := buf.Bytes()
		b[156] = tar.TypeXHeader
		copy(b[148:156], "        ")
		sum := 0
		for _, c := range b[:512] {
			sum += int(c)
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	global := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "evil"}})
		tw.WriteHeader(&tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
		tw.Write([]byte("1"))
		tw.Close()
		return buf.Bytes()
	}
	trailing := func() []byte {
		b, _ := os.ReadFile(archive(t, member{"a", tar.TypeReg, "1"}))
		second, _ := os.ReadFile(archive(t, member{"b", tar.TypeReg, "2"}))
		return append(b, second...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"sparse", sparse(), "sparse"},
		{"global header", global(), "global header"},
		{"a second archive after the end", trailing(), "after the end-of-archive marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tarindex.New(bytes.NewReader(tc.data), int64(len(tc.data)))
			if !errors.Is(err, tarindex.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want refused: %s", err, tc.want)
			}
		})
	}
	// Zero padding after the end marker (tar pads to a record) is fine.
	b, _ := os.ReadFile(archive(t, member{"a", tar.TypeReg, "1"}))
	b = append(b, make([]byte, 10240)...)
	if _, err := tarindex.New(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("zero padding: %v", err)
	}
}

// FuzzOpen: any bytes either fail to open or give members whose content
// lies within the file and reads back at its declared size; never a panic
// or a hang.
func FuzzOpen(f *testing.F) {
	for _, ms := range [][]member{
		{{"oci-layout", tar.TypeReg, `{"imageLayoutVersion":"1.0.0"}`}, {"blobs/sha256/ab", tar.TypeReg, "{}"}},
		{{"a", tar.TypeReg, "1"}, {"b", tar.TypeSymlink, ""}},
		{{"a/", tar.TypeDir, ""}, {"a/b", tar.TypeReg, "1"}, {"c", tar.TypeLink, ""}},
		{{"BZh", tar.TypeReg, "1"}},
	} {
		b, _ := os.ReadFile(archive(f, ms...))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := tarindex.New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if c := tarindex.Compression(data[:min(len(data), tarindex.HeadBytes)]); c != nil {
			t.Fatalf("opened a %s-compressed archive", c.Name)
		}
		defer a.Close()
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				return
			}
			rel, ok := tarindex.Clean(h.Name)
			if !ok {
				t.Fatalf("opened an archive with %q", h.Name)
			}
			if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
				t.Fatalf("opened an archive with %q of type %q", h.Name, h.Typeflag)
			}
			if rel == "" || h.Typeflag != tar.TypeReg {
				continue
			}
			r, size, err := a.Open(rel)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			got, _ := io.ReadAll(r)
			want, _ := io.ReadAll(tr)
			if size != h.Size || !bytes.Equal(got, want) {
				t.Fatalf("%s: read %d bytes in place, tar reads %d (size %d)", rel, len(got), len(want), size)
			}
		}
	})
}
