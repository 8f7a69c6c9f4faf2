package keyless_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// TestChainCacheSameVerdicts verifies every certificate case of the shared
// Sigstore conformance data (public-good trusted roots, real Fulcio
// certificates, SCTs, TSA tokens) twice, with and without the chain
// caches, and requires the same verdict and the same reason; and that the
// caches are used on the public-good root.
func TestChainCacheSameVerdicts(t *testing.T) {
	dirs, err := filepath.Glob("../blob/testdata/sigstore/bundle-verify/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	ran := 0
	for _, dir := range dirs {
		var c struct {
			Bundle, Artifact, Identity, Issuer, Expect string
			TrustedRoot                                string `json:"trusted_root"`
			TlogRequired                               *bool  `json:"tlog_required"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		if c.Identity == "" {
			continue // a key, not a certificate
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, c.Bundle))
			if err != nil {
				t.Fatal(err)
			}
			art, err := os.ReadFile(filepath.Join(dir, c.Artifact))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := root.NewTrustedRootFromPath(filepath.Join(dir, c.TrustedRoot))
			if err != nil {
				t.Skipf("trusted root: %v", err)
			}
			d := sha256.Sum256(art)
			o := keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: c.Identity, Issuer: c.Issuer}}, IgnoreTlog: c.TlogRequired != nil && !*c.TlogRequired}
			verify := func(noCache bool) error {
				b, err := keyless.ParseBundle(data)
				if err != nil {
					return err
				}
				o.NoChainCache = noCache
				_, err = keyless.Verify(b, keyless.Artifact{Algorithm: "sha256", Digest: d[:]}, o)
				return err
			}
			cached, full := verify(false), verify(true)
			if (cached == nil) != (full == nil) || (cached != nil && cached.Error() != full.Error()) {
				t.Fatalf("with the chain caches: %v\nwithout: %v", cached, full)
			}
			if (cached == nil) != (c.Expect == "pass") {
				t.Fatalf("expect %s, got %v", c.Expect, cached)
			}
			ran++
		})
	}
	if ran < 15 {
		t.Fatalf("only %d certificate cases ran", ran)
	}
}

// TestVerifyDSSESameVerdicts checks VerifyDSSE, which verifies a DSSE
// envelope in place with its own log binding, against Verify (sigstore-go's
// Verifier on the whole bundle) on every DSSE case of the shared Sigstore
// conformance data and on variants of each with one part changed (payload,
// signature, log entry body, timestamp, certificate): both must reach the
// same verdict. The artifact is not given to either (an attestation's
// subject is checked by the caller), so a case that fails only on its
// artifact passes both.
func TestVerifyDSSESameVerdicts(t *testing.T) {
	dirs, err := filepath.Glob("../blob/testdata/sigstore/bundle-verify/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	ran, passed := 0, 0
	for _, dir := range dirs {
		var c struct {
			Bundle, Identity, Issuer string
			TrustedRoot              string `json:"trusted_root"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, c.Bundle))
		if err != nil || c.Identity == "" || !strings.Contains(string(data), "dsseEnvelope") {
			continue
		}
		tr, err := root.NewTrustedRootFromPath(filepath.Join(dir, c.TrustedRoot))
		if err != nil {
			continue
		}
		o := keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: c.Identity, Issuer: c.Issuer}}}
		variants := map[string]func(map[string]any){
			"as is": func(map[string]any) {},
			"payload changed": func(b map[string]any) {
				env := b["dsseEnvelope"].(map[string]any)
				env["payload"] = base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[]}`))
			},
			"signature changed": func(b map[string]any) {
				sig := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
				raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
				raw[len(raw)/2] ^= 1
				sig["sig"] = base64.StdEncoding.EncodeToString(raw)
			},
			"log entry body changed": func(b map[string]any) {
				vm := b["verificationMaterial"].(map[string]any)
				if es, ok := vm["tlogEntries"].([]any); ok && len(es) > 0 {
					e := es[0].(map[string]any)
					body, _ := base64.StdEncoding.DecodeString(e["canonicalizedBody"].(string))
					// The first hash the body records (hex in Rekor v1,
					// base64 in v2) gets another first character.
					i := -1
					for _, key := range []string{`"value":"`, `"digest":"`} {
						if j := strings.Index(string(body), key); j >= 0 && (i < 0 || j+len(key) < i) {
							i = j + len(key)
						}
					}
					if i < 0 || i >= len(body) {
						panic("the log entry body records no hash")
					}
					if body[i] == '0' || body[i] == 'A' {
						body[i]++
					} else if strings.IndexByte("0123456789abcdef", body[i]) >= 0 {
						body[i] = '0'
					} else {
						body[i] = 'A'
					}
					e["canonicalizedBody"] = base64.StdEncoding.EncodeToString(body)
				}
			},
			"timestamps dropped": func(b map[string]any) {
				delete(b["verificationMaterial"].(map[string]any), "timestampVerificationData")
			},
			"log entries dropped": func(b map[string]any) {
				delete(b["verificationMaterial"].(map[string]any), "tlogEntries")
			},
		}
		for name, change := range variants {
			t.Run(filepath.Base(dir)+"/"+name, func(t *testing.T) {
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				change(m)
				changed, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				b, err := keyless.ParseBundle(changed)
				if err != nil {
					t.Skipf("the variant does not parse: %v", err)
				}
				env := b.GetDsseEnvelope()
				if env == nil || len(env.GetSignatures()) != 1 {
					t.Fatal("not a DSSE bundle with one signature")
				}
				// With the log and without it (timestamps alone date the
				// signature; the envelope's own signature is then all that
				// binds the payload).
				for _, ignoreTlog := range []bool{false, true} {
					o := o
					o.IgnoreTlog = ignoreTlog
					_, whole := keyless.Verify(b, keyless.Artifact{}, o)
					_, inPlace := keyless.VerifyDSSE(b, keyless.DSSE{PayloadType: env.GetPayloadType(), Payload: env.GetPayload(), Signature: env.GetSignatures()[0].GetSig()}, o)
					if (whole == nil) != (inPlace == nil) {
						t.Fatalf("ignore tlog %v: different verdicts:\nVerify:     %v\nVerifyDSSE: %v", ignoreTlog, whole, inPlace)
					}
					ran++
					if whole == nil {
						passed++
					}
				}
			})
		}
	}
	if ran < 24 || passed == 0 || passed == ran {
		t.Fatalf("%d variants compared, %d passed: the comparison proves little", ran, passed)
	}
}
