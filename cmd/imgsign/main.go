// Command imgsign signs container images and verifies them before deploy.
// This file only wires the process to the CLI in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/imgsign/imgsign/internal/cli"
	// Key URIs (awskms://, gcpkms://, azurekms://, hashivault://).
	_ "github.com/imgsign/imgsign/pkg/keys/kmsproviders"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.DefaultApp().Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
