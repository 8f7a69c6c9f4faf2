package oci

import "github.com/google/go-containerregistry/pkg/v1/types"

// Media types of the objects imgsign reads and writes.
const (
	// SimpleSigningMediaType is the layer media type of a legacy
	// (cosign v1/v2) signature payload.
	SimpleSigningMediaType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is the layer media type of a legacy attestation.
	DSSEMediaType types.MediaType = "application/vnd.dsse.envelope.v1+json"
)

// Annotations on legacy signature layers.
const (
	// SignatureAnnotation holds the base64 signature over the layer's payload.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// BundleAnnotation holds a Rekor v1 bundle (SET and entry) as JSON.
	BundleAnnotation = "dev.sigstore.cosign/bundle"
	// CertificateAnnotation holds a PEM signing certificate (keyless only).
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	// ChainAnnotation holds a PEM certificate chain (keyless only).
	ChainAnnotation = "dev.sigstore.cosign/chain"
	// TimestampAnnotation holds an RFC 3161 timestamp as JSON.
	TimestampAnnotation = "dev.sigstore.cosign/rfc3161timestamp"
)

// Annotations on Sigstore bundle referrers (cosign v3).
const (
	// BundleContentAnnotation says what the bundle holds: "dsse-envelope"
	// or "message-signature".
	BundleContentAnnotation = "dev.sigstore.bundle.content"
	// BundlePredicateTypeAnnotation is the predicate type of the statement
	// in the bundle, so readers can select bundles before downloading them.
	BundlePredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
)

// Tag suffixes of cosign's legacy storage: sha256-<hex>.<suffix>.
const (
	SignatureTagSuffix   = "sig"
	AttestationTagSuffix = "att"
	SBOMTagSuffix        = "sbom"
)
