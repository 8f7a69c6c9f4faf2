package k8simages

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// kindCases are every kind the package reads, with the API group and the
// pod spec's pointer written out here (not taken from the package), and how
// the kind wraps a pod spec.
var kindCases = []struct {
	kind, group, spec string
	wrap              func(spec any) map[string]any
}{
	{"Pod", "", "/spec", func(s any) map[string]any { return map[string]any{"spec": s} }},
	{"PodTemplate", "", "/template/spec", func(s any) map[string]any { return map[string]any{"template": map[string]any{"spec": s}} }},
	{"ReplicationController", "", "/spec/template/spec", tmpl},
	{"Deployment", "apps", "/spec/template/spec", tmpl},
	{"ReplicaSet", "apps", "/spec/template/spec", tmpl},
	{"StatefulSet", "apps", "/spec/template/spec", tmpl},
	{"DaemonSet", "apps", "/spec/template/spec", tmpl},
	{"Job", "batch", "/spec/template/spec", tmpl},
	{"CronJob", "batch", "/spec/jobTemplate/spec/template/spec", func(s any) map[string]any {
		return map[string]any{"spec": map[string]any{"jobTemplate": tmpl(s)}}
	}},
}

func tmpl(s any) map[string]any {
	return map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b"}}, "spec": s}}}
}

// fullSpec is a pod spec with an image in every field, pull secrets and a
// service account; refs are the images by the pointer they must have
// relative to the pod spec.
func fullSpec() (map[string]any, map[string]string) {
	c := func(name, image string) map[string]any { return map[string]any{"name": name, "image": image} }
	spec := map[string]any{
		"containers":          []any{c("c0", "reg.example/c0:1"), c("c1", "reg.example/c1@sha256:"+strings.Repeat("a", 64))},
		"initContainers":      []any{c("i0", "reg.example/i0")},
		"ephemeralContainers": []any{c("e0", "reg.example/e0:2")},
		"volumes": []any{
			map[string]any{"name": "plain", "emptyDir": map[string]any{}},
			map[string]any{"name": "v1", "image": map[string]any{"reference": "reg.example/v1:3", "pullPolicy": "IfNotPresent"}},
		},
		"imagePullSecrets":   []any{map[string]any{"name": "s1"}, map[string]any{"name": "s2"}},
		"serviceAccountName": "builder",
	}
	return spec, map[string]string{
		"/containers/0/image":          "reg.example/c0:1",
		"/containers/1/image":          "reg.example/c1@sha256:" + strings.Repeat("a", 64),
		"/initContainers/0/image":      "reg.example/i0",
		"/ephemeralContainers/0/image": "reg.example/e0:2",
		"/volumes/1/image/reference":   "reg.example/v1:3",
	}
}

// pointer resolves an RFC 6901 pointer in a decoded JSON (or YAML)
// document, exactly: keys are matched as written.
func pointer(doc any, ptr string) (any, error) {
	if !strings.HasPrefix(ptr, "/") {
		return nil, fmt.Errorf("pointer %q does not start with /", ptr)
	}
	cur := doc
	for _, seg := range strings.Split(ptr[1:], "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, fmt.Errorf("%s: no key %q", ptr, seg)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) || seg != strconv.Itoa(i) {
				return nil, fmt.Errorf("%s: bad index %q", ptr, seg)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("%s: %q walks into a %T", ptr, seg, cur)
		}
	}
	return cur, nil
}

// checkPaths checks that every image is at its Path in doc, and that the
// images found are exactly want (pointer => reference).
func checkPaths(t *testing.T, images []Image, doc any, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, im := range images {
		v, err := pointer(doc, im.Path)
		if err != nil || v != im.Ref {
			t.Errorf("image %q: Path %s resolves to %v (%v)", im.Ref, im.Path, v, err)
		}
		got[im.Path] = im.Ref
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("images by path:\n got %v\nwant %v", got, want)
	}
}

// TestPaths: for every kind and every image field, in JSON and in YAML,
// alone and in a List, Path is the JSON pointer of the image value, and
// every image carries the pod spec's pull secrets and service account.
func TestPaths(t *testing.T) {
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			spec, refs := fullSpec()
			obj := kc.wrap(spec)
			obj["apiVersion"], obj["kind"] = "x/v1", kc.kind
			obj["metadata"] = map[string]any{"name": "n", "namespace": "ns"}
			list := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{map[string]any{"kind": "ConfigMap"}, obj}}
			for _, tc := range []struct {
				name   string
				doc    any
				prefix string
			}{{"object", obj, kc.spec}, {"in a List", list, "/items/1" + kc.spec}} {
				want := map[string]string{}
				for p, r := range refs {
					want[tc.prefix+p] = r
				}
				js, _ := json.Marshal(tc.doc)
				ys, _ := yaml.Marshal(tc.doc)
				for format, data := range map[string][]byte{"json": js, "yaml": ys} {
					images, err := Images(strings.NewReader(string(data)))
					if err != nil {
						t.Fatalf("%s %s: %v", tc.name, format, err)
					}
					checkPaths(t, images, tc.doc, want)
					for _, im := range images {
						if !slices.Equal(im.PullSecrets, []string{"s1", "s2"}) || im.ServiceAccount != "builder" {
							t.Errorf("%s %s: image %s: pull secrets %v, service account %q", tc.name, format, im.Ref, im.PullSecrets, im.ServiceAccount)
						}
					}
				}
			}

			// Object: the same pointers, relative to the object.
			js, _ := json.Marshal(obj)
			images, err := Object(kc.kind, js)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for p, r := range refs {
				want[kc.spec+p] = r
			}
			checkPaths(t, images, obj, want)

			if g, ok := Group(kc.kind); !ok || g != kc.group {
				t.Errorf("Group(%s) = %q, %v; want %q", kc.kind, g, ok, kc.group)
			}
		})
	}
	if g, ok := Group("ConfigMap"); ok {
		t.Errorf("Group(ConfigMap) = %q, true", g)
	}
}

