package jsonscan

import (
	"encoding/json"
	"testing"
)

// Skip ends exactly where encoding/json's decoder says the value ends.
func TestSkip(t *testing.T) {
	for _, v := range []string{`1`, `-2.5e3`, `true`, `null`, `"a\"b\\"`, `[]`, `{}`, `[1, [2,{"a":[3 ,"]"]}], "}"]`, `{ "k" : { "x":[ true , false ] } }`} {
		doc := []byte(v + ` ,`)
		s := &Scanner{Data: doc}
		s.Skip()
		if got := string(doc[:s.I]); got != v {
			t.Errorf("skipped %q, want %q", got, v)
		}
		if !json.Valid(doc[:s.I]) {
			t.Errorf("%q is not one value", doc[:s.I])
		}
	}
}
