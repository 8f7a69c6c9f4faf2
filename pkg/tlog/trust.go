package tlog

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	trustpb "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TrustedRootMediaType is the media type of a Sigstore trusted root
// (trusted_root.json) imgsign reads.
const TrustedRootMediaType = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

// maxTrustedRootBytes bounds a trusted_root.json read.
const maxTrustedRootBytes = 4 << 20

// Log is one trusted transparency log.
type Log struct {
	// ID is the log ID as entries name it. For ECDSA and RSA keys (every
	// Rekor v1 log) it is the SHA-256 of the key's PKIX DER; Rekor v2 logs
	// with Ed25519 keys derive it from their origin too, so without a
	// trusted root it is computed from the checkpoint's origin.
	ID []byte
	// Key is the log's public key.
	Key crypto.PublicKey
	// BaseURL is the log's URL, when known (trusted root).
	BaseURL string
	// ValidFrom and ValidUntil bound when the key signed entries (zero:
	// unbounded).
	ValidFrom, ValidUntil time.Time

	verifier signature.Verifier
	pkix     []byte
	// named: the ID names the log under one origin (a trusted root's log
	// ID, SetOrigin), so it is never derived from an entry's checkpoint.
	named bool
}

// NewLog returns a Log for key, with its ID derived from the key.
func NewLog(key crypto.PublicKey) (*Log, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	v, err := signature.LoadVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	id := sha256.Sum256(der)
	return &Log{ID: id[:], Key: key, verifier: v, pkix: der}, nil
}

// name is how Facts and errors name the log.
func (l *Log) name() string {
	if l.BaseURL != "" {
		return l.BaseURL
	}
	return hex.EncodeToString(l.ID)
}

// validAt reports whether the log key was valid at t (Unix seconds); a time
// of 0 (Rekor v2 entries carry none) is not checked.
func (l *Log) validAt(t int64) error {
	if t == 0 {
		return nil
	}
	at := time.Unix(t, 0)
	if !l.ValidFrom.IsZero() && at.Before(l.ValidFrom) {
		return fmt.Errorf("entry integrated at %s, before the log key's validity (from %s)", at.UTC().Format(time.RFC3339), l.ValidFrom.UTC().Format(time.RFC3339))
	}
	if !l.ValidUntil.IsZero() && at.After(l.ValidUntil) {
		return fmt.Errorf("entry integrated at %s, after the log key's validity (until %s)", at.UTC().Format(time.RFC3339), l.ValidUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// Trust is the set of logs whose entries are believed.
type Trust struct {
	Logs []*Log
	// Now, when set, is the clock used to check key validity for entries
	// that carry no signed time (tests set it); default time.Now.
	Now func() time.Time
}

func (t *Trust) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Add adds logs; a log with the same key as one already trusted replaces
// nothing and is skipped.
func (t *Trust) Add(logs ...*Log) {
	for _, l := range logs {
		dup := false
		for _, have := range t.Logs {
			if bytes.Equal(have.pkix, l.pkix) && bytes.Equal(have.ID, l.ID) {
				dup = true
			}
		}
		if !dup {
			t.Logs = append(t.Logs, l)
		}
	}
}

// Empty reports whether no log is trusted.
func (t *Trust) Empty() bool { return t == nil || len(t.Logs) == 0 }

// lookup returns the trusted log an entry names: by log ID, or for Ed25519
// keys by the ID derived from the checkpoint origin.
func (t *Trust) lookup(id []byte, origin string) *Log {
	if t == nil {
		return nil
	}
	for _, l := range t.Logs {
		if bytes.Equal(l.ID, id) {
			return l
		}
	}
	if origin == "" {
		return nil
	}
	for _, l := range t.Logs {
		if k, ok := l.Key.(ed25519.PublicKey); ok && !l.named && bytes.Equal(ed25519LogID(origin, k), id) {
			return l
		}
	}
	return nil
}

// ed25519LogID is the log ID Rekor v2 gives an Ed25519 key: the signed-note
// key hash of (origin, 0x01 || key), in full.
func ed25519LogID(origin string, k ed25519.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(origin + "\n"))
	h.Write([]byte{0x01})
	h.Write(k)
	return h.Sum(nil)
}

// LoadKeyFiles reads PEM public keys of logs (a `--rekor-key` flag each).
func LoadKeyFiles(paths ...string) ([]*Log, error) {
	var out []*Log
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("log key: %w", err)
		}
		key, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("log key %s: not a PEM public key: %w", p, err)
		}
		l, err := NewLog(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// LoadTrustedRoot reads the transparency logs of a Sigstore trusted root
// (trusted_root.json). Parsing is strict; a log whose key is missing or does
// not parse is an error, never skipped.
func LoadTrustedRoot(path string) ([]*Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, maxTrustedRootBytes)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", path, err)
	}
	logs, err := ParseTrustedRoot(data)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", path, err)
	}
	return logs, nil
}

