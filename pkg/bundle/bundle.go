// Package bundle reads and writes Sigstore bundles (v0.3, the protobuf-specs
// JSON encoding that cosign v3 writes). Parsing is strict: unknown fields are
// errors, the input is size-limited, and repeated fields are capped.
package bundle

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/imgsign/imgsign/internal/pbjson"
	"github.com/imgsign/imgsign/pkg/envelope"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Media types of bundles.
const (
	MediaTypeV03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Limits on untrusted bundles.
const (
	MaxBundleBytes     = 32 << 20
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
	// TlogEntries are the transparency-log entries the bundle carries,
	// unverified.
	TlogEntries []*protorekor.TransparencyLogEntry
	// Timestamps counts the RFC 3161 timestamps the bundle carries (read
	// only; verified by pkg/blob against a trusted root).
	Timestamps int
	// TimestampTokens are RFC 3161 timestamps (DER responses) over
	// Signature that MarshalMessageSignature writes (parsing leaves it nil).
	TimestampTokens [][]byte
}

var hashToProto = map[crypto.Hash]protocommon.HashAlgorithm{
	crypto.SHA256: protocommon.HashAlgorithm_SHA2_256,
	crypto.SHA384: protocommon.HashAlgorithm_SHA2_384,
	crypto.SHA512: protocommon.HashAlgorithm_SHA2_512,
}

// MarshalMessageSignature encodes m as a v0.3 bundle with a public-key hint,
// its log entries and timestamps (none: as `cosign sign-blob --bundle`
// writes without a log).
func MarshalMessageSignature(m MessageSignature) ([]byte, error) {
	alg, ok := hashToProto[m.Hash]
	if !ok {
		return nil, fmt.Errorf("unsupported hash %v", m.Hash)
	}
	return marshal(m.Hint, &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: alg, Digest: m.Digest},
		Signature:     m.Signature,
	}}, m.TlogEntries, m.TimestampTokens)
}

// marshal encodes a v0.3 bundle with a public-key hint, log entries and
// RFC 3161 timestamps (DER responses) around content.
func marshal(hint string, content any, entries []*protorekor.TransparencyLogEntry, timestamps [][]byte) ([]byte, error) {
	b := &protobundle.Bundle{
		MediaType: MediaTypeV03,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hint}},
			TlogEntries: entries,
		},
	}
	if len(timestamps) > 0 {
		tv := &protobundle.TimestampVerificationData{}
		for _, t := range timestamps {
			tv.Rfc3161Timestamps = append(tv.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: t})
		}
		b.VerificationMaterial.TimestampVerificationData = tv
	}
	switch c := content.(type) {
	case *protobundle.Bundle_MessageSignature:
		b.Content = c
	case *protobundle.Bundle_DsseEnvelope:
		b.Content = c
	default:
		return nil, fmt.Errorf("unsupported bundle content %T", content)
	}
	return pbjson.Marshal(b)
}

// parse decodes a bundle strictly and applies the checks common to every
// bundle: size, media type, key-based verification material, and caps on
// log entries and timestamps.
func parse(data []byte) (*protobundle.Bundle, error) {
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
		return nil, fmt.Errorf("%w: signed with a certificate, not a key (verify it with --certificate-identity and --certificate-oidc-issuer)", ErrInvalid)
	}
	return &b, nil
}

// ParseMessageSignature parses a bundle that holds a message signature.
func ParseMessageSignature(data []byte) (*MessageSignature, error) {
	b, err := parse(data)
	if err != nil {
		return nil, err
	}
	vm := b.GetVerificationMaterial()
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
		TlogEntries: vm.GetTlogEntries(),
		Timestamps:  len(vm.GetTimestampVerificationData().GetRfc3161Timestamps()),
	}, nil
}

// MaxDSSESignatures caps the signatures of a DSSE envelope read.
const MaxDSSESignatures = 8

