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
	"testing"
	"time"

	"github.com/imgsign/imgsign/pkg/blob"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// TestCosignBlobBundle: a cosign v1/v2 sign-blob --bundle file (signature,
// base64 PEM certificate, rekorBundle) verifies as the Sigstore bundle it
// amounts to, keyless and with a key; a rekorBundle taken from another
// signature of the same file (CVE-2022-36056) is refused for that reason.
// Every bundle is signed here, by a virtual Sigstore.
func TestCosignBlobBundle(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	file := []byte("release archive\n")
	const subj, iss = "release@example.com", "https://issuer.example.com"
	sum := sha256.Sum256(file)
	logID, err := vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	// signed is a keyless signature of file: its certificate (PEM), its
	// signature and the rekorBundle of its hashedrekord entry.
	type signed struct {
		certPEM, sig []byte
		rekor        map[string]any
	}
	sign := func() signed {
		cert, priv, err := vs.GenerateLeafCert(subj, iss)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := ecdsa.SignASN1(rand.Reader, priv.(*ecdsa.PrivateKey), sum[:])
		if err != nil {
			t.Fatal(err)
		}
		certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
			"data":      map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{"content": base64.StdEncoding.EncodeToString(sig), "publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(certPEM)}},
		}})
		payload := sgtlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: time.Now().Add(time.Minute).Unix(), LogIndex: 9, LogID: logID}
		set, err := vs.RekorSignPayload(payload)
		if err != nil {
			t.Fatal(err)
		}
		return signed{certPEM, sig, map[string]any{"SignedEntryTimestamp": base64.StdEncoding.EncodeToString(set), "Payload": payload}}
	}
	legacy := func(s, rekorFrom signed) []byte {
		out, err := json.Marshal(map[string]any{
			"base64Signature": base64.StdEncoding.EncodeToString(s.sig),
			"cert":            base64.StdEncoding.EncodeToString(s.certPEM),
			"rekorBundle":     rekorFrom.rekor,
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	one, two := sign(), sign()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keySig, _ := ecdsa.SignASN1(rand.Reader, key, sum[:])
	keyBundle, _ := json.Marshal(map[string]any{"base64Signature": base64.StdEncoding.EncodeToString(keySig)})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kl := &keyless.Options{Trusted: vs, Identities: []keyless.Identity{{Subject: subj, Issuer: iss}}, IgnoreSCT: true}
	for _, c := range []struct {
		name   string
		bundle []byte
		o      blob.BundleOptions
		want   string // "" passes
	}{
		{"keyless", legacy(one, one), blob.BundleOptions{Keyless: kl}, ""},
		{"keyless, rekorBundle of another signature", legacy(one, two), blob.BundleOptions{Keyless: kl}, `transparency log signature does not match`},
		{"key", keyBundle, blob.BundleOptions{Keys: []crypto.PublicKey{&key.PublicKey}}, ""},
		{"another key", keyBundle, blob.BundleOptions{Keys: []crypto.PublicKey{&other.PublicKey}}, `does not verify with any trusted key`},
		{"unknown member", []byte(`{"base64Signature":"AA==","extra":1}`), blob.BundleOptions{Keyless: kl}, `cosign bundle: json: unknown field "extra"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := blob.Digest(bytes.NewReader(file), true)
			if err != nil {
				t.Fatal(err)
			}
			_, err = blob.VerifyBundle(context.Background(), c.bundle, d, c.o)
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
