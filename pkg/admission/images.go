package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrUnsupportedKind is wrapped when a review is about a kind of object
// whose images the webhook cannot find (the webhook configuration should
// not send it).
var ErrUnsupportedKind = errors.New("kind not checked by this webhook")

// Image is one image an object would run.
type Image struct {
	// Ref is the reference as written in the object.
	Ref string
	// Path is the JSON pointer of the field that holds it
	// (/spec/template/spec/containers/0/image), for a JSON patch.
	Path string
	// Where says what runs it: "container NAME", "init container NAME",
	// "ephemeral container NAME" or "image volume NAME".
	Where string
}

// PullSecrets are the names an object gives for pulling its images.
type PullSecrets struct {
	// ImagePullSecrets are the pod spec's secrets, by name.
	ImagePullSecrets []string
	// ServiceAccount is the pod spec's service account ("default" when
	// unset), whose image pull secrets the kubelet uses as well.
	ServiceAccount string
}

// podSpec holds the parts of a core/v1 PodSpec that name images.
type podSpec struct {
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
	Volumes             []volume    `json:"volumes"`
	ImagePullSecrets    []struct {
		Name string `json:"name"`
	} `json:"imagePullSecrets"`
	ServiceAccountName string `json:"serviceAccountName"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type volume struct {
	Name  string `json:"name"`
	Image *struct {
		Reference string `json:"reference"`
	} `json:"image"`
}

type podTemplateSpec struct {
	Spec *podSpec `json:"spec"`
}

// withTemplate is every kind whose pod template is at spec.template.
type withTemplate struct {
	Spec *struct {
		Template *podTemplateSpec `json:"template"`
	} `json:"spec"`
}

// Kinds are the kinds checked, by API group and kind, with where their pod
// spec is.
var kinds = map[[2]string]string{
	{"", "Pod"}:                   "/spec",
	{"", "PodTemplate"}:           "/template/spec",
	{"", "ReplicationController"}: "/spec/template/spec",
	{"apps", "Deployment"}:        "/spec/template/spec",
	{"apps", "ReplicaSet"}:        "/spec/template/spec",
	{"apps", "StatefulSet"}:       "/spec/template/spec",
	{"apps", "DaemonSet"}:         "/spec/template/spec",
	{"batch", "Job"}:              "/spec/template/spec",
	{"batch", "CronJob"}:          "/spec/jobTemplate/spec/template/spec",
}

// Supported reports whether the webhook checks objects of this kind.
func Supported(gvk GroupVersionKind) bool {
	_, ok := kinds[[2]string{gvk.Group, gvk.Kind}]
	return ok
}

// Images returns the images an object of kind gvk would run, in the order
// of its pod spec (containers, init containers, ephemeral containers,
// image volumes), and the names it gives for pulling them. A container or
// image volume with no image is skipped (the API server refuses such a Pod;
// a template may leave it to be filled in). An object that is not valid
// JSON of its kind is an error; a kind the package does not know wraps
// ErrUnsupportedKind.
func Images(gvk GroupVersionKind, object []byte) ([]Image, PullSecrets, error) {
	base, ok := kinds[[2]string{gvk.Group, gvk.Kind}]
	if !ok {
		return nil, PullSecrets{}, fmt.Errorf("%w: %s", ErrUnsupportedKind, kindName(gvk))
	}
	spec, err := decodeSpec(gvk.Kind, object)
	if err != nil {
		return nil, PullSecrets{}, fmt.Errorf("reading the %s: %w", gvk.Kind, err)
	}
	if spec == nil {
		return nil, PullSecrets{}, nil
	}
	var out []Image
	list := func(cs []container, field, what string) {
		for i, c := range cs {
			if c.Image != "" {
				out = append(out, Image{Ref: c.Image, Path: base + "/" + field + "/" + strconv.Itoa(i) + "/image", Where: what + " " + c.Name})
			}
		}
	}
	list(spec.Containers, "containers", "container")
	list(spec.InitContainers, "initContainers", "init container")
	list(spec.EphemeralContainers, "ephemeralContainers", "ephemeral container")
	for i, v := range spec.Volumes {
		if v.Image != nil && v.Image.Reference != "" {
			out = append(out, Image{Ref: v.Image.Reference, Path: base + "/volumes/" + strconv.Itoa(i) + "/image/reference", Where: "image volume " + v.Name})
		}
	}
	ps := PullSecrets{ServiceAccount: spec.ServiceAccountName}
	if ps.ServiceAccount == "" {
		ps.ServiceAccount = "default"
	}
	for _, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			ps.ImagePullSecrets = append(ps.ImagePullSecrets, s.Name)
		}
	}
	return out, ps, nil
}

// decodeSpec finds the pod spec of an object of a known kind; nil when the
// object has none (a template left out).
func decodeSpec(kind string, object []byte) (*podSpec, error) {
	switch kind {
	case "Pod":
		var o struct {
			Spec *podSpec `json:"spec"`
		}
		err := json.Unmarshal(object, &o)
		return o.Spec, err
	case "PodTemplate":
		var o struct {
			Template *podTemplateSpec `json:"template"`
		}
		if err := json.Unmarshal(object, &o); err != nil || o.Template == nil {
			return nil, err
		}
		return o.Template.Spec, nil
	case "CronJob":
		var o struct {
			Spec *struct {
				JobTemplate *struct {
					Spec *struct {
						Template *podTemplateSpec `json:"template"`
					} `json:"spec"`
				} `json:"jobTemplate"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(object, &o); err != nil {
			return nil, err
		}
		if o.Spec == nil || o.Spec.JobTemplate == nil || o.Spec.JobTemplate.Spec == nil || o.Spec.JobTemplate.Spec.Template == nil {
			return nil, nil
		}
		return o.Spec.JobTemplate.Spec.Template.Spec, nil
	default:
		var o withTemplate
		if err := json.Unmarshal(object, &o); err != nil {
			return nil, err
		}
		if o.Spec == nil || o.Spec.Template == nil {
			return nil, nil
		}
		return o.Spec.Template.Spec, nil
	}
}

func kindName(gvk GroupVersionKind) string {
	if gvk.Group == "" {
		return gvk.Version + " " + gvk.Kind
	}
	return gvk.Group + "/" + gvk.Version + " " + gvk.Kind
}
