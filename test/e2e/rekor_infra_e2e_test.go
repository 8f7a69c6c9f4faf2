//go:build linux

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedArtifact is a random artifact signed with a fresh ECDSA P-256 key.
type signedArtifact struct {
	digest           [32]byte
	sig              []byte // ASN.1 ECDSA signature of the SHA-256 digest
	pubDER           []byte // PKIX
	sigFile, pubFile string
}

func newSignedArtifact(t *testing.T) signedArtifact {
	t.Helper()
	artifact := make([]byte, 512)
	rand.Read(artifact)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := signedArtifact{digest: sha256.Sum256(artifact)}
	if a.sig, err = ecdsa.SignASN1(rand.Reader, key, a.digest[:]); err != nil {
		t.Fatal(err)
	}
	if a.pubDER, err = x509.MarshalPKIXPublicKey(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a.sigFile, a.pubFile = filepath.Join(dir, "artifact.sig"), filepath.Join(dir, "key.pub")
	os.WriteFile(a.sigFile, a.sig, 0o644)
	os.WriteFile(a.pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: a.pubDER}), 0o644)
	return a
}

// readPublicKey parses a PKIX PEM file.
func readPublicKey(t *testing.T, file string) any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// v1Entry is one entry of GET /api/v1/log/entries.
type v1Entry struct {
	Body           string `json:"body"`
	IntegratedTime int64  `json:"integratedTime"`
	LogID          string `json:"logID"`
	LogIndex       int64  `json:"logIndex"`
	Verification   struct {
		SignedEntryTimestamp []byte `json:"signedEntryTimestamp"`
		InclusionProof       *struct {
			Checkpoint string   `json:"checkpoint"`
			Hashes     []string `json:"hashes"`
			LogIndex   int64    `json:"logIndex"`
			RootHash   string   `json:"rootHash"`
			TreeSize   int64    `json:"treeSize"`
		} `json:"inclusionProof"`
	} `json:"verification"`
}

func getV1Entry(t *testing.T, l *rekorLog, index int64) (string, v1Entry) {
	t.Helper()
	body, err := httpGet(fmt.Sprintf("%s/api/v1/log/entries?logIndex=%d", l.URL, index))
	if err != nil {
		t.Fatalf("%v\n%s", err, l.logTail())
	}
	var entries map[string]v1Entry
	if err := json.Unmarshal(body, &entries); err != nil || len(entries) != 1 {
		t.Fatalf("entry %d: %v: %s", index, err, body)
	}
	for uuid, e := range entries {
		if len(e.Verification.SignedEntryTimestamp) == 0 || e.Verification.InclusionProof == nil ||
			e.Verification.InclusionProof.RootHash == "" || e.Verification.InclusionProof.Checkpoint == "" {
			t.Fatalf("entry %d lacks a SET or an inclusion proof: %s", index, body)
		}
		return uuid, e
	}
	panic("unreachable")
}

