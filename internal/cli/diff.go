package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imgsign/imgsign/pkg/diff"
	"github.com/imgsign/imgsign/pkg/imagesrc"
	"github.com/spf13/cobra"
)

const diffExitHelp = `Exit codes:
  0   identical at the levels compared
  1   any other error (registry unreachable, hostile layer, ...)
  2   bad command line
  3   a public key file was rejected
  10-13  --key or --policy: a side failed verification, as in 'imgsign verify'
  11  an image or tag not found
  14  the images differ`

func (a *App) newDiffCommand() *cobra.Command {
	var (
		tf                              trustFlags
		reg                             registryFlags
		platform, output                string
		levels, ignore                  []string
		perLayer, ignoreTimes, ignoreHi bool
		semantic                        bool
	)
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Show what differs between two images: manifest, config, layers and files",
		Long: `Compare image A with image B and say exactly what differs, level by level:

  manifest  media types; for indexes, the platforms and annotations
  config    entrypoint, cmd, env, user, working dir, exposed ports, labels,
            volumes, stop signal, healthcheck, creation date, history
  layers    the layer lists by diff ID: added, removed, reordered, changed,
            and layers that differ only in their encoding (same files,
            other compression)
  files     the final file tree a container runtime builds, whiteouts and
            opaque directories applied: every path's type, mode, owner,
            size, content digest, link target, xattrs and mtime

Each side is a registry reference (or docker://REF), an OCI image layout
oci:DIR[:REF], or an archive oci-archive:FILE[:REF] or
docker-archive:FILE[:REF] ('imgsign save --tarball', 'docker save' of Docker
25+), read in place. REF inside a layout is a full reference, a tag or a
digest; without it the layout's only image is taken. Two indexes are
compared platform by platform (--platform for one); an index and a single
image need --platform.

Reading is bounded: layers both sides share at the bottom of the stack are
never downloaded; every other layer is streamed once (a layer both sides
have above one that differs, once for both), decompressed on the fly (gzip,
zstd), hashed as it passes and checked against its diff ID; nothing is
written to disk and memory grows with the number of files only. A path
whose content on one side comes from those shared layers is reported as
changed with a note. Hostile layers (paths climbing out of the root, names
or headers too long, too many entries, decompression bombs) are refused.

With --key or --policy, each side is verified first exactly as 'imgsign
verify' would (same flags), the digest verified is the one compared, and
the report says who signed each side.

The report goes to standard output: counts per level, then the differences,
paths sorted; -o json for machines.

` + diffExitHelp,
		Example: `  imgsign diff registry.example.com/app:1.4.2 docker-archive:app-1.4.2.tar
  imgsign diff --level files --ignore-timestamps --ignore '/var/cache/*' oci:./build:app registry.example.com/app:1.4.2
  imgsign diff --key vendor.pub --semantic registry.example.com/app:1.4.2 mirror.example.com/app:1.4.2
  imgsign diff -o json --platform linux/arm64 app:1.4.1 app:1.4.2`,
		Args: exactArgs(2, "two images, A and B"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", output)}
			}
			opts := diff.Options{PerLayer: perLayer, IgnoreTimestamps: ignoreTimes, IgnoreHistory: ignoreHi, Ignore: ignore, Semantic: semantic}
			for _, l := range levels {
				for _, p := range strings.Split(l, ",") {
					lv := diff.Level(strings.TrimSpace(p))
					switch lv {
					case diff.LevelManifest, diff.LevelConfig, diff.LevelLayers, diff.LevelFiles:
						opts.Levels = append(opts.Levels, lv)
					default:
						return usageError{fmt.Errorf("--level must be manifest, config, layers or files, not %q", p)}
					}
				}
			}
			for _, g := range ignore {
				if err := diff.ValidGlob(g); err != nil {
					return usageError{fmt.Errorf("--ignore %q: %w", g, err)}
				}
			}
			var err error
			if opts.Platform, err = parsePlatform(platform); err != nil {
				return err
			}
			if tf.gf.policy != "" {
				if err := tf.checkPolicy(""); err != nil {
					return err
				}
			} else if len(tf.keyPaths) > 0 {
				if _, err := tf.keyOptions(); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			var sides [2]diff.Side
			var signed [2][]string
			for i, arg := range args {
				sp, err := imagesrc.Parse(arg)
				if err != nil {
					return usageError{err}
				}
				src, err := imagesrc.Open(sp)
				if err != nil {
					return exitError{code: verifyExitCode(err), err: fmt.Errorf("%s: %w", arg, err)}
				}
				defer src.Close()
				r := reg
				r.transport = src.Transport()
				client, cctx, cancel, err := r.client(ctx, a)
				if err != nil {
					return err
				}
				defer cancel()
				if i == 0 {
					ctx = cctx
				}
				sides[i] = diff.Side{Name: arg, Client: client, Ref: src.Ref}
				if !tf.set() {
					continue
				}
				// Verify the digest that is then compared: a tag is read once.
				res, err := client.Resolve(ctx, src.Ref)
				if err != nil {
					return exitError{code: verifyExitCode(err), err: err}
				}
				sides[i].Ref = res.Ref
				fmt.Fprintf(a.Stderr, "%s: %s\n", "AB"[i:i+1], arg)
				if signed[i], err = a.verifyImage(ctx, &tf, &r, res.Ref, opts.Platform); err != nil {
					return err
				}
			}
			rep, err := diff.Compare(ctx, sides[0], sides[1], opts)
			if err != nil {
				return exitError{code: verifyExitCode(err), err: err}
			}
			rep.A.SignedBy, rep.B.SignedBy = signed[0], signed[1]
			if output == "json" {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printDiff(a.Stdout, rep, tf.set())
			}
			if rep.Different() {
				return exitError{code: ExitDifferent, err: errors.New("the images differ"), reported: true}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&levels, "level", nil, "compare only these levels: manifest, config, layers, files (repeatable or comma-separated; default all)")
	f.BoolVar(&perLayer, "layers", false, "also compare the layers at each position file by file")
	f.StringVar(&platform, "platform", "", "for indexes, compare this platform (os/arch[/variant]) only")
	f.BoolVar(&ignoreTimes, "ignore-timestamps", false, "ignore file mtimes and the config's dates")
	f.BoolVar(&ignoreHi, "ignore-history", false, "ignore the config's history")
	f.StringArrayVar(&ignore, "ignore", nil, "do not compare paths matching this glob, nor what is under them (repeatable; e.g. '/var/cache/*')")
	f.BoolVar(&semantic, "semantic", false, "layers with the same files are equal whatever their compression or packing")
	f.StringVarP(&output, "output", "o", "text", "report format: text or json")
	tf.register(cmd, false)
	reg.register(cmd)
	return cmd
}

// printDiff writes the readable report.
func printDiff(w io.Writer, r *diff.Report, verified bool) {
	fmt.Fprintf(w, "A: %s (%s)\n", r.A.Name, r.A.Digest)
	fmt.Fprintf(w, "B: %s (%s)\n", r.B.Name, r.B.Digest)
	if verified {
		for _, s := range []struct {
			n  string
			by []string
		}{{"A", r.A.SignedBy}, {"B", r.B.SignedBy}} {
			fmt.Fprintf(w, "%s verified: signed by %s\n", s.n, strings.Join(s.by, ", "))
		}
	}
	fmt.Fprintln(w)
	for _, l := range r.Levels {
		fmt.Fprintf(w, "  %-9s %d difference(s)\n", string(l)+":", r.Counts[l])
	}
	if !r.Different() {
		fmt.Fprintln(w, "\nIdentical at the levels compared.")
	}
	for _, d := range r.Manifest {
		fmt.Fprintf(w, "\nmanifest %s:\n    A: %s\n    B: %s\n", d.Field, show(d.A), show(d.B))
	}
	for _, im := range r.Images {
		if len(im.Manifest)+len(im.Config)+len(im.Layers)+len(im.Files)+len(im.PerLayer) == 0 {
			continue
		}
		fmt.Fprintln(w)
		if im.Platform != "" {
			fmt.Fprintf(w, "== %s (A %s, B %s)\n", im.Platform, im.A, im.B)
		}
		for _, d := range im.Manifest {
			fmt.Fprintf(w, "manifest %s:\n    A: %s\n    B: %s\n", d.Field, show(d.A), show(d.B))
		}
		for _, d := range im.Config {
			fmt.Fprintf(w, "config %s:\n    A: %s\n    B: %s\n", d.Field, show(d.A), show(d.B))
		}
		for _, l := range im.Layers {
			fmt.Fprintf(w, "layer %s", l.Kind)
			if !l.Counted {
				fmt.Fprint(w, " (accepted: --semantic)")
			}
			if l.Note != "" {
				fmt.Fprintf(w, " (%s)", l.Note)
			}
			fmt.Fprintln(w, ":")
			for _, s := range []struct {
				n string
				l *diff.LayerInfo
			}{{"A", l.A}, {"B", l.B}} {
				if s.l != nil {
					fmt.Fprintf(w, "    %s #%d %s diffID %s %s %d bytes\n", s.n, s.l.Index, s.l.Digest, s.l.DiffID, s.l.MediaType, s.l.Size)
				}
			}
		}
		printFiles(w, "", im.Files)
		for _, pl := range im.PerLayer {
			fmt.Fprintf(w, "layer #%d, file by file:\n", pl.Index)
			printFiles(w, "  ", pl.Files)
		}
	}
}

func printFiles(w io.Writer, indent string, files []diff.FileDifference) {
	for _, f := range files {
		what := f.Kind
		if len(f.Changed) > 0 {
			what += " (" + strings.Join(f.Changed, ", ") + ")"
		}
		fmt.Fprintf(w, "%s%-8s %s\n", indent, what, f.Path)
		if f.Kind == diff.KindChanged {
			for _, s := range []struct {
				n string
				e *diff.Entry
			}{{"A", f.A}, {"B", f.B}} {
				if s.e != nil {
					fmt.Fprintf(w, "%s    %s: %s\n", indent, s.n, describeEntry(s.e))
				}
			}
		}
		if f.Note != "" {
			fmt.Fprintf(w, "%s    note: %s\n", indent, f.Note)
		}
	}
}

// describeEntry is one line about a path.
func describeEntry(e *diff.Entry) string {
	s := fmt.Sprintf("%s %s %d:%d", e.Type, e.Mode, e.UID, e.GID)
	if e.Type == diff.TypeFile {
		s += fmt.Sprintf(" %d bytes %s", e.Size, e.Digest)
	}
	if e.Link != "" {
		s += " -> " + e.Link
	}
	if len(e.Xattrs) > 0 {
		s += fmt.Sprintf(" xattrs %v", e.Xattrs)
	}
	if e.ModTime != nil {
		s += " mtime " + e.ModTime.Format("2006-01-02T15:04:05Z")
	}
	return s
}

// show renders a field's value on one line.
func show(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
