//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// Peer tool versions built by scripts/install-tools.sh.
const (
	cosign3 = "cosign-v3.1.3"
	cosign2 = "cosign-v2.6.5"
)

var (
	imgsignBin string
	buildOnce  sync.Once
	buildErr   error
)

// need skips the test when a component is missing, or fails it when
// IMGSIGN_E2E_REQUIRE is set.
func need(t testing.TB, what, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s not found at %s: run scripts/install-tools.sh", what, path)
		if os.Getenv("IMGSIGN_E2E_REQUIRE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func toolsDir() string {
	if d := os.Getenv("IMGSIGN_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "imgsign", "tools")
}

// tool returns the path of a cached peer tool.
func tool(t testing.TB, name string) string {
	return need(t, name, filepath.Join(toolsDir(), "bin", name))
}

// imgsign builds the binary once per test process.
func imgsign(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if b := os.Getenv("IMGSIGN_BIN"); b != "" {
			imgsignBin = b
			return
		}
		dir, err := os.MkdirTemp("", "imgsign-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		imgsignBin = filepath.Join(dir, "imgsign")
		out, err := exec.Command("go", "build", "-o", imgsignBin, "../../cmd/imgsign").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return imgsignBin
}

// result of a command run.
type result struct {
	stdout, stderr string
	code           int
}

// run executes bin with args and extra environment (on top of a minimal
// one, with HOME in a fresh directory so no Docker config leaks in), with
// no standard input, bounded in time.
func run(t testing.TB, env []string, bin string, args ...string) result {
	t.Helper()
	return runStdin(t, env, "", bin, args...)
}

// must asserts an exit code and a fragment of the combined output.
func (r result) must(t testing.TB, code int, has string) result {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout+r.stderr, has) {
		t.Fatalf("exit %d (want %d), output lacks %q?\nstdout: %s\nstderr: %s", r.code, code, has, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Fatalf("stack trace:\n%s", r.stderr)
	}
	return r
}

// registry is a running docker-registry server.
type registry struct {
	host               string
	caFile             string
	username, password string
	storage            string
	pool               *x509.CertPool
}

// ref returns HOST/path.
func (r *registry) ref(path string) string { return r.host + "/" + path }

// flags are imgsign's (and cosign's) flags for this registry.
func (r *registry) flags() []string {
	var f []string
	if r.caFile != "" {
		f = append(f, "--registry-cacert", r.caFile)
	}
	if r.username != "" {
		f = append(f, "--registry-username", r.username, "--registry-password", r.password)
	}
	return f
}

// remoteOptions are go-containerregistry options for pushing test content.
func (r *registry) remoteOptions() []remote.Option {
	var opts []remote.Option
	if r.pool != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: r.pool}
		opts = append(opts, remote.WithTransport(tr))
	}
	if r.username != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.username, Password: r.password}))
	}
	return opts
}

