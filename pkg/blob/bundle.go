package blob

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
)

// BundleOptions say what a bundle over a file is verified against: trusted
// keys (with the log policy of key signatures), or, for a bundle signed
// with a certificate, keyless options (trusted root and identity).
type BundleOptions struct {
	// Keys verify key-signed bundles; with keys given, a certificate
	// bundle is refused.
	Keys []crypto.PublicKey
	// Log is the transparency-log policy of key-signed bundles.
	Log tlog.Policy
	// Keyless verifies certificate-signed bundles; nil refuses them.
	Keyless *keyless.Options
	// Trusted, when set, is the trusted root whose timestamp authorities
	// verify the RFC 3161 timestamps of a key-signed bundle: every one
	// must verify. Without it they are not checked (as log entries are
	// not without trusted logs).
	Trusted root.TrustedMaterial
}

// BundleResult is what a verified bundle proves.
type BundleResult struct {
	// KeyID is the key that signed (key bundles).
	KeyID string
	// Log is what the log check of a key bundle found.
	Log tlog.Result
	// Timestamps are the verified RFC 3161 times of a key bundle.
	Timestamps []time.Time
	// Keyless is the verified signer of a certificate bundle.
	Keyless *keyless.Result
}

// VerifyBundle verifies the Sigstore bundle data over the file whose
// digests are d. Every error it returns means the bundle does not verify
// (nothing is read but data and, with Log.Online, the log).
func VerifyBundle(ctx context.Context, data []byte, d *Digests, o BundleOptions) (*BundleResult, error) {
	if isCosignBlobBundle(data) {
		var err error
		if data, err = sigstoreOfCosignBlobBundle(data, d.SHA256); err != nil {
			return nil, err
		}
	}
	if len(o.Keys) > 0 {
		return verifyKeyBundle(ctx, data, d, o)
	}
	if o.Keyless == nil {
		return nil, errors.New("no key and no certificate identity to verify against")
	}
	b, err := keyless.ParseBundle(data)
	if err != nil {
		return nil, err
	}
	if !keyless.HasCertificate(b) {
		return nil, fmt.Errorf("%w: the bundle is signed with a key, not a certificate: verify it with --key", keyless.ErrNotVerified)
	}
	artifact := keyless.Artifact{Algorithm: "sha256", Digest: d.SHA256}
	if ms := b.GetMessageSignature(); ms != nil {
		switch ms.GetMessageDigest().GetAlgorithm() {
		case protocommon.HashAlgorithm_SHA2_384:
			artifact = keyless.Artifact{Algorithm: "sha384", Digest: d.SHA384}
		case protocommon.HashAlgorithm_SHA2_512:
			artifact = keyless.Artifact{Algorithm: "sha512", Digest: d.SHA512}
		}
	}
	r, err := keyless.Verify(b, artifact, *o.Keyless)
	if err != nil {
		return nil, err
	}
	if env := b.GetDsseEnvelope(); env != nil {
		if err := statementNames(env.GetPayloadType(), env.GetPayload(), d); err != nil {
			return nil, err
		}
	}
	return &BundleResult{Keyless: r}, nil
}

// statementNames checks the payload of a DSSE bundle over a file: an
// in-toto statement (its _type one pkg/statement reads, never guessed)
// with a subject whose SHA-256 is the file's.
func statementNames(payloadType string, payload []byte, d *Digests) error {
	if payloadType != statement.PayloadType {
		return fmt.Errorf("the envelope's payload type is %q, not an in-toto statement (%s)", payloadType, statement.PayloadType)
	}
	st, err := statement.Parse(payload)
	if err != nil {
		return fmt.Errorf("the envelope's payload: %w", err)
	}
	if _, ok := st.SubjectFor(v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(d.SHA256)}); !ok {
		return errors.New("no subject of the envelope's statement has this file's sha256 digest")
	}
	return nil
}

