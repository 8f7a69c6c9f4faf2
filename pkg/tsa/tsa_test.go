package tsa_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/digitorus/timestamp"
	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/tsa"
)

// TestTimestamp: a token over the bytes sent, verified by sigstore-go
// against the TSA's trusted root, and not over other bytes.
func TestTimestamp(t *testing.T) {
	fake := sigstoretest.Start(t)
	c := tsa.New([]string{fake.TSAURL, fake.TSAURL}, tsa.Options{})
	tokens, err := c.Timestamp(context.Background(), []byte("these bytes"), "a test")
	if err != nil || len(tokens) != 2 || c.Requests() != 2 {
		t.Fatalf("tokens %d, requests %d, err %v", len(tokens), c.Requests(), err)
	}
	if _, err := keyless.VerifyTimestamp(tokens[1], []byte("these bytes"), fake.Trusted); err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.VerifyTimestamp(tokens[0], []byte("other bytes"), fake.Trusted); err == nil {
		t.Fatal("a token verified over bytes it does not cover")
	}
	if tok, err := c.One(context.Background(), []byte("x"), "a test"); err != nil || tok == nil || c.Requests() != 3 {
		t.Fatalf("One: %v, requests %d", err, c.Requests())
	}
}

// TestTimestampOfOtherBytesRefused: a TSA that answers with a (valid)
// token over other bytes than those sent is refused, with the reason.
func TestTimestampOfOtherBytesRefused(t *testing.T) {
	fake := sigstoretest.Start(t)
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.Sum256([]byte("other bytes"))
		req, _ := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: h[:]}).Marshal()
		resp, err := http.Post(fake.TSAURL, "application/timestamp-query", bytes.NewReader(req))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	}))
	defer liar.Close()
	_, err := tsa.New([]string{liar.URL}, tsa.Options{}).Timestamp(context.Background(), []byte("these bytes"), "the signature")
	if !errors.Is(err, tsa.ErrFailed) || !strings.Contains(err.Error(), "covers other bytes") || !strings.Contains(err.Error(), liar.URL) {
		t.Fatalf("err = %v", err)
	}
}

// TestTimestampFailure: an error status is reported with the TSA's URL and
// the status, and matches ErrFailed; so does garbage instead of a token.
func TestTimestampFailure(t *testing.T) {
	fake := sigstoretest.Start(t)
	fake.FailTSA.Store(true)
	_, err := tsa.New([]string{fake.TSAURL}, tsa.Options{}).One(context.Background(), []byte("x"), "the signature")
	if !errors.Is(err, tsa.ErrFailed) || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), fake.TSAURL) {
		t.Fatalf("err = %v", err)
	}
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not a token")) }))
	defer garbage.Close()
	_, err = tsa.New([]string{garbage.URL}, tsa.Options{}).One(context.Background(), []byte("x"), "the signature")
	if !errors.Is(err, tsa.ErrFailed) {
		t.Fatalf("err = %v", err)
	}
}
