// Package tlogtest runs fake Rekor transparency logs in-process, for fast
// unit tests of recording and verifying signatures. The fakes use real
// crypto, real RFC 6962 Merkle trees and Rekor's own code to build entry
// bodies and checkpoints, so what they answer verifies like a real log's:
//
//   - NewV1 serves the rekor-server REST API (upload, search, public key):
//     hashedrekord 0.0.1 and dsse 0.0.1 entries with a signed entry
//     timestamp (SET) and an inclusion proof up to a checkpoint, signed with
//     an ECDSA P-256 key;
//   - NewV2 serves rekor-tiles' write API: hashedrekord 0.0.2 entries with an
//     inclusion proof up to a signed-note checkpoint (Ed25519), no SET and no
//     integrated time.
//
// Like the real logs they check the signature over the digest before
// recording it, and answer 409 to a duplicate. Fail, Delay, Oversize and
// Garbage make a log misbehave; Sign and Record write entries directly, for
// tests that then tamper with them.
package tlogtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/go-openapi/strfmt"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	rekorpb "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	pb "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	rtnote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	tileshr "github.com/sigstore/rekor-tiles/v2/pkg/types/hashedrekord"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/imgsign/imgsign/pkg/tlog"
)

// HostnameV1 names a v1 log in its checkpoints, whose origin is
// "fake-rekor - <tree ID>" as rekor-server writes "<hostname> - <tree ID>".
const HostnameV1 = "fake-rekor"

const treeID = int64(1193050959916656506)

// Log is a running fake Rekor log.
type Log struct {
	// URL is the log's base URL, "http://127.0.0.1:PORT".
	URL string
	// Key is the log's signing key: ECDSA P-256 (v1) or Ed25519 (v2).
	Key crypto.Signer
	// Origin is the checkpoint origin: "fake-rekor - <tree ID>" (v1), or
	// as Sigstore names a Rekor v2 log, its URL without the scheme (v2;
	// tlog.Origin(URL)), so that tlog.TrustedRoot gives the real log ID.
	Origin string
	// LogID is the ID entries name: SHA-256 of the key's PKIX DER (v1), or
	// the signed-note key hash of origin and key (v2).
	LogID []byte

	t        testing.TB
	v2       bool
	signer   signature.Signer
	pem      []byte
	requests atomic.Int64

	mu      sync.Mutex
	tree    *testonly.Tree
	entries []record
	byLeaf  map[string]int64 // hex leaf hash -> index
	fail    int
	delay   time.Duration
	big     bool
	garbage bool
}

// record is one logged entry.
type record struct {
	body  []byte
	index string // hex SHA-256 it is found under (Search)
	time  int64  // integrated time (v1)
	set   []byte // signed entry timestamp (v1)
}

// NewV1 starts a fake Rekor v1 log (rekor-server) for the test's lifetime.
func NewV1(t testing.TB) *Log {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, k, false)
}

// NewV2 starts a fake Rekor v2 log (rekor-tiles) for the test's lifetime.
func NewV2(t testing.TB) *Log {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, k, true)
}

func start(t testing.TB, key crypto.Signer, v2 bool) *Log {
	t.Helper()
	l := &Log{Key: key, t: t, v2: v2, tree: testonly.New(rfc6962.DefaultHasher), byLeaf: map[string]int64{}}
	srv := httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	l.URL, l.Origin = srv.URL, tlog.Origin(srv.URL)
	if !v2 {
		l.Origin = fmt.Sprintf("%s - %d", HostnameV1, treeID)
	}
	var err error
	if l.signer, err = signature.LoadSigner(key, crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	if _, l.LogID, err = rtnote.KeyHash(l.Origin, key.Public()); err != nil {
		t.Fatal(err)
	}
	if l.pem, err = cryptoutils.MarshalPublicKeyToPEM(key.Public()); err != nil {
		t.Fatal(err)
	}
	return l
}

// PublicKeyPEM is the log's public key in PEM.
func (l *Log) PublicKeyPEM() []byte { return bytes.Clone(l.pem) }

// TrustLog is the log as --rekor-key trusts it: tlog.NewLog of its key (for
// v2 the ID NewLog derives is not the entries' one; tlog.Trust finds the log
// by its checkpoints' origin), with BaseURL set to URL.
func (l *Log) TrustLog() *tlog.Log {
	tl, err := tlog.NewLog(l.Key.Public())
	if err != nil {
		l.t.Fatal(err)
	}
	tl.BaseURL = l.URL
	return tl
}

// Trust trusts this log only.
func (l *Log) Trust() *tlog.Trust { return &tlog.Trust{Logs: []*tlog.Log{l.TrustLog()}} }

// Requests is the number of HTTP requests served so far.
func (l *Log) Requests() int { return int(l.requests.Load()) }

// Entries is the number of entries logged.
func (l *Log) Entries() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.entries) }

