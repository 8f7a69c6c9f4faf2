//go:build linux

package e2e

import (
	"context"
	"crypto"
	"fmt"
	"testing"

	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
)

// TestVerifyRequestCountsRealRegistry counts the requests of a verification
// by digest against the real registry (distribution, TLS, no referrers API:
// the fallback tag path), anonymous and with basic auth. Anonymous clients
// send no ping; with credentials the ping stays (it decides where they go).
func TestVerifyRequestCountsRealRegistry(t *testing.T) {
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, withAuth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth %v", withAuth), func(t *testing.T) {
			r := startRegistry(t, true, withAuth)
			opts := oci.Options{CACertFiles: []string{r.caFile}, Username: r.username, Password: r.password}
			sc, err := oci.NewClient(opts)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := sign.NewSigner(sc, key)
			ping := int64(0)
			if withAuth {
				ping = 1
			}
			for i, tc := range []struct {
				signed sign.Format
				look   verify.Format
				want   int64
			}{
				{sign.FormatLegacy, verify.FormatAny, 2},    // .sig, payload
				{sign.FormatBundle, verify.FormatAny, 5},    // .sig 404, referrers 404, fallback tag, manifest, bundle
				{sign.FormatBoth, verify.FormatAny, 2},      // .sig, payload
				{sign.FormatBundle, verify.FormatBundle, 4}, // referrers 404, fallback tag, manifest, bundle
			} {
				d := r.pushImage(t, fmt.Sprintf("count/app%d:v1", i))
				if _, err := s.Sign(context.Background(), d, sign.Options{Upload: true, Format: tc.signed}); err != nil {
					t.Fatal(err)
				}
				nt, err := oci.NetworkTransport(opts)
				if err != nil {
					t.Fatal(err)
				}
				counter := &oci.RequestCounter{Next: nt}
				o := opts
				o.Transport = counter
				c, _ := oci.NewClient(o)
				v, _ := verify.NewVerifier(c, []crypto.PublicKey{key.Public()})
				res, err := v.Verify(context.Background(), d, verify.Options{Format: tc.look})
				if err != nil || !res.Verified {
					t.Fatalf("signed %s, --format %q: not verified: %v", tc.signed, tc.look, err)
				}
				if n := counter.Count(); n != tc.want+ping {
					t.Errorf("signed %s, --format %q: %d requests, want %d", tc.signed, tc.look, n, tc.want+ping)
				}
			}
		})
	}
}
