package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/dockerfile"
	"github.com/imgsign/imgsign/pkg/gate"
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
		platforms []string
		output    string
		outFile   string
		tf        trustFlags
		reg       registryFlags
	)
	use, short, long := "verify (--policy FILE | --key PUB | --certificate-identity ...) Dockerfile", "Verify the images a Dockerfile uses against a trust policy", `Find every image a build of the Dockerfile uses: the frontend named by a
'# syntax=' directive (or a BUILDKIT_SYNTAX build argument), the base image
of each FROM line (with ARG substitution; --build-arg overrides ARG
defaults; resolved for each --platform, this machine's by default, with
TARGETARCH and the other automatic platform arguments set as BuildKit sets
them, so a FROM that depends on the platform is verified for every
platform built and one that cannot be resolved is refused), and the images of COPY --from=IMAGE and RUN --mount=...,from=IMAGE
(also in ONBUILD triggers a later stage runs); skip scratch and build
stages; and verify each image against the trust policy, as 'imgsign verify
--policy' does, or against --key (or a certificate identity) as 'imgsign
verify --key' does. Each is reported with its line and kind. Exit codes are
verify's.`
	if pin {
		use, short, long = "pin (--policy FILE | --key PUB | --certificate-identity ...) Dockerfile", "Pin the images a Dockerfile uses to the digests just verified", `Verify the images a Dockerfile uses as 'imgsign dockerfile verify' does
and, only if every one passes, rewrite each reference (the syntax
directive's frontend, FROM images, COPY --from and RUN --mount from= images)
to name its image by the digest verified (image:tag@sha256:...), so that
later builds use exactly the content that was checked, whatever the tag
points to by then. Only the reference bytes change; the rest of the file is
kept byte for byte. The file is replaced atomically, or the result goes to
--output (- for standard output). A reference that already names a digest
is verified and left as it is; a frontend named by the BUILDKIT_SYNTAX build
argument is verified but is not in the file, so it is not pinned; a FROM
whose reference depends on the platform (TARGETARCH ...) is verified but
cannot be pinned to one digest, and nothing is pinned.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Example: `  imgsign dockerfile verify --policy deploy-policy.yaml Dockerfile
  imgsign dockerfile pin --policy deploy-policy.yaml --build-arg VERSION=3.20 Dockerfile`,
		Args: exactArgs(1, "one Dockerfile"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tf.gf.policy != "" {
				if err := tf.checkPolicy(""); err != nil {
					return err
				}
			} else if len(tf.keyPaths) == 0 && !tf.kl.given() {
				return usageError{fmt.Errorf("give --policy, or --key or a certificate identity: one or the other")}
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
			images, err := platformImages(data, bargs, platforms)
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
						return usageError{fmt.Errorf("%s: %s%s: image reference %q: %w", args[0], describeImage(im.Image), im.only, im.Ref, err)}
					}
					j = len(refs)
					index[im.Ref] = j
					refs = append(refs, r)
				}
				which[i] = j
			}
			digests, verdicts, err := a.verifyDockerfileRefs(cmd.Context(), &tf, &reg, refs, output)
			if len(verdicts) == len(refs) {
				for i, im := range images {
					fmt.Fprintf(a.Stderr, "%s%s: %s\n", describeImage(im.Image), im.only, verdicts[which[i]])
				}
			}
			if err != nil || !pin {
				return err
			}
			pins := map[int]string{}
			counts := map[dockerfile.Kind]int{}
			for i, im := range images {
				if im.only != "" {
					return fmt.Errorf("%s: %s%s: the reference depends on the build's platform, cannot pin one digest for every platform; nothing was pinned", args[0], describeImage(im.Image), im.only)
				}
				if _, isDigest := refs[which[i]].(name.Digest); isDigest {
					continue
				}
				pinned := im.Ref + "@" + digests[which[i]]
				if im.Line == 0 {
					fmt.Fprintf(a.Stderr, "The BUILDKIT_SYNTAX build argument is not in %s: pin it where the build is configured: %s\n", args[0], pinned)
					continue
				}
				if im.Start < 0 {
					return fmt.Errorf("%s: %s: the reference is split over a line continuation or written with quotes or escapes, cannot rewrite it safely; nothing was pinned", args[0], describeImage(im.Image))
				}
				pins[im.Start] = pinned
				counts[im.Kind]++
			}
			pinnedData, err := dockerfile.PinImages(data, bargs, pins)
			if err != nil {
				return fmt.Errorf("%s: %w (a reference that depends on the build's platform cannot be pinned to one digest); nothing was pinned", args[0], err)
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
	f.StringSliceVar(&platforms, "platform", nil, "target platform of the build, os/arch[/variant] (repeatable or comma-separated; default: this machine's, as docker build): FROM lines are resolved for each, with TARGETARCH and the other automatic platform arguments set as BuildKit sets them")
	f.StringVarP(&output, "output-format", "o", "text", "output on standard output: text (nothing) or json")
	if pin {
		f.StringVar(&outFile, "output", "", "write the pinned Dockerfile here (- for standard output) instead of replacing it")
	}
	tf.register(cmd, false)
	reg.register(cmd)
	return cmd
}

// verifyDockerfileRefs verifies refs against the policy (as 'imgsign
// verify --policy' does) or the keys and identities (as 'imgsign verify
// --key' does), and returns for each its digest and a one-word verdict,
// with an error carrying the exit code of the first failure.
func (a *App) verifyDockerfileRefs(ctx context.Context, tf *trustFlags, reg *registryFlags, refs []name.Reference, output string) (digests, verdicts []string, err error) {
	if tf.gf.policy != "" {
		results, err := a.runGate(ctx, &tf.gf, reg, &tf.logs, refs, output)
		for i := range results {
			digests = append(digests, results[i].Digest)
			verdicts = append(verdicts, gateVerdict(&results[i]))
		}
		return digests, verdicts, err
	}
	opts, err := tf.keyOptions()
	if err != nil {
		return nil, nil, err
	}
	results, err := a.verifyRefs(ctx, tf, reg, refs, opts, output)
	for _, res := range results {
		digests = append(digests, res.Digest)
		verdict := "FAILED"
		if res.Verified {
			verdict = "verified"
		}
		verdicts = append(verdicts, verdict)
	}
	return digests, verdicts, err
}

// platformImage is an image a build uses, for every platform built or
// only for those listed in only (" for linux/arm64, ...").
type platformImage struct {
	dockerfile.Image
	only string
}

// platformImages returns the images builds of the Dockerfile for each
// target platform in list (this machine's when empty; each entry may be a
// comma list) use, each once, in file order, as BuildKit resolves them on
// this machine: TARGETARCH and the other automatic platform arguments set.
func platformImages(data []byte, bargs map[string]string, list []string) ([]platformImage, error) {
	host := dockerfile.HostPlatform()
	var targets []dockerfile.Platform
	seen := map[dockerfile.Platform]bool{}
	for _, s := range list {
		p, err := dockerfile.ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--platform: %w", err)
		}
		if !seen[p] {
			seen[p] = true
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 {
		targets = []dockerfile.Platform{host}
	}
	type key struct {
		kind     dockerfile.Kind
		line, at int
		ref      string
		onBuild  bool
	}
	var out []platformImage
	var keys []key
	on := map[key][]string{}
	for _, tp := range targets {
		images, err := dockerfile.ImagesFor(data, dockerfile.Build{Args: bargs, Target: &tp, Host: &host})
		if err != nil {
			if len(targets) > 1 {
				return nil, fmt.Errorf("for %s: %w", tp, err)
			}
			return nil, err
		}
		for _, im := range images {
			k := key{im.Kind, im.Line, im.Start, im.Ref, im.OnBuild}
			if _, ok := on[k]; !ok {
				keys = append(keys, k)
				out = append(out, platformImage{Image: im})
			}
			on[k] = append(on[k], tp.String())
		}
	}
	for i, k := range keys {
		if len(on[k]) < len(targets) {
			out[i].only = " for " + strings.Join(on[k], ", ")
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out, nil
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
