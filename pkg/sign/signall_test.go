package sign_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestSignAllConcurrently: many images signed at once, each gets exactly
// its own signature, and one authentication serves them all.
func TestSignAllConcurrently(t *testing.T) {
	// Behind a token service, as public registries run: one challenge and
	// one token must serve every image and worker.
	auth := &testreg.TokenAuth{}
	reg := testreg.Start(t, auth.Wrap)
	const n = 30
	refs := make([]name.Reference, n)
	digests := make([]name.Digest, n)
	for i := range refs {
		digests[i] = reg.PushImage(t, reg.Ref(fmt.Sprintf("many/app%02d:v1", i)))
		refs[i], _ = name.NewTag(reg.Ref(fmt.Sprintf("many/app%02d:v1", i)))
	}
	tokens, challenges := auth.Tokens(), auth.Challenges()
	c, _ := oci.NewClient(oci.Options{})
	k, _ := keys.Generate(keys.ECDSAP256)
	s, _ := sign.NewSigner(c, k)
	res, err := s.SignAll(context.Background(), refs, sign.Options{Upload: true}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := auth.Tokens() - tokens; got != 1 {
		t.Fatalf("%d tokens fetched for %d images, want 1", got, n)
	}
	if got := auth.Challenges() - challenges; got != 1 {
		t.Fatalf("%d requests challenged for %d images, want 1", got, n)
	}
	v, _ := signature.LoadVerifier(k.Public(), crypto.SHA256)
	for i, r := range res {
		if r.Err != nil || len(r.Signatures) != 1 || r.Signatures[0].Image.DigestStr() != digests[i].DigestStr() || !r.Signatures[0].Added {
			t.Fatalf("image %d: %+v", i, r)
		}
		tag, _ := oci.AttachedTag(digests[i], nil, oci.SignatureTagSuffix)
		m, _, err := c.ReadManifest(context.Background(), tag)
		if err != nil || len(m.Layers) != 1 {
			t.Fatalf("image %d: %v %+v", i, err, m)
		}
		p, _ := c.FetchBlob(context.Background(), tag.Context(), m.Layers[0], 1<<20)
		sig, _ := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[oci.SignatureAnnotation])
		if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(p)); err != nil || !bytes.Contains(p, []byte(digests[i].DigestStr())) {
			t.Fatalf("image %d: stored signature does not verify over its own digest: %v", i, err)
		}
	}
}

// TestSignAllWritesNothingOnFailure: one image that cannot be signed (it
// does not exist) and nothing is written for any of them.
func TestSignAllWritesNothingOnFailure(t *testing.T) {
	var writes atomic.Int32
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writes.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	var refs []name.Reference
	for i := 0; i < 10; i++ {
		reg.PushImage(t, reg.Ref(fmt.Sprintf("few/app%02d:v1", i)))
		r, _ := name.NewTag(reg.Ref(fmt.Sprintf("few/app%02d:v1", i)))
		refs = append(refs, r)
	}
	missing, _ := name.NewTag(reg.Ref("few/none:v1"))
	refs = append(refs[:5], append([]name.Reference{missing}, refs[5:]...)...)
	writes.Store(0)
	c, _ := oci.NewClient(oci.Options{})
	k, _ := keys.Generate(keys.ECDSAP256)
	s, _ := sign.NewSigner(c, k)
	_, err := s.SignAll(context.Background(), refs, sign.Options{Upload: true}, 4)
	if !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("err = %v, want the missing image's not found", err)
	}
	if writes.Load() != 0 {
		t.Fatalf("%d writes although one image could not be signed", writes.Load())
	}
}