// TestPathsThroughAliases: YAML aliases and merge keys do not change where
// an image is in the document's JSON form.
func TestPathsThroughAliases(t *testing.T) {
	in := `x: &c {name: a, image: base}
spec:
  <<: {initContainers: [{name: i, image: init}]}
  containers:
  - *c
  - <<: *c
    name: b
  serviceAccount: legacy
`
	images, err := Images(strings.NewReader("kind: Pod\n" + in))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal([]byte(in), &doc); err != nil {
		t.Fatal(err)
	}
	checkPaths(t, images, doc, map[string]string{
		"/spec/initContainers/0/image": "init",
		"/spec/containers/0/image":     "base",
		"/spec/containers/1/image":     "base",
	})
	for _, im := range images {
		if im.ServiceAccount != "legacy" || im.PullSecrets != nil {
			t.Errorf("%s: service account %q (want the deprecated field's legacy), pull secrets %v", im.Path, im.ServiceAccount, im.PullSecrets)
		}
	}
}

func TestObjectErrors(t *testing.T) {
	pod := `{"kind":"Pod","spec":{"containers":[{"name":"c","image":"x"}]}}`
	for _, tc := range []struct {
		name, kind, in, want string
		limit                bool
	}{
		{"unknown kind", "ConfigMap", `{"kind":"ConfigMap"}`, `kind "ConfigMap" has no pod spec`, false},
		{"kind disagrees", "Deployment", pod, `the object's kind is "Pod", not Deployment`, false},
		{"not JSON", "Pod", `{"spec":`, "the Pod is not JSON", false},
		{"YAML", "Pod", "spec: {}", "the Pod is not JSON", false},
		{"two objects", "Pod", pod + pod, "not one JSON object", false},
		{"an array", "Pod", `[` + pod + `]`, "not one JSON object", false},
		{"empty image", "Pod", `{"spec":{"containers":[{"name":"c","image":""}]}}`, `container "c" (containers[0]) has an empty image`, false},
		{"null container", "Pod", `{"spec":{"containers":[{"name":"c","image":"x"},null]}}`, "spec.containers[1] is not a mapping", false},
		{"case-folded key", "Pod", `{"spec":{"Containers":[{"name":"c","image":"x"}],"containers":[{"name":"d","image":"y"}],"containers":[]}}`, `duplicate key "containers"`, false},
		{"pull secrets not a list", "Pod", `{"spec":{"imagePullSecrets":{"name":"s"}}}`, "spec.imagePullSecrets is not a list", false},
		{"pull secret not a mapping", "Pod", `{"spec":{"imagePullSecrets":["s"]}}`, "spec.imagePullSecrets[0] is not a mapping", false},
		{"service account not a string", "Pod", `{"spec":{"serviceAccountName":3}}`, "serviceAccountName is not a string", false},
		{"too many values", "Pod", `{"spec":{"containers":[` + strings.Repeat(`1,`, MaxValues) + `1]}}`, "values", true},
		{"too large", "Pod", `{"x":"` + strings.Repeat("a", MaxBytes) + `"}`, "larger than", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			images, err := Object(tc.kind, []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Object = %v, %v; want an error containing %q", images, err, tc.want)
			}
			if errors.Is(err, ErrLimit) != tc.limit {
				t.Errorf("errors.Is(%v, ErrLimit) = %v", err, !tc.limit)
			}
		})
	}
	// Without a kind field the caller's kind stands; a template without a
	// spec has no images.
	for _, in := range []string{`{"spec":{"containers":[{"name":"c","image":"x"}]}}`, `{"spec":null}`} {
		if _, err := Object("Pod", []byte(in)); err != nil {
			t.Errorf("Object(Pod, %s): %v", in, err)
		}
	}
	if images, err := Object("CronJob", []byte(`{"spec":{"jobTemplate":null}}`)); err != nil || len(images) != 0 {
		t.Errorf("CronJob without a job template: %v, %v", images, err)
	}
}

// BenchmarkObject: the images of a Deployment as an admission review
// carries it (JSON, about 2 KiB, every image field used).
func BenchmarkObject(b *testing.B) {
	spec, _ := fullSpec()
	obj := tmpl(spec)
	obj["apiVersion"], obj["kind"] = "apps/v1", "Deployment"
	obj["metadata"] = map[string]any{"name": "web", "namespace": "prod", "labels": map[string]any{"app": "web", "tier": "frontend"}}
	data, _ := json.Marshal(obj)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if images, err := Object("Deployment", data); err != nil || len(images) != 5 {
			b.Fatal(images, err)
		}
	}
}
