package blob

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/tlog"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
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
}

// BundleResult is what a verified bundle proves.
type BundleResult struct {
	// KeyID is the key that signed (key bundles).
	KeyID string
	// Log is what the log check of a key bundle found.
	Log tlog.Result
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
	return &BundleResult{KeyID: id, Log: lr}, nil
}
