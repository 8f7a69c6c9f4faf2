package trustroot

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgsign/imgsign/internal/tuftest"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
)

// options are the client options for repo, with caches of the test's own.
func options(repo *tuftest.Repo, cache string) Options {
	return Options{Mirror: repo.URL(), Root: repo.RootJSON, CacheDir: cache, ConfigDir: filepath.Join(cache, "config")}
}

func mustLoad(t *testing.T, opts Options) *root.TrustedRoot {
	t.Helper()
	tr, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func onlyLog(t *testing.T, tr *root.TrustedRoot) string {
	t.Helper()
	if len(tr.RekorLogs()) != 1 {
		t.Fatalf("%d logs", len(tr.RekorLogs()))
	}
	for id := range tr.RekorLogs() {
		return id
	}
	return ""
}

// wantErr asserts the kind and a fragment of the message.
func wantErr(t *testing.T, err, kind error, has ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
	if !IsTrustError(err) {
		t.Fatalf("not a trust error: %v", err)
	}
	for _, h := range has {
		if !strings.Contains(err.Error(), h) {
			t.Fatalf("error lacks %q: %v", h, err)
		}
	}
}

func TestFirstFetchCacheOfflineAndRefresh(t *testing.T) {
	repo := tuftest.New(t)
	cache := t.TempDir()
	opts := options(repo, cache)
	first := targetLog(t, repo)

	r, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := r.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	if got := onlyLog(t, tr); got != first {
		t.Fatalf("log %s, want %s", got, first)
	}
	info := r.Info()
	// root 2 (404), timestamp, snapshot, targets, the target.
	if info.FromCache || info.Requests != 5 || repo.Requests() != 5 || info.RootVersion != 1 {
		t.Fatalf("first fetch: %+v, server saw %d requests", info, repo.Requests())
	}

	// Refreshed again: the new timestamp is fetched, nothing else changes
	// and the target comes from the cache.
	before := repo.Requests()
	mustLoad(t, opts)
	if n := repo.Requests() - before; n != 2 {
		t.Fatalf("second load made %d requests, want 2 (root probe, timestamp)", n)
	}

	// MaxAge: no request at all while the last refresh is recent.
	before = repo.Requests()
	o := opts
	o.MaxAge = time.Hour
	if got := onlyLog(t, mustLoad(t, o)); got != first || repo.Requests() != before {
		t.Fatalf("MaxAge load: log %s, %d requests", got, repo.Requests()-before)
	}

	// A new trusted root published: the next load picks it up.
	next := tuftest.TrustedRootJSON(t)
	repo.SetTarget(TrustedRootTarget, next)
	if got := onlyLog(t, mustLoad(t, opts)); got != tuftest.LogIDOf(t, next) {
		t.Fatalf("after refresh: log %s, want the new one", got)
	}

	// Server gone: the cache (valid) is used, and the caller is told.
	repo.Server.Close()
	var warned string
	o = opts
	o.Warn = func(msg string) { warned = msg }
	r, err = Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tr, err = r.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	if got := onlyLog(t, tr); got != tuftest.LogIDOf(t, next) || !r.Info().FromCache {
		t.Fatalf("offline: log %s, info %+v", got, r.Info())
	}
	if !strings.Contains(warned, "unreachable") || !strings.Contains(warned, "using the cached metadata") {
		t.Fatalf("warning: %q", warned)
	}
}

func targetLog(t *testing.T, repo *tuftest.Repo) string {
	t.Helper()
	data, err := os.ReadFile(repo.TargetFile(TrustedRootTarget))
	if err != nil {
		t.Fatal(err)
	}
	return tuftest.LogIDOf(t, data)
}

func TestExpiredMetadataRefused(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot", "targets"} {
		t.Run(role, func(t *testing.T) {
			repo := tuftest.New(t)
			cache := t.TempDir()
			opts := options(repo, cache)
			mustLoad(t, opts) // a valid cache exists: it must not stand in
			past := time.Now().Add(-time.Minute).UTC()
			switch role {
			case "timestamp":
				repo.Timestamp.Signed.Expires = past
			case "snapshot":
				repo.Snapshot.Signed.Expires = past
			case "targets":
				repo.Targets.Signed.Expires = past
				repo.Targets.Signed.Version++
			}
			repo.Publish()
			_, err := Load(context.Background(), opts)
			wantErr(t, err, ErrExpired, role, "is expired", "cache is not used")
		})
	}
}

