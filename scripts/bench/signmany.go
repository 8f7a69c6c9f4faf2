package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// runSignMany measures signing at scale: one `imgsign sign` call over n
// images on a local registry (key-based, no log, default format), and one
// sign of one image beside the time the key's decryption alone takes
// (`imgsign public-key --key`, which decrypts the key and prints its
// public half).
func runSignMany(imgsign string, n, runs int) error {
	for _, api := range []bool{true, false} {
		fmt.Printf("\nsigning on a registry with the referrers API: %v\n", api)
		if err := signMany(imgsign, n, runs, api); err != nil {
			return err
		}
	}
	return nil
}

func signMany(imgsign string, n, runs int, api bool) error {
	br, err := startRegistry(registry.WithReferrersSupport(api))
	if err != nil {
		return err
	}
	defer br.srv.Close()
	dir, err := os.MkdirTemp("", "imgsign-bench-sign")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "IMGSIGN_PASSWORD=bench", "HOME="+dir)
	key := filepath.Join(dir, "k")
	if _, err := exec1(env, imgsign, "generate-key-pair", "--output-key-prefix", key); err != nil {
		return err
	}
	refs := make([]string, n+runs)
	var wg sync.WaitGroup
	errs := make(chan error, len(refs))
	sem := make(chan struct{}, 16)
	for i := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ref, err := push(fmt.Sprintf("%s/bench/sign/app%03d:v1", br.host, i))
			refs[i] = ref
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}

	var decrypt, single []time.Duration
	for i := 0; i < runs; i++ {
		u, err := exec1(env, imgsign, "public-key", "--key", key+".key")
		if err != nil {
			return err
		}
		decrypt = append(decrypt, u.wall)
		before := br.requests.Load()
		u, err = exec1(env, imgsign, "sign", "--key", key+".key", refs[n+i])
		if err != nil {
			return err
		}
		if i == 0 {
			fmt.Printf("sign of one image: %d requests\n", br.requests.Load()-before)
		}
		single = append(single, u.wall)
	}
	slices.Sort(decrypt)
	slices.Sort(single)
	fmt.Printf("key decryption alone (public-key): median %.1f ms\n", ms1(decrypt[len(decrypt)/2]))
	fmt.Printf("sign of one image (both formats):  median %.1f ms (goal: decryption + 100 ms)\n", ms1(single[len(single)/2]))

	before := br.requests.Load()
	u, err := exec1(env, imgsign, append([]string{"sign", "--key", key + ".key"}, refs[:n]...)...)
	if err != nil {
		return err
	}
	fmt.Printf("sign of %d images in one call (both formats): %.2f s, %d requests (goal: under 5 s)\n",
		n, u.wall.Seconds(), br.requests.Load()-before)
	return nil
}
