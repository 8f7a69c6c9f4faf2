// Package admission is imgsign's Kubernetes admission webhook: it answers
// admission.k8s.io/v1 AdmissionReviews about the workloads the API server
// is asked to create or update, with the verdict of the same trust policy
// and the same verification core (pkg/trustpolicy, pkg/gate) as
// `imgsign verify --policy`.
//
// The validating endpoint refuses an object when an image it would run
// fails the policy, naming each refused image and why. The mutating
// endpoint does the same and, when every image passes, rewrites each image
// reference that is not already pinned to `name:tag@sha256:...` of the
// digest it verified, so that the kubelet pulls exactly what was verified
// and a tag moved later changes nothing.
//
// Every image a Pod can run is checked: containers, init containers,
// ephemeral containers and image volumes, in Pods and in the Pod templates
// of Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs,
// ReplicationControllers and PodTemplates. On UPDATE only the images that
// the old object did not already use are checked, so that updating the
// labels of a running Pod never depends on a registry.
//
// Verdicts are cached by (policy, scope, digest) in a bounded LRU with an
// expiry (failures expire sooner); tags are resolved with one HEAD per
// review; concurrent reviews of one digest share one verification. Every
// review answers before the API server gives up: verification stops at a
// deadline below the webhook's timeout and a late registry is a denial with
// that reason. The policy file is re-read when it changes; a file that does
// not load keeps the old policy in force and is reported in the log, the
// metrics and /readyz.
package admission

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Limits on what a review may carry.
const (
	// MaxReviewBytes is the largest AdmissionReview read. The API server
	// stores objects of at most about 1.5 MiB; a review carries the object
	// and the old object.
	MaxReviewBytes = 8 << 20
	// MaxImages is the most distinct image references one review may ask
	// about.
	MaxImages = 256
)

// The AdmissionReview served.
const (
	ReviewAPIVersion = "admission.k8s.io/v1"
	ReviewKind       = "AdmissionReview"
	patchTypeJSON    = "JSONPatch"
)

// ErrMalformed is wrapped by errors about a review that cannot be answered
// as it is (wrong kind or version, no request, no uid, bad JSON).
var ErrMalformed = errors.New("malformed AdmissionReview")

// Review is an admission.k8s.io/v1 AdmissionReview: the fields this
// webhook reads and writes (k8s.io/api/admission/v1 has them all).
type Review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *Request  `json:"request,omitempty"`
	Response   *Response `json:"response,omitempty"`
}

// GroupVersionKind names the kind of the object under review.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// GroupVersionResource names the resource under review.
type GroupVersionResource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
}

// Request is an AdmissionRequest.
type Request struct {
	UID         string               `json:"uid"`
	Kind        GroupVersionKind     `json:"kind"`
	Resource    GroupVersionResource `json:"resource"`
	SubResource string               `json:"subResource,omitempty"`
	Name        string               `json:"name,omitempty"`
	Namespace   string               `json:"namespace,omitempty"`
	Operation   string               `json:"operation"`
	Object      json.RawMessage      `json:"object,omitempty"`
	OldObject   json.RawMessage      `json:"oldObject,omitempty"`
	DryRun      *bool                `json:"dryRun,omitempty"`
}

// Response is an AdmissionResponse.
type Response struct {
	UID       string   `json:"uid"`
	Allowed   bool     `json:"allowed"`
	Status    *Status  `json:"status,omitempty"`
	Patch     []byte   `json:"patch,omitempty"` // base64 in JSON, as the API server expects
	PatchType *string  `json:"patchType,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Status is the part of a metav1.Status a denial carries.
type Status struct {
	Code    int32  `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ParseReview decodes an AdmissionReview request. Anything but an
// admission.k8s.io/v1 AdmissionReview with a request that has a uid, an
// operation and a kind is an error wrapping ErrMalformed; so is an object
// missing from a CREATE or UPDATE. With such an error the review is
// returned too when it can still be answered (a v1 review whose request
// has a uid), else nil.
func ParseReview(data []byte) (*Review, error) {
	r, err := parseReview(data)
	if err != nil && r != nil && (r.Request == nil || r.Request.UID == "" || r.APIVersion != ReviewAPIVersion || r.Kind != ReviewKind) {
		r = nil
	}
	return r, err
}

func parseReview(data []byte) (*Review, error) {
	var r Review
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Kind != ReviewKind || r.APIVersion != ReviewAPIVersion {
		return &r, fmt.Errorf("%w: got kind %q apiVersion %q, want kind %s apiVersion %s (set admissionReviewVersions: [v1])",
			ErrMalformed, r.Kind, r.APIVersion, ReviewKind, ReviewAPIVersion)
	}
	q := r.Request
	switch {
	case q == nil:
		return &r, fmt.Errorf("%w: no request", ErrMalformed)
	case q.UID == "":
		return &r, fmt.Errorf("%w: the request has no uid", ErrMalformed)
	case q.Operation == "":
		return &r, fmt.Errorf("%w: the request has no operation", ErrMalformed)
	case q.Kind.Kind == "":
		return &r, fmt.Errorf("%w: the request has no kind", ErrMalformed)
	}
	if (q.Operation == "CREATE" || q.Operation == "UPDATE") && isNullJSON(q.Object) {
		return &r, fmt.Errorf("%w: a %s request without an object", ErrMalformed, q.Operation)
	}
	return &r, nil
}

func isNullJSON(b json.RawMessage) bool {
	return len(b) == 0 || string(b) == "null"
}
