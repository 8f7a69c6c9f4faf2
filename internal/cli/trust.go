package cli

import (
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
)

func (a *App) newTrustCommand() *cobra.Command {
	trust := &cobra.Command{
		Use:   "trust",
		Short: "Choose and inspect the Sigstore trust root used for keyless verification",
		Long: `Keyless signatures are checked against a Sigstore trusted root: the Fulcio
certificate authorities, certificate-transparency logs, Rekor logs and
timestamp authorities to trust. Unless --trusted-root FILE is given, imgsign
gets it from a TUF repository: the public-good Sigstore one by default (its
root metadata is built into imgsign), or a private one chosen once with
'imgsign trust init'. The metadata is refreshed on use and cached in the
user's cache directory; with no network the cache serves until its metadata
expires. Expired or tampered metadata is refused (exit 15), never replaced by
an older root.`,
	}
	trust.AddCommand(a.newTrustInitCommand(), a.newTrustShowCommand())
	return trust
}

func (a *App) newTrustInitCommand() *cobra.Command {
	var mirror, rootFile string
	cmd := &cobra.Command{
		Use:   "init [--mirror URL --root ROOT.json]",
		Short: "Choose the TUF repository of the trust root (as cosign initialize)",
		Long: `Choose the TUF repository that later commands get the trusted root from, as
'cosign initialize' does. --mirror is the repository's base URL and --root a
TUF root.json of it that you trust (obtained out of band); newer root
versions are fetched and verified from it. With neither flag, the
public-good Sigstore repository is chosen again.

The repository is contacted now and must serve a valid trusted root; only
then is the choice stored (in the user's configuration directory, so
clearing caches never switches back to another root).`,
		Example: `  imgsign trust init --mirror https://tuf.internal.example --root root.json
  imgsign trust init        # back to the public-good Sigstore instance`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (mirror == "") != (rootFile == "") {
				return usageError{fmt.Errorf("--mirror and --root go together")}
			}
			opts := trustroot.Options{Mirror: mirror}
			if rootFile != "" {
				data, err := trustroot.ReadFile(rootFile)
				if err != nil {
					return fmt.Errorf("--root: %w", err)
				}
				opts.Root = data
			}
			r, err := trustroot.Init(cmd.Context(), opts)
			if err != nil {
				return err
			}
			info := r.Info()
			fmt.Fprintf(a.Stderr, "Trust root: TUF repository %s (root version %d), cached in %s\n", info.Mirror, info.RootVersion, info.CacheDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&mirror, "mirror", "", "base URL of a private Sigstore TUF repository")
	cmd.Flags().StringVar(&rootFile, "root", "", "a trusted TUF root.json of that repository")
	return cmd
}

func (a *App) newTrustShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show [--json]",
		Short: "Print the trust root keyless verification uses, and where it comes from",
		Long: `Refresh the configured TUF repository (or use its valid cache when it cannot
be reached) and print what it makes trusted. --json prints the trusted root
itself (trusted_root.json): saved to a file, it serves 'verify
--trusted-root FILE' on machines with no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := trustroot.Open(cmd.Context(), trustroot.Options{
				Warn: func(msg string) { fmt.Fprintf(a.Stderr, "Warning: %s\n", msg) },
			})
			if err != nil {
				return err
			}
			tr, err := r.TrustedRoot()
			if err != nil {
				return err
			}
			if asJSON {
				data, err := tr.MarshalJSON()
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.Stdout, "%s\n", data)
				return err
			}
			printTrust(a.Stdout, r.Info(), tr)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the trusted root (trusted_root.json)")
	return cmd
}

func printTrust(w io.Writer, info trustroot.Info, tr *root.TrustedRoot) {
	kind := "chosen with 'imgsign trust init'"
	if info.PublicGood {
		kind = "public-good Sigstore, root built into imgsign"
	}
	fmt.Fprintf(w, "TUF repository: %s (%s)\n", info.Mirror, kind)
	state := "refreshed now"
	if info.FromCache {
		state = "cache used without contacting the repository"
		if info.Unreachable != nil {
			state = "repository unreachable, cache used"
		}
	}
	fmt.Fprintf(w, "Cache: %s (%s)\n", info.CacheDir, state)
	fmt.Fprintf(w, "TUF root version %d; metadata valid until %s\n", info.RootVersion, info.Expires.UTC().Format(time.RFC3339))
	cas := tr.FulcioCertificateAuthorities()
	fmt.Fprintf(w, "Certificate authorities: %d\n", len(cas))
	for _, ca := range cas {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok && f.Root != nil {
			fmt.Fprintf(w, "  %s  %q  %s\n", f.URI, f.Root.Subject.String(), validity(f.ValidityPeriodStart, f.ValidityPeriodEnd))
		}
	}
	printLogs(w, "Certificate-transparency logs", tr.CTLogs())
	printLogs(w, "Rekor transparency logs", tr.RekorLogs())
	tsas := tr.TimestampingAuthorities()
	fmt.Fprintf(w, "Timestamp authorities: %d\n", len(tsas))
	for _, ta := range tsas {
		if s, ok := ta.(*root.SigstoreTimestampingAuthority); ok && s.Root != nil {
			fmt.Fprintf(w, "  %s  %q  %s\n", s.URI, s.Root.Subject.String(), validity(s.ValidityPeriodStart, s.ValidityPeriodEnd))
		}
	}
}

func printLogs(w io.Writer, title string, logs map[string]*root.TransparencyLog) {
	fmt.Fprintf(w, "%s: %d\n", title, len(logs))
	ids := make([]string, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		l := logs[id]
		fmt.Fprintf(w, "  %s  id %s  %s\n", l.BaseURL, hex.EncodeToString(l.ID), validity(l.ValidityPeriodStart, l.ValidityPeriodEnd))
	}
}

func validity(start, end time.Time) string {
	s := "valid from " + start.UTC().Format(time.DateOnly)
	if !end.IsZero() {
		s += " to " + end.UTC().Format(time.DateOnly)
	}
	return s
}
