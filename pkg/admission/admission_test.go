package admission_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/admission"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// env is an in-process registry with signed and unsigned images, a policy
// requiring a key for REG/signed and REG/unsigned, and a webhook.
type env struct {
	reg      *testreg.Registry
	client   *oci.Client
	key      crypto.Signer
	dir      string
	policy   string
	requests atomic.Int64 // every registry request
	sigs     atomic.Int64 // signature manifest requests
	hang     atomic.Bool  // REG/slow/* requests block until the test ends
	hangDone chan struct{}

	signed   name.Digest // REG/signed/app:v1
	signed2  name.Digest // REG/signed/tool:v1
	unsigned name.Digest // REG/unsigned/app:v1
	other    name.Digest // REG/other/app:v1 (no scope: rejected)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), hangDone: make(chan struct{})}
	t.Cleanup(func() { close(e.hangDone) })
	e.reg = testreg.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.requests.Add(1)
			if strings.HasSuffix(r.URL.Path, ".sig") {
				e.sigs.Add(1)
			}
			if e.hang.Load() && strings.HasPrefix(r.URL.Path, "/v2/slow/") {
				select {
				case <-e.hangDone:
				case <-r.Context().Done():
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	e.key = k
	pem, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "ci.pub"), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	e.signed = e.push(t, "signed/app:v1", true)
	e.signed2 = e.push(t, "signed/tool:v1", true)
	e.unsigned = e.push(t, "unsigned/app:v1", false)
	e.other = e.push(t, "other/app:v1", true)
	e.push(t, "slow/app:v1", true)
	e.policy = filepath.Join(e.dir, "policy.yaml")
	e.writePolicy(t, `
version: 1
scopes:
  - scope: REG/signed
    keys: [{file: ci.pub}]
  - scope: REG/unsigned
    keys: [{file: ci.pub}]
  - scope: REG/slow
    keys: [{file: ci.pub}]
`)
	return e
}

func (e *env) push(t testing.TB, path string, signed bool) name.Digest {
	t.Helper()
	d := e.reg.PushImage(t, e.reg.Ref(path))
	if signed {
		s, err := sign.NewSigner(e.client, e.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sign(context.Background(), d, sign.Options{Upload: true, Format: sign.FormatLegacy}); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func (e *env) writePolicy(t testing.TB, doc string) {
	t.Helper()
	if err := os.WriteFile(e.policy, []byte(strings.ReplaceAll(doc, "REG", e.reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) ref(path string) string { return e.reg.Ref(path) }

type server struct {
	*admission.Server
	url string
	log *bytes.Buffer
}

func (e *env) server(t testing.TB, mod func(*admission.Config)) *server {
	t.Helper()
	var log bytes.Buffer
	cfg := admission.Config{PolicyFile: e.policy, Client: e.client, Log: slog.New(slog.NewTextHandler(&syncWriter{w: &log}, nil)),
		RegistryRequests: func() uint64 { return uint64(e.requests.Load()) }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := admission.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &server{Server: s, url: hs.URL, log: &log}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// review builds an AdmissionReview document.
func review(uid, op string, gvk admission.GroupVersionKind, object, old any) []byte {
	req := map[string]any{"uid": uid, "kind": gvk, "operation": op, "namespace": "ns", "name": "x",
		"resource": map[string]string{"group": gvk.Group, "version": gvk.Version, "resource": strings.ToLower(gvk.Kind) + "s"}}
	if object != nil {
		req["object"] = object
	}
	if old != nil {
		req["oldObject"] = old
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		panic(err)
	}
	return b
}

// post sends a document and returns the HTTP status and the response.
func (s *server) post(t testing.TB, path string, body []byte) (int, *admission.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Post(s.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(raw)
	}
	var r admission.Review
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response: %v\n%s", err, raw)
	}
	if r.APIVersion != admission.ReviewAPIVersion || r.Kind != admission.ReviewKind || r.Response == nil {
		t.Fatalf("not an AdmissionReview response: %s", raw)
	}
	return resp.StatusCode, r.Response, string(raw)
}

// answer posts a well-formed review and checks the uid comes back.
func (s *server) answer(t testing.TB, path string, body []byte) *admission.Response {
	t.Helper()
	code, r, raw := s.post(t, path, body)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, raw)
	}
	var q admission.Review
	json.Unmarshal(body, &q)
	if r.UID != q.Request.UID {
		t.Fatalf("response uid %q, request uid %q", r.UID, q.Request.UID)
	}
	return r
}

// podSpec is a pod spec with the given images.
type podSpec struct {
	containers, init, ephemeral, volumes []string
}

func (p podSpec) json() map[string]any {
	list := func(prefix string, images []string) []any {
		var out []any
		for i, im := range images {
			out = append(out, map[string]any{"name": fmt.Sprintf("%s%d", prefix, i), "image": im})
		}
		return out
	}
	spec := map[string]any{"containers": list("c", p.containers)}
	if p.init != nil {
		spec["initContainers"] = list("i", p.init)
	}
	if p.ephemeral != nil {
		spec["ephemeralContainers"] = list("e", p.ephemeral)
	}
	if p.volumes != nil {
		var vs []any
		for i, im := range p.volumes {
			vs = append(vs, map[string]any{"name": fmt.Sprintf("v%d", i), "image": map[string]any{"reference": im, "pullPolicy": "IfNotPresent"}})
		}
		spec["volumes"] = vs
	}
	return spec
}

// workload is how one kind wraps a pod spec.
type workload struct {
	gvk  admission.GroupVersionKind
	wrap func(spec map[string]any) map[string]any
}

func template(spec map[string]any) map[string]any {
	return map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "x"}}, "spec": spec}
}

var workloads = []workload{
	{admission.GroupVersionKind{Version: "v1", Kind: "Pod"}, func(s map[string]any) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "x"}, "spec": s}
	}},
	{admission.GroupVersionKind{Version: "v1", Kind: "PodTemplate"}, func(s map[string]any) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "PodTemplate", "template": template(s)}
	}},
	{admission.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, func(s map[string]any) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "ReplicationController", "spec": map[string]any{"replicas": 1, "template": template(s)}}
	}},
	{admission.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, func(s map[string]any) map[string]any {
		return map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "spec": map[string]any{"schedule": "* * * * *",
			"jobTemplate": map[string]any{"spec": map[string]any{"template": template(s)}}}}
	}},
}

