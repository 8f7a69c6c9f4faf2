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
