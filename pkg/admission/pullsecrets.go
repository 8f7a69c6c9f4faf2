package admission

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// MaxPullSecrets bounds the pull secrets read for one review (the pod's
// and its service account's together).
const MaxPullSecrets = 32

// Credentials finds the registry credentials a workload's Pods would pull
// with.
type Credentials interface {
	// Keyring returns the credentials of the pull secrets, nil when there
	// are none.
	Keyring(ctx context.Context, namespace string, ps PullSecrets) (*Keyring, error)
}

// KubeCredentials reads pull secrets through the Kubernetes API, as the
// kubelet uses them: the pod spec's imagePullSecrets, then those of its
// service account; secrets of type kubernetes.io/dockerconfigjson and
// kubernetes.io/dockercfg. A secret or service account that does not exist
// is skipped (the kubelet goes on without it). All their registries go
// into one Keyring, which matches them to images as the kubelet does. It
// needs get on secrets and serviceaccounts (deploy/rbac.yaml).
//
// It uses client-go's dynamic client: the typed one would double the size
// of the imgsign binary for two GETs.
type KubeCredentials struct {
	Client dynamic.Interface
}

var (
	secretsResource         = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	serviceAccountsResource = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
)

// The pull secret types and their keys (core/v1).
const (
	secretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	dockerConfigJSONKey        = ".dockerconfigjson"
	secretTypeDockercfg        = "kubernetes.io/dockercfg"
	dockercfgKey               = ".dockercfg"
)

// Keyring implements Credentials.
func (k KubeCredentials) Keyring(ctx context.Context, namespace string, ps PullSecrets) (*Keyring, error) {
	names := append([]string(nil), ps.ImagePullSecrets...)
	if ps.ServiceAccount != "" {
		sa, err := k.Client.Resource(serviceAccountsResource).Namespace(namespace).Get(ctx, ps.ServiceAccount, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("reading service account %s/%s: %w", namespace, ps.ServiceAccount, err)
		default:
			refs, _, err := unstructured.NestedSlice(sa.Object, "imagePullSecrets")
			if err != nil {
				return nil, fmt.Errorf("service account %s/%s: %w", namespace, ps.ServiceAccount, err)
			}
			for _, r := range refs {
				if m, ok := r.(map[string]any); ok {
					if n, ok := m["name"].(string); ok {
						names = append(names, n)
					}
				}
			}
		}
	}
	ring := &Keyring{}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if len(seen) > MaxPullSecrets {
			return nil, fmt.Errorf("more than %d pull secrets", MaxPullSecrets)
		}
		s, err := k.Client.Resource(secretsResource).Namespace(namespace).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading pull secret %s/%s: %w", namespace, n, err)
		}
		if err := addSecret(ring, s); err != nil {
			return nil, fmt.Errorf("pull secret %s/%s: %w", namespace, n, err)
		}
	}
	if ring.Len() == 0 {
		return nil, nil
	}
	return ring, nil
}

type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// addSecret adds the registries of a docker-registry Secret to ring, in
// the order of their keys (the kubelet's order is not defined). A Secret of
// another type is not a pull secret: the kubelet ignores it too.
func addSecret(ring *Keyring, s *unstructured.Unstructured) error {
	typ, _, _ := unstructured.NestedString(s.Object, "type")
	data := func(key string) ([]byte, error) {
		v, _, err := unstructured.NestedString(s.Object, "data", key)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("%s: not base64", key)
		}
		return b, nil
	}
	var auths map[string]dockerAuth
	switch typ {
	case secretTypeDockerConfigJSON:
		b, err := data(dockerConfigJSONKey)
		if err != nil {
			return err
		}
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("%s: %v", dockerConfigJSONKey, err)
		}
		auths = cfg.Auths
	case secretTypeDockercfg:
		b, err := data(dockercfgKey)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &auths); err != nil {
			return fmt.Errorf("%s: %v", dockercfgKey, err)
		}
	default:
		return nil
	}
	keys := make([]string, 0, len(auths))
	for k := range auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := auths[k]
		if a.Auth != "" && a.Username == "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return fmt.Errorf("registry %s: auth is not base64", k)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return fmt.Errorf("registry %s: auth is not USER:PASSWORD", k)
			}
			a.Username, a.Password = u, p
		}
		ring.Add(k, authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken})
	}
	return nil
}