// Fail makes every request answer status (0: behave again).
func (l *Log) Fail(status int) { l.mu.Lock(); l.fail = status; l.mu.Unlock() }

// Delay makes every request wait d (or until the client gives up) first.
func (l *Log) Delay(d time.Duration) { l.mu.Lock(); l.delay = d; l.mu.Unlock() }

// Oversize makes every request answer 2 MiB of valid JSON.
func (l *Log) Oversize(on bool) { l.mu.Lock(); l.big = on; l.mu.Unlock() }

// Garbage makes every request answer malformed JSON with a success status
// (so a v2 log then looks like a v1 log to version detection).
func (l *Log) Garbage(on bool) { l.mu.Lock(); l.garbage = on; l.mu.Unlock() }

func (l *Log) serve(w http.ResponseWriter, r *http.Request) {
	l.requests.Add(1)
	l.mu.Lock()
	fail, delay, big, garbage := l.fail, l.delay, l.big, l.garbage
	l.mu.Unlock()
	// Read the request first: only then does net/http notice a client that
	// gives up, and cancel r.Context().
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		httpErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	ok := http.StatusOK
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/log/entries") {
		ok = http.StatusCreated
	}
	switch {
	case fail != 0:
		httpErr(w, fail, "failing on purpose")
		return
	case big:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ok)
		_, _ = fmt.Fprintf(w, `{"pad":"%s"}`, strings.Repeat("a", 2<<20))
		return
	case garbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ok)
		_, _ = io.WriteString(w, `{"garbage": [1, 2,`)
		return
	}
	route := r.Method + " " + r.URL.Path
	switch {
	case !l.v2 && route == "GET /api/v1/log/publicKey":
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(l.pem)
	case !l.v2 && route == "POST /api/v1/log/entries":
		l.uploadV1(w, body)
	case !l.v2 && route == "POST /api/v1/index/retrieve":
		l.searchIndex(w, body)
	case !l.v2 && route == "POST /api/v1/log/entries/retrieve":
		l.retrieve(w, body)
	case !l.v2 && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/log/entries/"):
		l.entryByUUID(w, strings.TrimPrefix(r.URL.Path, "/api/v1/log/entries/"))
	case l.v2 && route == "POST /api/v2/log/entries":
		l.uploadV2(w, body)
	default:
		httpErr(w, http.StatusNotFound, "not found")
	}
}

// httpErr answers Rekor's error JSON.
func httpErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"code": status, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// canonicalV1 validates a proposed Rekor v1 entry as rekor-server does and
// returns its canonical body (as rekor's types Canonicalize it) and the
// hex SHA-256 it is indexed under:
//   - hashedrekord 0.0.1: the signature must verify over the digest (Ed25519
//     only as Ed25519ph); indexed under the digest;
//   - dsse 0.0.1: every envelope signature must verify over the PAE with one
//     of the verifiers; indexed under the payload's SHA-256.
func canonicalV1(data []byte) (body []byte, index string, err error) {
	var h struct {
		Kind, APIVersion string
		Spec             json.RawMessage
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, "", err
	}
	switch {
	case h.Kind == tlog.KindHashedRekord && h.APIVersion == tlog.VersionV001:
		return hashedRekordV001(h.Spec)
	case h.Kind == tlog.KindDSSE && h.APIVersion == tlog.VersionV001:
		return dsseV001(h.Spec)
	}
	return nil, "", fmt.Errorf("unsupported kind %q version %q", h.Kind, h.APIVersion)
}

