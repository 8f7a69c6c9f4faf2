package blob

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/tlog"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// cosignBlobBundle is the bundle cosign v1 and v2 write with sign-blob
// --bundle (cosign v3 with --new-bundle-format=false): the signature, the
// signing certificate (PEM, base64) for a keyless signature, and the Rekor
// v1 entry as cosign's rekorBundle (a SET, no inclusion proof).
type cosignBlobBundle struct {
	Base64Signature string          `json:"base64Signature"`
	Cert            string          `json:"cert,omitempty"`
	RekorBundle     json.RawMessage `json:"rekorBundle,omitempty"`
}

// isCosignBlobBundle reports whether data is a cosign legacy blob bundle
// (a JSON object with base64Signature) rather than a Sigstore bundle.
func isCosignBlobBundle(data []byte) bool {
	var probe struct {
		Sig *json.RawMessage `json:"base64Signature"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Sig != nil
}

// sigstoreOfCosignBlobBundle turns a cosign legacy blob bundle over the
// file whose SHA-256 is digest into the Sigstore bundle it amounts to, as
// cosign v3 reads it: a message signature over that digest, the
// certificate (or, signed with a key, no verification material but the
// entry), and the rekorBundle as a Rekor v1 entry with its SET. Whether the
// entry records this signature and certificate or key is then checked as
// for any bundle: a rekorBundle taken from another signature is refused
// (CVE-2022-36056).
func sigstoreOfCosignBlobBundle(data, digest []byte) ([]byte, error) {
	var b cosignBlobBundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: cosign bundle: %v", keyless.ErrInvalidBundle, err)
	}
	sig, err := base64.StdEncoding.DecodeString(b.Base64Signature)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: cosign bundle: base64Signature is not a base64 signature", keyless.ErrInvalidBundle)
	}
	vm := &protobundle.VerificationMaterial{}
	mediaType := "application/vnd.dev.sigstore.bundle.v0.3+json"
	if len(b.RekorBundle) > 0 && string(b.RekorBundle) != "null" {
		e, err := tlog.ParseCosignBundle(b.RekorBundle)
		if err != nil {
			return nil, fmt.Errorf("%w: cosign bundle: rekorBundle: %v", keyless.ErrInvalidBundle, err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{e}
	}
	if b.Cert != "" {
		certPEM, err := base64.StdEncoding.DecodeString(b.Cert)
		if err != nil {
			return nil, fmt.Errorf("%w: cosign bundle: cert is not base64", keyless.ErrInvalidBundle)
		}
		blk, _ := pem.Decode(certPEM)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: cosign bundle: cert is not a PEM certificate", keyless.ErrInvalidBundle)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("%w: cosign bundle: cert: %v", keyless.ErrInvalidBundle, err)
		}
		if len(vm.TlogEntries) > 0 {
			mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1" // a SET, no inclusion proof
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{Certificates: []*protocommon.X509Certificate{{RawBytes: blk.Bytes}}}}
	} else {
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if len(digest) == 0 {
		return nil, errors.New("no file digest")
	}
	return protojson.Marshal(&protobundle.Bundle{
		MediaType:            mediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest},
			Signature:     sig,
		}},
	})
}
