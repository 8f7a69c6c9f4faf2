package attest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/statement"
)

func TestStatementFromPredicate(t *testing.T) {
	repo, _ := name.NewRepository("registry.example.com/team/app")
	h, _ := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	out, err := Statement(repo, h, Options{PredicateType: "https://slsa.dev/provenance/v1", Predicate: []byte("{\n  \"builder\": {\"id\": \"x\"}\n}\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.example.com/team/app","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"builder":{"id":"x"}}}`
	if string(out) != want {
		t.Fatalf("statement =\n%s\nwant\n%s", out, want)
	}
	s, err := statement.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.SubjectFor(h); !ok {
		t.Fatal("subject does not name the digest")
	}
}

func TestStatementRejects(t *testing.T) {
	repo, _ := name.NewRepository("r.example/app")
	h, _ := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	for n, o := range map[string]Options{
		"neither":   {PredicateType: "https://x.example/t"},
		"string":    {PredicateType: "https://x.example/t", Predicate: []byte(`"x"`)},
		"truncated": {PredicateType: "https://x.example/t", Predicate: []byte(`{"a":`)},
	} {
		if _, err := Statement(repo, h, o); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v", n, err)
		}
	}
}

func TestPredicateTypeNames(t *testing.T) {
	for in, want := range map[string]string{
		"slsaprovenance": "https://slsa.dev/provenance/v0.2", "slsaprovenance1": "https://slsa.dev/provenance/v1",
		"spdxjson": "https://spdx.dev/Document", "cyclonedx": "https://cyclonedx.org/bom",
		"vuln": "https://cosign.sigstore.dev/attestation/vuln/v1", "openvex": "https://openvex.dev/ns",
		"custom": "https://cosign.sigstore.dev/attestation/v1", "https://example.com/mine/v1": "https://example.com/mine/v1",
	} {
		if got, err := PredicateType(in); err != nil || got != want {
			t.Errorf("PredicateType(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"slsa", "", "not a uri", "/relative"} {
		if _, err := PredicateType(bad); err == nil {
			t.Errorf("PredicateType(%q) accepted", bad)
		}
	}
}
