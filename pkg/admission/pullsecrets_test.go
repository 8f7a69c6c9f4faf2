package admission_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/admission"
	"github.com/imgsign/imgsign/pkg/oci"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func dockerSecret(ns, name, registry, user, pass string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, registry, auth)}}
}

// fakeAPI serves core/v1 objects to the dynamic client, as the API server
// would (JSON, base64 secret data).
func fakeAPI(t *testing.T, objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	t.Helper()
	var us []runtime.Object
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetAPIVersion("v1")
		switch o.(type) {
		case *corev1.Secret:
			u.SetKind("Secret")
		case *corev1.ServiceAccount:
			u.SetKind("ServiceAccount")
		}
		us = append(us, u)
	}
	return dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), us...)
}

// basic is the user:password the keyring gives first for a repository
// (":" for none).
func basic(t *testing.T, ring *admission.Keyring, repo string) string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	auths := ring.LookupRepository(r)
	if len(auths) == 0 {
		return ":"
	}
	return auths[0].Username + ":" + auths[0].Password
}

// TestKubeCredentials: pull secrets of the pod and of its service account,
// matched by registry host as the kubelet matches them; secrets that do not
// exist or are not pull secrets are skipped; a malformed one is an error.
func TestKubeCredentials(t *testing.T) {
	cs := fakeAPI(t,
		dockerSecret("ns", "pod-secret", "https://registry.example.com/v1/", "pod", "p1"),
		dockerSecret("ns", "sa-secret", "*.mirror.example", "sa", "p2"),
		dockerSecret("ns", "hub", "https://index.docker.io/v1/", "hub", "p3"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "opaque"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"x": []byte("y")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "legacy"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"old.example:5000":{"username":"old","password":"p4"}}`)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "broken"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":`)}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "builder"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "sa-secret"}, {Name: "missing"}}},
		dockerSecret("other", "pod-secret", "registry.example.com", "elsewhere", "nope"),
	)
	k := admission.KubeCredentials{Client: cs}
	ctx := context.Background()
	ring, err := k.Keyring(ctx, "ns", admission.PullSecrets{ImagePullSecrets: []string{"pod-secret", "opaque", "legacy", "hub", "gone"}, ServiceAccount: "builder"})
	if err != nil || ring.Len() != 4 {
		t.Fatalf("keyring: %v, %d keys", err, ring.Len())
	}
	for repo, want := range map[string]string{
		"registry.example.com/app": "pod:p1",
		"eu.mirror.example/x/y":    "sa:p2",
		"old.example:5000/z":       "old:p4",
		"nginx":                    "hub:p3",
		"old.example/z":            ":", // the port differs
		"a.b.mirror.example/x":     ":", // * is one label
		"elsewhere.example/app":    ":",
	} {
		if got := basic(t, ring, repo); got != want {
			t.Errorf("%s: %q, want %q", repo, got, want)
		}
	}
	// None, no keyring.
	if ring, err := k.Keyring(ctx, "ns", admission.PullSecrets{ServiceAccount: "nobody"}); ring != nil || err != nil {
		t.Errorf("no secrets: %v %v", ring, err)
	}
	if _, err := k.Keyring(ctx, "ns", admission.PullSecrets{ImagePullSecrets: []string{"broken"}}); err == nil || !strings.Contains(err.Error(), "pull secret ns/broken: .dockerconfigjson") {
		t.Errorf("broken secret: %v", err)
	}
}

// TestPullSecretsReview: a private registry the webhook has no credentials
// for: the workload's pull secret lets it verify the image; without it the
// image is refused, saying why.
func TestPullSecretsReview(t *testing.T) {
	e := newEnv(t)
	// The registry now wants credentials from everyone.
	inner := e.reg.Server.Config.Handler
	e.reg.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "puller" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
	anon, err := oci.NewClient(oci.Options{Retries: -1, Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	cs := fakeAPI(t, dockerSecret("ns", "regcred", e.reg.Host, "puller", "s3cret"),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "sa-ns", Name: "default"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}},
		dockerSecret("sa-ns", "regcred", e.reg.Host, "puller", "s3cret"))
	s := e.server(t, func(c *admission.Config) {
		c.Client = anon
		c.Credentials = admission.KubeCredentials{Client: cs}
		c.NewClient = func(kc authn.Keychain) (*oci.Client, error) {
			return oci.NewClient(oci.Options{Retries: -1, Keychain: kc})
		}
	})
	pod := workloads[0]
	spec := podSpec{containers: []string{e.ref("signed/app:v1")}}.json()
	without := s.answer(t, "/validate", review("a", "CREATE", pod.gvk, pod.wrap(spec), nil))
	if without.Allowed || !strings.Contains(without.Status.Message, e.ref("signed/app:v1")+" (container c0): the registry refused a request (HTTP 401 UNAUTHORIZED: authentication required)") {
		t.Errorf("without pull secrets: %+v", without.Status)
	}
	spec["imagePullSecrets"] = []any{map[string]string{"name": "regcred"}}
	if r := s.answer(t, "/validate", review("b", "CREATE", pod.gvk, pod.wrap(spec), nil)); !r.Allowed {
		t.Errorf("with the pod's pull secret: %+v", r.Status)
	}
	// A refusal met without credentials is not served to a workload that
	// has them: a pinned digest, first without, then with the pull secret.
	pinned := podSpec{containers: []string{e.signed2.String()}}.json()
	if r := s.answer(t, "/validate", review("d1", "CREATE", pod.gvk, pod.wrap(pinned), nil)); r.Allowed || !strings.Contains(r.Status.Message, "(container c0): the registry refused a request (HTTP 401 UNAUTHORIZED: authentication required)") {
		t.Errorf("pinned digest without credentials: %+v", r.Status)
	}
	pinned["imagePullSecrets"] = []any{map[string]string{"name": "regcred"}}
	if r := s.answer(t, "/validate", review("d2", "CREATE", pod.gvk, pod.wrap(pinned), nil)); !r.Allowed {
		t.Errorf("pinned digest with credentials, after a refusal without: %+v", r.Status)
	}
	// And the verdict that passed is shared: now admitted without them too
	// (the kubelet will need its own credentials to pull it).
	delete(pinned, "imagePullSecrets")
	if r := s.answer(t, "/validate", review("d3", "CREATE", pod.gvk, pod.wrap(pinned), nil)); !r.Allowed {
		t.Errorf("pinned digest verified for another namespace: %+v", r.Status)
	}

	// The service account's pull secret, in another namespace.
	delete(spec, "imagePullSecrets")
	q := review("c", "CREATE", pod.gvk, pod.wrap(podSpec{containers: []string{e.ref("signed/tool:v1")}}.json()), nil)
	q = []byte(strings.Replace(string(q), `"namespace":"ns"`, `"namespace":"sa-ns"`, 1))
	if r := s.answer(t, "/validate", q); !r.Allowed {
		t.Errorf("with the service account's pull secret: %+v", r.Status)
	}
}

