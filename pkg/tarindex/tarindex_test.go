package tarindex_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
		member{"link", tar.TypeSymlink, ""},
		member{"empty", tar.TypeReg, ""},
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
	if _, _, err := a.Open("link"); !errors.Is(err, tarindex.ErrRefused) {
		t.Errorf("a symlink opened: %v", err)
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
		{"twice as a link", []member{{"a", tar.TypeReg, "1"}, {"a", tar.TypeSymlink, ""}}, "appears twice"},
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
	gz := filepath.Join(t.TempDir(), "a.tar.gz")
	os.WriteFile(gz, []byte{0x1f, 0x8b, 8, 0}, 0o644)
	if _, err := tarindex.Open(gz); err == nil || !strings.Contains(err.Error(), "gunzip") {
		t.Fatalf("gzip: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, bytes.Repeat([]byte("x"), 1000), 0o644)
	if _, err := tarindex.Open(junk); err == nil {
		t.Fatal("junk opened as an archive")
	}
}

// FuzzOpen: any bytes either fail to open or give members whose content
// lies within the file and reads back at its declared size; never a panic
// or a hang.
func FuzzOpen(f *testing.F) {
	for _, ms := range [][]member{
		{{"oci-layout", tar.TypeReg, `{"imageLayoutVersion":"1.0.0"}`}, {"blobs/sha256/ab", tar.TypeReg, "{}"}},
		{{"a", tar.TypeReg, "1"}, {"b", tar.TypeSymlink, ""}},
	} {
		b, _ := os.ReadFile(archive(f, ms...))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := tarindex.New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
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
