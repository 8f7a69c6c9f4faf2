package admission_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/admission"
)

// FuzzReview: any bytes as an AdmissionReview: ParseReview and Images never
// panic, and every image found is at its Path in the object, so a JSON
// patch of /mutate replaces exactly that value.
func FuzzReview(f *testing.F) {
	for _, w := range workloads {
		obj := w.wrap(podSpec{containers: []string{"a:1", "b"}, init: []string{"c@sha256:" + strings.Repeat("0", 64)}, ephemeral: []string{"d"}, volumes: []string{"e"}}.json())
		f.Add(review("u", "CREATE", w.gvk, obj, obj))
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"x"},null,{"image":"y"}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"UPDATE","kind":{"group":"batch","kind":"CronJob"},"object":{"spec":{"jobTemplate":null}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := admission.ParseReview(data)
		if err != nil {
			if r != nil && (r.Request == nil || r.Request.UID == "") {
				t.Fatalf("an unanswerable review returned with %v", err)
			}
			return
		}
		q := r.Request
		images, _, err := admission.Images(q.Kind, q.Object)
		if err != nil {
			return
		}
		var doc any
		if err := json.Unmarshal(q.Object, &doc); err != nil {
			t.Fatalf("Images read an object that is not JSON: %v", err)
		}
		for _, im := range images {
			if got, ok := at(doc, im.Path); !ok || got != im.Ref {
				t.Fatalf("image %q: at %s the object has %v (%v)", im.Ref, im.Path, got, ok)
			}
		}
	})
}

// at returns the value at a JSON pointer (no escapes: the paths have none).
// Keys match exactly, as the API server's decoder matches them (a review's
// object holds no duplicate keys that Images would read: it refuses them).
func at(doc any, pointer string) (any, bool) {
	cur := doc
	for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
