package sign_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tsa"
)

// TestSignAllKeyTimestamped: key signatures with a TSA, both layouts: one
// request per signature and layout, the legacy layer's cosign annotation
// and the bundle's timestampVerificationData each hold a token over the
// raw signature that verifies against the TSA's trusted root; signing
// again adds nothing and asks the TSA again only for the fresh signature
// (ECDSA signatures differ on every run).
func TestSignAllKeyTimestamped(t *testing.T) {
	const n = 3
	f, _, c, refs, digests, _ := keylessFixture(t, n)
	k, _ := keys.Generate(keys.ECDSAP256)
	s, err := sign.NewSigner(c, k)
	if err != nil {
		t.Fatal(err)
	}
	ts := tsa.New([]string{f.TSAURL}, tsa.Options{})
	res, err := s.SignAll(context.Background(), refs, sign.Options{Upload: true, Format: sign.FormatBoth, Timestamps: ts}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if f.TSACalls.Load() != 2*n || ts.Requests() != 2*n {
		t.Fatalf("TSA %d requests (client counted %d), want %d", f.TSACalls.Load(), ts.Requests(), 2*n)
	}
	for i, r := range res {
		if r.Err != nil || len(r.Signatures) != 1 || !r.Signatures[0].Added {
			t.Fatalf("image %d: %+v", i, r)
		}
		tag, _ := oci.AttachedTag(digests[i], nil, oci.SignatureTagSuffix)
		m, _, err := c.ReadManifest(context.Background(), tag)
		if err != nil || len(m.Layers) != 1 {
			t.Fatalf("image %d: %v", i, err)
		}
		ann := m.Layers[0].Annotations
		var tok struct{ SignedRFC3161Timestamp []byte }
		if err := json.Unmarshal([]byte(ann[oci.TimestampAnnotation]), &tok); err != nil {
			t.Fatalf("image %d: timestamp annotation %q: %v", i, ann[oci.TimestampAnnotation], err)
		}
		sig, _ := base64.StdEncoding.DecodeString(ann[oci.SignatureAnnotation])
		if _, err := keyless.VerifyTimestamp(tok.SignedRFC3161Timestamp, sig, f.Trusted); err != nil {
			t.Fatalf("image %d: the legacy timestamp does not verify over the raw signature: %v", i, err)
		}
		refsList, err := c.ListReferrers(context.Background(), digests[i])
		if err != nil || len(refsList.Descriptors) != 1 {
			t.Fatalf("image %d: referrers %v %v", i, refsList, err)
		}
		_, data, err := c.FetchReferrer(context.Background(), digests[i].Context(), refsList.Descriptors[0], bundle.MediaTypeV03, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bundle.ParseDSSE(data)
		if err != nil || len(b.Timestamps) != 1 {
			t.Fatalf("image %d: bundle %+v %v", i, b, err)
		}
		if _, err := keyless.VerifyTimestamp(b.Timestamps[0], b.Signatures[0], f.Trusted); err != nil {
			t.Fatalf("image %d: the bundle timestamp does not verify over the envelope signature: %v", i, err)
		}
	}
	// Again: the stored, timestamped signatures are found (the bundle
	// without a new request; the legacy layer is signed anew, then matched).
	res, err = s.SignAll(context.Background(), refs, sign.Options{Upload: true, Format: sign.FormatBoth, Timestamps: ts}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Signatures[0].Added {
			t.Fatalf("image %d signed again: %+v", i, r)
		}
	}
	if got := f.TSACalls.Load(); got != 3*n {
		t.Fatalf("TSA %d requests after signing again, want %d", got, 3*n)
	}
}

// TestSignAllKeyTimestampFailureWritesNothing: the TSA failing leaves the
// registry untouched; the error names the TSA and matches tsa.ErrFailed.
func TestSignAllKeyTimestampFailureWritesNothing(t *testing.T) {
	for _, f := range []sign.Format{sign.FormatLegacy, sign.FormatBundle} {
		t.Run(string(f), func(t *testing.T) {
			fake, _, c, refs, _, writes := keylessFixture(t, 4)
			fake.FailTSA.Store(true)
			k, _ := keys.Generate(keys.ECDSAP256)
			s, _ := sign.NewSigner(c, k)
			_, err := s.SignAll(context.Background(), refs, sign.Options{Upload: true, Format: f, Timestamps: tsa.New([]string{fake.TSAURL}, tsa.Options{})}, 2)
			if !errors.Is(err, tsa.ErrFailed) || !strings.Contains(err.Error(), "timestamp authority "+fake.TSAURL) || !strings.Contains(err.Error(), "HTTP 503") {
				t.Fatalf("err = %v", err)
			}
			if writes.Load() != 0 {
				t.Fatalf("%d registry writes although timestamping failed", writes.Load())
			}
		})
	}
}
