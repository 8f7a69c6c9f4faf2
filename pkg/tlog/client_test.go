package tlog_test

import (
	"context"
	"crypto"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	trustpb "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/imgsign/imgsign/internal/tlogtest"
	"github.com/imgsign/imgsign/pkg/tlog"
)

func writeFile(p string, data []byte) error { return os.WriteFile(p, data, 0o600) }

func TestNewClientRejects(t *testing.T) {
	for _, u := range []string{"", "rekor.example", "ftp://rekor.example", "http://", "https://%zz"} {
		if _, err := tlog.NewClient(u, 0, nil); err == nil {
			t.Errorf("NewClient(%q) succeeded", u)
		}
	}
	if _, err := tlog.NewClient("https://rekor.example", 3, nil); err == nil {
		t.Error("NewClient with API version 3 succeeded")
	}
	c := client(t, "https://rekor.example/", tlog.V2)
	if v, err := c.Version(context.Background()); v != tlog.V2 || err != nil {
		t.Errorf("given version: %d, %v", v, err)
	}
	if c.URL() != "https://rekor.example" {
		t.Errorf("URL = %q", c.URL())
	}
}

func TestLogUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range []int{0, tlog.V1, tlog.V2} {
		_, err := client(t, "http://"+addr, v).Upload(c, signed(t))
		if err == nil || errors.Is(err, tlog.ErrLog) || !strings.Contains(err.Error(), addr) {
			t.Errorf("version %d: upload to a closed port: %v", v, err)
		}
	}
}

func TestLogMisbehaves(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*tlogtest.Log)
		msg    string
	}{
		{"HTTP 500", func(l *tlogtest.Log) { l.Fail(http.StatusInternalServerError) }, "HTTP 500"},
		{"HTTP 429", func(l *tlogtest.Log) { l.Fail(http.StatusTooManyRequests) }, "HTTP 429"},
		{"oversized answer", func(l *tlogtest.Log) { l.Oversize(true) }, "larger than"},
		{"garbage JSON", func(l *tlogtest.Log) { l.Garbage(true) }, "malformed"},
	} {
		for _, mk := range []func(testing.TB) *tlogtest.Log{tlogtest.NewV1, tlogtest.NewV2} {
			l := mk(t)
			v, err := client(t, l.URL, 0).Version(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(l)
			_, err = client(t, l.URL, v).Upload(ctx(t), signed(t))
			if !errors.Is(err, tlog.ErrLog) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s, v%d: upload: %v; want ErrLog saying %q", tc.name, v, err, tc.msg)
			}
			if v == tlog.V1 {
				_, err = client(t, l.URL, v).Search(ctx(t), make([]byte, 32))
				if !errors.Is(err, tlog.ErrLog) {
					t.Errorf("%s: search: %v; want ErrLog", tc.name, err)
				}
				_, err = client(t, l.URL, v).PublicKey(ctx(t))
				if err == nil {
					t.Errorf("%s: public key: no error", tc.name)
				}
			}
		}
	}
}

// A v1 log that fails for a while is not taken for a v2 log.
func TestVersionDetectionNeedsAnAnswer(t *testing.T) {
	l := tlogtest.NewV1(t)
	c := client(t, l.URL, 0)
	l.Fail(http.StatusServiceUnavailable)
	if v, err := c.Version(ctx(t)); !errors.Is(err, tlog.ErrLog) {
		t.Fatalf("version of a failing log: %d, %v; want ErrLog", v, err)
	}
	l.Fail(0)
	if v, err := c.Version(ctx(t)); v != tlog.V1 || err != nil {
		t.Fatalf("version once the log answers: %d, %v", v, err)
	}
	n := l.Requests()
	if v, _ := c.Version(ctx(t)); v != tlog.V1 || l.Requests() != n {
		t.Fatal("the version was not remembered")
	}
}

