package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/jsonscan"
)

// decodeSamples are JSON values of every kind, escapes and nesting.
var decodeSamples = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-1.5e3`, `"x"`, `"a\"b\\c\u00e9\n"`,
	` { "a" : [ 1 , "two" , { "three" : null } ] , "b\u0041" : { } } `,
	`{"a":1,"a":2}`,
	`[[[[[[[[[[{"deep":[true,false]}]]]]]]]]]]`,
	stmt,
	`{"predicateType":"a","predicate":1,"predicateType":2,"predicate":[3]}`,
}

// decodeBounded builds exactly what json.Unmarshal into an any builds.
func TestDecodeLikeUnmarshal(t *testing.T) {
	for _, in := range decodeSamples {
		var want any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeBounded([]byte(strings.TrimSpace(in)), "x")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", in, got, want)
		}
	}
}

func FuzzDecodeBounded(f *testing.F) {
	for _, in := range decodeSamples {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		in = bytes.TrimSpace(in)
		var want any
		if json.Unmarshal(in, &want) != nil {
			return
		}
		got, err := decodeBounded(in, "x")
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatalf("%q: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", in, got, want)
		}
		// The members conditions read, found in place, are the ones
		// encoding/json finds.
		m, ok := want.(map[string]any)
		if !ok {
			return
		}
		vars, err := (&Policy{readsPredicate: true}).variables(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		pt, _ := m["predicateType"].(string)
		if !reflect.DeepEqual(vars["predicate"], m["predicate"]) || vars["predicateType"] != pt {
			t.Fatalf("%q: variables %#v, want predicate %#v, predicateType %q", in, vars, m["predicate"], pt)
		}
	})
}

// The estimate counted against MaxDecodedBytes is not below what decoding
// really allocates, for the shapes that cost most per byte of JSON, and
// those are refused once past the limit.
func TestDecodeEstimate(t *testing.T) {
	shapes := map[string]func(n int) string{
		"numbers": func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" },
		"strings": func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(`"ab",`, n), ",") + "]" },
		"objects": func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(`{"a":1},`, n), ",") + "]" },
		"empty":   func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(`{},`, n), ",") + "]" },
		"keys": func(n int) string {
			var b strings.Builder
			b.WriteString("{")
			for i := range n {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + `":0`)
			}
			b.WriteString("}")
			return b.String()
		},
		"long strings": func(n int) string { return `["` + strings.Repeat("x", n*100) + `"]` },
	}
	for name, shape := range shapes {
		in := []byte(shape(20000))
		d := &decoder{s: scannerAt(in), left: 1 << 40, what: "x"}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		v, err := d.value()
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		runtime.KeepAlive(v)
		real, estimate := int(after.TotalAlloc-before.TotalAlloc), 1<<40-d.left
		t.Logf("%s: %d bytes of JSON: %d allocated, %d estimated", name, len(in), real, estimate)
		if estimate < real {
			t.Errorf("%s: estimate %d below the %d bytes allocated", name, estimate, real)
		}
	}
	big := []byte(shapes["objects"](MaxDecodedBytes / costMapEntry))
	if _, err := decodeBounded(big, "the predicate"); !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "the predicate would take more than 24 MiB") {
		t.Fatalf("err = %v, want ErrTooLarge naming the predicate", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func scannerAt(b []byte) jsonscan.Scanner { return jsonscan.Scanner{Data: b} }