// TestPullSecretsByPath: one registry that wants other credentials for
// each repository, and a pull secret with a key for the host and one for a
// path under it: each image is read with the most specific key that
// matches it, as the kubelet would pull it, so both are admitted; with the
// host's key alone, the image under the path is refused, saying why. The
// credentials of a stale secret refused, the next matching ones are tried.
func TestPullSecretsByPath(t *testing.T) {
	e := newEnv(t)
	e.push(t, "signed/app:v2", true)
	inner := e.reg.Server.Config.Handler
	e.reg.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		want := "host-user:host-pass"
		if strings.HasPrefix(r.URL.Path, "/v2/signed/app/") {
			want = "app-user:app-pass"
		}
		if r.URL.Path == "/v2/" && ok || ok && u+":"+p == want {
			inner.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	})
	anon, err := oci.NewClient(oci.Options{Retries: -1, Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(user, pass string) string {
		return fmt.Sprintf(`{"auth":%q}`, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	secret := func(name, auths string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{` + auths + `}}`)}}
	}
	cs := fakeAPI(t,
		secret("both", fmt.Sprintf("%q:%s,%q:%s", "https://"+e.reg.Host, auth("host-user", "host-pass"), e.reg.Host+"/signed/app", auth("app-user", "app-pass"))),
		secret("host-only", fmt.Sprintf("%q:%s", e.reg.Host, auth("host-user", "host-pass"))),
		secret("stale", fmt.Sprintf("%q:%s", e.reg.Host+"/signed/app", auth("app-user", "old-pass"))))
	s := e.server(t, func(c *admission.Config) {
		c.Client = anon
		c.Credentials = admission.KubeCredentials{Client: cs}
		c.NewClient = func(kc authn.Keychain) (*oci.Client, error) {
			return oci.NewClient(oci.Options{Retries: -1, Keychain: kc})
		}
	})
	pod := workloads[0]
	app, tool := e.ref("signed/app:v1"), e.ref("signed/tool:v1")
	spec := podSpec{containers: []string{app, tool}}.json()
	spec["imagePullSecrets"] = []any{map[string]string{"name": "both"}}
	if r := s.answer(t, "/mutate", review("a", "CREATE", pod.gvk, pod.wrap(spec), nil)); !r.Allowed || r.Patch == nil {
		t.Errorf("each image with its key's credentials: %+v", r.Status)
	}
	spec["imagePullSecrets"] = []any{map[string]string{"name": "host-only"}}
	r := s.answer(t, "/validate", review("b", "CREATE", pod.gvk, pod.wrap(spec), nil))
	if r.Allowed || !strings.Contains(r.Status.Message, app+" (container c0): the registry refused a request (HTTP 401") || strings.Contains(r.Status.Message, tool) {
		t.Errorf("the host's key for the image under the path: %+v", r.Status)
	}
	// A stale secret first: refused, the next credentials of the same key
	// are tried, as the kubelet tries them (another tag: no cached verdict).
	app2 := e.ref("signed/app:v2")
	spec = podSpec{containers: []string{app2}}.json()
	spec["imagePullSecrets"] = []any{map[string]string{"name": "stale"}, map[string]string{"name": "both"}}
	if r := s.answer(t, "/validate", review("c", "CREATE", pod.gvk, pod.wrap(spec), nil)); !r.Allowed {
		t.Errorf("a stale secret before a good one: %+v", r.Status)
	}
	spec["imagePullSecrets"] = []any{map[string]string{"name": "stale"}}
	if r := s.answer(t, "/validate", review("d", "CREATE", pod.gvk, pod.wrap(spec), nil)); r.Allowed || !strings.Contains(r.Status.Message, app2+" (container c0): the registry refused a request (HTTP 401") {
		t.Errorf("a stale secret alone: %+v", r.Status)
	}
}