// pushImage pushes a small random image to HOST/repo:tag and returns its
// digest reference.
func (r *registry) pushImage(t testing.TB, repoTag string) name.Digest {
	t.Helper()
	tag, err := name.NewTag(r.ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, r.remoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	d, _ := img.Digest()
	return tag.Context().Digest(d.String())
}

// manifest fetches the manifest at ref.
func (r *registry) manifest(t testing.TB, ref string) *v1.Manifest {
	t.Helper()
	rr, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(rr, r.remoteOptions()...)
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startRegistry runs Debian's docker-registry (distribution 2.8) on a free
// 127.0.0.1 port, with TLS and/or htpasswd basic auth, until the test ends.
func startRegistry(t testing.TB, withTLS, withAuth bool) *registry {
	t.Helper()
	bin := os.Getenv("IMGSIGN_REGISTRY_BIN")
	if bin == "" {
		bin = "/usr/bin/docker-registry"
	}
	need(t, "docker-registry", bin)
	dir := t.TempDir()
	r := &registry{storage: filepath.Join(dir, "storage")}
	var cfg strings.Builder
	port := freePort(t)
	r.host = fmt.Sprintf("127.0.0.1:%d", port)
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", r.storage, r.host)
	if withTLS {
		r.caFile, r.pool = writeTLS(t, dir)
		fmt.Fprintf(&cfg, "  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	}
	if withAuth {
		r.username, r.password = "ci-bot", "s3cret-registry-pw"
		hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		os.WriteFile(htpasswd, []byte(r.username+":"+string(hash)+"\n"), 0o600)
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: imgsign-test\n    path: %s\n", htpasswd)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	// distribution reads REGISTRY_* variables as config overrides: keep
	// the test's config the only one.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "OTEL_TRACES_EXPORTER=none")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// Its own process group (killed whole at cleanup), and killed with the
	// test process even if go test's timeout skips the cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	scheme := "http"
	if withTLS {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool}}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("registry exited early:\n%s", logs.String())
		default:
		}
		resp, err := client.Get(scheme + "://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry not ready after 20s (last error %v):\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeTLS makes a CA and a server certificate for 127.0.0.1 and localhost.
func writeTLS(t testing.TB, dir string) (string, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imgsign e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(filepath.Join(dir, "server.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, pool
}

// copyManifest copies the manifest bytes at src to dst (an attacker's move).
func copyManifest(t testing.TB, r *registry, src, dst string) {
	t.Helper()
	s, err := name.ParseReference(src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.ParseReference(dst)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(s, r.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(d, desc, r.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
}

// runStdin is run with standard input.
func runStdin(t testing.TB, env []string, stdin, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + os.TempDir()}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v timed out", filepath.Base(bin), args)
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return r
}

// procGroup is the server processes one harness starts, each with startProc
// (its own process group, output in logDir/NAME.log, killed with the test
// process). stop stops them, last started first: a boot function shared by
// the tests defers stopOnError(&err) so that a failed boot leaves nothing
// running; a harness for one test makes its group with newProcGroup, which
// stops it when the test ends.
type procGroup struct {
	logDir string
	env    []string
	procs  []*proc
}

// newProcGroup returns a group stopped when t ends.
func newProcGroup(t testing.TB, logDir string, env []string) *procGroup {
	g := &procGroup{logDir: logDir, env: env}
	t.Cleanup(g.stop)
	return g
}

// start starts bin with args as a member of the group.
func (g *procGroup) start(name, bin string, args ...string) (*proc, error) {
	p, err := startProc(g.logDir, name, g.env, bin, args...)
	if err != nil {
		return nil, err
	}
	g.procs = append(g.procs, p)
	return p, nil
}

// wait polls check until it succeeds, a member exits, or timeout passes.
func (g *procGroup) wait(timeout time.Duration, check func() error) error {
	return waitUntil(time.Now().Add(timeout), g.procs, check)
}

// stop stops every member, last started first.
func (g *procGroup) stop() {
	for i := len(g.procs) - 1; i >= 0; i-- {
		g.procs[i].stop()
	}
	g.procs = nil
}

// stopOnError stops the group if *err is set: defer it in a boot function
// with a named error result.
func (g *procGroup) stopOnError(err *error) {
	if *err != nil {
		g.stop()
	}
}

// TestProcGroup: a boot that fails stops what it started; a member that
// exits ends a wait with its name.
func TestProcGroup(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH")}
	boot := func() (p *proc, err error) {
		g := &procGroup{logDir: dir, env: env}
		defer g.stopOnError(&err)
		if p, err = g.start("sleeper", "sleep", "60"); err != nil {
			return nil, err
		}
		if err := g.wait(300*time.Millisecond, func() error { return errors.New("never ready") }); err != nil {
			return p, fmt.Errorf("sleeper not ready: %w", err)
		}
		return p, nil
	}
	p, err := boot()
	if err == nil || !strings.Contains(err.Error(), "timed out: never ready") {
		t.Fatalf("boot: %v", err)
	}
	select {
	case <-p.exited:
	default:
		t.Fatal("a failed boot left its process running")
	}

	g := newProcGroup(t, dir, env)
	if _, err := g.start("quitter", "false"); err != nil {
		t.Fatal(err)
	}
	if err := g.wait(10*time.Second, func() error { return errors.New("not yet") }); err == nil || !strings.Contains(err.Error(), "quitter exited early") {
		t.Errorf("wait: %v", err)
	}
}
