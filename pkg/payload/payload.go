// Package payload builds and parses the "simple signing" payload that cosign
// signs for a container image (the legacy format, still read by every
// verifier):
//
//	{"critical":{"identity":{"docker-reference":"registry/repo"},
//	             "image":{"docker-manifest-digest":"sha256:…"},
//	             "type":"cosign container image signature"},
//	 "optional":{"key":"value"}}
//
// Building uses sigstore's payload package so the bytes match cosign's
// exactly. Parsing is strict: the payload must be one JSON object, the
// critical section may hold no unknown member (as the containers-image
// signature specification requires), and the digest must be well formed.
package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
)

// Type is the critical.type of a cosign image signature.
const Type = sigpayload.CosignSignatureType

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid signature payload")

// Build returns the payload bytes that sign image (a digest reference). The
// docker-reference is the image's repository, as cosign writes it. Each
// annotation becomes a member of "optional"; with none, "optional" is null.
func Build(image name.Digest, annotations map[string]string) ([]byte, error) {
	var opt map[string]any
	if len(annotations) > 0 {
		opt = make(map[string]any, len(annotations))
		for k, v := range annotations {
			opt[k] = v
		}
	}
	return json.Marshal(sigpayload.Cosign{Image: image, Annotations: opt})
}

// SimpleSigning is a parsed payload.
type SimpleSigning struct {
	// DockerReference is the identity the signer claimed for the image.
	DockerReference string `json:"docker-reference"`
	// Digest is the manifest digest the signature covers.
	Digest v1.Hash `json:"docker-manifest-digest"`
	// Optional holds the signer's annotations; nil when there are none.
	Optional map[string]any `json:"optional"`
}

type strictCritical struct {
	Identity struct {
		DockerReference string `json:"docker-reference"`
	} `json:"identity"`
	Image struct {
		DockerManifestDigest string `json:"docker-manifest-digest"`
	} `json:"image"`
	Type string `json:"type"`
}

// Parse parses a payload strictly. It never re-serialises anything: the
// caller checks the signature over the bytes it passed in.
func Parse(data []byte) (*SimpleSigning, error) {
	var top struct {
		Critical json.RawMessage `json:"critical"`
		Optional map[string]any  `json:"optional"`
	}
	if err := decodeStrict(data, &top); err != nil {
		return nil, err
	}
	if len(top.Critical) == 0 {
		return nil, fmt.Errorf("%w: no critical section", ErrInvalid)
	}
	var c strictCritical
	if err := decodeStrict(top.Critical, &c); err != nil {
		return nil, err
	}
	if c.Type != Type {
		return nil, fmt.Errorf("%w: type %q, want %q", ErrInvalid, c.Type, Type)
	}
	h, err := v1.NewHash(c.Image.DockerManifestDigest)
	if err != nil {
		return nil, fmt.Errorf("%w: docker-manifest-digest %q: %v", ErrInvalid, c.Image.DockerManifestDigest, err)
	}
	if c.Identity.DockerReference == "" {
		return nil, fmt.Errorf("%w: empty docker-reference", ErrInvalid)
	}
	return &SimpleSigning{DockerReference: c.Identity.DockerReference, Digest: h, Optional: top.Optional}, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields and
// nothing after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	return nil
}

// MissingAnnotations returns the keys of want whose values are not present
// with exactly that (string) value in the payload's optional section.
func (s *SimpleSigning) MissingAnnotations(want map[string]string) []string {
	var missing []string
	for k, v := range want {
		got, ok := s.Optional[k].(string)
		if !ok || got != v {
			missing = append(missing, k)
		}
	}
	return missing
}
