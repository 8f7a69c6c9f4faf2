package tlog_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/tlog"
)

func loadLog(t *testing.T, pem []byte) *tlog.Log {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log.pub")
	if err := os.WriteFile(p, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	logs, err := tlog.LoadKeyFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	return logs[0]
}

// TestCheckpointOrigin: the origin is read from a checkpoint the key
// signed, and names the log as Rekor v2 does; a checkpoint by another key,
// or with its origin line rewritten, gives no origin.
func TestCheckpointOrigin(t *testing.T) {
	fake := tlogtest.NewV2(t)
	cp := fake.Checkpoint(1, bytes.Repeat([]byte{7}, 32))
	serve := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/checkpoint" {
				http.NotFound(w, r)
				return
			}
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	l := loadLog(t, fake.PublicKeyPEM())
	origin, err := l.CheckpointOrigin(context.Background(), nil, serve(cp))
	if err != nil || origin != fake.Origin {
		t.Fatalf("origin %q, %v; want %q", origin, err, fake.Origin)
	}
	if err := l.SetOrigin(origin); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.ID, fake.LogID) || l.BaseURL != "https://"+fake.Origin {
		t.Fatalf("ID %x base %s; want %x https://%s", l.ID, l.BaseURL, fake.LogID, fake.Origin)
	}

	other := loadLog(t, tlogtest.NewV2(t).PublicKeyPEM())
	if _, err := other.CheckpointOrigin(context.Background(), nil, serve(cp)); !errors.Is(err, tlog.ErrInvalid) {
		t.Fatalf("checkpoint of another log: err = %v, want ErrInvalid", err)
	}
	first, rest, _ := strings.Cut(cp, "\n")
	if _, err := l.CheckpointOrigin(context.Background(), nil, serve(first+"x\n"+rest)); !errors.Is(err, tlog.ErrInvalid) {
		t.Fatalf("rewritten origin: err = %v, want ErrInvalid", err)
	}
	if _, err := l.CheckpointOrigin(context.Background(), nil, serve(cp)+"/nowhere"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("no checkpoint there: err = %v, want the 404", err)
	}
	v1 := loadLog(t, tlogtest.NewV1(t).PublicKeyPEM())
	if err := v1.SetOrigin("x"); !errors.Is(err, tlog.ErrNotTileLog) {
		t.Fatalf("SetOrigin on an ECDSA key: %v", err)
	}
}
