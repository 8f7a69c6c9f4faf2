// Package tarindex reads a tar archive in place: it lists where each
// member's content lies, without extracting or even reading it, and opens
// members as sections of the file. It refuses archives built to be read
// one way by a verifier and another by a loader.
package tarindex

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// MaxMembers is the most members of an archive read.
const MaxMembers = 100000

// ErrRefused is wrapped when an archive is refused: a member twice (a
// loader takes the last copy, a verifier might read the first), a path
// that is absolute or climbs out with "..", more than MaxMembers members.
// Opening a member that is not a regular file (a link, a device, a sparse
// file) is refused with it too.
var ErrRefused = errors.New("archive refused")

// Archive is a tar archive opened in place. It is safe for concurrent use.
type Archive struct {
	r       io.ReaderAt
	close   func() error
	members map[string]member
}

// member is where a member's content lies; size is -1 for a member that
// is not a regular file.
type member struct {
	offset, size int64
}

// Open indexes the tar archive at p. A gzip-compressed archive is refused
// with advice: its members cannot be read in place.
func Open(p string) (*Archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open archive: %w", err)
	}
	a, err := New(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	a.close = f.Close
	return a, nil
}

// New indexes the tar archive of size bytes that r reads. Close does not
// close r.
func New(r io.ReaderAt, size int64) (*Archive, error) {
	members, err := scan(r, size)
	if err != nil {
		return nil, err
	}
	return &Archive{r: r, close: func() error { return nil }, members: members}, nil
}

// Open returns the content of the member at the clean relative path rel
// (as Clean returns it) and its size. A missing member is fs.ErrNotExist.
func (a *Archive) Open(rel string) (*io.SectionReader, int64, error) {
	m, ok := a.members[rel]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
	}
	if m.size < 0 {
		return nil, 0, fmt.Errorf("%s: %w: not a regular file", rel, ErrRefused)
	}
	return io.NewSectionReader(a.r, m.offset, m.size), m.size, nil
}

// Close closes the archive file (of Open).
func (a *Archive) Close() error { return a.close() }

// scan lists the members of a tar archive by their clean path, with where
// their content lies. Content is skipped, not read.
func scan(r io.ReaderAt, size int64) (map[string]member, error) {
	var magic [2]byte
	if n, _ := r.ReadAt(magic[:], 0); n == 2 && magic == [2]byte{0x1f, 0x8b} {
		return nil, errors.New("a gzip-compressed archive: decompress it first (gunzip), imgsign reads archives in place")
	}
	or := &offsetReader{r: r, size: size}
	tr := tar.NewReader(or)
	members := map[string]member{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a readable tar archive: %w", err)
		}
		if len(members) == MaxMembers {
			return nil, fmt.Errorf("%w: more than %d members", ErrRefused, MaxMembers)
		}
		rel, ok := Clean(h.Name)
		if !ok {
			return nil, fmt.Errorf("%w: member path %q leaves the archive", ErrRefused, h.Name)
		}
		if rel == "" {
			continue // the archive root
		}
		if _, dup := members[rel]; dup {
			return nil, fmt.Errorf("%w: %q appears twice (a loader would take the last copy, unverified)", ErrRefused, rel)
		}
		m := member{offset: -1, size: -1}
		if h.Typeflag == tar.TypeReg {
			m = member{offset: or.pos, size: h.Size}
		}
		members[rel] = m
	}
	return members, nil
}

// Clean returns the clean relative path of an archive member ("" for the
// root); ok is false for an absolute path or one climbing out with "..".
func Clean(n string) (string, bool) {
	n = strings.TrimSuffix(n, "/")
	if path.IsAbs(n) || strings.HasPrefix(n, "\\") {
		return "", false
	}
	c := path.Clean(n)
	if c == "." {
		return "", true
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// offsetReader tracks the position in the archive while archive/tar reads
// it; as an io.Seeker it lets tar skip content instead of reading it. The
// position after tar.Reader.Next is where the member's content starts.
type offsetReader struct {
	r         io.ReaderAt
	size, pos int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	if o.pos >= o.size {
		return 0, io.EOF
	}
	n, err := o.r.ReadAt(p, o.pos)
	o.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (o *offsetReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		o.pos = off
	case io.SeekCurrent:
		o.pos += off
	default:
		o.pos = o.size + off
	}
	if o.pos < 0 {
		return 0, errors.New("seek before the start of the archive")
	}
	return o.pos, nil
}
