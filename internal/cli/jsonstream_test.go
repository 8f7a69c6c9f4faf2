package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
)

// encoderOutput is what json.Encoder with SetIndent("", "  ") writes.
func encoderOutput(vals []json.RawMessage) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	err := enc.Encode(vals)
	return b.Bytes(), err
}

func TestWriteIndentedArrayAsEncoder(t *testing.T) {
	for name, vals := range map[string][]json.RawMessage{
		"none":       {},
		"statement":  {json.RawMessage(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","predicate":{}}`)},
		"two":        {json.RawMessage(`{"a":[1,2,{"b":[]}],"c":{}}`), json.RawMessage(`{"d":"e"}`)},
		"spaced":     {json.RawMessage(" {\n\t\"a\" : [ 1 , -2.5e3, true, false, null ] , \"b\":{ } }\n")},
		"escapes":    {json.RawMessage(`{"html":"<a href=\"x\">&amp;</a>","sep":"` + "\u2028\u2029" + `","esc":"\\\" \\\\ \\/ \\u00e9 \u00e9"}`)},
		"scalars":    {json.RawMessage(`1`), json.RawMessage(`"s"`), json.RawMessage(`[]`), json.RawMessage(`{}`)},
		"deep empty": {json.RawMessage(`[[[],{}],[[{}]]]`)},
	} {
		want, err := encoderOutput(vals)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeIndentedArray(&got, vals); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s:\n%s\nencoding/json writes\n%s", name, got.Bytes(), want)
		}
	}
	if err := writeIndentedArray(&bytes.Buffer{}, []json.RawMessage{json.RawMessage(`{`)}); err == nil {
		t.Error("wrote invalid JSON")
	}
}

// Printing large statements allocates no copy of them.
func TestWriteIndentedArrayStreams(t *testing.T) {
	big := json.RawMessage(`{"predicate":{"blob":"` + string(bytes.Repeat([]byte("x<"), 4<<20)) + `"}}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := writeIndentedArray(discard{}, []json.RawMessage{big, big}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocs := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes allocated to print two %d MiB statements", allocs, len(big)>>20)
	if allocs > 256<<10 {
		t.Errorf("%d bytes allocated to print two %d MiB statements, want under 256 KiB", allocs, len(big)>>20)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzWriteIndentedArray checks writeIndentedArray against json.Encoder.
func FuzzWriteIndentedArray(f *testing.F) {
	f.Add([]byte(`{"a":[1,{}],"b":"<\u2028>"}`), []byte(`[]`))
	f.Add([]byte(` [ "x" , { "y" : null } ] `), []byte(`"\\"`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		vals := []json.RawMessage{a, b}
		want, err := encoderOutput(vals)
		var got bytes.Buffer
		gotErr := writeIndentedArray(&got, vals)
		if (err == nil) != (gotErr == nil) {
			t.Fatalf("error %v, encoding/json's %v", gotErr, err)
		}
		if err == nil && !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("wrote\n%q\nencoding/json writes\n%q", got.Bytes(), want)
		}
	})
}
