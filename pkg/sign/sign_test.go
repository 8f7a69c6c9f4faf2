package sign_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
)

func TestSignWithoutUploadWritesNothing(t *testing.T) {
	var writes atomic.Int32
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writes.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	d := reg.PushImage(t, reg.Ref("s/app:v1"))
	writes.Store(0)
	c, _ := oci.NewClient(oci.Options{})
	k, _ := keys.Generate(keys.ECDSAP256)
	s, err := sign.NewSigner(c, k)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(reg.Ref("s/app:v1"))
	sigs, err := s.Sign(context.Background(), tag, sign.Options{Annotations: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if writes.Load() != 0 {
		t.Fatalf("%d writes to the registry without Upload", writes.Load())
	}
	if len(sigs) != 1 || sigs[0].Image.DigestStr() != d.DigestStr() || sigs[0].Tag != "" {
		t.Fatalf("signatures = %+v", sigs)
	}
	// The signature is over the payload bytes returned, which name the digest.
	want, _ := payload.Build(d, map[string]string{"a": "b"})
	if !bytes.Equal(sigs[0].Payload, want) {
		t.Fatalf("payload %s, want %s", sigs[0].Payload, want)
	}
	raw, _ := base64.StdEncoding.DecodeString(sigs[0].Signature)
	v, _ := signature.LoadVerifier(k.Public(), crypto.SHA256)
	if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(sigs[0].Payload)); err != nil {
		t.Fatalf("signature does not verify as cosign checks it: %v", err)
	}
}

func TestSignMissingImage(t *testing.T) {
	reg := testreg.Start(t, nil)
	c, _ := oci.NewClient(oci.Options{})
	k, _ := keys.Generate(keys.Ed25519)
	s, _ := sign.NewSigner(c, k)
	tag, _ := name.NewTag(reg.Ref("s/none:v1"))
	if _, err := s.Sign(context.Background(), tag, sign.Options{Upload: true}); err == nil {
		t.Fatal("signed an image that does not exist")
	}
}
