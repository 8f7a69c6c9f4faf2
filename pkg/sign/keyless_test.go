package sign_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keylesssign"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
)

// keylessFixture is a registry counting its writes, n images in it, and a
// keyless signer on the in-process Fulcio and TSA.
func keylessFixture(t *testing.T, n int) (*sigstoretest.Fake, *keylesssign.Signer, *oci.Client, []name.Reference, []name.Digest, *atomic.Int32) {
	t.Helper()
	var writes atomic.Int32
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writes.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	var (
		refs    []name.Reference
		digests []name.Digest
	)
	for i := range n {
		digests = append(digests, reg.PushImage(t, reg.Ref(fmt.Sprintf("kl/app%02d:v1", i))))
		r, _ := name.NewTag(reg.Ref(fmt.Sprintf("kl/app%02d:v1", i)))
		refs = append(refs, r)
	}
	writes.Store(0)
	f := sigstoretest.Start(t)
	ks, err := keylesssign.New(context.Background(), keylesssign.Options{Services: keylesssign.Services{Fulcio: f.FulcioURL, TSAs: []string{f.TSAURL}},
		Token: sigstoretest.Token(t, time.Now().Add(time.Minute)), Trusted: f.Trusted})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := oci.NewClient(oci.Options{})
	return f, ks, c, refs, digests, &writes
}

// TestSignAllKeyless: many images, both layouts, one certificate; each
// legacy layer carries cosign's certificate, chain and timestamp
// annotations, each image one bundle referrer.
func TestSignAllKeyless(t *testing.T) {
	const n = 6
	f, ks, c, refs, digests, _ := keylessFixture(t, n)
	res, err := sign.NewKeylessSigner(c, ks).SignAll(context.Background(), refs, sign.Options{Upload: true, Format: sign.FormatBoth}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if f.FulcioCalls.Load() != 1 || f.TSACalls.Load() != 2*n {
		t.Fatalf("Fulcio %d requests, TSA %d, want 1 and %d", f.FulcioCalls.Load(), f.TSACalls.Load(), 2*n)
	}
	for i, r := range res {
		if r.Err != nil || len(r.Signatures) != 1 || r.Signatures[0].Referrer == "" || !r.Signatures[0].Added {
			t.Fatalf("image %d: %+v", i, r)
		}
		tag, _ := oci.AttachedTag(digests[i], nil, oci.SignatureTagSuffix)
		m, _, err := c.ReadManifest(context.Background(), tag)
		if err != nil || len(m.Layers) != 1 {
			t.Fatalf("image %d: %v", i, err)
		}
		ann := m.Layers[0].Annotations
		if ann[oci.CertificateAnnotation] != ks.CertificatePEM() || !strings.Contains(ann[oci.ChainAnnotation], "BEGIN CERTIFICATE") ||
			!strings.Contains(ann[oci.TimestampAnnotation], "SignedRFC3161Timestamp") || ann[oci.SignatureAnnotation] == "" {
			t.Fatalf("image %d: annotations %v", i, ann)
		}
		refsList, err := c.ListReferrers(context.Background(), digests[i])
		if err != nil || len(refsList.Descriptors) != 1 {
			t.Fatalf("image %d: referrers %v %v", i, refsList, err)
		}
	}
}

// TestSignAllKeylessWritesNothingOnFault: the TSA failing on any image
// leaves the registry untouched, and the error names the TSA.
func TestSignAllKeylessWritesNothingOnFault(t *testing.T) {
	f, ks, c, refs, _, writes := keylessFixture(t, 8)
	f.FailTSA.Store(true)
	_, err := sign.NewKeylessSigner(c, ks).SignAll(context.Background(), refs, sign.Options{Upload: true, Format: sign.FormatBoth}, 4)
	if !errors.Is(err, keylesssign.ErrService) || !strings.Contains(err.Error(), "timestamp authority "+f.TSAURL) {
		t.Fatalf("err = %v", err)
	}
	if writes.Load() != 0 {
		t.Fatalf("%d registry writes although signing failed", writes.Load())
	}
}
