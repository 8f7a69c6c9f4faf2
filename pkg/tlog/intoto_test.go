package tlog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// TestBindIntotoV002: a Rekor v1 intoto 0.0.2 entry binds a DSSE signature
// when it records the envelope's payload hash and type, and this signature
// (base64 text, base64-encoded again) by this key; any other record is
// refused with its reason. Every body is built here.
func TestBindIntotoV002(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemOf := func(k *ecdsa.PrivateKey) []byte {
		p, err := cryptoutils.MarshalPublicKeyToPEM(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1"}`)
	const pt = "application/vnd.in-toto+json"
	sig := []byte("raw signature bytes")
	w := Want{Digest: make([]byte, 32), Signature: sig, PublicKey: &key.PublicKey, Envelope: &Envelope{PayloadType: pt, Payload: payload}}
	sum := sha256.Sum256(payload)
	body := func(change func(env, content map[string]any)) []byte {
		sigs := []any{map[string]any{
			"sig":       base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(sig))),
			"publicKey": base64.StdEncoding.EncodeToString(pemOf(key)),
		}}
		env := map[string]any{"payloadType": pt, "signatures": sigs}
		content := map[string]any{"envelope": env, "payloadHash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}}
		change(env, content)
		b, err := json.Marshal(map[string]any{"apiVersion": "0.0.2", "kind": "intoto", "spec": map[string]any{"content": content}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name   string
		change func(env, content map[string]any)
		want   string // "" binds
	}{
		{"canonical (payload hash only)", func(env, content map[string]any) {}, ""},
		{"with the payload", func(env, content map[string]any) { env["payload"] = base64.StdEncoding.EncodeToString(payload) }, ""},
		{"another payload", func(env, content map[string]any) { env["payload"] = base64.StdEncoding.EncodeToString([]byte("{}")) }, `another payload than`},
		{"another payload hash", func(env, content map[string]any) {
			content["payloadHash"] = map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(make([]byte, 32))}
		}, `records payload sha256:0+, not this envelope's`},
		{"another payload type", func(env, content map[string]any) { env["payloadType"] = "text/plain" }, `another payload type`},
		{"another signature", func(env, content map[string]any) {
			env["signatures"].([]any)[0].(map[string]any)["sig"] = base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString([]byte("other"))))
		}, `does not record this signature by this key`},
		{"another key", func(env, content map[string]any) {
			env["signatures"].([]any)[0].(map[string]any)["publicKey"] = base64.StdEncoding.EncodeToString(pemOf(other))
		}, `does not record this signature by this key`},
		{"no payload hash", func(env, content map[string]any) { delete(content, "payloadHash") }, `without an envelope and a SHA-256 payload hash`},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind, err := bind(body(c.change), nil, w)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want bound, got %v", err)
			case c.want == "" && kind != "intoto/0.0.2":
				t.Fatalf("kind %q", kind)
			case c.want == "":
			case err == nil:
				t.Fatal("bound")
			case !regexp.MustCompile(c.want).MatchString(err.Error()):
				t.Fatalf("got %v, want /%s/", err, c.want)
			}
		})
	}
	// Not over an envelope: an intoto entry cannot bind it.
	if _, err := bind(body(func(env, content map[string]any) {}), nil, Want{Digest: w.Digest, Signature: sig, PublicKey: &key.PublicKey}); err == nil {
		t.Fatal("a plain signature bound to an intoto entry")
	}
}