// ParseTrustedRoot parses the transparency logs of a trusted root.
func ParseTrustedRoot(data []byte) ([]*Log, error) {
	var tr trustpb.TrustedRoot
	if err := protojson.Unmarshal(data, &tr); err != nil {
		return nil, fmt.Errorf("not a trusted root: %w", err)
	}
	if !strings.HasPrefix(tr.GetMediaType(), "application/vnd.dev.sigstore.trustedroot") {
		return nil, fmt.Errorf("media type %q is not a trusted root", tr.GetMediaType())
	}
	var out []*Log
	for i, tl := range tr.GetTlogs() {
		l, err := logFromInstance(tl)
		if err != nil {
			return nil, fmt.Errorf("tlogs[%d]: %w", i, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("it lists no transparency log")
	}
	return out, nil
}

func logFromInstance(tl *trustpb.TransparencyLogInstance) (*Log, error) {
	pk := tl.GetPublicKey()
	if len(pk.GetRawBytes()) == 0 {
		return nil, errors.New("no public key")
	}
	key, err := x509.ParsePKIXPublicKey(pk.GetRawBytes())
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	l, err := NewLog(key)
	if err != nil {
		return nil, err
	}
	if id := tl.GetLogId().GetKeyId(); len(id) > 0 {
		l.ID = id
		_, l.named = key.(ed25519.PublicKey)
	}
	if u := tl.GetBaseUrl(); u != "" {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("base URL: %w", err)
		}
		l.BaseURL = u
	}
	if vf := pk.GetValidFor(); vf != nil {
		l.ValidFrom, l.ValidUntil = timeOf(vf.GetStart()), timeOf(vf.GetEnd())
	}
	return l, nil
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// TrustedRoot returns a trusted root (trusted_root.json) listing logs, the
// format cosign's --trusted-root reads. Each log's key is valid from
// validFrom on.
func TrustedRoot(logs []*Log, validFrom time.Time) ([]byte, error) {
	tr := &trustpb.TrustedRoot{MediaType: TrustedRootMediaType}
	for _, l := range logs {
		id := l.ID
		if k, ok := l.Key.(ed25519.PublicKey); ok && l.BaseURL != "" {
			// A Rekor v2 log: its origin is its URL without the scheme.
			id = ed25519LogID(Origin(l.BaseURL), k)
		}
		details, err := keyDetails(l.Key)
		if err != nil {
			return nil, err
		}
		tr.Tlogs = append(tr.Tlogs, &trustpb.TransparencyLogInstance{
			BaseUrl:       l.BaseURL,
			HashAlgorithm: protocommon.HashAlgorithm_SHA2_256,
			PublicKey: &protocommon.PublicKey{
				RawBytes:   l.pkix,
				KeyDetails: details,
				ValidFor:   &protocommon.TimeRange{Start: timestamppb.New(validFrom)},
			},
			LogId: &protocommon.LogId{KeyId: id},
		})
	}
	return protojson.MarshalOptions{Multiline: true}.Marshal(tr)
}

// Origin is the checkpoint origin Sigstore gives a Rekor v2 log at baseURL:
// the URL without its scheme.
func Origin(baseURL string) string {
	if _, rest, ok := strings.Cut(baseURL, "://"); ok {
		return strings.TrimRight(rest, "/")
	}
	return strings.TrimRight(baseURL, "/")
}
