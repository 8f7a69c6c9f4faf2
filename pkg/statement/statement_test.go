package statement

import (
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cosignPayload is the DSSE payload cosign v3.1.3 signed for an image with -a team=web.
const cosignPayload = "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiZGRhMTUwM2ExNjY1ZWIxNThjMmY1ZjBjYzU2NGZjYWNiZGQ5NGU2ZTk0MmI3Nzg0M2FjMjkzMzA1Njk2NDkwNCJ9LCJhbm5vdGF0aW9ucyI6eyJ0ZWFtIjoid2ViIn19XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0="

func TestMatchesCosign(t *testing.T) {
	want, _ := base64.StdEncoding.DecodeString(cosignPayload)
	d, _ := v1.NewHash("sha256:dda1503a1665eb158c2f5f0cc564fcacbdd94e6e942b77843ac2933056964904")
	got, err := ForImage(d, CosignSign, nil, map[string]string{"team": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("ForImage =\n%s\ncosign wrote\n%s", got, want)
	}
	s, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	sub, ok := s.SubjectFor(d)
	if !ok || s.PredicateType != CosignSign {
		t.Fatalf("parsed %+v", s)
	}
	if m := sub.MissingAnnotations(map[string]string{"team": "web"}); len(m) != 0 {
		t.Errorf("missing %v", m)
	}
	if m := sub.MissingAnnotations(map[string]string{"team": "db"}); len(m) != 1 {
		t.Errorf("missing %v", m)
	}
	other, _ := v1.NewHash("sha256:" + strings.Repeat("0", 64))
	if _, ok := s.SubjectFor(other); ok {
		t.Error("matched another digest")
	}
}

func TestParseRejects(t *testing.T) {
	good := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","predicate":{}}`
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatal(err)
	}
	v01 := strings.Replace(good, "Statement/v1", "Statement/v0.1", 1)
	if _, err := Parse([]byte(v01)); err != nil {
		t.Fatalf("v0.1: %v", err)
	}
	many := `{"digest":{"sha256":"aa"}},`
	for name, in := range map[string]string{
		"unknown field":  strings.Replace(good, `"predicate":{}`, `"predicate":{},"extra":1`, 1),
		"wrong type":     strings.Replace(good, "Statement/v1", "Statement/v9", 1),
		"no subject":     strings.Replace(good, `[{"digest":{"sha256":"aa"}}]`, `[]`, 1),
		"too many":       strings.Replace(good, `[{"digest":{"sha256":"aa"}}]`, `[`+strings.Repeat(many, MaxSubjects)+`{"digest":{"sha256":"aa"}}]`, 1),
		"no predicate":   strings.Replace(good, `"predicateType":"x",`, ``, 1),
		"trailing":       good + "{}",
		"not an object":  `"x"`,
		"subject string": strings.Replace(good, `[{"digest":{"sha256":"aa"}}]`, `"aa"`, 1),
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// parseAllocs returns the bytes Parse allocates on data (counted, the
// same on every run).
func parseAllocs(t *testing.T, data []byte) int64 {
	t.Helper()
	if _, err := Parse(data); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _ = Parse(data)
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// The predicate, the bulk of a large statement, is neither copied nor
// decoded: Statement.Predicate is a slice of the input.
func TestParseLargePredicate(t *testing.T) {
	pred := `{"blob":"` + strings.Repeat("x", 20<<20) + `"}`
	data := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","predicate":` + pred + `}`)
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Predicate) != pred || &s.Predicate[0] != &data[len(data)-len(pred)-1] {
		t.Fatal("the predicate is not the input's")
	}
	if n := parseAllocs(t, data); n > 64<<10 {
		t.Errorf("%d bytes allocated for a 20 MiB predicate, want under 64 KiB", n)
	}
}

// Deep nesting costs memory in proportion to its depth, not its square
// (the path named in errors is built only for an error).
func TestParseDeepPredicate(t *testing.T) {
	const depth = 9000
	for name, pred := range map[string]string{
		"arrays":  strings.Repeat("[", depth) + strings.Repeat("]", depth),
		"objects": strings.Repeat(`{"key":`, depth) + "1" + strings.Repeat("}", depth),
	} {
		data := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","predicate":` + pred + `}`)
		n := parseAllocs(t, data)
		t.Logf("%s: %d bytes allocated at depth %d", name, n, depth)
		if n > 8<<20 {
			t.Errorf("%s: %d bytes allocated at depth %d, want under 8 MiB", name, n, depth)
		}
	}
	dup := strings.Repeat(`{"k":[`, 3) + `{"a":1,"a":2}` + strings.Repeat("]}", 3)
	_, err := Parse([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","predicate":` + dup + `}`))
	if err == nil || !strings.Contains(err.Error(), `key "a" appears twice in predicate.k[0].k[0].k[0]`) {
		t.Fatalf("err = %v, want the path of the object", err)
	}
}