// verifyKeyBundle verifies a key-signed message-signature bundle: its
// digest is the file's, its signature verifies with a trusted key, and its
// log entries pass the log policy.
func verifyKeyBundle(ctx context.Context, data []byte, d *Digests, o BundleOptions) (*BundleResult, error) {
	if isDSSE(data) {
		return verifyKeyDSSEBundle(ctx, data, d, o)
	}
	ms, err := bundle.ParseMessageSignature(data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(d.Of(ms.Hash), ms.Digest) {
		return nil, fmt.Errorf("the bundle signs another file (its %v digest differs)", ms.Hash)
	}
	id, pub, err := VerifyKey(o.Keys, ms.Signature, d)
	if err != nil {
		return nil, err
	}
	lr, err := o.Log.Check(ctx, tlog.Want{Digest: d.Of(crypto.SHA256), Signature: ms.Signature, PublicKey: pub}, ms.TlogEntries)
	if err != nil {
		return nil, err
	}
	res := &BundleResult{KeyID: id, Log: lr}
	if o.Trusted != nil && ms.Timestamps > 0 {
		if res.Timestamps, err = keyTimestamps(data, o.Trusted); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// keyTimestamps verifies every RFC 3161 timestamp of a key-signed bundle
// against the trusted root's timestamp authorities.
func keyTimestamps(data []byte, trusted root.TrustedMaterial) ([]time.Time, error) {
	b, err := keyless.ParseBundle(data)
	if err != nil {
		return nil, err
	}
	ts, errs, err := sgverify.VerifySignedTimestamp(b, trusted)
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	if err != nil {
		return nil, fmt.Errorf("RFC 3161 timestamp: %w", err)
	}
	var out []time.Time
	for _, t := range ts {
		out = append(out, t.Time)
	}
	return out, nil
}

// hasTimestamps reports whether a bundle carries RFC 3161 timestamps (as
// protojson reads it, in either field spelling).
func hasTimestamps(data []byte) bool {
	var pb protobundle.Bundle
	return protojson.Unmarshal(data, &pb) == nil && len(pb.GetVerificationMaterial().GetTimestampVerificationData().GetRfc3161Timestamps()) > 0
}

// isDSSE reports whether a bundle holds a DSSE envelope (it is parsed in
// full by its own reader).
func isDSSE(data []byte) bool {
	var probe struct {
		A json.RawMessage `json:"dsseEnvelope"`
		B json.RawMessage `json:"dsse_envelope"`
	}
	return json.Unmarshal(data, &probe) == nil && (probe.A != nil || probe.B != nil)
}

// verifyKeyDSSEBundle verifies a key-signed DSSE bundle over a file: an
// envelope signature verifies with a trusted key over the envelope's PAE,
// its payload is an in-toto statement naming the file (statementNames),
// its log entries pass the log policy (recording this envelope) and its
// RFC 3161 timestamps verify.
func verifyKeyDSSEBundle(ctx context.Context, data []byte, d *Digests, o BundleOptions) (*BundleResult, error) {
	b, err := bundle.ParseDSSE(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	pae, err := Digest(bytes.NewReader(dsse.PAE(b.PayloadType, b.Payload)), true)
	if err != nil {
		return nil, err
	}
	var (
		id  string
		pub crypto.PublicKey
		sig []byte
	)
	for _, s := range b.Signatures {
		if id, pub, err = VerifyKey(o.Keys, s, pae); err == nil {
			sig = s
			break
		}
	}
	if sig == nil {
		return nil, fmt.Errorf("the envelope's signature: %w", err)
	}
	if err := statementNames(b.PayloadType, b.Payload, d); err != nil {
		return nil, err
	}
	lr, err := o.Log.Check(ctx, tlog.Want{Digest: pae.SHA256, Signature: sig, PublicKey: pub, Envelope: &tlog.Envelope{PayloadType: b.PayloadType, Payload: b.Payload}}, b.TlogEntries)
	if err != nil {
		return nil, err
	}
	res := &BundleResult{KeyID: id, Log: lr}
	if o.Trusted != nil && hasTimestamps(data) {
		if res.Timestamps, err = keyTimestamps(data, o.Trusted); err != nil {
			return nil, err
		}
	}
	return res, nil
}