func init() {
	for _, k := range []struct{ group, kind string }{{"apps", "Deployment"}, {"apps", "ReplicaSet"}, {"apps", "StatefulSet"}, {"apps", "DaemonSet"}, {"batch", "Job"}} {
		k := k
		workloads = append(workloads, workload{admission.GroupVersionKind{Group: k.group, Version: "v1", Kind: k.kind}, func(s map[string]any) map[string]any {
			return map[string]any{"apiVersion": k.group + "/v1", "kind": k.kind, "spec": map[string]any{"template": template(s)}}
		}})
	}
}

// applyPatch applies a JSON patch of "replace" operations, as the API server
// would, and fails the test on anything else.
func applyPatch(t *testing.T, object map[string]any, patch []byte) map[string]any {
	t.Helper()
	var ops []struct{ Op, Path, Value string }
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch: %v", err)
	}
	// Work on a copy.
	raw, _ := json.Marshal(object)
	var doc any
	json.Unmarshal(raw, &doc)
	for _, op := range ops {
		if op.Op != "replace" {
			t.Fatalf("patch op %q", op.Op)
		}
		segs := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		cur := doc
		for i, s := range segs {
			last := i == len(segs)-1
			switch c := cur.(type) {
			case map[string]any:
				if _, ok := c[s]; !ok {
					t.Fatalf("patch path %s: no %q", op.Path, s)
				}
				if last {
					c[s] = op.Value
				}
				cur = c[s]
			case []any:
				var n int
				if _, err := fmt.Sscan(s, &n); err != nil || n >= len(c) {
					t.Fatalf("patch path %s: bad index %q", op.Path, s)
				}
				if last {
					c[n] = op.Value
				}
				cur = c[n]
			default:
				t.Fatalf("patch path %s: walks into a %T", op.Path, cur)
			}
		}
	}
	return doc.(map[string]any)
}

