package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/admission"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// countingRegistry is a registry on 127.0.0.1 behind a proxy that counts
// requests: Debian's docker-registry (the e2e suite's real registry) when
// it is installed, else the in-process one.
type countingRegistry struct {
	host     string
	requests atomic.Int64
	kind     string
	stop     func()
}

func startCountingRegistry() (*countingRegistry, error) {
	bin := os.Getenv("IMGSIGN_REGISTRY_BIN")
	if bin == "" {
		bin = "/usr/bin/docker-registry"
	}
	if _, err := os.Stat(bin); err != nil {
		br, err := startRegistry()
		if err != nil {
			return nil, err
		}
		return &countingRegistry{host: br.host, kind: "in-process registry", stop: func() { br.srv.Close() }}, nil
	}
	dir, err := os.MkdirTemp("", "imgsign-bench-registry")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	backend := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "storage"), backend)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	cmd.Env = []string{"OTEL_TRACES_EXPORTER=none", "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &countingRegistry{kind: "docker-registry " + bin}
	target, _ := url.Parse("http://" + backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	c.host = front.Listener.Addr().String()
	c.stop = func() {
		front.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + backend + "/v2/")
		if err == nil {
			resp.Body.Close()
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("docker-registry not ready: %v", err)
		}
	}
}

// runAdmission measures the admission webhook in process (its HTTP handler
// on a loopback listener, AdmissionReview JSON in and out): the first
// review of each of nImages signed images (cache misses: a verification
// each), then `reviews` reviews of Pods naming those images by tag, at
// random (cache hits: one HEAD each), sequentially and 8 at a time, and
// reviews of digest-pinned Pods (what /mutate leaves behind: no request).
func runAdmission(nImages, reviews int) error {
	reg, err := startCountingRegistry()
	if err != nil {
		return err
	}
	defer reg.stop()
	dir, err := os.MkdirTemp("", "imgsign-bench-admission")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		return err
	}
	pub, _ := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/bench\n    keys: [{file: k.pub}]\n", reg.host)), 0o644)
	client, err := oci.NewClient(oci.Options{})
	if err != nil {
		return err
	}
	signer, err := sign.NewSigner(client, key)
	if err != nil {
		return err
	}
	tags := make([]string, nImages)
	digests := make([]string, nImages)
	for i := range tags {
		tags[i] = fmt.Sprintf("%s/bench/adm/app%02d:v1", reg.host, i)
		ref, err := push(tags[i])
		if err != nil {
			return err
		}
		d, _ := name.NewDigest(ref)
		if _, err := signer.Sign(context.Background(), d, sign.Options{Upload: true, Format: sign.FormatLegacy}); err != nil {
			return err
		}
		digests[i] = ref
	}

	// A fresh client: no connection or token from the set-up.
	wclient, err := oci.NewClient(oci.Options{})
	if err != nil {
		return err
	}
	s, err := admission.NewServer(admission.Config{PolicyFile: policy, Client: wclient, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	hc := srv.Client()
	body := func(image string, uid int) []byte {
		b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
			"uid": fmt.Sprint(uid), "kind": map[string]string{"version": "v1", "kind": "Pod"}, "operation": "CREATE", "namespace": "bench",
			"object": map[string]any{"spec": map[string]any{"containers": []any{map[string]string{"name": "app", "image": image}}}}}})
		return b
	}
	review := func(image string, uid int) (time.Duration, error) {
		start := time.Now()
		resp, err := hc.Post(srv.URL+"/validate", "application/json", bytes.NewReader(body(image, uid)))
		if err != nil {
			return 0, err
		}
		var r admission.Review
		err = json.NewDecoder(resp.Body).Decode(&r)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return d, err
		}
		if !r.Response.Allowed {
			return d, fmt.Errorf("%s refused: %+v", image, r.Response.Status)
		}
		return d, nil
	}

	fmt.Printf("\nAdmission webhook, in process, %d signed images on %s (%d reviews):\n", nImages, reg.kind, reviews)
	fmt.Printf("  %-44s %9s %9s %10s %12s\n", "reviews", "p50 ms", "p99 ms", "reviews/s", "requests/rv")
	report := func(what string, lat []time.Duration, wall time.Duration, requests int64) {
		slices.Sort(lat)
		p := func(q float64) float64 { return ms1(lat[min(len(lat)-1, int(q*float64(len(lat))))]) }
		fmt.Printf("  %-44s %9.2f %9.2f %10.0f %12.2f\n", what, p(0.50), p(0.99), float64(len(lat))/wall.Seconds(), float64(requests)/float64(len(lat)))
	}

	// Cache misses: the first review of each image verifies it.
	lat := make([]time.Duration, 0, nImages)
	before, start := reg.requests.Load(), time.Now()
	for i, t := range tags {
		d, err := review(t, i)
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	report("first review of each tag (cache miss)", lat, time.Since(start), reg.requests.Load()-before)

	// Cache hits, one at a time.
	rng := rand.New(rand.NewPCG(1, 2))
	lat = lat[:0]
	before, start = reg.requests.Load(), time.Now()
	for i := range reviews {
		d, err := review(tags[rng.IntN(nImages)], i)
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	report("tag, cached verdict (one HEAD)", lat, time.Since(start), reg.requests.Load()-before)

	// Cache hits, 8 at a time (the API server calls concurrently).
	var mu sync.Mutex
	lat = lat[:0]
	work := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	before, start = reg.requests.Load(), time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				d, err := review(tags[i%nImages], i)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	for i := range reviews {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	report("tag, cached verdict, 8 concurrent", lat, time.Since(start), reg.requests.Load()-before)

	// Pinned digests (after /mutate): no registry request at all.
	lat = lat[:0]
	before, start = reg.requests.Load(), time.Now()
	for i := range reviews {
		d, err := review(digests[rng.IntN(nImages)], i)
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	report("pinned digest, cached verdict", lat, time.Since(start), reg.requests.Load()-before)
	return nil
}
