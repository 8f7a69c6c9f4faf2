package tlog_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/tlog"
)

// BenchmarkVerify measures the offline check of one entry: a Rekor v1
// entry (SET and inclusion proof) and a Rekor v2 entry (inclusion proof
// and signed-note checkpoint).
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name string
		log  func(testing.TB) *tlogtest.Log
	}{{"v1", tlogtest.NewV1}, {"v2", tlogtest.NewV2}} {
		b.Run(tc.name, func(b *testing.B) {
			l := tc.log(b)
			// A tree of some size, so that the proof has hashes to check.
			for range 100 {
				upload(b, l, signed(b))
			}
			w := signed(b)
			e := upload(b, l, w)
			trust := l.Trust()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := trust.Verify(e, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Round trips to the log: one request per upload when the version is
// known, one more (once per client) to ask it; a lookup costs two.
func TestLogRequests(t *testing.T) {
	l := tlogtest.NewV1(t)
	for _, tc := range []struct {
		version, want int
	}{{tlog.V1, 1}, {0, 2}} {
		c := client(t, l.URL, tc.version)
		before := l.Requests()
		upload := func() {
			if _, err := c.Upload(ctx(t), signed(t)); err != nil {
				t.Fatal(err)
			}
		}
		upload()
		if n := l.Requests() - before; n != tc.want {
			t.Errorf("version %d: first upload took %d requests, want %d", tc.version, n, tc.want)
		}
		before = l.Requests()
		upload()
		if n := l.Requests() - before; n != 1 {
			t.Errorf("version %d: second upload took %d requests, want 1", tc.version, n)
		}
	}
	w := signed(t)
	upload(t, l, w)
	before := l.Requests()
	if found, err := client(t, l.URL, tlog.V1).Lookup(ctx(t), w); err != nil || len(found) != 1 {
		t.Fatalf("lookup: %d entries, %v", len(found), err)
	}
	if n := l.Requests() - before; n != 2 {
		t.Errorf("lookup took %d requests, want 2", n)
	}
}

// A log answering 503 is asked three times in all, then the error names
// the status; nothing is retried after the context ends.
func TestLogRetries(t *testing.T) {
	l := tlogtest.NewV1(t)
	l.Fail(503)
	_, err := client(t, l.URL, tlog.V1).Upload(ctx(t), signed(t))
	if !errors.Is(err, tlog.ErrLog) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if n := l.Requests(); n != 3 {
		t.Errorf("%d requests, want 3 (two retries)", n)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	before := l.Requests()
	if _, err := client(t, l.URL, tlog.V1).Upload(c, signed(t)); err == nil {
		t.Fatal("upload with a cancelled context succeeded")
	}
	if n := l.Requests() - before; n != 0 {
		t.Errorf("%d requests after the context ended", n)
	}
}
