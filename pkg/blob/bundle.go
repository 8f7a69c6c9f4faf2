package blob

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/tlog"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
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
	return &BundleResult{Keyless: r}, nil
}

// verifyKeyBundle verifies a key-signed message-signature bundle: its
// digest is the file's, its signature verifies with a trusted key, and its
// log entries pass the log policy.
func verifyKeyBundle(ctx context.Context, data []byte, d *Digests, o BundleOptions) (*BundleResult, error) {
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
		b, err := keyless.ParseBundle(data)
		if err != nil {
			return nil, err
		}
		ts, errs, err := sgverify.VerifySignedTimestamp(b, o.Trusted)
		if err == nil && len(errs) > 0 {
			err = errs[0]
		}
		if err != nil {
			return nil, fmt.Errorf("RFC 3161 timestamp: %w", err)
		}
		for _, t := range ts {
			res.Timestamps = append(res.Timestamps, t.Time)
		}
	}
	return res, nil
}
