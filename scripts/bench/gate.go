package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// runGate measures the deploy gate: `imgsign verify --policy -f` over a
// manifest of n signed images on a local registry, in images per second,
// beside cosign verify run once per image (the way a gate built on cosign
// runs it), on a sample of the same images.
func runGate(imgsign, cosign string, n int) error {
	br, err := startRegistry()
	if err != nil {
		return err
	}
	defer br.srv.Close()
	host, requests := br.host, &br.requests
	dir, err := os.MkdirTemp("", "imgsign-bench-gate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		return err
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644); err != nil {
		return err
	}
	client, err := oci.NewClient(oci.Options{})
	if err != nil {
		return err
	}
	signer, err := sign.NewSigner(client, key)
	if err != nil {
		return err
	}
	// Push and sign n images, 16 at a time (signing waits for concurrent
	// writers after each write; images in parallel keep set-up short).
	refs := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ref, err := push(fmt.Sprintf("%s/bench/many/app%03d:v1", host, i))
			if err != nil {
				errs <- err
				return
			}
			d, err := name.NewDigest(ref)
			if err != nil {
				errs <- err
				return
			}
			if _, err := signer.Sign(context.Background(), d, sign.Options{Upload: true, Format: sign.FormatLegacy}); err != nil {
				errs <- err
				return
			}
			refs[i] = fmt.Sprintf("%s/bench/many/app%03d:v1", host, i)
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/bench\n    keys: [{file: k.pub}]\n", host)), 0o644); err != nil {
		return err
	}
	var manifest strings.Builder
	for i, r := range refs {
		fmt.Fprintf(&manifest, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: app%d}\nspec:\n  containers:\n    - name: app\n      image: %s\n", i, r)
	}
	manifests := filepath.Join(dir, "manifests.yaml")
	if err := os.WriteFile(manifests, []byte(manifest.String()), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "HOME="+dir)

	const runs = 5
	var walls []time.Duration
	var rss int64
	before := requests.Load()
	for range runs {
		u, err := exec1(env, imgsign, "verify", "--policy", policy, "-f", manifests)
		if err != nil {
			return err
		}
		walls = append(walls, u.wall)
		rss = max(rss, u.maxRSSKB)
	}
	perRun := (requests.Load() - before) / runs
	slices.Sort(walls)
	median := walls[len(walls)/2]
	rate := float64(n) / median.Seconds()
	fmt.Printf("\nimgsign verify --policy -f (%d images, one process): median %.0f ms, %.0f images/s, %d requests (%.1f per image), peak RSS %.1f MiB\n",
		n, ms1(median), rate, perRun, float64(perRun)/float64(n), float64(rss)/1024)

	// The same images given to verify --key on the command line.
	walls = walls[:0]
	before = requests.Load()
	for range runs {
		u, err := exec1(env, imgsign, append([]string{"verify", "--key", filepath.Join(dir, "k.pub")}, refs...)...)
		if err != nil {
			return err
		}
		walls = append(walls, u.wall)
	}
	perRun = (requests.Load() - before) / runs
	slices.Sort(walls)
	keyRate := float64(n) / walls[len(walls)/2].Seconds()
	fmt.Printf("imgsign verify --key IMAGE... (%d images, one process): median %.0f ms, %.0f images/s, %d requests (%.1f per image)\n",
		n, ms1(walls[len(walls)/2]), keyRate, perRun, float64(perRun)/float64(n))

	if cosign == "" {
		return nil
	}
	if _, err := os.Stat(cosign); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s not found; skipping the cosign comparison (make tools installs it)\n", cosign)
		return nil
	}
	// cosign verifies one image per process: time a sample, sequentially.
	sample := min(n, 20)
	start := time.Now()
	for _, r := range refs[:sample] {
		if _, err := exec1(env, cosign, "verify", "--key", filepath.Join(dir, "k.pub"), "--insecure-ignore-tlog", "--allow-http-registry", r); err != nil {
			return err
		}
	}
	crate := float64(sample) / time.Since(start).Seconds()
	fmt.Printf("cosign verify, once per image (%d-image sample): %.0f images/s\n", sample, crate)
	fmt.Printf("imgsign's gate: %.1f times cosign's throughput (goal: 20)\n", rate/crate)
	fmt.Printf("imgsign verify --key IMAGE...: %.1f times cosign's throughput (goal: 30)\n", keyRate/crate)
	return nil
}
