// Package sign signs container images by digest and stores the signatures
// next to them in the registry, in cosign's legacy layout: the tag
// sha256-<hex>.sig holds one layer per signature, whose blob is the simple
// signing payload and whose dev.cosignproject.cosign/signature annotation is
// the base64 signature over exactly those bytes.
package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Signer signs images with one private key.
type Signer struct {
	client *oci.Client
	sv     signature.SignerVerifier
}

// NewSigner returns a Signer that signs with key and talks to registries
// through client. Signatures are made as cosign verifies them by default:
// ECDSA and RSA (PKCS #1 v1.5) over SHA-256, Ed25519 over the message.
func NewSigner(client *oci.Client, key crypto.Signer) (*Signer, error) {
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	return &Signer{client: client, sv: sv}, nil
}

// Options control what is signed and where it is stored.
type Options struct {
	// Annotations go into the payload's "optional" section.
	Annotations map[string]string
	// SignatureRepo stores signatures in another repository; nil means the
	// image's own repository.
	SignatureRepo *name.Repository
	// Recursive also signs every manifest an index lists.
	Recursive bool
	// Upload writes the signatures to the registry. Without it, Sign only
	// resolves the image and returns the signatures.
	Upload bool
}

// Signature is one signed image.
type Signature struct {
	// Image is the digest reference that was signed.
	Image name.Digest `json:"image"`
	// Payload is the exact bytes signed.
	Payload []byte `json:"-"`
	// Signature is the base64 signature over Payload.
	Signature string `json:"signature"`
	// Tag is the signature tag written (empty without Upload).
	Tag string `json:"signatureTag,omitempty"`
	// Added is false when an identical signature was already stored.
	Added bool `json:"added"`
}

// Sign resolves ref to its manifest digest (once: a tag is never read
// again), signs that digest and, with Upload, stores the signature. With
// Recursive and an index, every child manifest is signed too, the index
// first.
func (s *Signer) Sign(ctx context.Context, ref name.Reference, o Options) ([]Signature, error) {
	if o.Upload && o.SignatureRepo == nil {
		// One registry handshake, with write access, for reads and writes.
		if err := s.client.Authenticate(ctx, ref.Context(), true); err != nil {
			return nil, err
		}
	}
	res, err := s.client.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	targets := []name.Digest{res.Ref}
	if o.Recursive && res.Descriptor.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(res.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed index: %w", res.Ref, err)
		}
		for _, m := range idx.Manifests {
			targets = append(targets, res.Ref.Context().Digest(m.Digest.String()))
		}
	}
	out := make([]Signature, 0, len(targets))
	for _, d := range targets {
		sig, err := s.SignDigest(ctx, d, o)
		if err != nil {
			return out, err
		}
		out = append(out, sig)
	}
	return out, nil
}

// SignDigest signs the image d names, without reading it from the registry,
// and with Upload stores the signature.
func (s *Signer) SignDigest(ctx context.Context, d name.Digest, o Options) (Signature, error) {
	p, err := payload.Build(d, o.Annotations)
	if err != nil {
		return Signature{}, err
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(p))
	if err != nil {
		return Signature{}, fmt.Errorf("sign %s: %w", d, err)
	}
	sig := Signature{Image: d, Payload: p, Signature: base64.StdEncoding.EncodeToString(raw), Added: true}
	if !o.Upload {
		return sig, nil
	}
	tag, err := oci.AttachedTag(d, o.SignatureRepo, oci.SignatureTagSuffix)
	if err != nil {
		return Signature{}, err
	}
	att := oci.Attachment{
		Payload:     p,
		MediaType:   oci.SimpleSigningMediaType,
		Annotations: map[string]string{oci.SignatureAnnotation: sig.Signature},
	}
	payloadDigest := att.Descriptor().Digest
	// A layer with the same payload whose signature verifies with this key
	// is the same signature (ECDSA signatures differ on every run).
	same := func(l v1.Descriptor) bool {
		if l.Digest != payloadDigest {
			return false
		}
		b, err := base64.StdEncoding.DecodeString(l.Annotations[oci.SignatureAnnotation])
		return err == nil && s.sv.VerifySignature(bytes.NewReader(b), bytes.NewReader(p)) == nil
	}
	res, err := s.client.AddAttachments(ctx, tag, []oci.Attachment{att}, []oci.Matcher{same})
	if err != nil {
		return Signature{}, err
	}
	sig.Tag, sig.Added = tag.String(), res.Added > 0
	return sig, nil
}
