package diff

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/tarindex"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Entry is one path of a file tree, as a layer declares it. Paths are
// absolute ("/etc/passwd"); the root itself is "/".
type Entry struct {
	Path string `json:"path"`
	// Type is file, dir, symlink, hardlink, char, block, fifo or, in a
	// layer only, whiteout or opaque.
	Type    string            `json:"type"`
	Mode    string            `json:"mode,omitempty"` // octal permission and setuid/setgid/sticky bits
	UID     int               `json:"uid"`
	GID     int               `json:"gid"`
	Size    int64             `json:"size,omitempty"`
	Digest  string            `json:"digest,omitempty"` // SHA-256 of a regular file's content
	Link    string            `json:"link,omitempty"`   // symlink or hardlink target, device numbers
	Xattrs  map[string]string `json:"xattrs,omitempty"`
	ModTime *time.Time        `json:"mtime,omitempty"`
}

// Entry types.
const (
	TypeFile     = "file"
	TypeDir      = "dir"
	TypeSymlink  = "symlink"
	TypeHardlink = "hardlink"
	TypeChar     = "char"
	TypeBlock    = "block"
	TypeFIFO     = "fifo"
	TypeWhiteout = "whiteout"
	TypeOpaque   = "opaque"
)

// Whiteout markers of the OCI image spec.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// layerIndex is the metadata of every entry of one layer, in tar order.
type layerIndex struct {
	entries []*Entry
	// Compressed and Uncompressed count the bytes read.
	Compressed, Uncompressed int64
}

// LayerRead records the reading of one layer.
type LayerRead struct {
	Side         string `json:"side"`
	Digest       string `json:"digest"`
	Compressed   int64  `json:"compressedBytes"`
	Uncompressed int64  `json:"uncompressedBytes"`
	Entries      int    `json:"entries"`
}

// counter counts bytes as they pass.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// capped fails once more than max bytes have been read.
type capped struct {
	r      io.Reader
	n, max int64
	digest string
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, fmt.Errorf("layer %s: %w: decompresses to more than %d bytes (a decompression bomb?)", c.digest, ErrHostileLayer, c.max)
	}
	return n, err
}

// entryBudget is shared by the layers of one side.
type entryBudget struct{ left int }

// readLayer streams one layer once: its bytes are checked against desc by
// the client, decompressed on the fly (gzip, zstd or none, by magic
// number), hashed against diffID (when not empty), and every entry's
// metadata and content digest are recorded. Nothing is written to disk.
func readLayer(ctx context.Context, c *oci.Client, repo name.Repository, desc v1.Descriptor, diffID v1.Hash, lim Limits, budget *entryBudget, mu locker) (*layerIndex, error) {
	rc, err := c.OpenBlob(ctx, repo, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return indexLayer(ctx, rc, desc, diffID, lim, budget, mu)
}

// locker is a sync.Mutex shared by the readers of one comparison.
type locker interface {
	Lock()
	Unlock()
}

// indexLayer reads one layer's bytes from r (read to its end, so that a
// checking reader sees all of it), as readLayer describes.
func indexLayer(ctx context.Context, r io.Reader, desc v1.Descriptor, diffID v1.Hash, lim Limits, budget *entryBudget, mu locker) (*layerIndex, error) {
	comp := &counter{r: r}
	br := bufio.NewReaderSize(comp, 1<<16)
	magic, _ := br.Peek(4)
	var dec io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("layer %s: gzip: %w", desc.Digest, err)
		}
		defer zr.Close()
		dec = zr
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderMaxMemory(MaxZstdWindow*2))
		if err != nil {
			return nil, fmt.Errorf("layer %s: zstd: %w", desc.Digest, err)
		}
		defer zr.Close()
		dec = zr
	}
	limit := desc.Size*lim.MaxExpansion + lim.ExpansionSlack
	cr := &capped{r: dec, max: limit, digest: desc.Digest.String()}
	dh := sha256.New()
	tr := tar.NewReader(io.TeeReader(cr, dh))
	out := &layerIndex{}
	buf := make([]byte, 1<<16)
	contentLeft := limit
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w: %w", desc.Digest, ErrHostileLayer, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		mu.Lock()
		budget.left--
		left := budget.left
		mu.Unlock()
		if left < 0 {
			return nil, fmt.Errorf("layer %s: %w: more than %d entries", desc.Digest, ErrHostileLayer, lim.MaxEntries)
		}
		e, err := newEntry(hdr, lim)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		if e == nil {
			continue
		}
		if e.Type == TypeFile {
			// Sparse files expand holes without reading input: their
			// content is capped like the decompressed stream.
			h := sha256.New()
			n, err := io.CopyBuffer(h, io.LimitReader(tr, contentLeft+1), buf)
			if err != nil {
				return nil, fmt.Errorf("layer %s: %s: %w", desc.Digest, e.Path, err)
			}
			if contentLeft -= n; contentLeft < 0 {
				return nil, fmt.Errorf("layer %s: %w: its files hold more than %d bytes (sparse files?)", desc.Digest, ErrHostileLayer, limit)
			}
			e.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		}
		out.entries = append(out.entries, e)
	}
	// The rest of the stream (tar padding), so that the diff ID covers
	// it all and the client checks the blob's digest at its end.
	if _, err := io.CopyBuffer(dh, cr, buf); err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if _, err := io.CopyBuffer(io.Discard, br, buf); err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if got := hex.EncodeToString(dh.Sum(nil)); diffID.Hex != "" && got != diffID.Hex {
		return nil, fmt.Errorf("layer %s: %w: uncompressed content hashes to sha256:%s, the config says %s", desc.Digest, ErrContentMismatch, got, diffID)
	}
	out.Compressed, out.Uncompressed = comp.n, cr.n
	return out, nil
}

