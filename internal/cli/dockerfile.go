package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/dockerfile"
	"github.com/spf13/cobra"
)

func (a *App) newDockerfileCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dockerfile",
		Short: "Verify a Dockerfile's base images against a trust policy, and pin them to verified digests",
	}
	root.AddCommand(a.newDockerfileVerifyCommand(false), a.newDockerfileVerifyCommand(true))
	return root
}

// newDockerfileVerifyCommand makes `dockerfile verify`, or with pin
// `dockerfile pin`, which also rewrites the FROM lines.
func (a *App) newDockerfileVerifyCommand(pin bool) *cobra.Command {
	var (
		buildArgs []string
		output    string
		outFile   string
		gf        gateFlags
		reg       registryFlags
		logs      logFlags
	)
	use, short, long := "verify --policy FILE Dockerfile", "Verify the base images of a Dockerfile against a trust policy", `Read the FROM lines of a Dockerfile (with ARG substitution; --build-arg
overrides ARG defaults), skip scratch and the names of earlier build stages,
and verify every base image against the trust policy, as 'imgsign verify
--policy' does. Exit codes are verify's.`
	if pin {
		use, short, long = "pin --policy FILE Dockerfile", "Pin a Dockerfile's base images to the digests just verified", `Verify the base images of a Dockerfile as 'imgsign dockerfile verify' does
and, only if every one passes, rewrite each FROM line to name its image by
the digest verified (image:tag@sha256:...), so that later builds use exactly
the content that was checked, whatever the tag points to by then. The rest
of the file is kept byte for byte. The file is replaced atomically, or the
result goes to --output (- for standard output). A FROM that already names
a digest is verified and left as it is.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Example: `  imgsign dockerfile verify --policy deploy-policy.yaml Dockerfile
  imgsign dockerfile pin --policy deploy-policy.yaml --build-arg VERSION=3.20 Dockerfile`,
		Args: exactArgs(1, "one Dockerfile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if gf.policy == "" {
				return usageError{fmt.Errorf("--policy is required")}
			}
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output-format must be text or json, not %q", output)}
			}
			if pin && outFile == "-" && output == "json" {
				return usageError{fmt.Errorf("--output - and -o json would both write to standard output")}
			}
			bargs := map[string]string{}
			for _, kv := range buildArgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--build-arg %q is not NAME=value", kv)}
				}
				bargs[k] = v
			}
			data, err := readSmallFile(args[0], dockerfile.MaxBytes)
			if err != nil {
				return usageError{err}
			}
			bases, err := dockerfile.BaseImages(data, bargs)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", args[0], err)}
			}
			if len(bases) == 0 {
				fmt.Fprintf(a.Stderr, "%s has no base image to verify (only scratch or earlier stages)\n", args[0])
				return nil
			}
			refs := make([]name.Reference, 0, len(bases))
			for _, b := range bases {
				r, err := name.ParseReference(b.Ref)
				if err != nil {
					return usageError{fmt.Errorf("%s:%d: image reference %q: %w", args[0], b.Line, b.Ref, err)}
				}
				refs = append(refs, r)
			}
			results, err := a.runGate(cmd.Context(), &gf, &reg, &logs, refs, output)
			if err != nil || !pin {
				return err
			}
			pins := map[int]string{}
			for i, b := range bases {
				if _, isDigest := refs[i].(name.Digest); isDigest {
					continue
				}
				pins[b.Line] = b.Ref + "@" + results[i].Digest
			}
			pinned, err := dockerfile.Pin(data, pins)
			if err != nil {
				return err
			}
			switch outFile {
			case "-":
				_, err = a.Stdout.Write(pinned)
				return err
			case "":
				outFile = args[0]
			}
			perm := os.FileMode(0o644)
			if st, err := os.Stat(args[0]); err == nil {
				perm = st.Mode().Perm()
			}
			if err := atomicfile.Write(outFile, pinned, perm, true); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "Pinned %d base image(s) in %s\n", len(pins), outFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&buildArgs, "build-arg", nil, "NAME=value overriding an ARG default (repeatable)")
	f.StringVarP(&output, "output-format", "o", "text", "output on standard output: text (nothing) or json")
	if pin {
		f.StringVar(&outFile, "output", "", "write the pinned Dockerfile here (- for standard output) instead of replacing it")
	}
	gf.register(cmd, false)
	logs.registerOnline(cmd)
	reg.register(cmd)
	return cmd
}
