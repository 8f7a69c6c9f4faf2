package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// cosignEnvelope is a legacy .att layer written by cosign v3.1.3 (payload shortened).
const cosignEnvelope = `{"payload":"eyJfdHlwZSI6IngifQ==","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQCIDLraJo/ISAljkSRujcle5+loKAe066b9Khw7bzFYh4bAiAu1WoHpA3ckcccvbXVvdfcDwSx2jA2K/1w8XfFhk0yvw=="}]}`

func TestParseCosign(t *testing.T) {
	e, err := ParseInPlace([]byte(cosignEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	if e.PayloadType != "application/vnd.in-toto+json" || string(e.Payload) != `{"_type":"x"}` || len(e.Signatures) != 1 {
		t.Fatalf("parsed %+v", e)
	}
	if !strings.HasPrefix(string(e.PAE()), "DSSEv1 28 application/vnd.in-toto+json 13 ") {
		t.Fatalf("PAE = %q", e.PAE())
	}
	out, err := Marshal(e.PayloadType, e.Payload, e.Signatures[0])
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseInPlace(out)
	if err != nil || string(back.Payload) != `{"_type":"x"}` {
		t.Fatalf("round trip: %v", err)
	}
}

// Every base64 form DSSE allows, and JSON escapes in it, decode to the
// same payload.
func TestParsePayloadForms(t *testing.T) {
	want := []byte("\xfb\xff\xbe payload>?")
	for name, enc := range map[string]string{
		"standard":         base64.StdEncoding.EncodeToString(want),
		"url":              base64.URLEncoding.EncodeToString(want),
		"raw standard":     base64.RawStdEncoding.EncodeToString(want),
		"raw url":          base64.RawURLEncoding.EncodeToString(want),
		"escaped slash":    strings.ReplaceAll(base64.StdEncoding.EncodeToString(want), "/", `\/`),
		"unicode escapes":  `\u002b` + base64.StdEncoding.EncodeToString(want)[1:],
		"escaped newlines": base64.StdEncoding.EncodeToString(want)[:4] + `\n\r\u000a` + base64.StdEncoding.EncodeToString(want)[4:],
	} {
		if name == "unicode escapes" && base64.StdEncoding.EncodeToString(want)[0] != '+' {
			t.Fatal("test data: the encoding must start with +")
		}
		e, err := ParseInPlace([]byte(`{"payloadType":"t","payload":"` + enc + `","signatures":[{"sig":"AA=="}]}`))
		if err != nil || !bytes.Equal(e.Payload, want) {
			t.Errorf("%s (%s): %q, %v", name, enc, e, err)
		}
	}
}

// A payload larger than one decoding step, of every length modulo 3,
// decodes in place to what encoding/base64 decodes.
func TestParseLargePayload(t *testing.T) {
	for _, n := range []int{3071, 3072, 3073, 3074, 100_000} {
		want := bytes.Repeat([]byte("0123456789abcdef\xff"), n/17+1)[:n]
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			data := []byte(`{"payloadType":"t","payload":"` + enc.EncodeToString(want) + `","signatures":[{"sig":"AA=="}]}`)
			e, err := ParseInPlace(data)
			if err != nil || !bytes.Equal(e.Payload, want) {
				t.Fatalf("%d bytes: %v", n, err)
			}
			if &e.Payload[0] != &data[len(`{"payloadType":"t","payload":"`)] {
				t.Fatalf("%d bytes: the payload was not decoded in place", n)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	mid := base64.StdEncoding.EncodeToString(make([]byte, 3072))
	for name, tc := range map[string]struct{ in, reason string }{
		"not json":          {`x`, "not a JSON document"},
		"unknown":           {strings.Replace(cosignEnvelope, `"payload"`, `"extra":1,"payload"`, 1), `unknown member "extra"`},
		"case":              {strings.Replace(cosignEnvelope, `"payloadType"`, `"PayloadType"`, 1), `unknown member "PayloadType"`},
		"payload twice":     {strings.Replace(cosignEnvelope, `"payloadType"`, `"payload":"e30=","payloadType"`, 1), "ambiguous"},
		"escaped twice":     {strings.Replace(cosignEnvelope, `"payloadType"`, `"p\u0061yload":"e30=","payloadType"`, 1), "ambiguous"},
		"type twice":        {strings.Replace(cosignEnvelope, `"payload"`, `"payloadType":"x","payload"`, 1), `"payloadType" twice`},
		"no signatures":     {`{"payload":"e30=","payloadType":"t","signatures":[]}`, "0 signatures"},
		"too many":          {`{"payload":"e30=","payloadType":"t","signatures":[` + strings.Repeat(`{"sig":"AA=="},`, MaxSignatures) + `{"sig":"AA=="}]}`, "9 signatures"},
		"bad payload":       {`{"payload":"%%%","payloadType":"t","signatures":[{"sig":"AA=="}]}`, "payload is not base64"},
		"padding mid":       {`{"payload":"` + mid[:4092] + `AA==` + mid + `","payloadType":"t","signatures":[{"sig":"AA=="}]}`, "padding before the end"},
		"escaped quote":     {`{"payload":"e30\"","payloadType":"t","signatures":[{"sig":"AA=="}]}`, "not of a base64 character"},
		"non-ascii escape":  {`{"payload":"e30\u00e9","payloadType":"t","signatures":[{"sig":"AA=="}]}`, "not of a base64 character"},
		"payload not str":   {`{"payload":7,"payloadType":"t","signatures":[{"sig":"AA=="}]}`, "not a base64 string"},
		"empty sig":         {`{"payload":"e30=","payloadType":"t","signatures":[{"sig":""}]}`, "empty or not base64"},
		"trailing":          {cosignEnvelope + `{}`, "not a JSON document"},
		"large rest":        {`{"payload":"e30=","payloadType":"` + strings.Repeat("t", MaxRestBytes) + `","signatures":[{"sig":"AA=="}]}`, "besides the payload"},
		"large, no payload": {`{"payloadType":"` + strings.Repeat("t", MaxRestBytes) + `","signatures":[{"sig":"AA=="}]}`, "without a payload"},
	} {
		_, err := ParseInPlace([]byte(tc.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.reason)
		}
	}
}

// hugeEnvelope is a DSSE envelope of about 31 MiB, the size of the largest
// attestation read, with the shape of the e2e test's hostile one.
func hugeEnvelope() []byte {
	payload := bytes.Repeat([]byte(`{"a":[1,2,3,4,5,6,7,8]}`), 31<<20/4*3/23)
	return []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString(payload) + `","signatures":[{"keyid":"","sig":"AAAA"}]}`)
}

// Decoding an envelope at the attestation size limit allocates a small
// fraction of it: the payload is decoded in place.
func TestParseAllocations(t *testing.T) {
	data := hugeEnvelope()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := ParseInPlace(data); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocs := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes allocated to parse a %d MiB envelope", allocs, len(data)>>20)
	if allocs > 64<<10 {
		t.Errorf("%d bytes allocated to parse a %d MiB envelope, want under 64 KiB", allocs, len(data)>>20)
	}
}

// BenchmarkParseInPlace parses a 31 MiB envelope (the input is copied
// outside the timer, as the registry read makes it).
func BenchmarkParseInPlace(b *testing.B) {
	data := hugeEnvelope()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		in := bytes.Clone(data)
		b.StartTimer()
		if _, err := ParseInPlace(in); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseInPlace checks ParseInPlace against encoding/json and
// encoding/base64: what it accepts, they read alike.
func FuzzParseInPlace(f *testing.F) {
	f.Add([]byte(cosignEnvelope))
	f.Add([]byte(`{"payload":"e3\/0=","payloadType":"t","signatures":[{"sig":"AA=="}]}`))
	f.Add([]byte(`{"payload":"e\n30","payloadType":"t","signatures":[{"sig":"AA==","keyid":"k"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ref struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		refErr := json.Unmarshal(data, &ref)
		e, err := ParseInPlace(bytes.Clone(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if refErr != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", refErr)
		}
		want, err := unb64(ref.Payload)
		if err != nil {
			t.Fatalf("accepted payload %q, which encoding/base64 refuses", ref.Payload)
		}
		if !bytes.Equal(e.Payload, want) || e.PayloadType != ref.PayloadType {
			t.Fatalf("payload %q type %q, encoding/json reads %q %q", e.Payload, e.PayloadType, want, ref.PayloadType)
		}
	})
}
