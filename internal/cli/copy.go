package cli

import (
	"crypto"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *App) newCopyCommand() *cobra.Command {
	var (
		platform    string
		noAttached  bool
		reg         registryFlags
		gf          gateFlags
		keyPaths    []string
		kl          keylessFlags
		trustedRoot string
		verifyAfter bool
		sigRepo     string
	)
	cmd := &cobra.Command{
		Use:   "copy [--platform os/arch] [--no-attached] SRC DST",
		Short: "Copy an image with its signatures and attestations to another registry",
		Long: `Copy the image SRC to DST (another registry or repository) together with
everything attached to it, so that its signatures and attestations verify at
DST, with imgsign and with cosign.

SRC is resolved to its digest once. The manifest is copied byte for byte, so
DST holds the very digest the signatures name (this is checked); layers
stream from registry to registry and are never held in memory. DST is a tag,
where the image is tagged, or REPOSITORY@DIGEST with SRC's digest.

Copied along, for the image (and, for a multi-platform index, for the index
and each platform's manifest):
  - the legacy tags sha256-<hex>.sig, .att and .sbom (cosign v1/v2 storage);
    a tag already at DST keeps its signatures and gains the copied ones;
  - every OCI 1.1 referrer (cosign v3 bundles, SBOMs, ...), listed at DST by
    the registry's referrers API, or added to the fallback index (tag
    sha256-<hex>) where DST has none, keeping the entries already there.
Copying again adds nothing twice.

With --platform and an index, only that platform's manifest is copied, with
what is attached to it: verify it at DST by its own digest. One set of
registry credentials (flags, environment or Docker config) serves both ends.

--signature-repository (default $IMGSIGN_REPOSITORY, then $COSIGN_REPOSITORY)
reads SRC's attachments where 'imgsign sign --signature-repository' stored
them; they are copied next to DST, so DST verifies without the flag.

--verify checks the copy where it landed: the signatures at DST, by digest,
against --key (as 'imgsign verify' does) or the trust policy of --policy.
Keys and policy are loaded before anything is copied.`,
		Example: `  imgsign copy registry.example.com/app:1.4.2 mirror.example.com/app:1.4.2
  imgsign copy --platform linux/arm64 registry.example.com/app:1.4.2 edge.example.com/app:1.4.2-arm64
  imgsign copy --no-attached registry.example.com/app@sha256:... mirror.example.com/app:1.4.2
  imgsign copy --verify --key imgsign.pub registry.example.com/app:1.4.2 mirror.example.com/app:1.4.2`,
		Args: exactArgs(2, "a source and a destination image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			plat, err := parsePlatform(platform)
			if err != nil {
				return err
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			var (
				pubs  []crypto.PublicKey
				vopts []verify.Option
			)
			withKeys := len(keyPaths) > 0 || kl.given()
			switch {
			case !verifyAfter && (withKeys || gf.policy != ""):
				return usageError{fmt.Errorf("--key, --certificate-identity and --policy go with --verify")}
			case verifyAfter && withKeys == (gf.policy != ""):
				return usageError{fmt.Errorf("--verify needs --key or --policy (one of them; a certificate identity may stand for --key)")}
			case verifyAfter && gf.policy != "":
				if _, err := loadPolicy(gf.policy); err != nil {
					return err
				}
			case verifyAfter:
				if pubs, err = a.readPublicKeys(cmd.Context(), keyPaths); err != nil {
					return err
				}
				if vopts, err = verifierOptions(cmd.Context(), &logFlags{trustedRoot: trustedRoot}, &kl, nil); err != nil {
					return err
				}
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
			o := oci.CopyOptions{Platform: plat, SkipAttached: noAttached, SignatureRepo: repo}
			var (
				updates chan v1.Update
				done    chan struct{}
			)
			if f, ok := a.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				updates, done = make(chan v1.Update, 16), make(chan struct{})
				o.Progress = updates
				go showProgress(a.Stderr, updates, done)
			}
			res, err := client.Copy(ctx, refs[0], refs[1], o)
			if updates != nil {
				close(updates) // Copy sends nothing once it has returned
				<-done
			}
			if res != nil && err == nil {
				printCopy(a.Stderr, args[1], res)
			}
			if err != nil || !verifyAfter {
				return err
			}
			landed := refs[1].Context().Digest(res.Digest)
			if gf.policy != "" {
				gf.jobs = 1
				_, err := a.runGate(ctx, &gf, &reg, &logFlags{}, []name.Reference{landed}, "text")
				return err
			}
			v, err := verify.NewVerifier(client, pubs, vopts...)
			if err != nil {
				return err
			}
			vr, err := v.Verify(ctx, landed, verify.Options{})
			a.printVerdict(vr, err)
			if err != nil {
				return exitError{code: verifyExitCode(err), err: err, reported: true}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&verifyAfter, "verify", false, "verify the signatures at the destination after copying (with --key or --policy)")
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "with --verify: trusted public key file or key URI (repeatable)")
	cmd.Flags().StringVar(&gf.policy, "policy", "", "with --verify: trust policy file")
	cmd.Flags().StringVar(&trustedRoot, "trusted-root", "", "with --verify and a certificate identity: the Sigstore trusted_root.json")
	kl.register(cmd)
	cmd.Flags().StringVar(&platform, "platform", "", "for an index, copy only the manifest of this platform (os/arch[/variant])")
	cmd.Flags().BoolVar(&noAttached, "no-attached", false, "copy the image only, without signatures, attestations or other attachments")
	cmd.Flags().StringVar(&sigRepo, "signature-repository", "", "read SRC's attachments from this repository (default $"+envRepository+", then SRC's)")
	reg.register(cmd)
	return cmd
}

// showProgress draws one progress line until updates is closed.
func showProgress(w io.Writer, updates <-chan v1.Update, done chan<- struct{}) {
	defer close(done)
	drawn := false
	for u := range updates {
		if u.Error != nil || u.Total == 0 {
			continue
		}
		fmt.Fprintf(w, "\rCopying: %s of %s (%d%%)   ", size(u.Complete), size(u.Total), u.Complete*100/u.Total)
		drawn = true
	}
	if drawn {
		fmt.Fprint(w, "\r\033[K")
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printCopy(w io.Writer, dst string, r *oci.CopyResult) {
	what := "image"
	if r.Manifests > 1 {
		what = fmt.Sprintf("index with %d platform manifests", r.Manifests-1)
	}
	fmt.Fprintf(w, "Copied %s %s to %s\n", what, r.Digest, dst)
	for _, s := range r.Attached {
		fmt.Fprintf(w, "  + %s\n", s)
	}
	fmt.Fprintf(w, "Copied %d attachment(s)\n", len(r.Attached))
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
}
