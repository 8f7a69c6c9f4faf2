// Command bench measures the imgsign binary as users run it: wall time,
// peak memory (maximum resident set size) and HTTP requests per sign and
// verify, against a local registry it starts itself. Given -cosign, it
// measures cosign's verify the same way for comparison. Its release part
// builds imgsign as .goreleaser.yaml does and reports the binary's size and
// start-up time (against cosign's). `make bench` runs it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	imgsign := flag.String("imgsign", "bin/imgsign", "imgsign binary")
	cosign := flag.String("cosign", "", "cosign binary to compare with (optional)")
	n := flag.Int("n", 20, "runs per operation (0: skip)")
	images := flag.Int("images", 200, "images verified at once by the policy gate (0: skip)")
	reviews := flag.Int("reviews", 1000, "admission reviews measured (0: skip)")
	reviewImages := flag.Int("review-images", 50, "distinct images the admission reviews name")
	signImages := flag.Int("sign-images", 100, "images signed in one call (0: skip)")
	only := flag.String("only", "", "run only this part: release, verify, gate, sign or admission")
	goreleaser := flag.String("goreleaser", ".goreleaser.yaml", "release configuration whose default build the release part builds and measures")
	startupRuns := flag.Int("startup-runs", 40, "runs of `version` per binary in the release part (0: size only)")
	lookups := flag.Bool("lookups", false, "only count the requests of verifying a bundle-only image")
	flag.Parse()
	if *lookups {
		if err := runLookups(*imgsign); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *only == "" || *only == "release" {
		if err := runRelease(*goreleaser, *cosign, *startupRuns); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *only == "release" {
		return
	}
	if *signImages > 0 && (*only == "" || *only == "sign") {
		if err := runSignMany(*imgsign, *signImages, min(*n, 10)); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *only == "sign" {
		return
	}
	if *n > 0 && (*only == "" || *only == "verify") {
		if err := run(*imgsign, *cosign, *n); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := runLookups(*imgsign); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *images > 0 && (*only == "" || *only == "gate") {
		if err := runGate(*imgsign, *cosign, *images); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *reviews > 0 && (*only == "" || *only == "admission") {
		if err := runAdmission(*reviewImages, *reviews); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

// measurement of one operation over n runs.
type measurement struct {
	name     string
	wall     []time.Duration
	maxRSSKB int64
	requests int64
}

// benchRegistry is an in-process registry on 127.0.0.1 that counts the
// requests it serves.
type benchRegistry struct {
	host     string
	requests atomic.Int64
	srv      *http.Server
}

func startRegistry(opts ...registry.Option) (*benchRegistry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &benchRegistry{host: ln.Addr().String()}
	reg := registry.New(append([]registry.Option{registry.Logger(log.New(io.Discard, "", 0))}, opts...)...)
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		reg.ServeHTTP(w, r)
	})}
	go b.srv.Serve(ln)
	return b, nil
}

func run(imgsign, cosign string, n int) error {
	br, err := startRegistry(registry.WithReferrersSupport(true))
	if err != nil {
		return err
	}
	defer br.srv.Close()
	host, requests := br.host, &br.requests

	dir, err := os.MkdirTemp("", "imgsign-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "IMGSIGN_PASSWORD=bench", "COSIGN_PASSWORD=bench", "HOME="+dir)
	key := filepath.Join(dir, "k")
	if _, err := exec1(env, imgsign, "generate-key-pair", "--output-key-prefix", key); err != nil {
		return err
	}

	// n images to sign, one image to verify again and again.
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("%s/bench/app:v%d", host, i)
		if _, err := push(tags[i]); err != nil {
			return err
		}
	}
	digestRef, err := push(host + "/bench/verify:v1")
	if err != nil {
		return err
	}
	if _, err := exec1(env, imgsign, "sign", "--key", key+".key", "--format", "legacy", digestRef); err != nil {
		return err
	}
	bundleRef, err := push(host + "/bench/bundle:v1")
	if err != nil {
		return err
	}
	if _, err := exec1(env, imgsign, "sign", "--key", key+".key", "--format", "bundle", bundleRef); err != nil {
		return err
	}

	// op is one operation measured n times. Operations measured together
	// run alternately (one run of each in turn), so that imgsign and cosign
	// see the same moments of a shared machine's load.
	type op struct {
		label   string
		bin     string
		argsFor func(i int) []string
	}
	measure := func(ops ...op) ([]measurement, error) {
		out := make([]measurement, len(ops))
		for j, o := range ops {
			out[j].name = o.label
		}
		for i := 0; i < n; i++ {
			for j, o := range ops {
				before := requests.Load()
				ru, err := exec1(env, o.bin, o.argsFor(i)...)
				if err != nil {
					return out, fmt.Errorf("%s: %w", o.label, err)
				}
				out[j].requests += requests.Load() - before
				out[j].wall = append(out[j].wall, ru.wall)
				out[j].maxRSSKB = max(out[j].maxRSSKB, ru.maxRSSKB)
			}
		}
		for j := range out {
			out[j].requests /= int64(n)
		}
		return out, nil
	}
	withCosign := cosign != ""
	if withCosign {
		if _, err := os.Stat(cosign); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s not found; skipping the cosign comparison (make tools installs it)\n", cosign)
			withCosign = false
		}
	}
	cosignArgs := func(ref string) func(int) []string {
		return func(int) []string {
			return []string{"verify", "--key", key + ".pub", "--insecure-ignore-tlog", "--allow-http-registry", ref}
		}
	}
	var ms []measurement
	type ratio struct {
		what       string
		ours, peer int
	}
	var ratios []ratio
	pair := func(what string, ours op, ref string) error {
		ops := []op{ours}
		if withCosign {
			ops = append(ops, op{"cosign " + what, cosign, cosignArgs(ref)})
		}
		got, err := measure(ops...)
		if err != nil {
			return err
		}
		if withCosign {
			ratios = append(ratios, ratio{what, len(ms), len(ms) + 1})
		}
		ms = append(ms, got...)
		return nil
	}
	got, err := measure(op{"imgsign sign (by tag, both)", imgsign, func(i int) []string { return []string{"sign", "--key", key + ".key", tags[i]} }})
	if err != nil {
		return err
	}
	ms = append(ms, got...)
	if err := pair("verify legacy (digest)", op{"imgsign verify legacy (digest)", imgsign, func(int) []string { return []string{"verify", "--key", key + ".pub", digestRef} }}, digestRef); err != nil {
		return err
	}
	if err := pair("verify legacy (tag)", op{"imgsign verify legacy (tag)", imgsign, func(int) []string { return []string{"verify", "--key", key + ".pub", host + "/bench/verify:v1"} }}, host+"/bench/verify:v1"); err != nil {
		return err
	}
	if err := pair("verify bundle (digest)", op{"imgsign verify bundle (digest)", imgsign, func(int) []string {
		return []string{"verify", "--key", key + ".pub", "--format", "bundle", bundleRef}
	}}, bundleRef); err != nil {
		return err
	}
	fmt.Printf("\n%-32s %12s %12s %14s %10s\n", "operation", "median ms", "p90 ms", "peak RSS MiB", "requests")
	med := make([]time.Duration, len(ms))
	for i, m := range ms {
		slices.Sort(m.wall)
		med[i] = m.wall[len(m.wall)/2]
		fmt.Printf("%-32s %12.1f %12.1f %14.1f %10d\n", m.name,
			ms1(med[i]), ms1(m.wall[len(m.wall)*9/10]), float64(m.maxRSSKB)/1024, m.requests)
	}
	for _, r := range ratios {
		fmt.Printf("imgsign / cosign, %-24s %.2fx (medians; goal by digest: at most 0.25x)\n", r.what+":", float64(med[r.ours])/float64(med[r.peer]))
	}
	fmt.Printf("(%d runs each, imgsign and cosign alternately; requests counted by the registry, per run)\n", n)
	return nil
}

func ms1(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type usage struct {
	wall     time.Duration
	maxRSSKB int64
}

// gnuTime is GNU time, when installed: it measures a command's own peak
// memory. Go starts commands with vfork, and Linux carries the parent's
// peak into the child's ru_maxrss across exec, so without a small process
// in between every command would report at least this program's peak.
var gnuTime = func() string {
	if p, err := exec.LookPath("/usr/bin/time"); err == nil {
		return p
	}
	return ""
}()

// exec1 runs one command and reports its wall time and peak memory (0
// without GNU time: not measurable from here).
func exec1(env []string, bin string, args ...string) (usage, error) {
	var rssFile string
	cmd := exec.Command(bin, args...)
	if gnuTime != "" {
		f, err := os.CreateTemp("", "bench-rss")
		if err != nil {
			return usage{}, err
		}
		f.Close()
		rssFile = f.Name()
		defer os.Remove(rssFile)
		cmd = exec.Command(gnuTime, append([]string{"-f", "%M", "-o", rssFile, bin}, args...)...)
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	u := usage{wall: time.Since(start)}
	if rssFile != "" {
		if b, rerr := os.ReadFile(rssFile); rerr == nil {
			lines := strings.Fields(string(b))
			if len(lines) > 0 {
				u.maxRSSKB, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
			}
		}
	}
	if err != nil {
		return u, fmt.Errorf("%s %v: %w\n%s", filepath.Base(bin), args, err, stderr.String())
	}
	return u, nil
}

// push uploads a small random image and returns its digest reference.
func push(ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		return "", err
	}
	if err := remote.Write(tag, img); err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(d.String()).String(), nil
}