func TestCachedMetadataExpiredOffline(t *testing.T) {
	repo := tuftest.New(t)
	repo.Timestamp.Signed.Expires = time.Now().Add(1500 * time.Millisecond).UTC()
	repo.Publish()
	opts := options(repo, t.TempDir())
	mustLoad(t, opts)
	repo.Server.Close()
	time.Sleep(time.Until(repo.Timestamp.Signed.Expires) + 100*time.Millisecond)
	_, err := Load(context.Background(), opts)
	wantErr(t, err, ErrExpired, "unreachable", "cached metadata", "has expired", "--trusted-root", "imgsign trust init")
}

func TestTamperedRefused(t *testing.T) {
	t.Run("target", func(t *testing.T) {
		repo := tuftest.New(t)
		tuftest.Write(t, repo.TargetFile(TrustedRootTarget), tuftest.TrustedRootJSON(t))
		_, err := Load(context.Background(), options(repo, t.TempDir()))
		wantErr(t, err, ErrInvalid, "trusted_root.json", "tampered")
	})
	t.Run("cached target, server tampered too", func(t *testing.T) {
		repo := tuftest.New(t)
		cache := t.TempDir()
		opts := options(repo, cache)
		mustLoad(t, opts)
		evil := tuftest.TrustedRootJSON(t)
		// Both the cached copy and the served one replaced: refused.
		tuftest.Write(t, filepath.Join(cache, tuf.URLToPath(repo.URL()), "targets", TrustedRootTarget), evil)
		tuftest.Write(t, repo.TargetFile(TrustedRootTarget), evil)
		_, err := Load(context.Background(), opts)
		wantErr(t, err, ErrInvalid, "tampered")
	})
	t.Run("timestamp signature", func(t *testing.T) {
		repo := tuftest.New(t)
		repo.Timestamp.Signed.Version++
		// Signed by the snapshot key: not the timestamp role's.
		repo.Timestamp.ClearSignatures()
		if _, err := repo.Timestamp.Sign(repo.Signers["snapshot"]); err != nil {
			t.Fatal(err)
		}
		repo.WriteMeta("timestamp.json", repo.Timestamp)
		_, err := Load(context.Background(), options(repo, t.TempDir()))
		wantErr(t, err, ErrInvalid, "not signed by the trusted keys")
	})
}