func hashedRekordV001(raw json.RawMessage) ([]byte, string, error) {
	var spec models.HashedrekordV001Schema
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, "", err
	}
	if err := spec.Validate(strfmt.Default); err != nil {
		return nil, "", err
	}
	if spec.Signature.PublicKey == nil || *spec.Data.Hash.Algorithm != models.HashedrekordV001SchemaDataHashAlgorithmSha256 {
		return nil, "", fmt.Errorf("want a sha256 hash and a public key")
	}
	d, err := hex.DecodeString(*spec.Data.Hash.Value)
	if err != nil || len(d) != sha256.Size {
		return nil, "", fmt.Errorf("invalid value for hash")
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(spec.Signature.PublicKey.Content)
	if err != nil {
		return nil, "", err
	}
	v, err := signature.LoadVerifierWithOpts(pub, options.WithHash(crypto.SHA256), options.WithED25519ph())
	if err == nil {
		err = v.VerifySignature(bytes.NewReader(spec.Signature.Content), nil, options.WithDigest(d), options.WithCryptoSignerOpts(crypto.SHA256))
	}
	if err != nil {
		return nil, "", fmt.Errorf("verifying signature: %w", err)
	}
	canonPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, "", err
	}
	body, err := json.Marshal(&models.Hashedrekord{APIVersion: ptr(tlog.VersionV001), Spec: &models.HashedrekordV001Schema{
		Data:      &models.HashedrekordV001SchemaData{Hash: spec.Data.Hash},
		Signature: &models.HashedrekordV001SchemaSignature{Content: spec.Signature.Content, PublicKey: &models.HashedrekordV001SchemaSignaturePublicKey{Content: canonPEM}},
	}})
	return body, *spec.Data.Hash.Value, err
}

func dsseV001(raw json.RawMessage) ([]byte, string, error) {
	var spec models.DSSEV001Schema
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, "", err
	}
	if err := spec.Validate(strfmt.Default); err != nil {
		return nil, "", err
	}
	pc := spec.ProposedContent
	if pc == nil || pc.Envelope == nil || spec.PayloadHash != nil || spec.EnvelopeHash != nil || len(spec.Signatures) > 0 {
		return nil, "", fmt.Errorf("want proposedContent only")
	}
	var env struct {
		PayloadType string
		Payload     []byte
		Signatures  []struct{ Sig string }
	}
	if err := json.Unmarshal([]byte(*pc.Envelope), &env); err != nil || len(env.Signatures) == 0 {
		return nil, "", fmt.Errorf("DSSE envelope must contain 1 or more signatures (%v)", err)
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(env.PayloadType), env.PayloadType, len(env.Payload), env.Payload)
	var sigs []*models.DSSEV001SchemaSignaturesItems0
	for _, sg := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(sg.Sig)
		if err != nil {
			return nil, "", err
		}
		var verifier []byte
		for _, vk := range pc.Verifiers {
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(vk)
			if err != nil {
				return nil, "", err
			}
			v, err := signature.LoadVerifier(pub, crypto.SHA256)
			if err == nil && v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(pae)) == nil {
				verifier, _ = cryptoutils.MarshalPublicKeyToPEM(pub)
				break
			}
		}
		if verifier == nil {
			return nil, "", fmt.Errorf("all signatures must have a key that verifies it")
		}
		sigs = append(sigs, &models.DSSEV001SchemaSignaturesItems0{Signature: ptr(sg.Sig), Verifier: (*strfmt.Base64)(&verifier)})
	}
	slices.SortFunc(sigs, func(a, b *models.DSSEV001SchemaSignaturesItems0) int {
		return strings.Compare(*a.Signature, *b.Signature)
	})
	ph, eh := sha256.Sum256(env.Payload), sha256.Sum256([]byte(*pc.Envelope))
	body, err := json.Marshal(&models.DSSE{APIVersion: ptr(tlog.VersionV001), Spec: &models.DSSEV001Schema{
		EnvelopeHash: &models.DSSEV001SchemaEnvelopeHash{Algorithm: ptr(models.DSSEV001SchemaEnvelopeHashAlgorithmSha256), Value: ptr(hex.EncodeToString(eh[:]))},
		PayloadHash:  &models.DSSEV001SchemaPayloadHash{Algorithm: ptr(models.DSSEV001SchemaPayloadHashAlgorithmSha256), Value: ptr(hex.EncodeToString(ph[:]))},
		Signatures:   sigs,
	}})
	return body, hex.EncodeToString(ph[:]), err
}

