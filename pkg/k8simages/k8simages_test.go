package k8simages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// img is a compact form of Image for table tests: "ref kind/name/container
// doc:line" plus flags.
func img(ref, kind, ns, name, container string, doc, line int) Image {
	return Image{Ref: ref, Kind: kind, Namespace: ns, Name: name, Container: container, Document: doc, Line: line}
}

func initc(i Image) Image { i.InitContainer = true; return i }
func ephc(i Image) Image  { i.EphemeralContainer = true; return i }
func vol(i Image, name string) Image {
	i.Volume = name
	return i
}

func TestImages(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Image
	}{
		{
			name: "pod with init and ephemeral containers",
			in: `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: prod
spec:
  initContainers:
  - name: setup
    image: busybox:1.36
  containers:
  - name: app
    image: registry.example/app@sha256:aaaa
  - name: sidecar
    image: "envoy:v1"
  ephemeralContainers:
  - name: debug
    image: alpine
`,
			want: []Image{
				initc(img("busybox:1.36", "Pod", "prod", "web", "setup", 0, 9)),
				img("registry.example/app@sha256:aaaa", "Pod", "prod", "web", "app", 0, 12),
				img("envoy:v1", "Pod", "prod", "web", "sidecar", 0, 14),
				ephc(img("alpine", "Pod", "prod", "web", "debug", 0, 17)),
			},
		},
		{
			name: "containers listed before initContainers keep file order",
			in: `kind: Pod
spec:
  containers: [{name: a, image: a}]
  initContainers: [{name: i, image: i}]
`,
			want: []Image{img("a", "Pod", "", "", "a", 0, 3), initc(img("i", "Pod", "", "", "i", 0, 4))},
		},
		{
			name: "template kinds",
			in: `kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers: [{name: c, image: deploy}]
---
kind: StatefulSet
metadata: {name: s}
spec: {template: {spec: {containers: [{name: c, image: sts}]}}}
---
kind: DaemonSet
metadata: {name: ds}
spec: {template: {spec: {initContainers: [{name: c, image: ds-init}], containers: [{name: c, image: ds}]}}}
---
kind: ReplicaSet
metadata: {name: rs}
spec: {template: {spec: {containers: [{name: c, image: rs}]}}}
---
kind: Job
metadata: {name: j}
spec: {template: {spec: {containers: [{name: c, image: job}]}}}
---
kind: ReplicationController
metadata: {name: rc}
spec: {template: {spec: {containers: [{name: c, image: rc}]}}}
`,
			want: []Image{
				img("deploy", "Deployment", "", "d", "c", 0, 6),
				img("sts", "StatefulSet", "", "s", "c", 1, 10),
				initc(img("ds-init", "DaemonSet", "", "ds", "c", 2, 14)),
				img("ds", "DaemonSet", "", "ds", "c", 2, 14),
				img("rs", "ReplicaSet", "", "rs", "c", 3, 18),
				img("job", "Job", "", "j", "c", 4, 22),
				img("rc", "ReplicationController", "", "rc", "c", 5, 26),
			},
		},
		{
			name: "cronjob",
			in: `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: ops
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: backup:2
`,
			want: []Image{img("backup:2", "CronJob", "ops", "nightly", "backup", 0, 15)},
		},
		{
			name: "list, nested list and typed list",
			in: `apiVersion: v1
kind: List
items:
- kind: Pod
  metadata: {name: p1}
  spec: {containers: [{name: c, image: one}]}
- kind: List
  items:
  - kind: Job
    metadata: {name: j}
    spec: {template: {spec: {containers: [{name: c, image: two}]}}}
- kind: ConfigMap
  data: {image: not-an-image}
---
kind: PodList
items:
- metadata: {name: p2}
  spec: {containers: [{name: c, image: three}]}
`,
			want: []Image{
				img("one", "Pod", "", "p1", "c", 0, 6),
				img("two", "Job", "", "j", "c", 0, 11),
				img("three", "Pod", "", "p2", "c", 1, 18),
			},
		},
		{
			name: "empty, comment-only, scalar and unknown documents",
			in: `# leading comment
---
---
# only a comment
---
just a string
---
- a
- list
---
apiVersion: v1
kind: Service
spec:
  containers: [{name: no, image: not-a-workload}]
---
kind: Pod
spec: {containers: [{name: c, image: found}]}
---
`,
			want: []Image{img("found", "Pod", "", "", "c", 5, 17)},
		},
		{
			name: "no kind is skipped",
			in:   "spec: {containers: [{name: c, image: x}]}\n",
		},
		{
			name: "pod without containers",
			in:   "kind: Pod\nmetadata: {name: p}\nspec: {}\n---\nkind: Deployment\nspec: ~\n",
		},
		{
			name: "anchors, aliases and merge keys",
			in: `kind: Pod
metadata: {name: p}
spec:
  containers:
  - &base {name: a, image: shared}
  - *base
  - <<: *base
    name: c
`,
			want: []Image{
				img("shared", "Pod", "", "p", "a", 0, 5),
				img("shared", "Pod", "", "p", "a", 0, 5),
				img("shared", "Pod", "", "p", "c", 0, 5),
			},
		},
		{
			name: "merge key supplying the pod spec",
			in: `kind: Deployment
spec:
  template:
    <<: {spec: {containers: [{name: hidden, image: merged}]}}
`,
			want: []Image{img("merged", "Deployment", "", "", "hidden", 0, 4)},
		},
		{
			name: "binary key is read as its value",
			in: `kind: Pod
spec:
  containers:
  - name: c
    !!binary aW1hZ2U=: real
`,
			want: []Image{img("real", "Pod", "", "", "c", 0, 5)},
		},
		{
			name: "json object",
			in: `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "j", "namespace": "n"},
  "spec": {
    "containers": [
      {"name": "c", "image": "json:1"}
    ]
  }
}`,
			want: []Image{img("json:1", "Pod", "n", "j", "c", 0, 7)},
		},
		{
			name: "json stream",
			in: "\xEF\xBB\xBF{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}\n" +
				"{\"kind\":\"List\",\"items\":[\n{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"y\"}]}}]}\n" +
				"[1, 2]\n\"scalar\"\n{\"kind\":\"Job\",\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\n\"image\":\"z\"}]}}}}",
			want: []Image{
				img("x", "Pod", "", "", "a", 0, 1),
				img("y", "Pod", "", "", "b", 1, 3),
				img("z", "Job", "", "", "c", 4, 7),
			},
		},
		{
			name: "json documents separated by ---",
			in:   "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}\n---\n{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"y\"}]}}\n",
			want: []Image{img("x", "Pod", "", "", "a", 0, 1), img("y", "Pod", "", "", "b", 1, 3)},
		},
		{
			name: "json key << is not a merge key",
			in:   `{"kind":"Pod","spec":{"containers":[{"name":"a","image":"x","<<":{"image":"y"}}]}}`,
			want: []Image{img("x", "Pod", "", "", "a", 0, 1)},
		},
		{
			name: "crlf",
			in:   "kind: Pod\r\nspec:\r\n  containers:\r\n  - name: a\r\n    image: crlf\r\n",
			want: []Image{img("crlf", "Pod", "", "", "a", 0, 5)},
		},
		{
			name: "image volumes in a pod, a PodTemplate and a CronJob",
			in: `kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: app}]
  volumes:
  - name: cfg
    configMap: {name: c}
  - name: models
    image: {reference: "reg.example/models:v1", pullPolicy: IfNotPresent}
---
kind: PodTemplate
metadata: {name: t}
template:
  spec:
    containers: [{name: b, image: tmpl}]
    volumes: [{name: data, image: {reference: data@sha256:bb}}]
---
kind: CronJobList
items:
- kind: CronJob
  metadata: {name: cj}
  spec:
    jobTemplate:
      spec:
        template:
          spec:
            containers: [{name: c, image: job}]
            volumes: [{name: v, image: {reference: vol}}]
`,
			want: []Image{
				img("app", "Pod", "", "p", "a", 0, 4),
				vol(img("reg.example/models:v1", "Pod", "", "p", "", 0, 9), "models"),
				img("tmpl", "PodTemplate", "", "t", "b", 1, 15),
				vol(img("data@sha256:bb", "PodTemplate", "", "t", "", 1, 16), "data"),
				img("job", "CronJob", "", "cj", "c", 2, 27),
				vol(img("vol", "CronJob", "", "cj", "", 2, 28), "v"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Images(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			// Paths and pull secrets have their own tests (TestPaths).
			for i := range got {
				got[i].Path, got[i].PullSecrets, got[i].ServiceAccount = "", nil, ""
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Images =\n%s\nwant\n%s", dump(got), dump(tt.want))
			}
		})
	}
}

func dump(images []Image) string {
	var b strings.Builder
	for _, im := range images {
		fmt.Fprintf(&b, "  %+v\n", im)
	}
	return b.String()
}

func TestImagesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{"malformed yaml", "kind: Pod\nspec:\n  containers: [\n", []string{"document 0", "line 3"}},
		{"malformed later document", "kind: Pod\n---\na: b\nc: d: e\n", []string{"document 1", "line 4"}},
		{"empty image", "kind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: app, image: \"\"}]}}}\n",
			[]string{"Deployment", `"web"`, `"app"`, "empty image", "line 3"}},
		{"missing image", "kind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - name: i\n", []string{"Pod", `"p"`, `"i"`, "empty image"}},
		{"null image", "kind: Pod\nspec: {containers: [{name: c, image: ~}]}\n", []string{"empty image"}},
		{"image not a string", "kind: Pod\nspec: {containers: [{name: c, image: 1.5}]}\n", []string{"image is not a string", "line 2"}},
		{"image a mapping", "kind: Pod\nspec: {containers: [{name: c, image: {a: b}}]}\n", []string{"image is not a string"}},
		{"containers not a list", "kind: Pod\nspec:\n  containers: {name: c, image: x}\n", []string{"spec.containers is not a list", "line 3"}},
		{"container not a mapping", "kind: Pod\nspec:\n  containers: [x]\n", []string{"spec.containers[0] is not a mapping"}},
		{"spec not a mapping", "kind: Deployment\nspec:\n  template: [1]\n", []string{"spec.template is not a mapping"}},
		{"items not a list", "kind: List\nitems: {a: b}\n", []string{"items is not a list"}},
		{"duplicate image key", "kind: Pod\nspec:\n  containers:\n  - name: c\n    image: good\n    image: evil\n", []string{"duplicate key \"image\"", "line 6"}},
		{"duplicate containers key", "kind: Pod\nspec:\n  containers: [{name: a, image: a}]\n  containers: [{name: b, image: b}]\n", []string{"duplicate key \"containers\""}},
		{"merge conflicts with image", "kind: Pod\nspec:\n  containers:\n  - name: c\n    image: good\n    <<: {image: evil}\n", []string{`"image" is defined more than once`, "lines 5 and 6"}},
		{"merges conflict with each other", "kind: Pod\nspec:\n  <<: [{containers: [{name: a, image: a}]}, {containers: [{name: b, image: b}]}]\n", []string{`"containers" is defined more than once`}},
		{"bad merge value", "kind: Pod\nspec:\n  <<: 3\n", []string{"merge key value"}},
		{"duplicate kind", "kind: ConfigMap\nkind: Pod\nspec: {containers: [{name: a, image: a}]}\n", []string{"duplicate key \"kind\""}},
		{"json stream with error falls back to yaml error", "{\"kind\": \"Pod\"} {\n", []string{"yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Images(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error, got %v", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("values", func(t *testing.T) {
		// A document of millions of tiny values is refused before it is
		// decoded, in YAML (flow and block) and JSON; the same values
		// spread over documents under the limit are read.
		flow := "kind: Pod\nx: [" + strings.Repeat("1,", MaxValues) + "1]\n"
		block := "kind: Pod\nx:\n" + strings.Repeat("- 1\n", MaxValues+1)
		js := `{"kind":"Pod","x":[` + strings.Repeat("1,", MaxValues) + "1]}"
		for name, in := range map[string]string{"flow": flow, "block": block, "json": js} {
			if _, err := Images(strings.NewReader(in)); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "values") {
				t.Errorf("%s: err = %v, want ErrLimit on values", name, err)
			}
		}
		half := "kind: Pod\nx: [" + strings.Repeat("1,", MaxValues/2) + "1]\n"
		if _, err := Images(strings.NewReader(half + "---\n" + half)); err != nil {
			t.Errorf("two documents under the limit: %v", err)
		}
		var objs strings.Builder
		for range 2 {
			objs.WriteString(`{"kind":"Pod","x":[` + strings.Repeat("1,", MaxValues/2) + "1]}\n")
		}
		if _, err := Images(strings.NewReader(objs.String())); err != nil {
			t.Errorf("two JSON objects under the limit: %v", err)
		}
	})
	t.Run("size", func(t *testing.T) {
		// A JSON object of exactly MaxBytes is accepted, one byte more
		// is not.
		big := []byte(`{"kind":"Pod","spec":{"containers":[{"name":"c","image":"x"}]},"pad":"`)
		big = append(big, bytes.Repeat([]byte("p"), MaxBytes-len(big)-2)...)
		big = append(big, `"}`...)
		got, err := Images(bytes.NewReader(big))
		if err != nil || len(got) != 1 {
			t.Fatalf("MaxBytes input: %v, %v", got, err)
		}
		_, err = Images(io.MultiReader(bytes.NewReader(big), strings.NewReader(" ")))
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
	})
	t.Run("documents", func(t *testing.T) {
		many := strings.Repeat("a: 1\n---\n", MaxDocuments+1)
		if _, err := Images(strings.NewReader(many)); !errors.Is(err, ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
		many = strings.Repeat("{}\n", MaxDocuments+1)
		if _, err := Images(strings.NewReader(many)); !errors.Is(err, ErrLimit) {
			t.Fatalf("json: err = %v, want ErrLimit", err)
		}
		ok := strings.Repeat("a: 1\n---\n", MaxDocuments-1) + "kind: Pod\nspec: {containers: [{name: c, image: last}]}\n"
		got, err := Images(strings.NewReader(ok))
		if err != nil || len(got) != 1 || got[0].Document != MaxDocuments-1 {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("deeply nested list", func(t *testing.T) {
		// Block style, nested beyond MaxListDepth.
		var b strings.Builder
		b.WriteString("kind: List\nitems:\n")
		for i := 1; i < 50; i++ {
			ind := strings.Repeat("  ", i-1)
			fmt.Fprintf(&b, "%s- kind: List\n%s  items:\n", ind, ind)
		}
		b.WriteString(strings.Repeat("  ", 49) + "- kind: Pod\n")
		if _, err := Images(strings.NewReader(b.String())); !errors.Is(err, ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
		// Flow style, thousands deep: yaml.v3 and the JSON reader bound
		// nesting themselves; either way no stack overflow.
		n := 200000
		flow := strings.Repeat(`{"kind":"List","items":[`, n) + strings.Repeat("]}", n)
		if _, err := Images(strings.NewReader(flow)); err == nil {
			t.Fatal("no error for a 200000-deep List")
		}
		yflow := strings.Repeat(`{kind: List, items: [`, n) + strings.Repeat("]}", n)
		if _, err := Images(strings.NewReader(yflow)); err == nil {
			t.Fatal("no error for a 200000-deep YAML List")
		}
		// Within the bound it works.
		ok := strings.Repeat(`{"kind":"List","items":[`, MaxListDepth) + `{"kind":"Pod","spec":{"containers":[{"name":"c","image":"deep"}]}}` + strings.Repeat("]}", MaxListDepth)
		got, err := Images(strings.NewReader(ok))
		if err != nil || len(got) != 1 || got[0].Ref != "deep" {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("alias bomb", func(t *testing.T) {
		// Each level doubles the containers: 2^40 if expanded.
		var b strings.Builder
		b.WriteString("kind: List\nitems:\n- &l0 {kind: Pod, spec: {containers: [{name: c, image: x}]}}\n")
		for i := 1; i <= 40; i++ {
			fmt.Fprintf(&b, "- &l%d {kind: List, items: [*l%d, *l%d]}\n", i, i-1, i-1)
		}
		_, err := Images(strings.NewReader(b.String()))
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
		var c strings.Builder
		c.WriteString("a0: &a0 [{name: c, image: x}]\n")
		for i := 1; i <= 30; i++ {
			fmt.Fprintf(&c, "a%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
		}
		c.WriteString("kind: Pod\nspec:\n  <<: *a30\n")
		if _, err := Images(strings.NewReader(c.String())); err == nil {
			t.Fatal("no error for a merge-key bomb")
		}
	})
}

func TestUnique(t *testing.T) {
	in := []Image{{Ref: "b"}, {Ref: "a"}, {Ref: "b"}, {Ref: "c"}, {Ref: "a"}}
	if got := Unique(in); !reflect.DeepEqual(got, []string{"b", "a", "c"}) {
		t.Errorf("Unique = %v", got)
	}
	if got := Unique(nil); len(got) != 0 {
		t.Errorf("Unique(nil) = %v", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestReadError(t *testing.T) {
	if _, err := Images(errReader{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzImages(f *testing.F) {
	for _, s := range []string{
		"kind: Pod\nspec: {containers: [{name: a, image: b}]}\n",
		"kind: List\nitems:\n- kind: CronJob\n  spec: {jobTemplate: {spec: {template: {spec: {initContainers: [{name: i, image: j}]}}}}}\n",
		"x: &a {image: q}\n---\nkind: Pod\nspec:\n  containers:\n  - <<: *a\n    name: n\n",
		`{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"a","image":"b"}]}}}}{"kind":"Pod"}`,
		"---\n# c\n---\n[1, 2]\n---\nkind: Job\nspec: {template: {spec: {ephemeralContainers: [{name: e, image: f}]}}}\n",
		"kind: PodTemplate\ntemplate: {spec: {volumes: [{name: v, image: {reference: r}}]}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		images, err := Images(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, im := range images {
			if im.Ref == "" || im.Line < 1 || im.Document < 0 {
				t.Fatalf("bad image %+v", im)
			}
		}
		// In a single JSON document, every Path leads to its image.
		var doc any
		if json.Unmarshal(data, &doc) == nil {
			for _, im := range images {
				if v, err := pointer(doc, im.Path); err != nil || v != im.Ref {
					t.Fatalf("image %q: Path %s resolves to %v (%v)", im.Ref, im.Path, v, err)
				}
			}
		}
		_ = Unique(images)
	})
}
