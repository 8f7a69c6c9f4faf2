package layout

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// WriteTar writes the layout in directory dir to w as a tar archive that
// OpenTar reads: oci-layout, index.json, then blobs/sha256/* in name
// order, regular files only, with fixed times and owners so that the same
// layout always gives the same archive.
func WriteTar(dir string, w io.Writer) error {
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	names := []string{LayoutFile, IndexFile}
	var hashes []string
	for _, b := range blobs {
		if b.Type().IsRegular() {
			hashes = append(hashes, b.Name())
		}
	}
	sort.Strings(hashes)
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, h := range hashes {
		names = append(names, "blobs/sha256/"+h)
	}
	for _, n := range names {
		if err := addFile(tw, dir, n); err != nil {
			return fmt.Errorf("archive %s: %w", dir, err)
		}
	}
	return tw.Close()
}

// addFile copies one regular file of dir into the archive.
func addFile(tw *tar.Writer, dir, rel string) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: st.Size(), Mode: 0o644, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
