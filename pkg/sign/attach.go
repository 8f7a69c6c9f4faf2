package sign

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/tlog"
)

// ErrWrongImage is wrapped when a signature to attach signs another image.
var ErrWrongImage = errors.New("the payload signs another image")

// Detached is a signature made without touching the registry (Sign with
// Upload false, or another tool), to be attached later.
type Detached struct {
	// Payload is the exact simple-signing payload signed.
	Payload []byte
	// Signature is the base64 signature over Payload.
	Signature string
	// Entry is the signature's transparency-log entry, if it was logged.
	Entry *tlog.Entry
}

// Attach stores a detached signature of ref in the legacy layout, with its
// log entry in the annotations cosign and imgsign read. ref is resolved
// once; the payload must name that digest. Nothing here checks the
// signature itself: verify does, before anything trusts it. An identical
// layer already stored is not added again.
func Attach(ctx context.Context, client *oci.Client, ref name.Reference, s Detached, repo *name.Repository) (Signature, error) {
	p, err := payload.Parse(s.Payload)
	if err != nil {
		return Signature{}, err
	}
	if repo == nil {
		if err := client.Authenticate(ctx, ref.Context(), true); err != nil {
			return Signature{}, err
		}
	}
	res, err := client.Resolve(ctx, ref)
	if err != nil {
		return Signature{}, err
	}
	if p.Digest.String() != res.Ref.DigestStr() {
		return Signature{}, fmt.Errorf("%w: %s, not %s", ErrWrongImage, p.Digest, res.Ref.DigestStr())
	}
	tag, err := oci.AttachedTag(res.Ref, repo, oci.SignatureTagSuffix)
	if err != nil {
		return Signature{}, err
	}
	att := oci.Attachment{
		Payload:     s.Payload,
		MediaType:   oci.SimpleSigningMediaType,
		Annotations: map[string]string{oci.SignatureAnnotation: s.Signature},
	}
	if s.Entry != nil {
		ann, err := tlog.Annotations(s.Entry)
		if err != nil {
			return Signature{}, err
		}
		maps.Copy(att.Annotations, ann)
	}
	d := att.Descriptor().Digest
	same := func(l v1.Descriptor) bool {
		return l.Digest == d && maps.Equal(l.Annotations, att.Annotations)
	}
	added, err := client.AddAttachments(ctx, tag, []oci.Attachment{att}, []oci.Matcher{same})
	if err != nil {
		return Signature{}, err
	}
	return Signature{Image: res.Ref, Payload: s.Payload, Signature: s.Signature, Tag: tag.String(), Added: added.Added > 0, Entry: s.Entry}, nil
}