// DSSE is a bundle holding a DSSE envelope.
type DSSE struct {
	// Hint is the key ID of the signing key (publicKey.hint).
	Hint string
	// PayloadType and Payload are the envelope's, exactly as signed.
	PayloadType string
	Payload     []byte
	// Signatures are the raw signatures over the envelope's PAE.
	Signatures [][]byte
	// TlogEntries are the transparency-log entries the bundle carries,
	// unverified.
	TlogEntries []*protorekor.TransparencyLogEntry
	// Timestamps are the RFC 3161 timestamps (DER responses) the bundle
	// carries, unverified: each covers an envelope signature.
	Timestamps [][]byte
}

// MarshalDSSE encodes a v0.3 bundle with a public-key hint, a DSSE envelope
// with one signature and the log entries of that signature (none: as
// cosign v3 writes it without a log).
func MarshalDSSE(hint, payloadType string, payload, sig []byte, entries ...*protorekor.TransparencyLogEntry) ([]byte, error) {
	return marshal(hint, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
		Payload:     payload,
		PayloadType: payloadType,
		Signatures:  []*protodsse.Signature{{Sig: sig}},
	}}, entries, nil)
}

// MarshalTimestampedDSSE is MarshalDSSE with the RFC 3161 timestamps
// (DER responses) of sig in timestampVerificationData, as cosign v3 writes
// a key signature made with --timestamp-server-url.
func MarshalTimestampedDSSE(hint, payloadType string, payload, sig []byte, timestamps [][]byte, entries ...*protorekor.TransparencyLogEntry) ([]byte, error) {
	return marshal(hint, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
		Payload:     payload,
		PayloadType: payloadType,
		Signatures:  []*protodsse.Signature{{Sig: sig}},
	}}, entries, timestamps)
}

// MaxMaterialBytes caps a DSSE bundle apart from its envelope's payload
// (verification material, signatures): what protojson decodes.
const MaxMaterialBytes = 4 << 20

// SplitDSSE takes the payload out of a DSSE bundle, so that protojson (this
// package's parser and sigstore-go's) never decodes a payload up to an
// attestation's size with a copy of it per step. It returns the payload,
// decoded in place (data is consumed: payload aliases it), and rest, the
// bundle with an empty payload, at most MaxMaterialBytes. Without an
// envelope, payload is nil. The caller puts the payload back into what it
// parses from rest.
func SplitDSSE(data []byte) (rest, payload []byte, err error) {
	if len(data) > MaxBundleBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrInvalid, len(data), MaxBundleBytes)
	}
	rest, payload, err = envelope.Hoist(data, MaxMaterialBytes, []string{"dsseEnvelope", "dsse_envelope"}, []string{"payload"})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return rest, payload, nil
}

// ParseDSSE parses a bundle that holds a DSSE envelope. It consumes data
// (see SplitDSSE).
func ParseDSSE(data []byte) (*DSSE, error) {
	rest, payload, err := SplitDSSE(data)
	if err != nil {
		return nil, err
	}
	return ParseSplitDSSE(rest, payload)
}

// ParseSplitDSSE is ParseDSSE on what SplitDSSE returned.
func ParseSplitDSSE(rest, payload []byte) (*DSSE, error) {
	b, err := parse(rest)
	if err != nil {
		return nil, err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: no DSSE envelope", ErrInvalid)
	}
	n := len(env.GetSignatures())
	if n == 0 || n > MaxDSSESignatures {
		return nil, fmt.Errorf("%w: %d envelope signatures (need 1 to %d)", ErrInvalid, n, MaxDSSESignatures)
	}
	out := &DSSE{
		Hint:        b.GetVerificationMaterial().GetPublicKey().GetHint(),
		PayloadType: env.GetPayloadType(),
		Payload:     payload,
		TlogEntries: b.GetVerificationMaterial().GetTlogEntries(),
	}
	for _, t := range b.GetVerificationMaterial().GetTimestampVerificationData().GetRfc3161Timestamps() {
		out.Timestamps = append(out.Timestamps, t.GetSignedTimestamp())
	}
	for _, s := range env.GetSignatures() {
		out.Signatures = append(out.Signatures, s.GetSig())
	}
	return out, nil
}