// imagesOf lists the image strings of an object, in JSON order of its spec.
func imagesOf(t *testing.T, gvk admission.GroupVersionKind, object map[string]any) []string {
	t.Helper()
	raw, _ := json.Marshal(object)
	ims, _, err := admission.Images(gvk, raw)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, im := range ims {
		out = append(out, im.Ref)
	}
	return out
}

// TestWorkloadKinds: for every kind, an unsigned image anywhere in the pod
// spec is refused with its place and reason; signed images are admitted,
// and /mutate pins each tag to the digest verified, at the right path.
func TestWorkloadKinds(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	signed, tool, unsigned := e.ref("signed/app:v1"), e.ref("signed/tool:v1"), e.ref("unsigned/app:v1")
	for _, w := range workloads {
		t.Run(w.gvk.Kind, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				spec  podSpec
				where string
			}{
				{"container", podSpec{containers: []string{signed, unsigned}}, "container c1"},
				{"init container", podSpec{containers: []string{signed}, init: []string{unsigned}}, "init container i0"},
				{"ephemeral container", podSpec{containers: []string{signed}, ephemeral: []string{unsigned}}, "ephemeral container e0"},
				{"image volume", podSpec{containers: []string{signed}, volumes: []string{unsigned}}, "image volume v0"},
			} {
				obj := w.wrap(tc.spec.json())
				for _, ep := range []string{"/validate", "/mutate"} {
					r := s.answer(t, ep, review("u-"+tc.name, "CREATE", w.gvk, obj, nil))
					if r.Allowed || r.Status == nil {
						t.Fatalf("%s %s: unsigned image admitted: %+v", ep, tc.name, r)
					}
					want := unsigned + " (" + tc.where + "): not signed (no signatures found)"
					if !strings.Contains(r.Status.Message, want) || r.Status.Code != 403 {
						t.Errorf("%s %s: denial %d %q, want it to contain %q", ep, tc.name, r.Status.Code, r.Status.Message, want)
					}
					if strings.Contains(r.Status.Message, signed) || r.Patch != nil {
						t.Errorf("%s %s: denial names the signed image or patches: %+v", ep, tc.name, r)
					}
				}
			}

			// All signed, one of them already pinned: admitted; /mutate
			// pins the others.
			pinned := e.signed2.String()
			spec := podSpec{containers: []string{signed, pinned}, init: []string{tool}, ephemeral: []string{signed}, volumes: []string{tool}}
			obj := w.wrap(spec.json())
			r := s.answer(t, "/validate", review("ok", "CREATE", w.gvk, obj, nil))
			if !r.Allowed || r.Patch != nil || len(r.Warnings) != 0 {
				t.Fatalf("validate: %+v", r)
			}
			r = s.answer(t, "/mutate", review("ok", "CREATE", w.gvk, obj, nil))
			if !r.Allowed || r.PatchType == nil || *r.PatchType != "JSONPatch" {
				t.Fatalf("mutate: %+v", r)
			}
			got := imagesOf(t, w.gvk, applyPatch(t, obj, r.Patch))
			// In the order of the object (its keys are sorted: containers,
			// ephemeralContainers, initContainers, volumes).
			want := []string{signed + "@" + e.signed.DigestStr(), pinned, signed + "@" + e.signed.DigestStr(), tool + "@" + e.signed2.DigestStr(), tool + "@" + e.signed2.DigestStr()}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("mutated images:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestUpdate: on UPDATE only images the old object did not run are
// checked: a label change on a Pod running an image now refused passes; a
// new unsigned image (an ephemeral container added through its subresource
// too) is refused.
func TestUpdate(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	pod := workloads[0]
	signed, unsigned := e.ref("signed/app:v1"), e.ref("unsigned/app:v1")
	old := pod.wrap(podSpec{containers: []string{unsigned}}.json())
	relabelled := pod.wrap(podSpec{containers: []string{unsigned}}.json())
	relabelled["metadata"] = map[string]any{"name": "x", "labels": map[string]any{"new": "label"}}
	if r := s.answer(t, "/validate", review("u1", "UPDATE", pod.gvk, relabelled, old)); !r.Allowed {
		t.Errorf("unchanged images refused on UPDATE: %+v", r.Status)
	}
	before := pod.wrap(podSpec{containers: []string{signed}}.json())
	after := pod.wrap(podSpec{containers: []string{unsigned}}.json())
	r := s.answer(t, "/validate", review("u2", "UPDATE", pod.gvk, after, before))
	if r.Allowed || !strings.Contains(r.Status.Message, unsigned+" (container c0): not signed") {
		t.Errorf("UPDATE to an unsigned image: %+v", r.Status)
	}
	withEphemeral := pod.wrap(podSpec{containers: []string{signed}, ephemeral: []string{unsigned}}.json())
	q := review("u3", "UPDATE", pod.gvk, withEphemeral, before)
	q = bytes.Replace(q, []byte(`"operation"`), []byte(`"subResource":"ephemeralcontainers","operation"`), 1)
	r = s.answer(t, "/validate", q)
	if r.Allowed || !strings.Contains(r.Status.Message, unsigned+" (ephemeral container e0): not signed") {
		t.Errorf("ephemeral container added: %+v", r.Status)
	}
	// DELETE and CONNECT are not about images.
	if r := s.answer(t, "/validate", review("u4", "DELETE", pod.gvk, nil, old)); !r.Allowed {
		t.Errorf("DELETE: %+v", r.Status)
	}
}

// TestReasons: the denial says why each image failed, briefly.
func TestReasons(t *testing.T) {
	e := newEnv(t)
	e.writePolicy(t, `
version: 1
scopes:
  - scope: REG/signed
    keys: [{file: ci.pub}]
    annotations: {env: prod}
  - scope: REG/unsigned
    keys: [{file: ci.pub}]
  - scope: REG/other
    reject: true
`)
	s := e.server(t, nil)
	pod := workloads[0]
	obj := pod.wrap(podSpec{containers: []string{e.ref("signed/app:v1"), e.ref("unsigned/app:v1"), e.ref("other/app:v1"), e.ref("unsigned/missing:v1"), "Not A Reference"}}.json())
	r := s.answer(t, "/validate", review("r", "CREATE", pod.gvk, obj, nil))
	if r.Allowed || r.Status.Code != 400 || !strings.Contains(r.Status.Message, "Not A Reference (container c4): not an image reference") {
		t.Fatalf("bad reference: %+v", r.Status)
	}
	obj = pod.wrap(podSpec{containers: []string{e.ref("signed/app:v1"), e.ref("unsigned/app:v1"), e.ref("other/app:v1"), e.ref("unsigned/missing:v1")}}.json())
	r = s.answer(t, "/validate", review("r", "CREATE", pod.gvk, obj, nil))
	if r.Allowed {
		t.Fatal("admitted")
	}
	for _, want := range []string{
		"4 image(s) refused",
		e.ref("signed/app:v1") + " (container c0): no valid signature",
		"[scope " + e.reg.Host + "/signed]",
		e.ref("unsigned/app:v1") + " (container c1): not signed (no signatures found)",
		e.ref("other/app:v1") + " (container c2): rejected by policy: scope " + e.reg.Host + "/other (line",
		e.ref("unsigned/missing:v1") + " (container c3): image not found in its registry",
	} {
		if !strings.Contains(r.Status.Message, want) {
			t.Errorf("denial lacks %q:\n%s", want, r.Status.Message)
		}
	}
	if strings.Contains(r.Status.Message, "\n") || len(r.Status.Message) > 2200 {
		t.Errorf("denial not short: %q", r.Status.Message)
	}
}

// TestWarnOnly: --warn-only admits with a warning per refused image, and
// /mutate still pins the images that passed.
func TestWarnOnly(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, func(c *admission.Config) { c.WarnOnly = true })
	pod := workloads[0]
	obj := pod.wrap(podSpec{containers: []string{e.ref("signed/app:v1"), e.ref("unsigned/app:v1")}}.json())
	r := s.answer(t, "/mutate", review("w", "CREATE", pod.gvk, obj, nil))
	if !r.Allowed || r.Status != nil {
		t.Fatalf("warn-only refused: %+v", r)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], e.ref("unsigned/app:v1")+" (container c0)") && !strings.Contains(r.Warnings[0], "not signed") {
		t.Errorf("warnings: %q", r.Warnings)
	}
	got := imagesOf(t, pod.gvk, applyPatch(t, obj, r.Patch))
	if got[0] != e.ref("signed/app:v1")+"@"+e.signed.DigestStr() || got[1] != e.ref("unsigned/app:v1") {
		t.Errorf("warn-only patch: %v", got)
	}
}

// TestMalformed: requests that are not a v1 AdmissionReview this webhook
// can answer get a clear error, as an HTTP error when there is no uid to
// answer, else as a denial.
func TestMalformed(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	pod := workloads[0]
	good := pod.wrap(podSpec{containers: []string{e.ref("signed/app:v1")}}.json())
	for _, tc := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"not JSON", `{"apiVersion":`, 400, "malformed AdmissionReview: unexpected end of JSON input"},
		{"wrong kind", `{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"1"}}`, 400, `got kind "Pod" apiVersion "admission.k8s.io/v1"`},
		{"v1beta1", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`, 400, "set admissionReviewVersions: [v1]"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "no request"},
		{"no uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE","kind":{"version":"v1","kind":"Pod"},"object":{}}}`, 400, "the request has no uid"},
		{"a response", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"1","allowed":true}}`, 400, "no request"},
		{"array", `[]`, 400, "malformed AdmissionReview"},
	} {
		code, r, raw := s.post(t, "/validate", []byte(tc.body))
		if code != tc.code || r != nil || !strings.Contains(raw, tc.want) {
			t.Errorf("%s: HTTP %d %q, want %d with %q", tc.name, code, raw, tc.code, tc.want)
		}
	}

	// Answerable (a uid), but wrong: a denial that says why.
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"no object", review("n1", "CREATE", pod.gvk, nil, nil), "a CREATE request without an object"},
		{"no operation", review("n2", "", pod.gvk, good, nil), "the request has no operation"},
		{"no kind", review("n3", "CREATE", admission.GroupVersionKind{}, good, nil), "the request has no kind"},
		{"unknown kind", review("n4", "CREATE", admission.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Rollout"}, good, nil), "kind not checked by this webhook: example.com/v1 Rollout"},
		{"object of the wrong shape", review("n5", "CREATE", pod.gvk, map[string]any{"spec": map[string]any{"containers": "nginx"}}, nil), "reading the Pod: k8simages: document 0, line 1: spec.containers is not a list"},
		{"container without an image", review("n7", "CREATE", pod.gvk, map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c"}}}}, nil), `container "c" (containers[0]) has an empty image`},
		{"object of another kind", review("n8", "CREATE", pod.gvk, workloads[4].wrap(podSpec{containers: []string{"x"}}.json()), nil), `the object's kind is "Deployment", not Pod`},
		{"object not an object", review("n6", "CREATE", pod.gvk, "a string", nil), "reading the Pod"},
	} {
		code, r, raw := s.post(t, "/validate", tc.body)
		if code != 200 || r == nil {
			t.Errorf("%s: HTTP %d %s", tc.name, code, raw)
			continue
		}
		if r.Allowed || r.Status == nil || r.Status.Code != 400 || !strings.Contains(r.Status.Message, tc.want) || r.UID == "" {
			t.Errorf("%s: %s, want a denial with %q", tc.name, raw, tc.want)
		}
	}

	// Not a POST.
	resp, err := http.Get(s.url + "/validate")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /validate: %d", resp.StatusCode)
	}
}

