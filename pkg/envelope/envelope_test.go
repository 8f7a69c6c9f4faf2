package envelope

import (
	"errors"
	"strings"
	"testing"
)

// cosignEnvelope is a legacy .att layer written by cosign v3.1.3 (payload shortened).
const cosignEnvelope = `{"payload":"eyJfdHlwZSI6IngifQ==","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQCIDLraJo/ISAljkSRujcle5+loKAe066b9Khw7bzFYh4bAiAu1WoHpA3ckcccvbXVvdfcDwSx2jA2K/1w8XfFhk0yvw=="}]}`

func TestParseCosign(t *testing.T) {
	e, err := Parse([]byte(cosignEnvelope))
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
	back, err := Parse(out)
	if err != nil || string(back.Payload) != string(e.Payload) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      `x`,
		"unknown":       strings.Replace(cosignEnvelope, `"payload"`, `"extra":1,"payload"`, 1),
		"no signatures": `{"payload":"e30=","payloadType":"t","signatures":[]}`,
		"too many":      `{"payload":"e30=","payloadType":"t","signatures":[` + strings.Repeat(`{"sig":"AA=="},`, MaxSignatures) + `{"sig":"AA=="}]}`,
		"bad payload":   `{"payload":"%%%","payloadType":"t","signatures":[{"sig":"AA=="}]}`,
		"empty sig":     `{"payload":"e30=","payloadType":"t","signatures":[{"sig":""}]}`,
		"trailing":      cosignEnvelope + `{}`,
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
