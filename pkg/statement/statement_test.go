package statement

import (
	"encoding/base64"
	"errors"
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
