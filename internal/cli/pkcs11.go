package cli

import (
	"fmt"

	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/spf13/cobra"
)

// newPKCS11Command lists what a PKCS#11 module offers. The tokens and keys
// are read through the PKCS#11 backend that a pkcs11 build registers; the
// default (pure Go) build says which build is needed.
func (a *App) newPKCS11Command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pkcs11",
		Short: "List the tokens and keys of a PKCS#11 module (pkcs11 build only)",
		Long: `List what a PKCS#11 module offers, with the pkcs11: URI to pass to --key.
PKCS#11 needs cgo: it is in the pkcs11 build of imgsign (release archives
imgsign-pkcs11_*, or 'go build -tags pkcs11' with CGO_ENABLED=1), not in the
default build.`,
		Args: exactArgs(0, "a subcommand (tokens, keys)"),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var module string
	var slot int
	tokens := &cobra.Command{
		Use:   "tokens --module-path M",
		Short: "List the tokens of a PKCS#11 module",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keys.PKCS11Lister == nil {
				return errPKCS11Build
			}
			if module == "" {
				return usageError{fmt.Errorf("--module-path is required")}
			}
			ts, err := keys.PKCS11Lister.Tokens(module)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				fmt.Fprintf(a.Stderr, "No initialised token in %s\n", module)
			}
			for _, t := range ts {
				fmt.Fprintf(a.Stdout, "slot-id=%d\ttoken=%s\tmanufacturer=%s\tmodel=%s\tserial=%s\n", t.SlotID, t.Label, t.Manufacturer, t.Model, t.Serial)
			}
			return nil
		},
	}
	tokens.Flags().StringVar(&module, "module-path", "", "the PKCS#11 module (.so) to load")
	keysCmd := &cobra.Command{
		Use:   "keys --module-path M --slot-id N",
		Short: "List the keys on a token, with their pkcs11: URIs",
		Args:  exactArgs(0, "no arguments"),
		Long: `List the keys on the token in --slot-id, each with the pkcs11: URI to pass
to --key (add pin-value= or pin-source=, or set ` + keys.EnvPKCS11Pin + `).
Without a PIN the public keys are listed; with ` + keys.EnvPKCS11Pin + ` set,
the private keys (after logging in). The PIN is never printed.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keys.PKCS11Lister == nil {
				return errPKCS11Build
			}
			if module == "" || slot < 0 {
				return usageError{fmt.Errorf("--module-path and --slot-id are required")}
			}
			pin, _ := a.LookupEnv(keys.EnvPKCS11Pin)
			ks, err := keys.PKCS11Lister.Keys(module, uint(slot), pin)
			if err != nil {
				return err
			}
			if len(ks) == 0 {
				fmt.Fprintf(a.Stderr, "No keys in slot %d\n", slot)
			}
			for _, k := range ks {
				fmt.Fprintf(a.Stdout, "%s\t%s\t%s\n", k.Type, k.Label, k.URI)
			}
			return nil
		},
	}
	keysCmd.Flags().StringVar(&module, "module-path", "", "the PKCS#11 module (.so) to load")
	keysCmd.Flags().IntVar(&slot, "slot-id", -1, "the slot of the token")
	cmd.AddCommand(tokens, keysCmd)
	return cmd
}

var errPKCS11Build = fmt.Errorf("%w: PKCS#11 needs the pkcs11 build of imgsign (built with cgo and -tags pkcs11; the release archives named imgsign-pkcs11_*)", keys.ErrNoProvider)
