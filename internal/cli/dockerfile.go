package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/dockerfile"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
)

func (a *App) newDockerfileCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dockerfile",
		Short: "Verify the images a Dockerfile uses against a trust policy, and pin them to verified digests",
	}
	root.AddCommand(a.newDockerfileVerifyCommand(false), a.newDockerfileVerifyCommand(true))
	return root
}

// newDockerfileVerifyCommand makes `dockerfile verify`, or with pin
// `dockerfile pin`, which also rewrites the image references.
func (a *App) newDockerfileVerifyCommand(pin bool) *cobra.Command {
	var (
		buildArgs []string
		output    string
		outFile   string
		gf        gateFlags
		kf        keyFlags
		reg       registryFlags
		logs      logFlags
	)
	use, short, long := "verify (--policy FILE | --key PUB) Dockerfile", "Verify the images a Dockerfile uses against a trust policy", `Find every image a build of the Dockerfile uses: the frontend named by a
'# syntax=' directive (or a BUILDKIT_SYNTAX build argument), the base image
of each FROM line (with ARG substitution; --build-arg overrides ARG
defaults), and the images of COPY --from=IMAGE and RUN --mount=...,from=IMAGE
(also in ONBUILD triggers a later stage runs); skip scratch and build
stages; and verify each image against the trust policy, as 'imgsign verify
--policy' does, or with --key (and --threshold, -a, --rekor-key,
--trusted-root, --require-tlog) as 'imgsign verify --key' does. Each is
reported with its line and kind. Exit codes are verify's.`
	if pin {
		use, short, long = "pin (--policy FILE | --key PUB) Dockerfile", "Pin the images a Dockerfile uses to the digests just verified", `Verify the images a Dockerfile uses as 'imgsign dockerfile verify' does
and, only if every one passes, rewrite each reference (the syntax
directive's frontend, FROM images, COPY --from and RUN --mount from= images)
to name its image by the digest verified (image:tag@sha256:...), so that
later builds use exactly the content that was checked, whatever the tag
points to by then. Only the reference bytes change; the rest of the file is
kept byte for byte. The file is replaced atomically, or the result goes to
--output (- for standard output). A reference that already names a digest
is verified and left as it is; a frontend named by the BUILDKIT_SYNTAX build
argument is verified but is not in the file, so it is not pinned.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Example: `  imgsign dockerfile verify --policy deploy-policy.yaml Dockerfile
  imgsign dockerfile verify --key base-images.pub Dockerfile
  imgsign dockerfile pin --policy deploy-policy.yaml --build-arg VERSION=3.20 Dockerfile`,
		Args: exactArgs(1, "one Dockerfile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (gf.policy != "") == (kf.given() || len(logs.keys) > 0 || logs.trustedRoot != "" || logs.require) {
				return usageError{fmt.Errorf("give --policy, or --key (with --threshold, -a, --check-identity, --rekor-key, --trusted-root, --require-tlog): one or the other")}
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
			images, err := dockerfile.Images(data, bargs)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", args[0], err)}
			}
			if len(images) == 0 {
				fmt.Fprintf(a.Stderr, "%s has no image to verify (only scratch or earlier stages)\n", args[0])
				return nil
			}
			// Each distinct reference is verified once; which[i] is the
			// index of images[i]'s reference in refs.
			var refs []name.Reference
			which := make([]int, len(images))
			index := map[string]int{}
			for i, im := range images {
				j, seen := index[im.Ref]
				if !seen {
					r, err := name.ParseReference(im.Ref)
					if err != nil {
						return usageError{fmt.Errorf("%s: %s: image reference %q: %w", args[0], describeImage(im), im.Ref, err)}
					}
					j = len(refs)
					index[im.Ref] = j
					refs = append(refs, r)
				}
				which[i] = j
			}
			var outcomes []imageOutcome
			if gf.policy != "" {
				results, gerr := a.runGate(cmd.Context(), &gf, &reg, &logs, refs, output)
				for i := range results {
					outcomes = append(outcomes, imageOutcome{digest: results[i].Digest, verdict: gateVerdict(&results[i])})
				}
				err = gerr
			} else {
				outcomes, err = a.verifyByKey(cmd.Context(), &kf, &reg, &logs, gf.blobs, refs, output)
			}
			if len(outcomes) == len(refs) {
				for i, im := range images {
					fmt.Fprintf(a.Stderr, "%s: %s\n", describeImage(im), outcomes[which[i]].verdict)
				}
			}
			if err != nil || !pin {
				return err
			}
			pins := map[int]string{}
			counts := map[dockerfile.Kind]int{}
			for i, im := range images {
				if _, isDigest := refs[which[i]].(name.Digest); isDigest {
					continue
				}
				pinned := im.Ref + "@" + outcomes[which[i]].digest
				if im.Line == 0 {
					fmt.Fprintf(a.Stderr, "The BUILDKIT_SYNTAX build argument is not in %s: pin it where the build is configured: %s\n", args[0], pinned)
					continue
				}
				if im.Start < 0 {
					return fmt.Errorf("%s: %s: the reference is split over a line continuation or written with quotes or escapes, cannot rewrite it safely; nothing was pinned", args[0], describeImage(im))
				}
				pins[im.Start] = pinned
				counts[im.Kind]++
			}
			pinnedData, err := dockerfile.PinImages(data, bargs, pins)
			if err != nil {
				return err
			}
			switch outFile {
			case "-":
				_, err = a.Stdout.Write(pinnedData)
				return err
			case "":
				outFile = args[0]
			}
			perm := os.FileMode(0o644)
			if st, err := os.Stat(args[0]); err == nil {
				perm = st.Mode().Perm()
			}
			if err := atomicfile.Write(outFile, pinnedData, perm, true); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "Pinned %s in %s\n", pinCounts(counts), outFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&buildArgs, "build-arg", nil, "NAME=value overriding an ARG default (repeatable); BUILDKIT_SYNTAX names the frontend")
	f.StringVarP(&output, "output-format", "o", "text", "output on standard output: text (nothing) or json")
	if pin {
		f.StringVar(&outFile, "output", "", "write the pinned Dockerfile here (- for standard output) instead of replacing it")
	}
	gf.register(cmd, false)
	kf.register(cmd)
	logs.registerVerify(cmd)
	reg.register(cmd)
	return cmd
}

// imageOutcome is what verifying one image of a Dockerfile found.
type imageOutcome struct {
	digest  string
	verdict string // one word or two: verified, FAILED, accepted unsigned
}

// verifyByKey verifies refs as 'imgsign verify --key' does, reporting
// each like verify, and returns an outcome per reference and an error
// carrying the exit code of the first failure.
func (a *App) verifyByKey(ctx context.Context, kf *keyFlags, reg *registryFlags, logs *logFlags, blobs bool, refs []name.Reference, output string) ([]imageOutcome, error) {
	opts, err := kf.options()
	if err != nil {
		return nil, err
	}
	logOpts, err := logs.verifierOptions()
	if err != nil {
		return nil, err
	}
	v, ctx, cancel, err := a.verifier(ctx, reg, kf.paths, logOpts...)
	if err != nil {
		return nil, err
	}
	defer cancel()
	opts.RequireTlog, opts.VerifyBlobs = logs.require, blobs
	var (
		first    error
		outcomes []imageOutcome
		results  []*verify.Result
	)
	for _, ref := range refs {
		res, err := v.Verify(ctx, ref, opts)
		a.printVerdict(res, err)
		results = append(results, res)
		o := imageOutcome{digest: res.Digest, verdict: "verified"}
		if err != nil {
			o.verdict = "FAILED"
			if first == nil {
				first = err
			}
		}
		outcomes = append(outcomes, o)
	}
	if output == "json" {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return outcomes, err
		}
	}
	if first != nil {
		return outcomes, exitError{code: verifyExitCode(first), err: first, reported: true}
	}
	return outcomes, nil
}

// describeImage says where a Dockerfile names an image, e.g. "line 3 COPY
// --from alpine:3.20".
func describeImage(im dockerfile.Image) string {
	if im.Line == 0 {
		return "build argument BUILDKIT_SYNTAX " + im.Ref
	}
	var what string
	switch im.Kind {
	case dockerfile.KindSyntax:
		what = "# syntax=" + im.Ref
	case dockerfile.KindFrom:
		what = "FROM " + im.Ref
	case dockerfile.KindCopyFrom:
		what = "COPY --from " + im.Ref
	case dockerfile.KindMountFrom:
		what = "RUN --mount from=" + im.Ref
	default:
		what = string(im.Kind) + " " + im.Ref
	}
	if im.OnBuild {
		what = "ONBUILD " + what
	}
	return fmt.Sprintf("line %d %s", im.Line, what)
}

// gateVerdict is the one-word outcome of a gate result.
func gateVerdict(r *gate.Result) string {
	switch {
	case r.Err() != nil:
		return "FAILED"
	case r.Unsigned:
		return "accepted unsigned"
	default:
		return "verified"
	}
}

// pinCounts says how many references of each kind were pinned, e.g.
// "1 base image(s), 2 COPY --from image(s)".
func pinCounts(counts map[dockerfile.Kind]int) string {
	var parts []string
	for _, k := range []struct {
		kind dockerfile.Kind
		what string
	}{
		{dockerfile.KindSyntax, "syntax frontend"},
		{dockerfile.KindFrom, "base image(s)"},
		{dockerfile.KindCopyFrom, "COPY --from image(s)"},
		{dockerfile.KindMountFrom, "RUN --mount image(s)"},
	} {
		if n := counts[k.kind]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k.what))
		}
	}
	if len(parts) == 0 {
		return "0 image(s)"
	}
	return strings.Join(parts, ", ")
}
