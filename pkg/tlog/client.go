package tlog

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
)

// Rekor API versions.
const (
	V1 = 1 // rekor-server: entries with a SET, search
	V2 = 2 // rekor-tiles: write-only, inclusion proof and checkpoint
)

// Client talks to one Rekor log. Every response is size-limited and parsed
// strictly; the caller verifies what it returns (Trust.Verify) before
// relying on it.
type Client struct {
	base *url.URL
	http *http.Client

	mu      sync.Mutex // guards version
	version int
}

// NewClient returns a client of the log at rawURL. version is V1, V2 or 0
// to ask the log which it is (Detect). hc carries timeouts and TLS
// settings; nil means http.DefaultClient.
func NewClient(rawURL string, version int, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("log URL %q: want http(s)://host[:port]", rawURL)
	}
	if version != 0 && version != V1 && version != V2 {
		return nil, fmt.Errorf("Rekor API version %d: want 1 or 2", version)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, version: version, http: hc}, nil
}

// URL is the log's base URL.
func (c *Client) URL() string { return c.base.String() }

// Version returns the log's API version, asking the log once when it was
// not given: a Rekor v1 log serves its public key at /api/v1/log/publicKey,
// a Rekor v2 log does not.
func (c *Client) Version(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != 0 {
		return c.version, nil
	}
	const path = "/api/v1/log/publicKey"
	status, data, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return 0, err
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		// A failing log says nothing of its version: do not guess (and
		// remember) v2 for a v1 log that is down for a moment.
		return 0, httpError(http.MethodGet, path, status, data)
	}
	c.version = V2
	if status == http.StatusOK {
		c.version = V1
	}
	return c.version, nil
}

// ErrLog is wrapped by errors that the log answered (as opposed to errors
// reaching it).
var ErrLog = errors.New("transparency log error")

// Retries of one log request: a log that answers 408, 429 or 5xx, or
// cannot be reached, is asked again after a pause that doubles each time.
const (
	maxAttempts  = 3
	firstBackoff = 250 * time.Millisecond
)

// do sends one request, retried as maxAttempts says, and reads at most
// MaxResponseBytes of the answer.
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte) (status int, data []byte, err error) {
	a, err := c.doAnswer(ctx, method, path, contentType, body)
	return a.status, a.data, err
}

// answer is a log's answer to one request.
type answer struct {
	status   int
	data     []byte
	location string // the Location header
}

// doAnswer is do, with the whole answer.
func (c *Client) doAnswer(ctx context.Context, method, path, contentType string, body []byte) (a answer, err error) {
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		a, err = c.once(ctx, method, path, contentType, body)
		status := a.status
		retry := err != nil || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
		if !retry || attempt == maxAttempts || ctx.Err() != nil {
			return a, err
		}
		select {
		case <-ctx.Done():
			return a, err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// once sends one request and reads at most MaxResponseBytes of the answer.
func (c *Client) once(ctx context.Context, method, path, contentType string, body []byte) (answer, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("transparency log %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, MaxResponseBytes)
	if err != nil {
		return answer{}, fmt.Errorf("%w: %s %s: %v", ErrLog, method, u.Path, err)
	}
	return answer{status: resp.StatusCode, data: data, location: resp.Header.Get("Location")}, nil
}

// readLimited reads all of r, failing if it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return data, nil
}

// httpError describes an unexpected answer.
func httpError(method, path string, status int, body []byte) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return fmt.Errorf("%w: %s %s: HTTP %d %s", ErrLog, method, path, status, msg)
}

// Upload records an entry for w and returns the log's entry: on Rekor v1 a
// hashedrekord 0.0.1 (a dsse 0.0.1 for an envelope signature), on Rekor v2
// a hashedrekord 0.0.2. On Rekor v1, an entry that already
// exists is fetched instead.
func (c *Client) Upload(ctx context.Context, w Want) (*Entry, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	if err := loggable(w, v); err != nil {
		return nil, err
	}
	if v == V2 {
		return c.uploadV2(ctx, w)
	}
	return c.uploadV1(ctx, w)
}

func (c *Client) uploadV1(ctx context.Context, w Want) (*Entry, error) {
	var req any
	var err error
	if w.Envelope != nil {
		req, err = dsseV001Request(w)
	} else {
		req, err = hashedRekordV001Request(w)
	}
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	const path = "/api/v1/log/entries"
	a, err := c.doAnswer(ctx, http.MethodPost, path, "application/json", body)
	if err != nil {
		return nil, err
	}
	status, data := a.status, a.data
	switch status {
	case http.StatusCreated:
		return oneV1Entry(data)
	case http.StatusConflict:
		// Already logged (the same signature uploaded twice, or a retry
		// of an upload that went through): read it where the log says it
		// is, else find it by its digest.
		if uuid := entryUUID(a.location); uuid != "" {
			entryPath := "/api/v1/log/entries/" + uuid
			status, data, err := c.do(ctx, http.MethodGet, entryPath, "", nil)
			if err != nil {
				return nil, err
			}
			if status != http.StatusOK {
				return nil, httpError(http.MethodGet, entryPath, status, data)
			}
			e, err := oneV1Entry(data)
			if err != nil {
				return nil, err
			}
			if _, err := bind(e.GetCanonicalizedBody(), e.GetKindVersion(), w); err != nil {
				return nil, fmt.Errorf("%w: the existing entry the log points to is not this signature's: %v", ErrLog, err)
			}
			return e, nil
		}
		entries, err := c.Search(ctx, w.searchDigest())
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if _, err := bind(e.GetCanonicalizedBody(), e.GetKindVersion(), w); err == nil {
				return e, nil
			}
		}
		return nil, fmt.Errorf("%w: the log says the entry exists but does not return it", ErrLog)
	}
	return nil, httpError(http.MethodPost, path, status, data)
}

