// Package tuftest makes TUF repositories for tests with go-tuf's metadata
// API: four ed25519 role keys, consistent snapshots (as Sigstore's), served
// by httptest. Tests change the metadata fields (versions, expiry, targets)
// and Publish; the files served can be overwritten to play an attacker.
package tuftest

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

// Repo is a TUF repository made with go-tuf's metadata API, consistent
// snapshots as Sigstore's, served by httptest.
type Repo struct {
	t         testing.TB
	Dir       string                      // the files served
	Signers   map[string]signature.Signer // by role
	Root      *metadata.Metadata[metadata.RootType]
	Targets   *metadata.Metadata[metadata.TargetsType]
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	Timestamp *metadata.Metadata[metadata.TimestampType]
	RootJSON  []byte // version 1, the client's trust anchor
	Server    *httptest.Server

	mu       sync.Mutex
	requests int
}

func New(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{t: t, Dir: t.TempDir(), Signers: map[string]signature.Signer{}}
	year := time.Now().AddDate(1, 0, 0).UTC()
	r.Root = metadata.Root(year)
	r.Targets = metadata.Targets(year)
	r.Snapshot = metadata.Snapshot(year)
	r.Timestamp = metadata.Timestamp(year)
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
		if r.Signers[role], err = signature.LoadSigner(priv, crypto.Hash(0)); err != nil {
			t.Fatal(err)
		}
	}
	r.Sign(r.Root)
	var err error
	if r.RootJSON, err = r.Root.ToBytes(true); err != nil {
		t.Fatal(err)
	}
	Write(t, filepath.Join(r.Dir, "1.root.json"), r.RootJSON)
	r.SetTarget("trusted_root.json", TrustedRootJSON(t))
	files := http.FileServer(http.Dir(r.Dir))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests++
		r.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Server.Close)
	return r
}

func (r *Repo) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

type signable interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ClearSignatures()
}

func (r *Repo) Sign(m any) {
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
	if _, err := s.Sign(r.Signers[role]); err != nil {
		r.t.Fatal(err)
	}
}

// setTarget adds or replaces a target and publishes new targets, snapshot
// and timestamp versions.
func (r *Repo) SetTarget(name string, data []byte) {
	r.t.Helper()
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	r.Targets.Signed.Targets[name] = tf
	Write(r.t, filepath.Join(r.Dir, "targets", hex.EncodeToString(tf.Hashes["sha256"])+"."+name), data)
	if len(r.Targets.Signatures) > 0 {
		r.Targets.Signed.Version++
	}
	r.Publish()
}

// publish signs and writes targets, snapshot and timestamp as they are
// (the snapshot and timestamp versions go up by one).
func (r *Repo) Publish() {
	r.t.Helper()
	r.Sign(r.Targets)
	r.WriteMeta(fmt.Sprintf("%d.targets.json", r.Targets.Signed.Version), r.Targets)
	if len(r.Snapshot.Signatures) > 0 {
		r.Snapshot.Signed.Version++
	}
	r.Snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.Targets.Signed.Version)
	r.Sign(r.Snapshot)
	r.WriteMeta(fmt.Sprintf("%d.snapshot.json", r.Snapshot.Signed.Version), r.Snapshot)
	if len(r.Timestamp.Signatures) > 0 {
		r.Timestamp.Signed.Version++
	}
	r.Timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.Snapshot.Signed.Version)
	r.Sign(r.Timestamp)
	r.WriteMeta("timestamp.json", r.Timestamp)
}

func (r *Repo) WriteMeta(name string, m interface{ ToBytes(bool) ([]byte, error) }) {
	r.t.Helper()
	data, err := m.ToBytes(true)
	if err != nil {
		r.t.Fatal(err)
	}
	Write(r.t, filepath.Join(r.Dir, name), data)
}

func Write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// trustedRootJSON is a trusted root naming one Rekor log with a fresh key.
func TrustedRootJSON(t testing.TB) []byte {
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
func LogIDOf(t testing.TB, trustedRoot []byte) string {
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

// URL is the repository's base URL (the mirror).
func (r *Repo) URL() string { return r.Server.URL }

// TargetFile returns the path of the file served for target name.
func (r *Repo) TargetFile(name string) string {
	tf := r.Targets.Signed.Targets[name]
	if tf == nil {
		r.t.Fatalf("no target %s", name)
	}
	return filepath.Join(r.Dir, "targets", tf.Hashes["sha256"].String()+"."+name)
}