func TestSlowLog(t *testing.T) {
	l := tlogtest.NewV1(t)
	l.Delay(time.Minute)
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client(t, l.URL, tlog.V1).Upload(c, signed(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("upload to a slow log: %v; want a deadline error", err)
	}
}

func TestPublicKey(t *testing.T) {
	l := tlogtest.NewV1(t)
	k, err := client(t, l.URL, 0).PublicKey(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k) {
		t.Fatal("the log served another key")
	}
	if _, err := client(t, tlogtest.NewV2(t).URL, 0).PublicKey(ctx(t)); !errors.Is(err, tlog.ErrLog) {
		t.Fatalf("public key of a v2 log: %v", err)
	}
}

func TestTrustedRootRoundTrip(t *testing.T) {
	v1, v2 := tlogtest.NewV1(t), tlogtest.NewV2(t)
	logs := []*tlog.Log{v1.TrustLog(), v2.TrustLog()}
	from := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	data, err := tlog.TrustedRoot(logs, from)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tlog.ParseTrustedRoot(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(back) != 2 {
		t.Fatalf("%d logs", len(back))
	}
	// A v1 log keeps its key-derived ID; a v2 log gets the ID Sigstore
	// derives from its origin (its URL without the scheme).
	wantIDs := [][]byte{v1.LogID, v2.LogID}
	for i, l := range back {
		if !slices.Equal(l.ID, wantIDs[i]) || l.BaseURL != logs[i].BaseURL || !l.ValidFrom.Equal(from) || !l.ValidUntil.IsZero() ||
			!logs[i].Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(l.Key) {
			t.Errorf("log %d: %+v", i, l)
		}
	}
	// Entries of both logs verify with the parsed root, read from a file.
	p := t.TempDir() + "/trusted_root.json"
	if err := writeFile(p, data); err != nil {
		t.Fatal(err)
	}
	loaded, err := tlog.LoadTrustedRoot(p)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tlog.Trust{}
	tr.Add(loaded...)
	tr.Add(loaded...)
	if len(tr.Logs) != 2 {
		t.Fatalf("Add kept %d logs", len(tr.Logs))
	}
	for _, l := range []*tlogtest.Log{v1, v2} {
		w := signed(t)
		if f := mustVerify(t, tr, l.Sign(w), w); f.Log != l.URL {
			t.Errorf("facts name the log %q, want %q", f.Log, l.URL)
		}
	}
}

func TestTrustedRootRejects(t *testing.T) {
	l := tlogtest.NewV1(t)
	good, err := tlog.TrustedRoot([]*tlog.Log{l.TrustLog()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(*trustpb.TrustedRoot)) string {
		var tr trustpb.TrustedRoot
		if err := protojson.Unmarshal(good, &tr); err != nil {
			t.Fatal(err)
		}
		f(&tr)
		out, err := protojson.Marshal(&tr)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	for name, data := range map[string]string{
		"log without a key": mutate(func(tr *trustpb.TrustedRoot) { tr.Tlogs[0].PublicKey = nil }),
		"log key not PKIX":  mutate(func(tr *trustpb.TrustedRoot) { tr.Tlogs[0].PublicKey.RawBytes = []byte("junk") }),
		"wrong media type":  mutate(func(tr *trustpb.TrustedRoot) { tr.MediaType = "application/vnd.dev.sigstore.bundle+json;version=0.3" }),
		"no media type":     mutate(func(tr *trustpb.TrustedRoot) { tr.MediaType = "" }),
		"no log":            mutate(func(tr *trustpb.TrustedRoot) { tr.Tlogs = nil }),
		"bad base URL":      mutate(func(tr *trustpb.TrustedRoot) { tr.Tlogs[0].BaseUrl = "http://%zz" }),
		"one bad log of two": mutate(func(tr *trustpb.TrustedRoot) {
			tr.Tlogs = append(tr.Tlogs, &trustpb.TransparencyLogInstance{PublicKey: &protocommon.PublicKey{}})
		}),
		"unknown field":       strings.Replace(string(good), `"mediaType"`, `"bogus": 1, "mediaType"`, 1),
		"not JSON":            "{",
		"a cosign public key": string(l.PublicKeyPEM()),
	} {
		if logs, err := tlog.ParseTrustedRoot([]byte(data)); err == nil {
			t.Errorf("%s: ParseTrustedRoot succeeded: %v", name, logs)
		}
	}
	if _, err := tlog.LoadTrustedRoot(t.TempDir() + "/missing.json"); err == nil {
		t.Error("LoadTrustedRoot of a missing file succeeded")
	}
	if _, err := tlog.LoadKeyFiles(t.TempDir() + "/missing.pub"); err == nil {
		t.Error("LoadKeyFiles of a missing file succeeded")
	}
	p := t.TempDir() + "/not-a-key.pub"
	if err := writeFile(p, good); err != nil {
		t.Fatal(err)
	}
	if _, err := tlog.LoadKeyFiles(p); err == nil {
		t.Error("LoadKeyFiles of a trusted root succeeded")
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://log2025-1.rekor.sigstore.dev/": "log2025-1.rekor.sigstore.dev",
		"http://127.0.0.1:3003":                 "127.0.0.1:3003",
		"rekor.example":                         "rekor.example",
	} {
		if got := tlog.Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseCosignBundle(f *testing.F) {
	l := tlogtest.NewV1(f)
	w := signed(f)
	good, err := tlog.CosignBundle(l.Sign(w))
	if err != nil {
		f.Fatal(err)
	}
	tr := l.Trust()
	f.Add(good)
	f.Add([]byte(`{"SignedEntryTimestamp":"AA==","Payload":{"body":"e30=","integratedTime":1,"logIndex":-1,"logID":""}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := tlog.ParseCosignBundle(data)
		if err != nil {
			if !errors.Is(err, tlog.ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if _, err := tr.Verify(e, w); err != nil && !errors.Is(err, tlog.ErrInvalid) {
			t.Fatalf("error not wrapping ErrInvalid: %v", err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	v1, v2 := tlogtest.NewV1(f), tlogtest.NewV2(f)
	w := signed(f)
	tr := &tlog.Trust{}
	tr.Add(v1.TrustLog(), v2.TrustLog())
	for _, l := range []*tlogtest.Log{v1, v2} {
		l.Sign(signed(f))
		data, err := tlog.MarshalEntry(l.Sign(w))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"inclusionProof":{"logIndex":"0","treeSize":"1","checkpoint":{"envelope":"a\n1\nAA==\n\n— a AAAA\n"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := tlog.ParseEntry(data)
		if err != nil {
			return
		}
		if f, err := tr.Verify(e, w); err != nil && !errors.Is(err, tlog.ErrInvalid) {
			t.Fatalf("error not wrapping ErrInvalid: %v", err)
		} else if err == nil && len(f.Checked) == 0 {
			t.Fatalf("verified with nothing checked: %+v", f)
		}
	})
}
