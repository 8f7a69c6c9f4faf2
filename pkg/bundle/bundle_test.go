package bundle

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// cosignV3 is `cosign sign-blob --bundle` output (v3.1.3, no log) for "hello\n".
const cosignV3 = `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"9tTQeG+Lwc1gfMPYvTVq+gaCCSrA0Ng2OXCfYU1GNS4="}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="},"signature":"MEUCIGADb0xuZu8lcd7BwotoMIiFwZJCcb1Q/tDFJ/RMTaVqAiEAnmLhFnFQiiUU+sYasz4i2azoc7/kIP2/GmJVV3/bH9Q="}}`

func TestParseCosignBundle(t *testing.T) {
	m, err := ParseMessageSignature([]byte(cosignV3))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("hello\n"))
	if m.Hash != crypto.SHA256 || string(m.Digest) != string(sum[:]) || m.Hint != "9tTQeG+Lwc1gfMPYvTVq+gaCCSrA0Ng2OXCfYU1GNS4=" || len(m.Signature) == 0 {
		t.Fatalf("parsed %+v", m)
	}
	// Our encoding of the same content is byte-identical to cosign's.
	out, err := MarshalMessageSignature(*m)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != cosignV3 {
		t.Fatalf("marshal =\n%s\nwant\n%s", out, cosignV3)
	}
}

func TestParseRejects(t *testing.T) {
	many := `{"logIndex":"1"},`
	cases := map[string]string{
		"not json":             `nope`,
		"unknown field":        strings.Replace(cosignV3, `"mediaType"`, `"extra":1,"mediaType"`, 1),
		"old media":            strings.Replace(cosignV3, "v0.3", "v0.1", 1),
		"no material":          `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="},"signature":"AA=="}}`,
		"short digest":         strings.Replace(cosignV3, "WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=", "AAAA", 1),
		"md5":                  strings.Replace(cosignV3, "SHA2_256", "HASH_ALGORITHM_UNSPECIFIED", 1),
		"too many log entries": strings.Replace(cosignV3, `"publicKey"`, `"tlogEntries":[`+strings.Repeat(many, MaxTlogEntries)+`{"logIndex":"1"}],"publicKey"`, 1),
		"dsse":                 `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		"huge":                 strings.Repeat(" ", MaxBundleBytes+1),
	}
	for name, in := range cases {
		if _, err := ParseMessageSignature([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// cosignDSSE is the bundle cosign v3.1.3 stored for an image signature.
const cosignDSSE = `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"N37OX8/aiN3VNSGM+0TUfYPp13Vg0CrmiwYQj1jPKVk="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiZGRhMTUwM2ExNjY1ZWIxNThjMmY1ZjBjYzU2NGZjYWNiZGQ5NGU2ZTk0MmI3Nzg0M2FjMjkzMzA1Njk2NDkwNCJ9LCJhbm5vdGF0aW9ucyI6eyJ0ZWFtIjoid2ViIn19XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUCIEazDvwVtOmrgJox5n5Bef03rweW67L/ruA/6oLVNjVxAiEA1lyX0NL/BRTcJkUK7N5pN7KAsoAnBO+BZ4OkovD+zpQ="}]}}`

func TestDSSEBundleMatchesCosign(t *testing.T) {
	d, err := ParseDSSE([]byte(cosignDSSE))
	if err != nil {
		t.Fatal(err)
	}
	if d.PayloadType != "application/vnd.in-toto+json" || len(d.Signatures) != 1 || !strings.HasPrefix(string(d.Payload), `{"_type"`) {
		t.Fatalf("parsed %+v", d)
	}
	out, err := MarshalDSSE(d.Hint, d.PayloadType, d.Payload, d.Signatures[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != cosignDSSE {
		t.Fatalf("MarshalDSSE =\n%s\nwant\n%s", out, cosignDSSE)
	}
	if _, err := ParseMessageSignature([]byte(cosignDSSE)); !errors.Is(err, ErrInvalid) {
		t.Error("a DSSE bundle parsed as a message signature")
	}
	if _, err := ParseDSSE([]byte(cosignV3)); !errors.Is(err, ErrInvalid) {
		t.Error("a message-signature bundle parsed as DSSE")
	}
	many := strings.Replace(cosignDSSE, `"signatures":[`, `"signatures":[`+strings.Repeat(`{"sig":"AA=="},`, MaxDSSESignatures), 1)
	if _, err := ParseDSSE([]byte(many)); !errors.Is(err, ErrInvalid) {
		t.Error("too many envelope signatures accepted")
	}
}
