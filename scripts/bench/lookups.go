package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/registry"
)

// runLookups counts the registry requests of one verify by digest of a
// bundle-only image, with and without the referrers API, with --format
// any (the default: where cosign-compatible lookups happen) and bundle.
func runLookups(imgsign string) error {
	fmt.Printf("\n%-52s %10s\n", "verify of a bundle-only image, by digest", "requests")
	for _, api := range []bool{true, false} {
		br, err := startRegistry(registry.WithReferrersSupport(api))
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "imgsign-bench-lookups")
		if err != nil {
			return err
		}
		env := append(os.Environ(), "IMGSIGN_PASSWORD=bench", "HOME="+dir)
		key := filepath.Join(dir, "k")
		ref, err := push(br.host + "/bench/lookups:v1")
		if err == nil {
			_, err = exec1(env, imgsign, "generate-key-pair", "--output-key-prefix", key)
		}
		if err == nil {
			_, err = exec1(env, imgsign, "sign", "--key", key+".key", "--format", "bundle", ref)
		}
		for _, format := range []string{"any", "bundle"} {
			if err != nil {
				break
			}
			before := br.requests.Load()
			if _, err = exec1(env, imgsign, "verify", "--key", key+".pub", "--format", format, ref); err == nil {
				where := "referrers API"
				if !api {
					where = "fallback tag"
				}
				fmt.Printf("%-52s %10d\n", fmt.Sprintf("imgsign verify --format %s (%s)", format, where), br.requests.Load()-before)
			}
		}
		br.srv.Close()
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
	}
	return nil
}