func TestRollbackRefused(t *testing.T) {
	repo := tuftest.New(t)
	opts := options(repo, t.TempDir())
	old, err := os.ReadFile(filepath.Join(repo.Dir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	repo.SetTarget(TrustedRootTarget, tuftest.TrustedRootJSON(t))
	mustLoad(t, opts) // the client has seen timestamp version 2
	tuftest.Write(t, filepath.Join(repo.Dir, "timestamp.json"), old)
	_, err = Load(context.Background(), opts)
	wantErr(t, err, ErrInvalid, "rollback")
}

func TestNoNetworkNoCache(t *testing.T) {
	// A closed local port: refused at once, as with no network.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mirror := "http://" + l.Addr().String()
	l.Close()
	repo := tuftest.New(t)
	opts := options(repo, t.TempDir())
	opts.Mirror = mirror
	start := time.Now()
	_, err = Load(context.Background(), opts)
	elapsed := time.Since(start)
	wantErr(t, err, ErrUnavailable, "unreachable", "nothing cached", "--trusted-root", "imgsign trust init")
	// One attempt, no retry storm; the bound is the dial timeout, far
	// below it here.
	if elapsed > DialTimeout {
		t.Fatalf("took %v", elapsed)
	}
}

// countingTransport refuses every request and counts them.
type countingTransport struct{ n int }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n++
	return nil, errors.New("network is unreachable")
}

func TestPublicGoodEmbeddedRoot(t *testing.T) {
	tr := &countingTransport{}
	cache := t.TempDir()
	_, err := Load(context.Background(), Options{CacheDir: cache, ConfigDir: t.TempDir(), Transport: tr})
	wantErr(t, err, ErrUnavailable, PublicGoodMirror, "nothing cached", "--trusted-root")
	// The embedded root was the anchor (written to the cache by go-tuf),
	// and one request was tried: the next root version.
	if tr.n != 1 {
		t.Fatalf("%d requests", tr.n)
	}
	if _, err := os.Stat(filepath.Join(cache, "tuf-repo-cdn.sigstore.dev", "root.json")); err != nil {
		t.Fatal(err)
	}
}

func TestInitStoresTheRepository(t *testing.T) {
	repo := tuftest.New(t)
	cache, config := t.TempDir(), t.TempDir()
	repo.SetTarget(SigningConfigTarget, []byte(`{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json",
"caUrls":[{"url":"https://fulcio.example","majorApiVersion":1,"validFor":{"start":"2024-01-01T00:00:00Z"}}],
"oidcUrls":[],"rekorTlogUrls":[],"tsaUrls":[],"rekorTlogConfig":{"selector":"ANY"},"tsaConfig":{"selector":"ANY"}}`))
	r, err := Init(context.Background(), Options{Mirror: repo.URL(), Root: repo.RootJSON, CacheDir: cache, ConfigDir: config})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Info().Stored {
		t.Fatalf("%+v", r.Info())
	}
	// Later loads with no repository named use the stored one.
	opts := Options{CacheDir: cache, ConfigDir: config}
	if got := onlyLog(t, mustLoad(t, opts)); got != targetLog(t, repo) {
		t.Fatal("stored repository not used")
	}
	// Within MaxAge the metadata is not refreshed, but a target not cached
	// yet is still fetched.
	fresh := opts
	fresh.MaxAge = time.Hour
	before := repo.Requests()
	sc, err := LoadSigningConfig(context.Background(), fresh)
	if n := repo.Requests() - before; n != 1 {
		t.Fatalf("%d requests for an uncached target within MaxAge, want 1", n)
	}
	if err != nil {
		t.Fatal(err)
	}
	if urls := sc.FulcioCertificateAuthorityURLs(); len(urls) != 1 || urls[0].URL != "https://fulcio.example" {
		t.Fatalf("signing config: %+v", urls)
	}

	// A corrupt stored choice is an error, never the public-good root.
	tuftest.Write(t, filepath.Join(config, storedFile), []byte("{"))
	_, err = Load(context.Background(), opts)
	wantErr(t, err, ErrMalformed, "imgsign trust init")

	// An unreachable mirror is refused at init and changes nothing.
	tuftest.Write(t, filepath.Join(config, storedFile), nil)
	os.Remove(filepath.Join(config, storedFile))
	_, err = Init(context.Background(), Options{Mirror: "http://127.0.0.1:1", Root: repo.RootJSON, CacheDir: cache, ConfigDir: config})
	wantErr(t, err, ErrUnavailable)
	if _, err := os.Stat(filepath.Join(config, storedFile)); !os.IsNotExist(err) {
		t.Fatalf("stored after a failed init: %v", err)
	}
	// Not TUF root metadata.
	_, err = Init(context.Background(), Options{Mirror: repo.URL(), Root: []byte(`{"signed":{}}`), CacheDir: cache, ConfigDir: config})
	wantErr(t, err, ErrInvalid, "not TUF root metadata")
}

func TestLoadFileMalformed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	tuftest.Write(t, p, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"baseUrl":"x"}]}`))
	_, err := LoadFile(p)
	wantErr(t, err, ErrMalformed, p)
	tuftest.Write(t, p, tuftest.TrustedRootJSON(t))
	if _, err := LoadFile(p); err != nil {
		t.Fatal(err)
	}
}

func TestHangingRepositoryBounded(t *testing.T) {
	// A server that accepts connections and never answers: the refresh
	// gives up at Options.Timeout, once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	repo := tuftest.New(t)
	opts := options(repo, t.TempDir())
	opts.Mirror = "http://" + l.Addr().String()
	opts.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = Load(context.Background(), opts)
	wantErr(t, err, ErrUnavailable, "nothing cached", "--trusted-root")
	if elapsed := time.Since(start); elapsed > 10*opts.Timeout {
		t.Fatalf("took %v with a %v timeout", elapsed, opts.Timeout)
	}
	if n := len(accepted); n != 1 {
		t.Fatalf("%d connections: retried", n)
	}
}

// BenchmarkLoad: a refresh against a local repository (two requests: the
// next root version and the timestamp) and a load from a fresh cache
// (MaxAge, no request).
func BenchmarkLoad(b *testing.B) {
	for _, mode := range []string{"refresh", "cached"} {
		b.Run(mode, func(b *testing.B) {
			repo := tuftest.New(b)
			opts := options(repo, b.TempDir())
			if mode == "cached" {
				opts.MaxAge = time.Hour
			}
			if _, err := Load(context.Background(), opts); err != nil {
				b.Fatal(err)
			}
			before := repo.Requests()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Load(context.Background(), opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(repo.Requests()-before)/float64(b.N), "requests/op")
		})
	}
}
