package bundle

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const dsseBundle = `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"k"}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6IngifQ==","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AAAA"}]}}`

// The payload is taken out in place, under either spelling of the
// envelope's field, and the rest goes through protojson.
func TestSplitDSSE(t *testing.T) {
	for _, in := range []string{dsseBundle, strings.Replace(dsseBundle, "dsseEnvelope", "dsse_envelope", 1)} {
		data := []byte(in)
		b, err := ParseDSSE(data)
		if err != nil || string(b.Payload) != `{"_type":"x"}` || b.PayloadType != "application/vnd.in-toto+json" || b.Hint != "k" || len(b.Signatures) != 1 {
			t.Fatalf("%s: %+v %v", in, b, err)
		}
		if &b.Payload[0] != &data[strings.Index(in, `"payload":"`)+len(`"payload":"`)] {
			t.Fatal("the payload was not decoded in place")
		}
	}
	for name, tc := range map[string]struct{ in, reason string }{
		"both spellings": {strings.Replace(dsseBundle, `"dsseEnvelope"`, `"dsse_envelope":{},"dsseEnvelope"`, 1), "ambiguous"},
		"payload twice":  {strings.Replace(dsseBundle, `"payloadType"`, `"payload":"e30=","payloadType"`, 1), "ambiguous"},
		"bulk elsewhere": {strings.Replace(dsseBundle, `"hint":"k"`, `"hint":"`+strings.Repeat("k", MaxMaterialBytes)+`"`, 1), "besides the payload"},
		"no payload":     {`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"` + strings.Repeat("k", MaxMaterialBytes) + `"}}}`, "without a payload"},
		"not base64":     {strings.Replace(dsseBundle, `eyJfdHlwZSI6IngifQ==`, `%%%%`, 1), "payload is not base64"},
	} {
		_, err := ParseDSSE([]byte(tc.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.reason)
		}
	}
}

// FuzzParseDSSE checks ParseDSSE against protojson on the whole bundle:
// what it accepts, protojson reads alike.
func FuzzParseDSSE(f *testing.F) {
	f.Add([]byte(dsseBundle))
	f.Add([]byte(strings.Replace(dsseBundle, `"payload":"eyJfdHlwZSI6IngifQ=="`, `"payload":"eyJfd\/HlwZSI6IngifQ"`, 1)))
	f.Add([]byte(strings.Replace(dsseBundle, "dsseEnvelope", "dsse_envelope", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var whole protobundle.Bundle
		wholeErr := protojson.Unmarshal(data, &whole)
		b, err := ParseDSSE(bytes.Clone(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if wholeErr != nil {
			t.Fatalf("accepted what protojson refuses: %v", wholeErr)
		}
		env := whole.GetDsseEnvelope()
		if !bytes.Equal(b.Payload, env.GetPayload()) || b.PayloadType != env.GetPayloadType() || len(b.Signatures) != len(env.GetSignatures()) {
			t.Fatalf("payload %s, protojson reads %s", base64.StdEncoding.EncodeToString(b.Payload), base64.StdEncoding.EncodeToString(env.GetPayload()))
		}
	})
}
