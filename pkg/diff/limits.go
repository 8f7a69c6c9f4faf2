package diff

import "errors"

// Limits bound what one comparison reads from untrusted images. Each is
// checked while reading, before anything grows past it.
type Limits struct {
	// MaxEntries is the most tar entries read from the layers of one side.
	MaxEntries int
	// MaxPathBytes is the longest entry name or link target accepted.
	MaxPathBytes int
	// MaxExpansion caps the decompressed bytes of a layer at MaxExpansion
	// times its compressed size, plus ExpansionSlack.
	MaxExpansion int64
	// ExpansionSlack is added to the decompression cap so that small
	// layers of very compressible content (zero-filled files) still pass.
	ExpansionSlack int64
	// MaxConfigBytes is the largest image config read.
	MaxConfigBytes int64
}

// Default limits. gzip cannot expand more than about 1032:1, so a layer
// expanding past 200:1 beyond the first GiB is not an ordinary image.
const (
	DefaultMaxEntries           = 1 << 20
	DefaultMaxPathBytes         = 4096
	DefaultMaxExpansion   int64 = 200
	DefaultExpansionSlack int64 = 1 << 30
	DefaultMaxConfigBytes int64 = 8 << 20
	// MaxZstdWindow bounds the memory a zstd frame may ask for.
	MaxZstdWindow = 64 << 20
	// DefaultJobs is how many layers are read at once (both sides).
	DefaultJobs = 4
)

// DefaultLimits returns the default Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:     DefaultMaxEntries,
		MaxPathBytes:   DefaultMaxPathBytes,
		MaxExpansion:   DefaultMaxExpansion,
		ExpansionSlack: DefaultExpansionSlack,
		MaxConfigBytes: DefaultMaxConfigBytes,
	}
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxPathBytes <= 0 {
		l.MaxPathBytes = d.MaxPathBytes
	}
	if l.MaxExpansion <= 0 {
		l.MaxExpansion = d.MaxExpansion
	}
	if l.ExpansionSlack <= 0 {
		l.ExpansionSlack = d.ExpansionSlack
	}
	if l.MaxConfigBytes <= 0 {
		l.MaxConfigBytes = d.MaxConfigBytes
	}
	return l
}

// ErrHostileLayer is wrapped when a layer is refused: a path climbing out
// of the root, more entries or longer names than the limits allow, a
// decompression bomb, a header archive/tar refuses.
var ErrHostileLayer = errors.New("layer refused")

// ErrContentMismatch is wrapped when a layer's uncompressed content does
// not hash to the diff ID its config declares.
var ErrContentMismatch = errors.New("layer content does not match its diff ID")
