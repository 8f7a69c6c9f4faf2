package oci

// Limits bound what imgsign accepts from a registry. Every value read from a
// registry is untrusted; these are checked before the data is read or
// allocated for, never after.
type Limits struct {
	// MaxManifestBytes is the largest manifest or index read.
	MaxManifestBytes int64
	// MaxSignatures is the most signature layers one signature manifest may
	// declare; a manifest declaring more is refused as a whole.
	MaxSignatures int
	// MaxPayloadBytes is the largest signature payload or bundle read.
	// Simple signing payloads are a few hundred bytes, bundles a few KiB.
	MaxPayloadBytes int64
	// MaxReferrers is the most referrers of one image considered.
	MaxReferrers int
	// MaxAttestationBytes is the largest attestation (envelope or bundle)
	// read. SBOMs can be large; this still bounds memory.
	MaxAttestationBytes int64
	// MaxAttestationTotalBytes bounds the attestation bytes read for one
	// image, all envelopes and bundles together (at most MaxSignatures
	// of them are considered per source).
	MaxAttestationTotalBytes int64
}

// Default limits. cosign allows 1000 layers and 128 MiB per attachment; a
// signature payload is a few hundred bytes, so imgsign is much tighter.
const (
	DefaultMaxManifestBytes    int64 = 4 << 20
	DefaultMaxSignatures             = 100
	DefaultMaxPayloadBytes     int64 = 1 << 20
	DefaultMaxReferrers              = 1000
	DefaultMaxAttestationBytes int64 = 32 << 20
	// DefaultMaxAttestationTotalBytes is twice one attestation's limit.
	DefaultMaxAttestationTotalBytes int64 = 64 << 20
)

// DefaultLimits returns the default Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxManifestBytes: DefaultMaxManifestBytes,
		MaxSignatures:    DefaultMaxSignatures,
		MaxPayloadBytes:  DefaultMaxPayloadBytes,
		MaxReferrers:     DefaultMaxReferrers,

		MaxAttestationBytes:      DefaultMaxAttestationBytes,
		MaxAttestationTotalBytes: DefaultMaxAttestationTotalBytes,
	}
}

// orDefault fills zero fields with the defaults.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = d.MaxManifestBytes
	}
	if l.MaxSignatures <= 0 {
		l.MaxSignatures = d.MaxSignatures
	}
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = d.MaxPayloadBytes
	}
	if l.MaxReferrers <= 0 {
		l.MaxReferrers = d.MaxReferrers
	}
	if l.MaxAttestationBytes <= 0 {
		l.MaxAttestationBytes = d.MaxAttestationBytes
	}
	if l.MaxAttestationTotalBytes <= 0 {
		l.MaxAttestationTotalBytes = d.MaxAttestationTotalBytes
	}
	return l
}