func ptr[T any](v T) *T { return &v }

// canonicalV2 validates a hashedrekord 0.0.2 request as rekor-tiles does
// and returns the canonical entry body.
func canonicalV2(hr *pb.HashedRekordRequestV002) (body []byte, err error) {
	defer func() {
		if r := recover(); r != nil { // ToLogEntry panics on pure Ed25519.
			err = fmt.Errorf("invalid hashedrekord request: %v", r)
		}
	}()
	reg, err := signature.NewAlgorithmRegistryConfig([]protocommon.PublicKeyDetails{
		protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256, protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256,
		protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256, protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
		protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384, protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512,
		protocommon.PublicKeyDetails_PKIX_ED25519, protocommon.PublicKeyDetails_PKIX_ED25519_PH,
	})
	if err != nil {
		return nil, err
	}
	e, err := tileshr.ToLogEntry(hr, reg)
	if err != nil {
		return nil, err
	}
	j, err := protojson.Marshal(e)
	if err != nil {
		return nil, err
	}
	return jsoncanonicalizer.Transform(j)
}

// add appends body; it returns the index, or the existing index and false.
// l.mu must be held.
func (l *Log) add(body []byte, index string) (int64, bool) {
	leaf := hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(body))
	if i, dup := l.byLeaf[leaf]; dup {
		return i, false
	}
	i := int64(len(l.entries))
	rec := record{body: body, index: index}
	if !l.v2 {
		rec.time = time.Now().Unix()
		rec.set = l.signSET(body, rec.time, i)
	}
	l.entries = append(l.entries, rec)
	l.byLeaf[leaf] = i
	l.tree.AppendData(body)
	return i, true
}

// signSET signs the SET payload rekor-server signs.
func (l *Log) signSET(body []byte, t, index int64) []byte {
	p, err := json.Marshal(map[string]any{"body": base64.StdEncoding.EncodeToString(body),
		"integratedTime": t, "logIndex": index, "logID": hex.EncodeToString(l.LogID)})
	if err == nil {
		p, err = jsoncanonicalizer.Transform(p)
	}
	var set []byte
	if err == nil {
		set, err = l.signer.SignMessage(bytes.NewReader(p))
	}
	if err != nil {
		l.t.Errorf("tlogtest: SET: %v", err)
	}
	return set
}

// ResignSET replaces e's SET with the log's signature over e's current body,
// integrated time, index and log ID (to tamper with an entry validly).
func (l *Log) ResignSET(e *tlog.Entry) {
	e.InclusionPromise = &rekorpb.InclusionPromise{SignedEntryTimestamp: l.signSET(e.GetCanonicalizedBody(), e.GetIntegratedTime(), e.GetLogIndex())}
}

// Checkpoint returns a checkpoint for (size, root) signed by the log, as
// rekor-server (v1) or rekor-tiles (v2) writes it.
func (l *Log) Checkpoint(size uint64, root []byte) string {
	cp, err := l.checkpoint(size, root)
	if err != nil {
		l.t.Fatal(err)
	}
	return cp
}

func (l *Log) checkpoint(size uint64, root []byte) (string, error) {
	if !l.v2 {
		cp, err := util.CreateAndSignCheckpoint(context.Background(), HostnameV1, treeID, size, root, l.signer)
		return string(cp), err
	}
	ns, err := rtnote.NewNoteSigner(context.Background(), l.Origin, l.signer)
	if err != nil {
		return "", err
	}
	cp, err := note.Sign(&note.Note{Text: string(fmtlog.Checkpoint{Origin: l.Origin, Size: size, Hash: root}.Marshal())}, ns)
	return string(cp), err
}

