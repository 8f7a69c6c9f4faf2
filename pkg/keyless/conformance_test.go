package keyless_test

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
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
