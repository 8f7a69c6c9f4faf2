package cli

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/spf13/cobra"
)

func (a *App) newAttachCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "attach",
		Short: "Attach signatures made offline (sign --upload=false) to images",
	}
	var (
		payloadPath, sigPath, entryPath, sigRepo string
		reg                                      registryFlags
	)
	cmd := &cobra.Command{
		Use:   "signature --payload F --signature F [--tlog-entry F] IMAGE",
		Short: "Store a detached signature (and its log entry) next to an image",
		Long: `Store a signature made with 'imgsign sign --upload=false' (or by another
tool in cosign's format) in the legacy signature tag sha256-<hex>.sig of
IMAGE. IMAGE is resolved once and the payload must name that digest. With
--tlog-entry (from sign --output-tlog-entry), the log entry travels with the
signature as if it had been signed online. The signature is not checked
here; verify checks it, and its log entry, before anything trusts it.`,
		Example: `  imgsign sign --key k.key --rekor-url URL --upload=false --output-payload p.json --output-signature p.sig --output-tlog-entry p.tlog IMAGE
  imgsign attach signature --payload p.json --signature p.sig --tlog-entry p.tlog IMAGE`,
		Args: exactArgs(1, "one image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if payloadPath == "" || sigPath == "" {
				return usageError{fmt.Errorf("--payload and --signature are required")}
			}
			var d sign.Detached
			var err error
			if d.Payload, err = readInputFile(payloadPath, a.Stdin, oci.DefaultMaxPayloadBytes); err != nil {
				return err
			}
			raw, err := readInputFile(sigPath, a.Stdin, maxSignatureFileBytes)
			if err != nil {
				return err
			}
			d.Signature = string(bytes.TrimSpace(raw))
			if entryPath != "" {
				data, err := readInputFile(entryPath, a.Stdin, tlog.MaxResponseBytes)
				if err != nil {
					return err
				}
				if d.Entry, err = tlog.ParseEntry(data); err != nil {
					return usageError{fmt.Errorf("%s: %w", entryPath, err)}
				}
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			repo, err := a.signatureRepo(sigRepo)
			if err != nil {
				return err
			}
			client, ctx, cancel, err := reg.client(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer cancel()
			s, err := sign.Attach(ctx, client, refs[0], d, repo)
			if errors.Is(err, sign.ErrWrongImage) || errors.Is(err, payload.ErrInvalid) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if s.Added {
				fmt.Fprintf(a.Stderr, "Attached the signature of %s in %s\n", s.Image, s.Tag)
			} else {
				fmt.Fprintf(a.Stderr, "%s already carries this signature in %s\n", s.Image, s.Tag)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payloadPath, "payload", "", "the signed payload (sign --output-payload)")
	f.StringVar(&sigPath, "signature", "", "the base64 signature (sign --output-signature)")
	f.StringVar(&entryPath, "tlog-entry", "", "the signature's transparency-log entry (sign --output-tlog-entry)")
	f.StringVar(&sigRepo, "signature-repository", "", "store the signature in this repository (default $"+envRepository+", then the image's)")
	reg.register(cmd)
	root.AddCommand(cmd)
	return root
}