// newEntry converts a tar header to an Entry; nil for headers that are
// not files (global PAX headers). Whiteouts become TypeWhiteout and
// TypeOpaque entries naming the path they remove.
func newEntry(hdr *tar.Header, lim Limits) (*Entry, error) {
	if len(hdr.Name) > lim.MaxPathBytes || len(hdr.Linkname) > lim.MaxPathBytes {
		return nil, fmt.Errorf("%w: a name of more than %d bytes", ErrHostileLayer, lim.MaxPathBytes)
	}
	p, ok := cleanPath(hdr.Name)
	if !ok {
		return nil, fmt.Errorf("%w: path %q climbs out of the root", ErrHostileLayer, hdr.Name)
	}
	e := &Entry{Path: p, Mode: fmt.Sprintf("%04o", hdr.Mode&0o7777), UID: hdr.Uid, GID: hdr.Gid}
	mt := hdr.ModTime.UTC()
	e.ModTime = &mt
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		e.Type, e.Size = TypeFile, hdr.Size
	case tar.TypeDir:
		e.Type = TypeDir
	case tar.TypeSymlink:
		e.Type, e.Link = TypeSymlink, hdr.Linkname
	case tar.TypeLink:
		l, ok := cleanPath(hdr.Linkname)
		if !ok {
			return nil, fmt.Errorf("%w: hard link %s points out of the root (%q)", ErrHostileLayer, p, hdr.Linkname)
		}
		e.Type, e.Link = TypeHardlink, l
	case tar.TypeChar:
		e.Type, e.Link = TypeChar, fmt.Sprintf("%d:%d", hdr.Devmajor, hdr.Devminor)
	case tar.TypeBlock:
		e.Type, e.Link = TypeBlock, fmt.Sprintf("%d:%d", hdr.Devmajor, hdr.Devminor)
	case tar.TypeFifo:
		e.Type = TypeFIFO
	case tar.TypeXGlobalHeader:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: %s has tar type %q", ErrHostileLayer, p, hdr.Typeflag)
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[x] = v
		}
	}
	dir, base := path.Split(p)
	switch {
	case base == opaqueMarker:
		return &Entry{Path: path.Clean(dir), Type: TypeOpaque}, nil
	case strings.HasPrefix(base, whiteoutPrefix):
		return &Entry{Path: path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)), Type: TypeWhiteout}, nil
	}
	return e, nil
}

// cleanPath returns the absolute clean form of a layer member's name;
// layers may name members "etc/x", "./etc/x" or "/etc/x" alike. A name
// climbing out with ".." is refused.
func cleanPath(n string) (string, bool) {
	rel, ok := tarindex.Clean(strings.TrimLeft(n, "/"))
	if !ok {
		return "", false
	}
	return "/" + rel, true
}
