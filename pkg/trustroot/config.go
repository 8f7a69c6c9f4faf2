package trustroot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// storedFile is the name of the repository choice in Options.ConfigDir.
const storedFile = "tuf-repository.json"

// stored is the repository chosen with Init.
type stored struct {
	Mirror string          `json:"mirror"`
	Root   json.RawMessage `json:"root"` // the TUF root.json given to Init
}

// source is the repository Load uses.
type source struct {
	mirror     string
	root       []byte
	publicGood bool
	stored     bool
}

// resolve picks the repository: Options, else the stored choice, else the
// public-good one.
func resolve(opts Options) (source, error) {
	if (opts.Mirror == "") != (len(opts.Root) == 0) {
		return source{}, errors.New("a TUF repository needs both its mirror URL and a trusted root.json")
	}
	if opts.Mirror != "" {
		if err := checkMirror(opts.Mirror); err != nil {
			return source{}, err
		}
		return source{mirror: opts.Mirror, root: opts.Root}, nil
	}
	path, err := storedPath(opts)
	if err != nil {
		return source{}, err
	}
	data, err := readLimited(path, maxMaterialBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return source{mirror: PublicGoodMirror, root: tuf.DefaultRoot(), publicGood: true}, nil
	}
	if err != nil {
		return source{}, fmt.Errorf("%w: the TUF repository chosen with `imgsign trust init`: %v", ErrMalformed, err)
	}
	var s stored
	if err := json.Unmarshal(data, &s); err != nil || s.Mirror == "" || len(s.Root) == 0 {
		if err == nil {
			err = errors.New("mirror or root missing")
		}
		return source{}, fmt.Errorf("%w: %s (written by `imgsign trust init`): %v; run `imgsign trust init` again", ErrMalformed, path, err)
	}
	return source{mirror: s.Mirror, root: s.Root, stored: true}, nil
}

func storedPath(opts Options) (string, error) {
	dir := opts.ConfigDir
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("no configuration directory for the TUF repository choice: %v", err)
		}
		dir = filepath.Join(d, "imgsign")
	}
	return filepath.Join(dir, storedFile), nil
}

func checkMirror(mirror string) error {
	u, err := url.Parse(mirror)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("TUF mirror %q is not an http(s) URL", mirror)
	}
	return nil
}

// Init chooses the repository later Loads use, as `cosign initialize` does:
// opts.Mirror and opts.Root name a private repository; neither means the
// public-good one (a stored choice is removed). The repository is refreshed
// online first (its cache started afresh) and must serve a valid trusted
// root; the choice is stored only then.
func Init(ctx context.Context, opts Options) (*Repository, error) {
	path, err := storedPath(opts)
	if err != nil {
		return nil, err
	}
	src := source{mirror: PublicGoodMirror, root: tuf.DefaultRoot(), publicGood: true}
	if opts.Mirror != "" || len(opts.Root) > 0 {
		if src, err = resolve(opts); err != nil {
			return nil, err
		}
		if _, err := metadata.Root().FromBytes(opts.Root); err != nil {
			return nil, fmt.Errorf("%w: the root given is not TUF root metadata: %v", ErrInvalid, err)
		}
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		if cacheDir, err = defaultCacheDir(); err != nil {
			return nil, err
		}
	}
	// A new root may have new keys: the old cache of this mirror must not
	// outrank it.
	if !src.publicGood {
		if err := os.RemoveAll(filepath.Join(cacheDir, tuf.URLToPath(src.mirror))); err != nil {
			return nil, err
		}
	}
	o := opts
	o.Mirror, o.Root, o.CacheDir, o.MaxAge, o.Warn = src.mirror, src.root, cacheDir, 0, nil
	r, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	if r.info.FromCache {
		return nil, fmt.Errorf("%w: TUF repository %s unreachable: %v", ErrUnavailable, src.mirror, rootCause(r.info.Unreachable))
	}
	if _, err := r.TrustedRoot(); err != nil {
		return nil, err
	}
	if src.publicGood {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	} else {
		data, err := json.MarshalIndent(stored{Mirror: src.mirror, Root: src.root}, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%w: the root given is not JSON: %v", ErrInvalid, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(path, append(data, '\n'), 0o600, true); err != nil {
			return nil, err
		}
	}
	r.info.Stored = !src.publicGood
	r.info.PublicGood = src.publicGood
	return r, nil
}

// anchorRoot returns the root metadata to start from: the cached root of this
// repository when it is at least as new as the given one (it was verified
// from it when cached), else the given one.
func anchorRoot(given []byte, repoDir string) ([]byte, error) {
	g, err := metadata.Root().FromBytes(given)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted TUF root: %v", ErrInvalid, err)
	}
	data, err := readLimited(filepath.Join(repoDir, metadata.ROOT+".json"), maxMaterialBytes)
	if err != nil {
		return given, nil
	}
	c, err := metadata.Root().FromBytes(data)
	if err != nil || c.Signed.Version < g.Signed.Version {
		return given, nil
	}
	return data, nil
}

// trustedMetadataSummary reads the cached metadata the client has just
// verified: the root version and the earliest expiry.
func trustedMetadataSummary(repoDir string) (int64, time.Time) {
	var version int64
	var expires time.Time
	earliest := func(t time.Time) {
		if expires.IsZero() || t.Before(expires) {
			expires = t
		}
	}
	read := func(role string) []byte {
		data, _ := readLimited(filepath.Join(repoDir, role+".json"), maxMaterialBytes)
		return data
	}
	if r, err := metadata.Root().FromBytes(read(metadata.ROOT)); err == nil {
		version = r.Signed.Version
		earliest(r.Signed.Expires)
	}
	if t, err := metadata.Timestamp().FromBytes(read(metadata.TIMESTAMP)); err == nil {
		earliest(t.Signed.Expires)
	}
	if s, err := metadata.Snapshot().FromBytes(read(metadata.SNAPSHOT)); err == nil {
		earliest(s.Signed.Expires)
	}
	if t, err := metadata.Targets().FromBytes(read(metadata.TARGETS)); err == nil {
		earliest(t.Signed.Expires)
	}
	return version, expires
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