// TestHugeReview: a body over the limit is refused without being read
// whole; a big but legal review is answered.
func TestHugeReview(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	pod := workloads[0]
	// An endless body: the server stops reading at the limit.
	pr, pw := io.Pipe()
	var sent atomic.Int64
	go func() {
		head := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"h","operation":"CREATE","kind":{"version":"v1","kind":"Pod"},"object":{"metadata":{"annotations":{"a":"`)
		pw.Write(head)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for sent.Load() < 64<<20 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
		pw.Close()
	}()
	// What the webhook reads of the body is counted where it reads it (the
	// client's count also holds what the socket buffers took).
	var read atomic.Int64
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = countingBody{r.Body, &read}
		s.Handler().ServeHTTP(w, r)
	}))
	defer counted.Close()
	resp, err := http.Post(counted.URL+"/validate", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), fmt.Sprintf("larger than %d bytes", admission.MaxReviewBytes)) {
		t.Errorf("huge review: HTTP %d %q", resp.StatusCode, raw)
	}
	if n := read.Load(); n > admission.MaxReviewBytes+64<<10 {
		t.Errorf("the webhook read %d bytes of a huge review (limit %d)", n, admission.MaxReviewBytes)
	}
	if n := sent.Load(); n <= admission.MaxReviewBytes {
		t.Errorf("the client sent only %d bytes: the review was not huge", n)
	}

	// A large legal object (1 MiB of annotations) is answered.
	obj := pod.wrap(podSpec{containers: []string{e.ref("signed/app:v1")}}.json())
	obj["metadata"] = map[string]any{"annotations": map[string]any{"big": strings.Repeat("y", 1<<20)}}
	if r := s.answer(t, "/validate", review("big", "CREATE", pod.gvk, obj, obj)); !r.Allowed {
		t.Errorf("large review: %+v", r.Status)
	}

	// More distinct images than one review may check.
	var many []string
	for i := range admission.MaxImages + 1 {
		many = append(many, fmt.Sprintf("%s:t%d", e.ref("signed/app"), i))
	}
	r := s.answer(t, "/validate", review("many", "CREATE", pod.gvk, pod.wrap(podSpec{containers: many}.json()), nil))
	if r.Allowed || !strings.Contains(r.Status.Message, fmt.Sprintf("more than the %d one review may check", admission.MaxImages)) {
		t.Errorf("too many images: %+v", r.Status)
	}
}