// entry returns entry i with an inclusion proof up to the current tree.
// l.mu must be held.
func (l *Log) entry(i int64) (*tlog.Entry, error) {
	rec, size := l.entries[i], l.tree.Size()
	hashes, err := l.tree.InclusionProof(uint64(i), size)
	if err != nil {
		return nil, err
	}
	root := l.tree.Hash()
	cp, err := l.checkpoint(size, root)
	if err != nil {
		return nil, err
	}
	var h struct{ Kind, APIVersion string }
	_ = json.Unmarshal(rec.body, &h)
	e := &tlog.Entry{
		LogIndex:       i,
		LogId:          &protocommon.LogId{KeyId: l.LogID},
		KindVersion:    &rekorpb.KindVersion{Kind: h.Kind, Version: h.APIVersion},
		IntegratedTime: rec.time,
		InclusionProof: &rekorpb.InclusionProof{LogIndex: i, RootHash: root, TreeSize: int64(size), Hashes: hashes,
			Checkpoint: &rekorpb.Checkpoint{Envelope: cp}},
		CanonicalizedBody: rec.body,
	}
	if len(rec.set) > 0 {
		e.InclusionPromise = &rekorpb.InclusionPromise{SignedEntryTimestamp: rec.set}
	}
	return e, nil
}

// mustEntry is entry for test helpers. l.mu must be held.
func (l *Log) mustEntry(i int64) *tlog.Entry {
	e, err := l.entry(i)
	if err != nil {
		l.t.Fatal(err)
	}
	return e
}

// Record logs body as it is (no validation) and returns its entry, signed
// by the log, for tests of bodies a real log would refuse.
func (l *Log) Record(body []byte) *tlog.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := l.add(body, "")
	return l.mustEntry(i)
}

// Sign records w as imgsign's client would upload it (a dsse entry on v1
// when w.Envelope is set), validating it like the log, and returns the entry
// the API answers; an entry already logged is returned again.
func (l *Log) Sign(w tlog.Want) *tlog.Entry {
	l.t.Helper()
	body, index, err := []byte(nil), hex.EncodeToString(w.Digest), error(nil)
	if l.v2 {
		body, err = canonicalV2(requestV2(w))
	} else {
		body, index, err = canonicalV1(requestV1(w))
	}
	if err != nil {
		l.t.Fatalf("tlogtest: the log refuses the entry: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := l.add(body, index)
	return l.mustEntry(i)
}

// requestV1 is the proposed entry imgsign's client sends for w.
func requestV1(w tlog.Want) []byte {
	k, _ := cryptoutils.MarshalPublicKeyToPEM(w.PublicKey)
	var pe any = map[string]any{"kind": tlog.KindHashedRekord, "apiVersion": tlog.VersionV001, "spec": map[string]any{
		"data":      map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(w.Digest)}},
		"signature": map[string]any{"content": w.Signature, "publicKey": map[string]any{"content": k}}}}
	if e := w.Envelope; e != nil {
		env, _ := json.Marshal(map[string]any{"payloadType": e.PayloadType, "payload": e.Payload, "signatures": []map[string]any{{"sig": w.Signature}}})
		pe = map[string]any{"kind": tlog.KindDSSE, "apiVersion": tlog.VersionV001, "spec": map[string]any{
			"proposedContent": map[string]any{"envelope": string(env), "verifiers": [][]byte{k}}}}
	}
	b, _ := json.Marshal(pe)
	return b
}

func requestV2(w tlog.Want) *pb.HashedRekordRequestV002 {
	der, _ := x509.MarshalPKIXPublicKey(w.PublicKey)
	details := protocommon.PublicKeyDetails_PKIX_ED25519
	switch k := w.PublicKey.(type) {
	case *ecdsa.PublicKey:
		details = map[int]protocommon.PublicKeyDetails{256: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256,
			384: protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_256, 521: protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_256}[k.Curve.Params().BitSize]
	case *rsa.PublicKey:
		details = map[int]protocommon.PublicKeyDetails{2048: protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256,
			3072: protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256, 4096: protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256}[k.N.BitLen()]
	}
	return &pb.HashedRekordRequestV002{Digest: w.Digest, Signature: &pb.Signature{Content: w.Signature,
		Verifier: &pb.Verifier{Verifier: &pb.Verifier_PublicKey{PublicKey: &pb.PublicKey{RawBytes: der}}, KeyDetails: details}}}
}

// entryID is rekor-server's entry ID: the tree ID and the leaf hash in hex.
func entryID(body []byte) string {
	return fmt.Sprintf("%016x%x", treeID, rfc6962.DefaultHasher.HashLeaf(body))
}

