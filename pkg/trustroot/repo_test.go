package trustroot

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// testRepo is a TUF repository made with go-tuf's metadata API, consistent
// snapshots as Sigstore's, served by httptest.
type testRepo struct {
	t         *testing.T
	dir       string
	signers   map[string]signature.Signer
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	rootJSON  []byte // version 1, the client's trust anchor
	srv       *httptest.Server

	mu       sync.Mutex
	requests int
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: t.TempDir(), signers: map[string]signature.Signer{}}
	year := time.Now().AddDate(1, 0, 0).UTC()
	r.root = metadata.Root(year)
	r.targets = metadata.Targets(year)
	r.snapshot = metadata.Snapshot(year)
	r.timestamp = metadata.Timestamp(year)
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
		if r.signers[role], err = signature.LoadSigner(priv, crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
	}
	r.sign(r.root)
	var err error
	if r.rootJSON, err = r.root.ToBytes(true); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(r.dir, "1.root.json"), r.rootJSON)
	r.setTarget(TrustedRootTarget, trustedRootJSON(t))
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests++
		r.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *testRepo) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

type signable interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ClearSignatures()
}

func (r *testRepo) sign(m any) {
	r.t.Helper()
	var role string
	switch m.(type) {
	case *metadata.Metadata[metadata.RootType]:
		role = metadata.ROOT
	case *metadata.Metadata[metadata.TargetsType]:
		role = metadata.TARGETS
	case *metadata.Metadata[metadata.SnapshotType]:
		role = metadata.SNAPSHOT
	case *metadata.Metadata[metadata.TimestampType]:
		role = metadata.TIMESTAMP
	}
	s := m.(signable)
	s.ClearSignatures()
	if _, err := s.Sign(r.signers[role]); err != nil {
		r.t.Fatal(err)
	}
}

// setTarget adds or replaces a target and publishes new targets, snapshot
// and timestamp versions.
func (r *testRepo) setTarget(name string, data []byte) {
	r.t.Helper()
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	r.targets.Signed.Targets[name] = tf
	write(r.t, filepath.Join(r.dir, "targets", hex.EncodeToString(tf.Hashes["sha256"])+"."+name), data)
	if len(r.targets.Signatures) > 0 {
		r.targets.Signed.Version++
	}
	r.publish()
}

// publish signs and writes targets, snapshot and timestamp as they are
// (the snapshot and timestamp versions go up by one).
func (r *testRepo) publish() {
	r.t.Helper()
	r.sign(r.targets)
	r.writeMeta(fmt.Sprintf("%d.targets.json", r.targets.Signed.Version), r.targets)
	if len(r.snapshot.Signatures) > 0 {
		r.snapshot.Signed.Version++
	}
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.sign(r.snapshot)
	r.writeMeta(fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version), r.snapshot)
	if len(r.timestamp.Signatures) > 0 {
		r.timestamp.Signed.Version++
	}
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.sign(r.timestamp)
	r.writeMeta("timestamp.json", r.timestamp)
}

func (r *testRepo) writeMeta(name string, m interface{ ToBytes(bool) ([]byte, error) }) {
	r.t.Helper()
	data, err := m.ToBytes(true)
	if err != nil {
		r.t.Fatal(err)
	}
	write(r.t, filepath.Join(r.dir, name), data)
}

// options are the client options for this repository, with caches of the
// test's own.
func (r *testRepo) options(cache string) Options {
	return Options{Mirror: r.srv.URL, Root: r.rootJSON, CacheDir: cache, ConfigDir: filepath.Join(cache, "config")}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// trustedRootJSON is a trusted root naming one Rekor log with a fresh key.
func trustedRootJSON(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(der)
	return fmt.Appendf(nil, `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1",
"tlogs":[{"baseUrl":"https://rekor.example","hashAlgorithm":"SHA2_256",
 "publicKey":{"rawBytes":%q,"keyDetails":"PKIX_ECDSA_P256_SHA_256","validFor":{"start":"2024-01-01T00:00:00Z"}},
 "logId":{"keyId":%q}}],
"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}`,
		base64.StdEncoding.EncodeToString(der), base64.StdEncoding.EncodeToString(id[:]))
}

// logIDOf returns the hex log ID of the single log of a trusted root JSON.
func logIDOf(t *testing.T, trustedRoot []byte) string {
	t.Helper()
	tr, err := root.NewTrustedRootFromJSON(trustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	for id := range tr.RekorLogs() {
		return id
	}
	t.Fatal("no log")
	return ""
}
