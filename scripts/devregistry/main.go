// Command devregistry is the local registry of `make demo`: go-containerregistry's
// in-process registry served on 127.0.0.1, plus the two tools the demo needs
// to play an attacker without Docker (push an image, copy a manifest).
//
//	devregistry serve [-addr 127.0.0.1:0] [-addr-file F] [-referrers]
//	    GET /_devregistry/requests answers how many registry (/v2/)
//	    requests were served, for benchmarks that count round trips.
//	devregistry push-random HOST/REPO:TAG     prints HOST/REPO@sha256:...
//	devregistry copy-manifest SRC DST         copies a manifest's bytes
//
// It is a development aid, not part of imgsign.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devregistry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: devregistry serve|push-random|copy-manifest ...")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:])
	case "push-random":
		if len(args) != 2 {
			return errors.New("usage: devregistry push-random HOST/REPO:TAG")
		}
		return pushRandom(ctx, args[1], stdout)
	case "copy-manifest":
		if len(args) != 3 {
			return errors.New("usage: devregistry copy-manifest SRC DST")
		}
		return copyManifest(ctx, args[1], args[2])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	addrFile := fs.String("addr-file", "", "write the address listened on to this file")
	referrers := fs.Bool("referrers", false, "enable the OCI 1.1 referrers API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to listen on %s: loopback only", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return err
		}
	}
	opts := []registry.Option{registry.Logger(log.New(io.Discard, "", 0))}
	if *referrers {
		opts = append(opts, registry.WithReferrersSupport(true))
	}
	srv := &http.Server{Handler: counting(registry.New(opts...))}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// counting serves the request count at /_devregistry/requests and counts
// every other request.
func counting(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_devregistry/requests" {
			fmt.Fprintln(w, n.Load())
			return
		}
		n.Add(1)
		next.ServeHTTP(w, r)
	})
}

func pushRandom(ctx context.Context, ref string, stdout io.Writer) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	img, err := random.Image(512, 2)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tag.Context().Digest(d.String()))
	return err
}

func copyManifest(ctx context.Context, src, dst string) error {
	s, err := name.ParseReference(src)
	if err != nil {
		return err
	}
	d, err := name.ParseReference(dst)
	if err != nil {
		return err
	}
	desc, err := remote.Get(s, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	return remote.Put(d, desc, remote.WithContext(ctx))
}