func TestRekorV1Smoke(t *testing.T) {
	l := startRekorV1(t)
	cli := tool(t, "rekor-cli-"+rekorVersion)
	a := newSignedArtifact(t)
	hexDigest := hex.EncodeToString(a.digest[:])

	start := time.Now()
	r := run(t, nil, cli, "upload", "--rekor_server", l.URL, "--type", "hashedrekord",
		"--artifact-hash", hexDigest, "--signature", a.sigFile, "--public-key", a.pubFile).
		must(t, 0, "Created entry at index")
	t.Logf("rekor-cli upload: %v", time.Since(start).Round(time.Millisecond))
	m := regexp.MustCompile(`Created entry at index (\d+), available at: \S*/api/v1/log/entries/([0-9a-f]+)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("unexpected upload output: %s", r.stdout)
	}
	index, _ := strconv.ParseInt(m[1], 10, 64)
	entryID := m[2]
	uuid := entryID[len(entryID)-64:] // without the tree ID prefix

	// The search index is written asynchronously after the upload.
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = run(t, nil, cli, "search", "--rekor_server", l.URL, "--sha", "sha256:"+hexDigest)
		if r.code == 0 && strings.Contains(r.stdout, uuid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rekor-cli search did not find %s: exit %d\n%s%s", uuid, r.code, r.stdout, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The first entry of the log, whoever wrote it, has a SET and a proof.
	getV1Entry(t, l, 0)
	// Ours is our hashedrekord, and its SET verifies with the log's key.
	gotID, e := getV1Entry(t, l, index)
	if !strings.HasSuffix(gotID, uuid) {
		t.Fatalf("entry %d is %s, want %s", index, gotID, uuid)
	}
	body, err := base64.StdEncoding.DecodeString(e.Body)
	if err != nil || !bytes.Contains(body, []byte(hexDigest)) || !bytes.Contains(body, []byte(`"hashedrekord"`)) {
		t.Fatalf("entry body %s (%v) is not our hashedrekord", body, err)
	}
	payload, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{e.Body, e.IntegratedTime, e.LogID, e.LogIndex})
	h := sha256.Sum256(payload)
	logKey, ok := readPublicKey(t, l.PublicKeyPEM).(*ecdsa.PublicKey)
	if !ok || !ecdsa.VerifyASN1(logKey, h[:], e.Verification.SignedEntryTimestamp) {
		t.Fatalf("SET of entry %d does not verify with %s", index, l.PublicKeyPEM)
	}
}

// v2Entry is the TransparencyLogEntry answered by POST /api/v2/log/entries
// (protojson: int64 as strings, bytes as base64).
type v2Entry struct {
	LogIndex    string `json:"logIndex"`
	KindVersion struct {
		Kind    string `json:"kind"`
		Version string `json:"version"`
	} `json:"kindVersion"`
	InclusionProof *struct {
		LogIndex   string   `json:"logIndex"`
		RootHash   []byte   `json:"rootHash"`
		TreeSize   string   `json:"treeSize"`
		Hashes     [][]byte `json:"hashes"`
		Checkpoint *struct {
			Envelope string `json:"envelope"`
		} `json:"checkpoint"`
	} `json:"inclusionProof"`
	CanonicalizedBody []byte `json:"canonicalizedBody"`
}

// verifyNote checks a signed note (checkpoint) by origin's Ed25519 key.
func verifyNote(t *testing.T, note, origin string, pub ed25519.PublicKey) {
	t.Helper()
	text, sigs, ok := strings.Cut(note, "\n\n")
	if !ok || !strings.HasPrefix(text, origin+"\n") {
		t.Fatalf("checkpoint is not a note from %s:\n%s", origin, note)
	}
	for _, line := range strings.Split(sigs, "\n") {
		name, b64, ok := strings.Cut(strings.TrimPrefix(line, "\u2014 "), " ")
		if !ok || name != origin {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && len(raw) == 4+ed25519.SignatureSize && ed25519.Verify(pub, []byte(text+"\n"), raw[4:]) {
			return
		}
	}
	t.Fatalf("checkpoint has no valid signature by %s:\n%s", origin, note)
}

func TestRekorV2Smoke(t *testing.T) {
	l := startRekorV2(t)
	a := newSignedArtifact(t)
	b64 := base64.StdEncoding.EncodeToString
	req, _ := json.Marshal(map[string]any{
		"hashedRekordRequestV002": map[string]any{
			"digest": b64(a.digest[:]),
			"signature": map[string]any{
				"content": b64(a.sig),
				"verifier": map[string]any{
					"publicKey":  map[string]any{"rawBytes": b64(a.pubDER)},
					"keyDetails": "PKIX_ECDSA_P256_SHA_256",
				},
			},
		},
	})
	start := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(l.URL+"/api/v2/log/entries", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("v2 upload: %v", time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST entries: %s: %s\n%s", resp.Status, body, l.logTail())
	}
	var e v2Entry
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if e.KindVersion.Kind != "hashedrekord" || e.KindVersion.Version != "0.0.2" ||
		e.InclusionProof == nil || e.InclusionProof.Checkpoint == nil || len(e.InclusionProof.RootHash) != 32 ||
		!bytes.Contains(e.CanonicalizedBody, []byte(b64(a.digest[:]))) {
		t.Fatalf("unexpected entry: %s", body)
	}
	logKey, ok := readPublicKey(t, l.PublicKeyPEM).(ed25519.PublicKey)
	if !ok {
		t.Fatalf("%s is not an Ed25519 key", l.PublicKeyPEM)
	}
	verifyNote(t, e.InclusionProof.Checkpoint.Envelope, l.Origin, logKey)

	// Reads: the checkpoint and the entry bundle are static files...
	cp, err := httpGet(l.ReadURL + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	verifyNote(t, string(cp), l.Origin, logKey)
	if _, err := httpGet(l.ReadURL + "/tile/entries/000.p/1"); e.LogIndex == "0" && err != nil {
		t.Fatal(err)
	}
	// ...but the log's private state is not served.
	var state []string
	filepath.WalkDir(filepath.Join(l.storageDir, ".state"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(l.storageDir, p)
			state = append(state, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(state) == 0 {
		t.Fatalf("no files under %s/.state", l.storageDir)
	}
	for _, p := range []string{"/" + state[0], "/" + strings.Replace(state[0], ".state", "%2estate", 1), "/.state/", "/"} {
		resp, err := probe.Get(l.ReadURL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, resp.Status)
		}
	}
}
