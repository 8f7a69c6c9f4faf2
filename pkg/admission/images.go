package admission

import (
	"errors"
	"fmt"

	"github.com/imgsign/imgsign/pkg/k8simages"
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

// Supported reports whether the webhook checks objects of this kind: the
// workload kinds of pkg/k8simages, in their own API group.
func Supported(gvk GroupVersionKind) bool {
	group, ok := k8simages.Group(gvk.Kind)
	return ok && group == gvk.Group
}

// Images returns the images an object of kind gvk would run, in the order
// they appear in the object, and the names it gives for pulling them. The
// fields read, and the errors, are pkg/k8simages's (Object): every
// container, init container, ephemeral container and image volume of the
// pod spec; a container without an image, a field of the wrong type, a
// duplicate key or an object that is not JSON of its kind is an error. A
// kind the webhook does not check wraps ErrUnsupportedKind.
func Images(gvk GroupVersionKind, object []byte) ([]Image, PullSecrets, error) {
	if !Supported(gvk) {
		return nil, PullSecrets{}, fmt.Errorf("%w: %s", ErrUnsupportedKind, kindName(gvk))
	}
	found, err := k8simages.Object(gvk.Kind, object)
	if err != nil {
		return nil, PullSecrets{}, fmt.Errorf("reading the %s: %w", gvk.Kind, err)
	}
	ps := PullSecrets{ServiceAccount: "default"}
	if len(found) > 0 {
		// One pod spec: every image has the same pull secrets.
		ps.ImagePullSecrets = found[0].PullSecrets
		if found[0].ServiceAccount != "" {
			ps.ServiceAccount = found[0].ServiceAccount
		}
	}
	out := make([]Image, len(found))
	for i, im := range found {
		out[i] = Image{Ref: im.Ref, Path: im.Path, Where: where(im)}
	}
	return out, ps, nil
}

// where says what runs an image, for denial messages.
func where(im k8simages.Image) string {
	switch {
	case im.Volume != "":
		return "image volume " + im.Volume
	case im.InitContainer:
		return "init container " + im.Container
	case im.EphemeralContainer:
		return "ephemeral container " + im.Container
	}
	return "container " + im.Container
}

func kindName(gvk GroupVersionKind) string {
	if gvk.Group == "" {
		return gvk.Version + " " + gvk.Kind
	}
	return gvk.Group + "/" + gvk.Version + " " + gvk.Kind
}