// anon is entry i in rekor-server's JSON. l.mu must be held.
func (l *Log) anon(i int64) (models.LogEntry, error) {
	e, err := l.entry(i)
	if err != nil {
		return nil, err
	}
	p := e.GetInclusionProof()
	var hashes []string
	for _, h := range p.GetHashes() {
		hashes = append(hashes, hex.EncodeToString(h))
	}
	id, t, idx, root, size, cp := hex.EncodeToString(l.LogID), e.GetIntegratedTime(), i, hex.EncodeToString(p.GetRootHash()), p.GetTreeSize(), p.GetCheckpoint().GetEnvelope()
	return models.LogEntry{entryID(e.GetCanonicalizedBody()): models.LogEntryAnon{
		Body: base64.StdEncoding.EncodeToString(e.GetCanonicalizedBody()), IntegratedTime: &t, LogID: &id, LogIndex: &idx,
		Verification: &models.LogEntryAnonVerification{
			SignedEntryTimestamp: e.GetInclusionPromise().GetSignedEntryTimestamp(),
			InclusionProof:       &models.InclusionProof{LogIndex: &idx, TreeSize: &size, RootHash: &root, Hashes: hashes, Checkpoint: &cp},
		},
	}}, nil
}

func (l *Log) uploadV1(w http.ResponseWriter, data []byte) {
	body, digest, err := canonicalV1(data)
	if err != nil {
		httpErr(w, http.StatusBadRequest, err.Error())
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i, added := l.add(body, digest)
	if !added {
		w.Header().Set("Location", "/api/v1/log/entries/"+entryID(body))
		httpErr(w, http.StatusConflict, "an equivalent entry already exists in the transparency log with UUID "+entryID(body))
		return
	}
	a, err := l.anon(i)
	if err != nil {
		httpErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

func (l *Log) searchIndex(w http.ResponseWriter, data []byte) {
	var q models.SearchIndex
	if err := json.Unmarshal(data, &q); err != nil || !strings.HasPrefix(q.Hash, "sha256:") {
		httpErr(w, http.StatusBadRequest, "want a sha256: hash")
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []string{}
	for _, rec := range l.entries {
		if rec.index == strings.ToLower(strings.TrimPrefix(q.Hash, "sha256:")) {
			out = append(out, entryID(rec.body))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (l *Log) retrieve(w http.ResponseWriter, data []byte) {
	var q models.SearchLogQuery
	if err := json.Unmarshal(data, &q); err != nil {
		httpErr(w, http.StatusBadRequest, err.Error())
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []models.LogEntry{}
	for _, u := range q.EntryUUIDs {
		if i, ok := l.byLeaf[u[len(u)-min(len(u), 64):]]; ok {
			a, err := l.anon(i)
			if err != nil {
				httpErr(w, http.StatusInternalServerError, err.Error())
				return
			}
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// entryByUUID answers GET /api/v1/log/entries/{uuid} (the entry's own URL,
// which a 409 names in its Location header).
func (l *Log) entryByUUID(w http.ResponseWriter, u string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.byLeaf[u[len(u)-min(len(u), 64):]]
	if !ok {
		httpErr(w, http.StatusNotFound, "not found")
		return
	}
	a, err := l.anon(i)
	if err != nil {
		httpErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (l *Log) uploadV2(w http.ResponseWriter, data []byte) {
	var req pb.CreateEntryRequest
	if err := protojson.Unmarshal(data, &req); err != nil || req.GetHashedRekordRequestV002() == nil {
		httpErr(w, http.StatusBadRequest, "invalid type, must be hashedrekord")
		return
	}
	body, err := canonicalV2(req.GetHashedRekordRequestV002())
	if err != nil {
		httpErr(w, http.StatusBadRequest, "invalid hashedrekord request: "+err.Error())
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i, added := l.add(body, hex.EncodeToString(req.GetHashedRekordRequestV002().GetDigest()))
	if !added {
		w.Header().Set("X-Log-Index", fmt.Sprint(i))
		httpErr(w, http.StatusConflict, fmt.Sprintf("an equivalent entry already exists at index %d", i))
		return
	}
	e, err := l.entry(i)
	var out []byte
	if err == nil {
		out, err = protojson.Marshal(e)
	}
	if err != nil {
		httpErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(out)
}
