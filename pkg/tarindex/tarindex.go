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

// ErrRefused is wrapped when an archive is refused: compressed (a loader
// would decompress it and read another archive than the one indexed), a
// member that is not a regular file or a directory (a link, a device, a
// fifo, a sparse file, a global header), a member twice after path
// cleaning (a loader takes the last copy, a verifier might read the
// first), a path that is absolute or climbs out with "..", data after the
// end-of-archive marker, more than MaxMembers members.
var ErrRefused = errors.New("archive refused")

// Archive is a tar archive opened in place. It is safe for concurrent use.
type Archive struct {
	r       io.ReaderAt
	close   func() error
	members map[string]member
}

// member is where a member's content lies; size is -1 for a directory.
type member struct {
	offset, size int64
}

// Open indexes the tar archive at p. A compressed archive is refused with
// advice: its members cannot be read in place, and a loader would read what
// it decompresses to, not what was indexed.
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
		return nil, 0, fmt.Errorf("%s: %w: a directory, not a regular file", rel, ErrRefused)
	}
	return io.NewSectionReader(a.r, m.offset, m.size), m.size, nil
}

// Names returns the clean paths of the archive's members (directories
// included), in no particular order.
func (a *Archive) Names() []string {
	out := make([]string, 0, len(a.members))
	for n := range a.members {
		out = append(out, n)
	}
	return out
}

// Close closes the archive file (of Open).
func (a *Archive) Close() error { return a.close() }

// scan lists the members of a tar archive by their clean path, with where
// their content lies. Content is skipped, not read.
func scan(r io.ReaderAt, size int64) (map[string]member, error) {
	var head [HeadBytes]byte
	n, _ := r.ReadAt(head[:], 0)
	if c := Compression(head[:n]); c != nil {
		return nil, fmt.Errorf("%w: a %s-compressed archive (docker load and podman load would decompress it and load what comes out): decompress it first (%s), imgsign reads archives in place", ErrRefused, c.Name, c.Advice)
	}
	or := &offsetReader{r: r, size: size}
	tr := tar.NewReader(or)
	members := map[string]member{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return members, trailer(r, or.pos, size)
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
			if h.Typeflag != tar.TypeDir {
				return nil, fmt.Errorf("%w: the archive root %q is %s, not a directory", ErrRefused, h.Name, typeName(h.Typeflag))
			}
			continue // the archive root
		}
		if _, dup := members[rel]; dup {
			return nil, fmt.Errorf("%w: %q appears twice (a loader would take the last copy, unverified)", ErrRefused, rel)
		}
		switch {
		case h.Typeflag == tar.TypeDir:
			members[rel] = member{offset: -1, size: -1}
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("%w: %q is %s, not a regular file or a directory (a loader would follow or create it; imgsign does not)", ErrRefused, h.Name, typeName(h.Typeflag))
		case isSparse(h):
			return nil, fmt.Errorf("%w: %q is a sparse file (its content is not stored as is)", ErrRefused, h.Name)
		default:
			members[rel] = member{offset: or.pos, size: h.Size}
		}
	}
}

// trailer refuses data after the end-of-archive marker, ending at pos:
// only zero padding may follow, or a reader that skips zero blocks (as
// GNU tar --ignore-zeros does) would read members that were not indexed.
func trailer(r io.ReaderAt, pos, size int64) error {
	buf := make([]byte, 32<<10)
	for pos < size {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("%w: data after the end-of-archive marker (at byte %d)", ErrRefused, pos)
			}
		}
		pos += int64(n)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read archive: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return nil
}

// isSparse reports whether a member is stored sparse (GNU sparse formats,
// in PAX records): tar expands it on reading, so its stored bytes are not
// its content.
func isSparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// typeName names a tar member type for an error.
func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "a device"
	case tar.TypeFifo:
		return "a fifo"
	case tar.TypeGNUSparse:
		return "a sparse file"
	case tar.TypeXGlobalHeader:
		return "a global header (it changes how later members are read)"
	case tar.TypeCont:
		return "a contiguous file"
	}
	return fmt.Sprintf("of type %q", t)
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
