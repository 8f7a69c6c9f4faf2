// Package bundle reads and writes Sigstore bundles (v0.3, the protobuf-specs
// JSON encoding that cosign v3 writes). Parsing is strict: unknown fields are
// errors, the input is size-limited, and repeated fields are capped.
package bundle

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Media types of bundles.
const (
	MediaTypeV03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Limits on untrusted bundles.
const (
	MaxBundleBytes     = 4 << 20
	MaxTlogEntries     = 32
	MaxTimestamps      = 32
	maxDigestAlgorithm = 64
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid bundle")

// MessageSignature is a signature over a file's digest.
type MessageSignature struct {
	// Hint is the key ID of the signing key (publicKey.hint).
	Hint string
	// Digest and Hash are the file's digest as the bundle states it.
	Digest []byte
	Hash   crypto.Hash
	// Signature is the raw signature.
	Signature []byte
	// TlogEntries is how many transparency-log entries the bundle carries.
	TlogEntries int
}

var hashToProto = map[crypto.Hash]protocommon.HashAlgorithm{
	crypto.SHA256: protocommon.HashAlgorithm_SHA2_256,
	crypto.SHA384: protocommon.HashAlgorithm_SHA2_384,
	crypto.SHA512: protocommon.HashAlgorithm_SHA2_512,
}

// MarshalMessageSignature encodes m as a v0.3 bundle with a public-key hint
// and no log entries, as `cosign sign-blob --bundle` writes without a log.
func MarshalMessageSignature(m MessageSignature) ([]byte, error) {
	alg, ok := hashToProto[m.Hash]
	if !ok {
		return nil, fmt.Errorf("unsupported hash %v", m.Hash)
	}
	b := &protobundle.Bundle{
		MediaType: MediaTypeV03,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: m.Hint}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: alg, Digest: m.Digest},
			Signature:     m.Signature,
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; compact it so that output
	// is stable.
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseMessageSignature parses a bundle that holds a message signature.
func ParseMessageSignature(data []byte) (*MessageSignature, error) {
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrInvalid, len(data), MaxBundleBytes)
	}
	var b protobundle.Bundle
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if b.MediaType != MediaTypeV03 {
		return nil, fmt.Errorf("%w: media type %q (want %s)", ErrInvalid, b.MediaType, MediaTypeV03)
	}
	vm := b.GetVerificationMaterial()
	if vm == nil {
		return nil, fmt.Errorf("%w: no verification material", ErrInvalid)
	}
	if n := len(vm.GetTlogEntries()); n > MaxTlogEntries {
		return nil, fmt.Errorf("%w: %d log entries (limit %d)", ErrInvalid, n, MaxTlogEntries)
	}
	if ts := vm.GetTimestampVerificationData(); ts != nil && len(ts.GetRfc3161Timestamps()) > MaxTimestamps {
		return nil, fmt.Errorf("%w: %d timestamps (limit %d)", ErrInvalid, len(ts.GetRfc3161Timestamps()), MaxTimestamps)
	}
	if vm.GetCertificate() != nil || vm.GetX509CertificateChain() != nil {
		return nil, fmt.Errorf("%w: certificate (keyless) bundles are not supported; only key-based bundles are", ErrInvalid)
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return nil, fmt.Errorf("%w: no message signature (a DSSE bundle is not a blob signature)", ErrInvalid)
	}
	var h crypto.Hash
	for k, v := range hashToProto {
		if v == ms.GetMessageDigest().GetAlgorithm() {
			h = k
		}
	}
	if h == 0 || len(ms.GetMessageDigest().GetDigest()) != h.Size() {
		return nil, fmt.Errorf("%w: message digest algorithm %v with %d bytes", ErrInvalid, ms.GetMessageDigest().GetAlgorithm(), len(ms.GetMessageDigest().GetDigest()))
	}
	if len(ms.GetSignature()) == 0 {
		return nil, fmt.Errorf("%w: empty signature", ErrInvalid)
	}
	return &MessageSignature{
		Hint:        vm.GetPublicKey().GetHint(),
		Digest:      ms.GetMessageDigest().GetDigest(),
		Hash:        h,
		Signature:   ms.GetSignature(),
		TlogEntries: len(vm.GetTlogEntries()),
	}, nil
}
