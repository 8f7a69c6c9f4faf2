//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Rekor component versions built by scripts/install-tools.sh (rekor).
const (
	trillianVersion   = "v1.8.0"
	rekorVersion      = "v1.5.4"
	rekorTilesVersion = "v2.3.0"
)

// rekorStartTimeout bounds every wait while starting a log.
const rekorStartTimeout = 60 * time.Second

// rekorLog is a running Rekor transparency log.
type rekorLog struct {
	URL          string // base URL of the API (v1: /api/v1/...; v2: writes, POST /api/v2/log/entries)
	PublicKeyPEM string // path of a PEM file (PKIX public key) of the log's signing key
	Version      int    // 1 or 2
	ReadURL      string // v2: base URL of the static checkpoint and tiles (/checkpoint, /tile/...)
	Origin       string // v2: the checkpoint origin (the log's name in signed notes)

	logDir     string // component logs (NAME.log)
	startup    string // v1: how long each start-up phase took
	storageDir string // v2: the log's storage directory (served at ReadURL, but for .state/)
}

// logTail returns the last lines of every component's log, for failure
// messages.
func (l *rekorLog) logTail() string { return logTails(l.logDir) }

// rekorV1 is the Rekor v1 stack shared by every test of the process: it is
// slow to start (MariaDB, two Trillian servers, rekor-server). Its processes
// die with the test process (Pdeathsig); a janitor process removes its
// directory afterwards.
var rekorV1 struct {
	once sync.Once
	log  *rekorLog
	err  error
	// Held for the life of the process: see bootRekorV1.
	metricsHold net.Listener
}

// janitors are the write ends of the janitor processes' pipes, kept open
// (and referenced, so never finalized) for the life of the test process.
var janitors []*os.File

// rekorV1Tools are the programs the v1 stack needs.
type rekorV1Tools struct {
	mariadbd, installDB, client                   string
	logServer, logSigner, createTree, rekorServer string
	schema                                        string
}

// startRekorV1 returns the process-wide Rekor v1 log (rekor-server on
// Trillian on MariaDB, search index in MariaDB), starting it on first use.
// Entries persist across tests: do not assume an empty log.
func startRekorV1(t testing.TB) *rekorLog {
	t.Helper()
	tools := rekorV1Tools{
		mariadbd:    need(t, "mariadbd (apt-get install mariadb-server)", "/usr/sbin/mariadbd"),
		installDB:   need(t, "mariadb-install-db", "/usr/bin/mariadb-install-db"),
		client:      need(t, "mariadb client", "/usr/bin/mariadb"),
		logServer:   tool(t, "trillian_log_server-"+trillianVersion),
		logSigner:   tool(t, "trillian_log_signer-"+trillianVersion),
		createTree:  tool(t, "createtree-"+trillianVersion),
		rekorServer: tool(t, "rekor-server-"+rekorVersion),
		schema:      need(t, "Trillian MySQL schema", filepath.Join(toolsDir(), "share", "trillian-storage-"+trillianVersion+".sql")),
	}
	rekorV1.once.Do(func() {
		start := time.Now()
		rekorV1.log, rekorV1.err = bootRekorV1(tools)
		if rekorV1.err == nil {
			t.Logf("Rekor v1 stack started in %v (%s) at %s", time.Since(start).Round(time.Millisecond), rekorV1.log.startup, rekorV1.log.URL)
		}
	})
	if rekorV1.err != nil {
		t.Fatalf("Rekor v1: %v", rekorV1.err)
	}
	return rekorV1.log
}

