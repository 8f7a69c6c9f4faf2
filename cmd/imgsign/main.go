// Command imgsign signs container images and verifies them before deploy.
// This file only wires the process to the CLI in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/imgsign/imgsign/internal/cli"
	// The collector is off while packages initialise; main turns it on.
	"github.com/imgsign/imgsign/internal/initgc"
	// Key URIs (awskms://, gcpkms://, azurekms://, hashivault://).
	_ "github.com/imgsign/imgsign/pkg/keys/kmsproviders"
)

func main() {
	initgc.Resume()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.DefaultApp().Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
