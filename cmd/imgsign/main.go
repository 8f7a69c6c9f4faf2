// Command imgsign signs container images and verifies them before deploy.
// This file only wires the process to the CLI in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/imgsign/imgsign/internal/cli"
)

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// sets another: the garbage collector works harder near it rather than let
// the heap double past what is live. imgsign's limits keep what is live
// well below it (one attestation at a time, streamed blobs).
const memoryLimit = 96 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.DefaultApp().Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