func bootRekorV1(tools rekorV1Tools) (_ *rekorLog, err error) {
	dir, err := scratchDir("imgsign-rekor-v1-")
	if err != nil {
		return nil, err
	}
	if err := startJanitor(dir); err != nil {
		return nil, err
	}
	l := &rekorLog{Version: 1, logDir: filepath.Join(dir, "logs")}
	if err := os.MkdirAll(l.logDir, 0o755); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*rekorLog, error) {
		return nil, fmt.Errorf(format+"\n%s", append(args, l.logTail())...)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	// On failure, stop what did start (the logs are in the error). Every
	// wait is bounded on its own by rekorStartTimeout.
	g := &procGroup{logDir: l.logDir, env: env}
	defer g.stopOnError(&err)
	last := time.Now()
	mark := func(phase string) {
		l.startup += fmt.Sprintf("%s %v; ", phase, time.Since(last).Round(time.Millisecond))
		last = time.Now()
	}
	defer func() { l.startup = strings.TrimSuffix(l.startup, "; ") }()

	// MariaDB: private data directory and socket, no TCP at all.
	sock := filepath.Join(dir, "mysqld.sock")
	cnf := filepath.Join(dir, "my.cnf")
	cnfText := fmt.Sprintf(`[client]
user=root
socket=%[1]s/mysqld.sock

[mysqld]
user=root
datadir=%[1]s/data
socket=%[1]s/mysqld.sock
pid-file=%[1]s/mysqld.pid
log-error=%[1]s/logs/mariadbd-error.log
tmpdir=%[1]s
skip-networking
skip-name-resolve
innodb_buffer_pool_size=32M
innodb_log_file_size=8M
# A throw-away database: no waiting for the disk.
innodb_flush_log_at_trx_commit=0
innodb_doublewrite=0
`, dir)
	if err := os.WriteFile(cnf, []byte(cnfText), 0o644); err != nil {
		return nil, err
	}
	if out, err := runLogged(l.logDir, "mariadb-install-db", env, tools.installDB,
		"--defaults-file="+cnf, "--auth-root-authentication-method=socket", "--skip-test-db"); err != nil {
		return fail("mariadb-install-db: %v\n%s", err, out)
	}
	mark("install-db")
	if _, err := g.start("mariadbd", tools.mariadbd, "--defaults-file="+cnf); err != nil {
		return nil, err
	}
	var out string
	if err := g.wait(rekorStartTimeout, func() error {
		out, err = runLogged("", "", env, tools.client, "--defaults-file="+cnf, "-e", "SELECT 1")
		return err
	}); err != nil {
		return fail("MariaDB not ready: %v\n%s", err, out)
	}
	mark("mariadbd")
	// Trillian and rekor log in with passwords over the socket (the Go
	// MySQL driver does not speak unix_socket authentication).
	const dbPass = "imgsign-e2e-db-pw"
	setup := `CREATE DATABASE trillian; CREATE DATABASE rekor;
CREATE USER 'trillian'@'localhost' IDENTIFIED BY '` + dbPass + `';
GRANT ALL PRIVILEGES ON trillian.* TO 'trillian'@'localhost';
GRANT ALL PRIVILEGES ON rekor.* TO 'trillian'@'localhost';`
	if out, err := runLogged("", "", env, tools.client, "--defaults-file="+cnf, "-e", setup); err != nil {
		return fail("database setup: %v\n%s", err, out)
	}
	schema, err := os.Open(tools.schema)
	if err != nil {
		return nil, err
	}
	defer schema.Close()
	if out, err := runLoggedStdin("", "", env, schema, tools.client, "--defaults-file="+cnf, "trillian"); err != nil {
		return fail("loading %s: %v\n%s", tools.schema, err, out)
	}
	mark("schema")
	dsn := func(db string) string {
		return fmt.Sprintf("trillian:%s@unix(%s)/%s?parseTime=true&interpolateParams=true", dbPass, sock, db)
	}

	// Trillian log server and signer.
	trillianArgs := []string{"--storage_system=mysql", "--quota_system=mysql", "--mysql_uri=" + dsn("trillian")}
	serverRPC := fmt.Sprintf("127.0.0.1:%d", freePortNoT())
	serverHTTP := fmt.Sprintf("127.0.0.1:%d", freePortNoT())
	signerHTTP := fmt.Sprintf("127.0.0.1:%d", freePortNoT())
	if _, err := g.start("trillian_log_server", tools.logServer, append(trillianArgs,
		"--rpc_endpoint="+serverRPC, "--http_endpoint="+serverHTTP)...); err != nil {
		return nil, err
	}
	if _, err := g.start("trillian_log_signer", tools.logSigner, append(trillianArgs,
		"--rpc_endpoint="+fmt.Sprintf("127.0.0.1:%d", freePortNoT()), "--http_endpoint="+signerHTTP,
		"--force_master", "--sequencer_interval=100ms")...); err != nil {
		return nil, err
	}
	for _, hz := range []string{serverHTTP, signerHTTP} {
		if err := g.wait(rekorStartTimeout, httpOK("http://"+hz+"/healthz")); err != nil {
			return fail("Trillian not healthy at %s: %v", hz, err)
		}
	}
	var treeID int64
	if err := g.wait(rekorStartTimeout, func() error {
		out, err := runLogged(l.logDir, "createtree", env, tools.createTree, "--admin_server="+serverRPC)
		if err != nil {
			return fmt.Errorf("createtree: %v", err)
		}
		fields := strings.Fields(out)
		if len(fields) == 0 {
			return errors.New("createtree printed no tree ID")
		}
		treeID, err = strconv.ParseInt(fields[len(fields)-1], 10, 64)
		return err
	}); err != nil {
		return fail("createtree: %v", err)
	}
	mark("trillian+createtree")

	// rekor-server v1 always listens for metrics on :2112 (all interfaces)
	// and ignores a failure to bind: hold 127.0.0.1:2112 first so that it
	// cannot. If the port is taken, something local already holds it.
	if hold, err := net.Listen("tcp", "127.0.0.1:2112"); err == nil {
		rekorV1.metricsHold = hold
		go http.Serve(hold, http.NotFoundHandler())
	}
	keyFile := filepath.Join(dir, "rekor-signer.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	port := freePortNoT()
	trillianPort := serverRPC[strings.LastIndex(serverRPC, ":")+1:]
	if _, err := g.start("rekor-server", tools.rekorServer, "serve",
		"--rekor_server.address=127.0.0.1", fmt.Sprintf("--port=%d", port),
		fmt.Sprintf("--rekor_server.hostname=127.0.0.1:%d", port),
		"--trillian_log_server.address=127.0.0.1", "--trillian_log_server.port="+trillianPort,
		fmt.Sprintf("--trillian_log_server.tlog_id=%d", treeID),
		"--rekor_server.signer="+keyFile,
		"--search_index.storage_provider=mysql", "--search_index.mysql.dsn="+dsn("rekor"),
		"--log_type=prod"); err != nil {
		return nil, err
	}
	l.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	var pub []byte
	if err := g.wait(rekorStartTimeout, func() error {
		pub, err = httpGet(l.URL + "/api/v1/log/publicKey")
		return err
	}); err != nil {
		return fail("rekor-server not ready: %v", err)
	}
	mark("rekor-server")
	if b, _ := pem.Decode(pub); b == nil || b.Type != "PUBLIC KEY" {
		return fail("rekor-server's public key is not a PEM public key: %q", pub)
	}
	l.PublicKeyPEM = filepath.Join(dir, "rekor-v1-pub.pem")
	if err := os.WriteFile(l.PublicKeyPEM, pub, 0o644); err != nil {
		return nil, err
	}
	return l, nil
}

// startRekorV2 starts a fresh Rekor v2 (rekor-tiles posix) log for this
// test, stopped at its end: writes at URL, reads (checkpoint and tiles)
// served from its storage directory at ReadURL, hiding .state/. Its origin
// is the read URL without scheme.
func startRekorV2(t testing.TB) *rekorLog {
	t.Helper()
	return startRekorV2Origin(t, "")
}

// startRekorV2Origin is startRekorV2 with the checkpoint origin given (""
// for the default). A trusted root names a Rekor v2 log by a base URL
// https://ORIGIN from which sigstore-go takes the origin as the host name
// without port: such logs need an origin with no port.
func startRekorV2Origin(t testing.TB, origin string) *rekorLog {
	t.Helper()
	bin := tool(t, "rekor-tiles-posix-"+rekorTilesVersion)
	dir := t.TempDir()
	l := &rekorLog{Version: 2, logDir: filepath.Join(dir, "logs"), storageDir: filepath.Join(dir, "storage")}
	for _, d := range []string{l.logDir, l.storageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	read := httptest.NewServer(staticTiles(l.storageDir))
	t.Cleanup(read.Close)
	l.ReadURL = read.URL
	l.Origin = origin
	if l.Origin == "" {
		// A host name without a port, as public Rekor v2 logs have: cosign
		// (sigstore-go) checks checkpoints under the trusted root's base URL
		// host name, port dropped.
		l.Origin = "rekor-v2.imgsign.test"
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "log-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	l.PublicKeyPEM = filepath.Join(dir, "log-pub.pem")
	if err := os.WriteFile(l.PublicKeyPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	start := time.Now()
	p, err := startProc(l.logDir, "rekor-tiles-posix", env, bin, "serve",
		"--hostname="+l.Origin, "--storage-dir="+l.storageDir, "--signer-filepath="+keyFile,
		"--http-address=127.0.0.1", fmt.Sprintf("--http-port=%d", port),
		"--grpc-address=127.0.0.1", fmt.Sprintf("--grpc-port=%d", freePort(t)),
		fmt.Sprintf("--http-metrics-port=%d", freePort(t)),
		"--checkpoint-interval=1s", "--persistent-antispam=true", "--log-level=warn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	l.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitUntil(time.Now().Add(rekorStartTimeout), []*proc{p}, httpOK(l.URL+"/healthz")); err != nil {
		t.Fatalf("Rekor v2 not healthy: %v\n%s", err, l.logTail())
	}
	t.Logf("Rekor v2 started in %v at %s (reads %s)", time.Since(start).Round(time.Millisecond), l.URL, l.ReadURL)
	return l
}

// staticTiles serves a tile log's storage directory read-only, as a static
// web server would: files only (no listings), never the private .state/.
func staticTiles(root string) http.Handler {
	files := http.FileServer(http.Dir(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean("/" + r.URL.Path)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read only", http.StatusMethodNotAllowed)
			return
		}
		if strings.Contains(p, ".state") {
			http.NotFound(w, r)
			return
		}
		if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// proc is a server process in its own process group, killed with the test
// process (Pdeathsig) even when no cleanup runs.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProc starts bin with args and env, output to logDir/NAME.log.
func startProc(logDir, name string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop terminates the process group, then kills it after 5 s.
func (p *proc) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// waitUntil polls check until it succeeds, one of procs exits, or the
// deadline passes.
func waitUntil(deadline time.Time, procs []*proc, check func() error) error {
	for {
		for _, p := range procs {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited early (%v)", p.name, p.cmd.ProcessState)
			default:
			}
		}
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runLogged runs a short command (bounded to 60 s) and returns its
// combined output, also appended to logDir/NAME.log when logDir is set.
func runLogged(logDir, name string, env []string, bin string, args ...string) (string, error) {
	return runLoggedStdin(logDir, name, env, nil, bin, args...)
}

// runLoggedStdin is runLogged with standard input.
func runLoggedStdin(logDir, name string, env []string, stdin io.Reader, bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(rekorStartTimeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	if logDir != "" {
		if f, ferr := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
			f.Write(out.Bytes())
			f.Close()
		}
	}
	return out.String(), err
}

var probe = &http.Client{Timeout: 2 * time.Second}

// httpGet returns the body of a 200 answer.
func httpGet(url string) ([]byte, error) {
	resp, err := probe.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	return body, nil
}

func httpOK(url string) func() error {
	return func() error { _, err := httpGet(url); return err }
}

// freePortNoT is freePort outside a test.
func freePortNoT() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// scratchDir makes a directory for the v1 stack, in /dev/shm when it is a
// roomy tmpfs: MariaDB's bootstrap syncs to disk a lot, and on a busy disk
// takes 15 s or more instead of half a second. (The stack uses ~40 MB.)
func scratchDir(prefix string) (string, error) {
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && st.Type == 0x01021994 /* TMPFS_MAGIC */ &&
		st.Bavail*uint64(st.Bsize) >= 512<<20 {
		if dir, err := os.MkdirTemp("/dev/shm", prefix); err == nil {
			return dir, nil
		}
	}
	return os.MkdirTemp("", prefix)
}

// startJanitor starts a process that removes dir once this test process
// has exited, however it exits: it waits for the end of a pipe whose write
// end only this process holds (servers using dir die with it, Pdeathsig).
func startJanitor(dir string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", `read x; sleep 2; rm -rf "$1"`, "janitor", dir)
	cmd.Stdin = r
	// Its own process group, so that a terminal's Ctrl-C spares it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	go cmd.Wait()
	janitors = append(janitors, w) // never closed: the process exit closes it
	return nil
}

// logTails returns the last 30 lines of each *.log in dir.
func logTails(dir string) string {
	if dir == "" {
		return ""
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > 30 {
				lines = lines[1:]
			}
		}
		f.Close()
		fmt.Fprintf(&b, "--- %s (tail)\n%s\n", filepath.Base(n), strings.Join(lines, "\n"))
	}
	return b.String()
}
