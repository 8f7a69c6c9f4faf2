package statement

import (
	"errors"
	"strings"
	"testing"
)

const goodStatement = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"aa"}}],"predicateType":"x","predicate":{"a":{"b":1},"A":2}}`

func TestParseRefusesAmbiguousKeys(t *testing.T) {
	if _, err := Parse([]byte(goodStatement)); err != nil {
		t.Fatalf("keys differing in case inside the predicate (a map, never folded): %v", err)
	}
	for name, tc := range map[string]struct{ in, reason string }{
		"predicateType twice":  {strings.Replace(goodStatement, `"predicateType":"x"`, `"predicateType":"x","predicateType":"y"`, 1), `key "predicateType" appears twice`},
		"predicateType folded": {strings.Replace(goodStatement, `"predicateType":"x"`, `"predicateType":"x","PredicateType":"y"`, 1), `keys "predicateType" and "PredicateType" in the statement differ only in case`},
		"_type folded unicode": {strings.Replace(goodStatement, `"subject"`, `"ſubject":[],"subject"`, 1), "differ only in case"},
		"subject name folded":  {strings.Replace(goodStatement, `"name":"app"`, `"name":"app","NAME":"other"`, 1), `subject[0]`},
		"digest twice":         {strings.Replace(goodStatement, `{"sha256":"aa"}`, `{"sha256":"aa","sha256":"bb"}`, 1), `key "sha256" appears twice in subject[0].digest`},
		"deep predicate twice": {strings.Replace(goodStatement, `{"b":1}`, `{"b":1,"b":2}`, 1), `key "b" appears twice in predicate.a`},
	} {
		_, err := Parse([]byte(tc.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want ErrInvalid with %q", name, err, tc.reason)
		}
	}
}

func TestFoldKey(t *testing.T) {
	for _, p := range [][2]string{{"predicateType", "PREDICATETYPE"}, {"k", "\u212a"}, {"s", "ſ"}, {"_type", "_TYPE"}} {
		if foldKey(p[0]) != foldKey(p[1]) {
			t.Errorf("%q and %q fold apart", p[0], p[1])
		}
	}
	if foldKey("subject") == foldKey("subjects") {
		t.Error("distinct keys fold together")
	}
}

// FuzzParse checks that Parse never panics and that what it accepts has no
// key encoding/json would fold onto another and survives a round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodStatement))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","PredicateType":"y"}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa","sha256":"b"}}],"predicateType":"x","predicate":[[[{}]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if s.PredicateType == "" || len(s.Subject) == 0 || len(s.Subject) > MaxSubjects {
			t.Fatalf("accepted an invalid statement: %+v", s)
		}
		if _, err := checkKeys(data); err != nil {
			t.Fatal("accepted ambiguous keys")
		}
	})
}
