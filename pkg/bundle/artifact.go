package bundle

import (
	"time"

	"github.com/imgsign/imgsign/pkg/oci"
)

// Artifact returns the OCI referrer that carries a DSSE bundle as cosign v3
// attaches it: artifactType and layer media type MediaTypeV03, and the
// annotations that let readers select it before downloading (content and
// predicate type), plus its creation time and any extra annotations.
func Artifact(b []byte, predicateType string, extra map[string]string) oci.Artifact {
	ann := map[string]string{
		oci.BundleContentAnnotation:       "dsse-envelope",
		oci.BundlePredicateTypeAnnotation: predicateType,
		oci.CreatedAnnotation:             time.Now().UTC().Format(time.RFC3339),
	}
	for k, v := range extra {
		ann[k] = v
	}
	return oci.Artifact{ArtifactType: MediaTypeV03, Layer: b, LayerMediaType: MediaTypeV03, Annotations: ann}
}
