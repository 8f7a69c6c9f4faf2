package verify_test

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
)

// TestVerifyRequestCounts pins the registry requests of one verification by
// digest, as a fresh process makes it (a new client), authentication
// requests included, so that a change that costs a request fails here.
//
// An anonymous client does not ping the registry: its first request serves
// as the ping. The legacy .sig tag is looked at first (the cheapest proof,
// and the only one imgsign's default signatures and cosign v2 need); bundles
// are read when it is not enough. Behind a token service (as public
// registries run anonymous pulls), the first request is challenged and one
// token fetched, as the ping and token did before.
func TestVerifyRequestCounts(t *testing.T) {
	type counts struct{ open, token int64 }
	cases := []struct {
		name      string
		signed    sign.Format
		referrers bool // the registry has the OCI 1.1 referrers API
		look      verify.Format
		want      counts
	}{
		// .sig manifest, payload.
		{"key legacy", sign.FormatLegacy, true, verify.FormatAny, counts{2, 4}},
		{"key legacy, no referrers API", sign.FormatLegacy, false, verify.FormatAny, counts{2, 4}},
		// .sig (404), referrers, bundle manifest, bundle.
		{"bundle via referrers", sign.FormatBundle, true, verify.FormatAny, counts{4, 6}},
		// .sig (404), referrers (404: no API), fallback tag, bundle manifest, bundle.
		{"bundle via fallback tag", sign.FormatBundle, false, verify.FormatAny, counts{5, 7}},
		// Legacy suffices: the bundle is not read.
		{"both", sign.FormatBoth, true, verify.FormatAny, counts{2, 4}},
		{"both, no referrers API", sign.FormatBoth, false, verify.FormatAny, counts{2, 4}},
		// --format bundle skips the .sig lookup.
		{"bundle asked, via referrers", sign.FormatBundle, true, verify.FormatBundle, counts{3, 5}},
		{"bundle asked, via fallback tag", sign.FormatBundle, false, verify.FormatBundle, counts{4, 6}},
	}
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		for _, withToken := range []bool{false, true} {
			name := tc.name
			if withToken {
				name += ", token auth"
			}
			t.Run(name, func(t *testing.T) {
				auth := &testreg.TokenAuth{}
				var wrap func(http.Handler) http.Handler
				if withToken {
					wrap = auth.Wrap
				}
				reg := testreg.Start(t, wrap, registry.WithReferrersSupport(tc.referrers))
				d := reg.PushImage(t, reg.Ref("count/app:v1"))
				sc, _ := oci.NewClient(oci.Options{})
				s, _ := sign.NewSigner(sc, key)
				if _, err := s.Sign(context.Background(), d, sign.Options{Upload: true, Format: tc.signed}); err != nil {
					t.Fatal(err)
				}
				tokens, challenges := auth.Tokens(), auth.Challenges()

				counter := &oci.RequestCounter{}
				c, _ := oci.NewClient(oci.Options{Transport: counter})
				v, _ := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
				res, err := v.Verify(context.Background(), d, verify.Options{Format: tc.look})
				if err != nil || !res.Verified {
					t.Fatalf("not verified: %v", err)
				}
				want := tc.want.open
				if withToken {
					want = tc.want.token
					// One challenge and one token: no ping, no second exchange.
					if n := auth.Tokens() - tokens; n != 1 {
						t.Errorf("%d tokens fetched, want 1", n)
					}
					if n := auth.Challenges() - challenges; n != 1 {
						t.Errorf("%d requests challenged, want 1", n)
					}
				}
				if n := counter.Count(); n != want {
					t.Errorf("%d registry requests, want %d", n, want)
				}
			})
		}
	}
}

// TestVerifyRequestCountsBulk: the referrers capability of a registry is
// learned once per client, so a registry without the API costs its 404 once
// per run, not once per image.
func TestVerifyRequestCountsBulk(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers API %v", api), func(t *testing.T) {
			reg := testreg.Start(t, nil, registry.WithReferrersSupport(api))
			key, _ := keys.Generate(keys.ECDSAP256)
			sc, _ := oci.NewClient(oci.Options{})
			s, _ := sign.NewSigner(sc, key)
			var imgs []name.Digest
			for i := range 3 {
				d := reg.PushImage(t, reg.Ref(fmt.Sprintf("bulk/app%d:v1", i)))
				if _, err := s.Sign(context.Background(), d, sign.Options{Upload: true, Format: sign.FormatBundle}); err != nil {
					t.Fatal(err)
				}
				imgs = append(imgs, d)
			}
			counter := &oci.RequestCounter{}
			c, _ := oci.NewClient(oci.Options{Transport: counter})
			v, _ := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
			for i, d := range imgs {
				counter.Reset()
				if _, err := v.Verify(context.Background(), d, verify.Options{}); err != nil {
					t.Fatal(err)
				}
				// .sig (404), referrers or fallback tag, manifest, bundle; the
				// first image on a registry without the API adds the
				// referrers 404.
				want := int64(4)
				if i == 0 && !api {
					want = 5
				}
				if n := counter.Count(); n != want {
					t.Errorf("image %d: %d requests, want %d", i, n, want)
				}
			}
		})
	}
}

// TestVerifyConcurrentOneHandshake: images verified at once over one fresh
// client behind a token service make one handshake between them: one
// challenged request and one token.
func TestVerifyConcurrentOneHandshake(t *testing.T) {
	auth := &testreg.TokenAuth{}
	reg := testreg.Start(t, auth.Wrap, registry.WithReferrersSupport(true))
	key, _ := keys.Generate(keys.ECDSAP256)
	sc, _ := oci.NewClient(oci.Options{})
	s, _ := sign.NewSigner(sc, key)
	var imgs []name.Digest
	for i := range 12 {
		d := reg.PushImage(t, reg.Ref(fmt.Sprintf("many/app%d:v1", i)))
		if _, err := s.Sign(context.Background(), d, sign.Options{Upload: true}); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, d)
	}
	tokens, challenges := auth.Tokens(), auth.Challenges()
	c, _ := oci.NewClient(oci.Options{})
	v, _ := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
	errs := make(chan error, len(imgs))
	for _, d := range imgs {
		go func() {
			_, err := v.Verify(context.Background(), d, verify.Options{})
			errs <- err
		}()
	}
	for range imgs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, m := auth.Tokens()-tokens, auth.Challenges()-challenges; n != 1 || m != 1 {
		t.Fatalf("%d tokens and %d challenges for %d concurrent verifications, want 1 and 1", n, m, len(imgs))
	}
}