// loggable says, before anything is sent, why a log of version v would
// refuse w: Rekor checks the signature over the digest it records, which
// plain Ed25519 (signed over the message) cannot satisfy, and Rekor v2
// accepts P-384 and P-521 signatures only over SHA-384 and SHA-512, while
// imgsign signs over SHA-256 as cosign does.
func loggable(w Want, v int) error {
	switch k := w.PublicKey.(type) {
	case ed25519.PublicKey:
		if v == V2 || w.Envelope == nil {
			return fmt.Errorf("an Ed25519 signature over the message cannot be recorded in a Rekor v%d log (it logs a digest); use an ECDSA or RSA key", v)
		}
	case *ecdsa.PublicKey:
		if v == V2 && k.Curve != elliptic.P256() {
			return fmt.Errorf("Rekor v2 accepts %s signatures only over a longer hash than the SHA-256 cosign's format uses; use a P-256 or RSA key", k.Curve.Params().Name)
		}
	}
	return nil
}

// entryUUID is the entry UUID at the end of a Rekor v1 entry URL, or "".
func entryUUID(location string) string {
	i := strings.LastIndex(location, "/")
	uuid := location[i+1:]
	if len(uuid) != 64 && len(uuid) != 80 {
		return ""
	}
	if _, err := hex.DecodeString(uuid); err != nil {
		return ""
	}
	return uuid
}

// oneV1Entry decodes a {uuid: entry} answer holding exactly one entry.
func oneV1Entry(data []byte) (*Entry, error) {
	var m models.LogEntry
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: malformed Rekor v1 answer: %v", ErrLog, err)
	}
	if len(m) != 1 {
		return nil, fmt.Errorf("%w: Rekor v1 answered %d entries, want 1", ErrLog, len(m))
	}
	for _, a := range m {
		return fromV1(&a)
	}
	panic("unreachable")
}

func (c *Client) uploadV2(ctx context.Context, w Want) (*Entry, error) {
	req, err := hashedRekordV002Request(w)
	if err != nil {
		return nil, err
	}
	body, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	const path = "/api/v2/log/entries"
	status, data, err := c.do(ctx, http.MethodPost, path, "application/json", body)
	if err != nil {
		return nil, err
	}
	if status == http.StatusConflict {
		// Rekor v2 has no search: an entry logged before cannot be
		// fetched back.
		return nil, fmt.Errorf("%w: the log already holds this exact signature and cannot return its entry (Rekor v2 has no search); sign again", ErrLog)
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return nil, httpError(http.MethodPost, path, status, data)
	}
	e, err := ParseEntry(data)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed Rekor v2 answer: %v", ErrLog, err)
	}
	return e, nil
}

// Lookup returns the Rekor v1 entries that may record w (those indexed
// under its digest); the caller verifies which one does.
func (c *Client) Lookup(ctx context.Context, w Want) ([]*Entry, error) {
	return c.Search(ctx, w.searchDigest())
}

// Search returns the Rekor v1 entries recorded for a SHA-256 digest, with
// their inclusion proofs (two requests: the index, then the entries). At
// most MaxSearchResults are returned.
func (c *Client) Search(ctx context.Context, digest []byte) ([]*Entry, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	if v != V1 {
		return nil, fmt.Errorf("%s is a Rekor v2 log, which cannot be searched: the entry must travel with the signature", c.base)
	}
	q, _ := json.Marshal(models.SearchIndex{Hash: "sha256:" + hex.EncodeToString(digest)})
	const index = "/api/v1/index/retrieve"
	status, data, err := c.do(ctx, http.MethodPost, index, "application/json", q)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, httpError(http.MethodPost, index, status, data)
	}
	var uuids []string
	if err := json.Unmarshal(data, &uuids); err != nil {
		return nil, fmt.Errorf("%w: malformed search answer: %v", ErrLog, err)
	}
	if len(uuids) == 0 {
		return nil, nil
	}
	if len(uuids) > MaxSearchResults {
		uuids = uuids[:MaxSearchResults]
	}
	q, _ = json.Marshal(models.SearchLogQuery{EntryUUIDs: uuids})
	const retrieve = "/api/v1/log/entries/retrieve"
	status, data, err = c.do(ctx, http.MethodPost, retrieve, "application/json", q)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, httpError(http.MethodPost, retrieve, status, data)
	}
	var answers []models.LogEntry
	if err := json.Unmarshal(data, &answers); err != nil {
		return nil, fmt.Errorf("%w: malformed entries answer: %v", ErrLog, err)
	}
	var out []*Entry
	for _, m := range answers {
		for _, a := range m {
			e, err := fromV1(&a)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			if len(out) == MaxSearchResults {
				return out, nil
			}
		}
	}
	return out, nil
}

// PublicKey returns the key a Rekor v1 log serves. It is for setting up
// trust (and tests), never a substitute for a key the user trusts.
func (c *Client) PublicKey(ctx context.Context) (crypto.PublicKey, error) {
	const path = "/api/v1/log/publicKey"
	status, data, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, httpError(http.MethodGet, path, status, data)
	}
	return cryptoutils.UnmarshalPEMToPublicKey(data)
}
