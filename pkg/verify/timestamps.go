package verify

import (
	"fmt"
	"time"

	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// WithTrustedTimestamps makes the Verifier check the RFC 3161 timestamps
// of key signatures and attestations against the timestamp authorities of
// tm (a trusted root's): every timestamp present must verify, over the
// bytes it covers (a signature's raw bytes; a legacy attestation's layer
// or envelope signature), or the signature is refused; the verified times
// are the signature's signing times (Verified.SignedAt), which MaxAge and
// KeyWindows judge. Without it, or when tm lists no TSA, key signatures'
// timestamps are not checked and give no time (as cosign, unless told to
// use them). Certificate signatures take theirs from WithKeyless.
func WithTrustedTimestamps(tm root.TrustedMaterial) Option {
	return func(v *Verifier) {
		if tm != nil && len(tm.TimestampingAuthorities()) > 0 {
			v.tsas = tm
		}
	}
}

// keyTimestamps verifies the timestamps of a key signature, each over
// covered (named what), and returns their times; when no TSA is trusted
// they are ignored, and only counted (unchecked).
func (v *Verifier) keyTimestamps(tokens [][]byte, covered []byte, what string) (_ []time.Time, unchecked int, _ error) {
	if v.tsas == nil {
		return nil, len(tokens), nil
	}
	var out []time.Time
	for i, token := range tokens {
		ts, err := keyless.VerifyTimestamp(token, covered, v.tsas)
		if err != nil {
			return nil, 0, fmt.Errorf("RFC 3161 timestamp %d of %d over %s does not verify against the trusted timestamp authorities: %w", i+1, len(tokens), what, err)
		}
		out = append(out, ts.Time)
	}
	return out, 0, nil
}

// legacyKeyTimestamp verifies the timestamp annotation of a legacy key
// signature layer over the raw signature (as cosign writes it).
func (v *Verifier) legacyKeyTimestamp(ann map[string]string, sig []byte, what string) ([]time.Time, int, error) {
	s, ok := ann[oci.TimestampAnnotation]
	switch {
	case !ok:
		return nil, 0, nil
	case v.tsas == nil:
		return nil, 1, nil
	case len(s) > maxLegacyAnnotation:
		return nil, 0, fmt.Errorf("annotation %s too large", oci.TimestampAnnotation)
	}
	token, err := timestampToken(s)
	if err != nil {
		return nil, 0, err
	}
	return v.keyTimestamps([][]byte{token}, sig, what)
}

// requireStamp is the reason to reject a key signature without a verified
// timestamp when one is required; "" otherwise.
func requireStamp(require bool, stamped []time.Time) string {
	if require && len(stamped) == 0 {
		return "no RFC 3161 timestamp verified by a trusted timestamp authority (one is required)"
	}
	return ""
}
