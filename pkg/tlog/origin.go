package tlog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// maxCheckpointBytes bounds a checkpoint read from a log.
const maxCheckpointBytes = 64 << 10

// ErrNotTileLog is returned by SetOrigin for a key that cannot sign a
// Rekor v2 (tile log) checkpoint.
var ErrNotTileLog = errors.New("not an Ed25519 key: Rekor v2 logs sign checkpoints with Ed25519")

// SetOrigin names l as the Rekor v2 log whose checkpoints carry origin: its
// ID becomes the signed-note key ID SHA-256(origin || "\n" || 0x01 || key)
// and its base URL https://ORIGIN, as Sigstore clients (cosign v3,
// sigstore-go) look Rekor v2 logs up in a trusted root.
func (l *Log) SetOrigin(origin string) error {
	k, ok := l.Key.(ed25519.PublicKey)
	if !ok {
		return ErrNotTileLog
	}
	if origin == "" || strings.ContainsAny(origin, " \t\n+") {
		return fmt.Errorf("checkpoint origin %q: want a non-empty name without spaces or '+'", origin)
	}
	l.ID = ed25519LogID(origin, k)
	l.BaseURL = "https://" + origin
	l.named = true
	return nil
}

// CheckpointOrigin reads the checkpoint a tile log publishes at
// readURL/checkpoint and returns its origin (its first line), once the
// checkpoint's signature by l's key under that origin is checked: the
// origin is never taken from a checkpoint the key did not sign.
func (l *Log) CheckpointOrigin(ctx context.Context, hc *http.Client, readURL string) (string, error) {
	if _, ok := l.Key.(ed25519.PublicKey); !ok {
		return "", ErrNotTileLog
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimRight(readURL, "/") + "/checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("checkpoint URL: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("read the log's checkpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, maxCheckpointBytes)
	if err != nil {
		return "", fmt.Errorf("read the log's checkpoint at %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", httpError(http.MethodGet, u, resp.StatusCode, body)
	}
	origin, _, _ := strings.Cut(string(body), "\n")
	if _, err := l.verifyCheckpoint(string(body), origin); err != nil {
		return "", fmt.Errorf("checkpoint at %s (origin %q): %w", u, origin, err)
	}
	return origin, nil
}
