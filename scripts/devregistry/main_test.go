package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestServePushCopy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrFile := filepath.Join(t.TempDir(), "addr")
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "-addr-file", addrFile}, nil) }()
	var host string
	for i := 0; i < 100 && host == ""; i++ {
		b, _ := os.ReadFile(addrFile)
		host = string(b)
		time.Sleep(20 * time.Millisecond)
	}
	if host == "" {
		t.Fatal("no address written")
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"push-random", host + "/demo/app:v1"}, &out); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimSpace(out.String())
	if !strings.HasPrefix(ref, host+"/demo/app@sha256:") {
		t.Fatalf("push-random printed %q", ref)
	}
	if err := run(ctx, []string{"copy-manifest", ref, host + "/demo/copy:v1"}, nil); err != nil {
		t.Fatal(err)
	}
	copyRef, _ := name.ParseReference(host + "/demo/copy:v1")
	d, err := remote.Get(copyRef)
	if err != nil || !strings.HasSuffix(ref, d.Digest.String()) {
		t.Fatalf("copy: %v %v", d, err)
	}
	resp, err := http.Get("http://" + host + "/_devregistry/requests")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n, _ := strconv.Atoi(strings.TrimSpace(string(body))); n < 5 {
		t.Fatalf("request count %q, want at least the 5 requests made", body)
	}
	if err := run(ctx, []string{"serve", "-addr", "0.0.0.0:0"}, nil); err == nil {
		t.Fatal("listened beyond loopback")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
