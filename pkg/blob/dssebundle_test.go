package blob_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/pkg/blob"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// TestKeyDSSEBundleStatement: a key-signed DSSE bundle over a file
// verifies when its envelope signature verifies with the key and its
// payload is an in-toto statement (v1 or v0.1) with a subject of the file's
// SHA-256; a statement of no or another _type, another payload type, a
// subject of another file, or a signature by another key are refused, each
// for its reason. Every envelope is signed here.
func TestKeyDSSEBundleStatement(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := []byte("release archive\n")
	sum := sha256.Sum256(file)
	subject := `"subject":[{"name":"f","digest":{"sha256":"` + hex.EncodeToString(sum[:]) + `"}}]`
	const pt = "application/vnd.in-toto+json"
	sign := func(k *ecdsa.PrivateKey, payloadType, payload string) []byte {
		h := sha256.Sum256(dsse.PAE(payloadType, []byte(payload)))
		sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		data, err := bundle.MarshalDSSE("", payloadType, []byte(payload), sig)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, c := range []struct {
		name   string
		bundle []byte
		want   string // "" passes
	}{
		{"statement v1", sign(key, pt, `{"_type":"https://in-toto.io/Statement/v1",`+subject+`,"predicateType":"https://example.com/p","predicate":{}}`), ""},
		{"statement v0.1", sign(key, pt, `{"_type":"https://in-toto.io/Statement/v0.1",`+subject+`,"predicateType":"https://example.com/p","predicate":{}}`), ""},
		{"no _type", sign(key, pt, `{`+subject+`,"predicateType":"https://example.com/p","predicate":{}}`), `invalid in-toto statement: _type ""`},
		{"unknown _type", sign(key, pt, `{"_type":"https://in-toto.io/Statement/v2",`+subject+`,"predicateType":"https://example.com/p","predicate":{}}`), `invalid in-toto statement: _type "https://in-toto.io/Statement/v2"`},
		{"another payload type", sign(key, "text/plain", `{"_type":"https://in-toto.io/Statement/v1",`+subject+`,"predicateType":"https://example.com/p","predicate":{}}`), `payload type is "text/plain", not an in-toto statement`},
		{"another file", sign(key, pt, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"f","digest":{"sha256":"`+hex.EncodeToString(make([]byte, 32))+`"}}],"predicateType":"https://example.com/p","predicate":{}}`), `no subject of the envelope's statement has this file's sha256 digest`},
		{"another key", sign(other, pt, `{"_type":"https://in-toto.io/Statement/v1",`+subject+`,"predicateType":"https://example.com/p","predicate":{}}`), `envelope's signature: signature does not verify with any trusted key`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := blob.Digest(bytes.NewReader(file), true)
			if err != nil {
				t.Fatal(err)
			}
			res, err := blob.VerifyBundle(context.Background(), c.bundle, d, blob.BundleOptions{Keys: []crypto.PublicKey{&key.PublicKey}})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want pass, got %v", err)
			case c.want == "" && res.KeyID == "":
				t.Fatalf("verified without a key ID: %+v", res)
			case c.want == "":
			case err == nil:
				t.Fatal("verified")
			case !regexp.MustCompile(c.want).MatchString(err.Error()):
				t.Fatalf("got %v, want /%s/", err, c.want)
			}
		})
	}
}

// TestKeylessDSSEBundleStatement: a certificate-signed DSSE bundle over a
// file is held to the same statement rule: sigstore-go matches the subject
// but reads any _type; a statement of another _type is refused.
func TestKeylessDSSEBundleStatement(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	file := []byte("release archive\n")
	sum := sha256.Sum256(file)
	const subj, iss = "release@example.com", "https://issuer.example.com"
	for _, c := range []struct{ typ, want string }{
		{"https://in-toto.io/Statement/v1", ""},
		{"https://in-toto.io/Statement/v2", `invalid in-toto statement: _type "https://in-toto.io/Statement/v2"`},
	} {
		t.Run(c.typ, func(t *testing.T) {
			stmt := []byte(`{"_type":"` + c.typ + `","subject":[{"name":"f","digest":{"sha256":"` + hex.EncodeToString(sum[:]) + `"}}],"predicateType":"https://example.com/p","predicate":{}}`)
			data := keylesstest.VirtualBundle(t, vs, subj, iss, stmt)
			d, err := blob.Digest(bytes.NewReader(file), true)
			if err != nil {
				t.Fatal(err)
			}
			_, err = blob.VerifyBundle(context.Background(), data, d, blob.BundleOptions{Keyless: &keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: subj, Issuer: iss}}, IgnoreSCT: true}})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want pass, got %v", err)
			case c.want == "":
			case err == nil:
				t.Fatal("verified")
			case !regexp.MustCompile(c.want).MatchString(err.Error()):
				t.Fatalf("got %v, want /%s/", err, c.want)
			}
		})
	}
}

// TestKeyDSSEBundleTimestamps: with a trusted root, every RFC 3161
// timestamp of a key-signed DSSE bundle must verify under its TSAs (over
// the envelope signature); one by a TSA it does not list is refused.
func TestKeyDSSEBundleTimestamps(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	file := []byte("release archive\n")
	sum := sha256.Sum256(file)
	const pt = "application/vnd.in-toto+json"
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"f","digest":{"sha256":"` + hex.EncodeToString(sum[:]) + `"}}],"predicateType":"https://example.com/p","predicate":{}}`)
	h := sha256.Sum256(dsse.PAE(pt, payload))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, h[:])
	withToken := func(by *ca.VirtualSigstore) []byte {
		data, err := bundle.MarshalDSSE("", pt, payload, sig)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := by.TimestampResponse(sig)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		m["verificationMaterial"].(map[string]any)["timestampVerificationData"] = map[string]any{"rfc3161Timestamps": []any{map[string]any{"signedTimestamp": base64.StdEncoding.EncodeToString(tok)}}}
		out, _ := json.Marshal(m)
		return out
	}
	d, err := blob.Digest(bytes.NewReader(file), true)
	if err != nil {
		t.Fatal(err)
	}
	o := blob.BundleOptions{Keys: []crypto.PublicKey{&key.PublicKey}, Trusted: vs}
	res, err := blob.VerifyBundle(context.Background(), withToken(vs), d, o)
	if err != nil || len(res.Timestamps) != 1 {
		t.Fatalf("trusted TSA: %+v, %v", res, err)
	}
	if _, err := blob.VerifyBundle(context.Background(), withToken(untrusted), d, o); err == nil || !strings.Contains(err.Error(), "RFC 3161 timestamp") {
		t.Fatalf("untrusted TSA: %v", err)
	}
}