// TestCacheAndRequests: after the first review, a tag costs one registry
// request (a HEAD), a pinned digest none; concurrent reviews of one digest
// make one verification.
func TestCacheAndRequests(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	pod := workloads[0]
	tagged := review("c", "CREATE", pod.gvk, pod.wrap(podSpec{containers: []string{e.ref("signed/app:v1")}}.json()), nil)
	pinned := review("c", "CREATE", pod.gvk, pod.wrap(podSpec{containers: []string{e.signed.String()}}.json()), nil)

	// Concurrent first reviews: one verification.
	e.sigs.Store(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := s.answer(t, "/validate", tagged); !r.Allowed {
				t.Errorf("concurrent: %+v", r.Status)
			}
		}()
	}
	wg.Wait()
	if n := e.sigs.Load(); n != 1 {
		t.Errorf("8 concurrent reviews fetched signatures %d times, want 1", n)
	}
	before := e.requests.Load()
	for range 10 {
		if r := s.answer(t, "/validate", tagged); !r.Allowed {
			t.Fatal(r.Status)
		}
	}
	if n := e.requests.Load() - before; n != 10 {
		t.Errorf("10 cached reviews of a tag made %d registry requests, want 10 (one HEAD each)", n)
	}
	before = e.requests.Load()
	for range 10 {
		if r := s.answer(t, "/validate", pinned); !r.Allowed {
			t.Fatal(r.Status)
		}
	}
	if n := e.requests.Load() - before; n != 0 {
		t.Errorf("10 cached reviews of a digest made %d registry requests, want 0", n)
	}
	m := s.metricsText(t)
	// The concurrent reviews that came before the first verdict missed the
	// cache and shared one verification; every later one hit it.
	hits, misses := metricValue(t, m, "imgsign_admission_cache_hits_total"), metricValue(t, m, "imgsign_admission_cache_misses_total")
	if hits+misses != 28 || hits < 20 || misses < 1 {
		t.Errorf("cache hits %d, misses %d; want 28 in all, at least 20 hits", hits, misses)
	}
	for _, want := range []string{
		`imgsign_admission_reviews_total{endpoint="validate",verdict="allowed"} 28`,
		`imgsign_admission_images_total{verdict="verified"} 28`,
		`imgsign_admission_review_duration_seconds_count{endpoint="validate"} 28`,
		`imgsign_admission_review_duration_seconds_bucket{endpoint="validate",le="+Inf"} 28`,
		`imgsign_admission_policy_file_ok 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func metricValue(t *testing.T, metrics, series string) int {
	t.Helper()
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

func (s *server) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("metrics content type %q", ct)
	}
	return string(b)
}

// TestHangingRegistry: a registry that never answers gives a denial with
// that reason, in time, and the verdict is not cached.
func TestHangingRegistry(t *testing.T) {
	e := newEnv(t)
	e.hang.Store(true)
	s := e.server(t, func(c *admission.Config) { c.Timeout = 300 * time.Millisecond })
	pod := workloads[0]
	obj := pod.wrap(podSpec{containers: []string{e.ref("slow/app:v1"), e.ref("signed/app:v1")}}.json())
	r := s.answer(t, "/validate", review("h", "CREATE", pod.gvk, obj, nil))
	if r.Allowed || !strings.Contains(r.Status.Message, e.ref("slow/app:v1")+" (container c0): not verified in time") {
		t.Fatalf("hanging registry: %+v", r.Status)
	}
	if strings.Contains(r.Status.Message, e.ref("signed/app:v1")) {
		t.Errorf("the image that answered is refused too: %s", r.Status.Message)
	}
	// The API server's own (shorter) timeout is honoured too.
	s2 := e.server(t, nil)
	code, r2, raw := s2.post(t, "/validate?timeout=1s", review("h2", "CREATE", pod.gvk, obj, nil))
	if code != 200 || r2.Allowed || !strings.Contains(r2.Status.Message, "not verified in time") {
		t.Fatalf("?timeout=1s: %d %s", code, raw)
	}
	// Once the registry answers, the image is admitted: nothing was cached.
	e.hang.Store(false)
	if r := s.answer(t, "/validate", review("h3", "CREATE", pod.gvk, obj, nil)); !r.Allowed {
		t.Errorf("after the registry recovered: %+v", r.Status)
	}
}

// TestPolicyReload: a changed policy file is put in force; one that does
// not load keeps the old policy, and says so in the log, the metrics and
// /readyz; cached verdicts of the old policy do not leak into the new one.
func TestPolicyReload(t *testing.T) {
	e := newEnv(t)
	s := e.server(t, nil)
	pod := workloads[0]
	q := review("p", "CREATE", pod.gvk, pod.wrap(podSpec{containers: []string{e.ref("unsigned/app:v1")}}.json()), nil)
	if r := s.answer(t, "/validate", q); r.Allowed {
		t.Fatal("unsigned admitted")
	}
	e.writePolicy(t, "version: 1\nscopes:\n  - scope: REG/unsigned\n    unsigned: accept\n")
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if r := s.answer(t, "/validate", q); !r.Allowed {
		t.Fatalf("after the policy accepts unsigned images: %+v", r.Status)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Errorf("reload of an unchanged file: %v %v", changed, err)
	}

	// A broken file: the policy above stays.
	e.writePolicy(t, "version: 1\nscopes:\n  - scope: REG/unsigned\n    unsigend: accept\n")
	changed, err := s.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), "unsigend") {
		t.Fatalf("reload of a bad file: %v %v", changed, err)
	}
	if r := s.answer(t, "/validate", q); !r.Allowed {
		t.Errorf("the old policy is not in force: %+v", r.Status)
	}
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "policy file not loaded (the policy above stays in force)") || !strings.Contains(string(body), "unsigend") {
		t.Errorf("/readyz: %d %s", resp.StatusCode, body)
	}
	m := s.metricsText(t)
	for _, want := range []string{"imgsign_admission_policy_file_ok 0", "imgsign_admission_policy_reload_errors_total 1", "imgsign_admission_policy_reloads_total 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(s.log.String(), "policy file did not load") {
		t.Errorf("log: %s", s.log.String())
	}

	// Back to the strict policy: the cached "accepted" verdict of the
	// lenient one does not apply.
	e.writePolicy(t, "version: 1\nscopes:\n  - scope: REG/unsigned\n    keys: [{file: ci.pub}]\n")
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := s.answer(t, "/validate", q); r.Allowed {
		t.Error("a verdict of the old policy was used")
	}
	if m := s.metricsText(t); !strings.Contains(m, "imgsign_admission_policy_file_ok 1") {
		t.Error("policy_file_ok not back to 1")
	}
}

// TestBadPolicyAtStart: a server does not start without a policy in force.
func TestBadPolicyAtStart(t *testing.T) {
	e := newEnv(t)
	e.writePolicy(t, "version: 2\n")
	_, err := admission.NewServer(admission.Config{PolicyFile: e.policy, Client: e.client})
	if err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("bad policy: %v", err)
	}
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
