package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/spf13/cobra"
)

func (a *App) newSaveCommand() *cobra.Command {
	var (
		dir, tarball string
		sigRepo      string
		noAttached   bool
		reg          registryFlags
	)
	cmd := &cobra.Command{
		Use:   "save (--dir DIR | --tarball FILE) [--no-attached] IMAGE...",
		Short: "Save images with their signatures and attestations to an OCI layout, for air-gapped verification",
		Long: `Save each IMAGE, with everything attached to it, into a new OCI image layout
(--dir) or a tar archive of one (--tarball), to verify it where there is no
network ('imgsign verify --local DIR' or '--tarball FILE') and to load it into
another registry ('imgsign load').

Each IMAGE is resolved to its digest once. Manifests are saved byte for byte
(the digests the signatures name are unchanged) and every manifest and blob
is checked against its digest as it streams to disk; nothing is
decompressed. Saved along, for the image and, for a multi-platform index,
for each platform's manifest: the legacy tags sha256-<hex>.sig, .att and .sbom
(cosign v1/v2) and every OCI 1.1 referrer (cosign v3 bundles, SBOMs, ...).

index.json names each image by its full reference (annotations
io.containerd.image.name and org.opencontainers.image.ref.name) and lists
what is attached to it. DIR must not exist or be empty and FILE must not
exist; both are written beside their final name and renamed into place when
complete, so a failed save leaves nothing behind.

--signature-repository (default $IMGSIGN_REPOSITORY, then $COSIGN_REPOSITORY)
reads the attachments where 'imgsign sign --signature-repository' stored
them; they are saved as attached to each image, so 'imgsign verify --local
DIR' finds them without the flag.`,
		Example: `  imgsign save --dir ./release-1.4.2 registry.example.com/app:1.4.2 registry.example.com/worker:1.4.2
  imgsign save --tarball app-1.4.2.tar registry.example.com/app:1.4.2
  imgsign verify --key imgsign.pub --local ./release-1.4.2`,
		Args: minArgs(1, "at least one image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (dir == "") == (tarball == "") {
				return usageError{errors.New("give --dir or --tarball (one of them)")}
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			repo, err := a.signatureRepo(sigRepo)
			if err != nil {
				return err
			}
			if tarball != "" {
				if _, err := os.Lstat(tarball); err == nil {
					return fmt.Errorf("%s: %w", tarball, fs.ErrExist)
				}
			}
			client, ctx, cancel, err := reg.client(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer cancel()
			target := dir
			if tarball != "" {
				tmp, err := os.MkdirTemp(filepath.Dir(tarball), ".imgsign-save-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				target = filepath.Join(tmp, "layout")
			}
			res, err := layout.Save(ctx, client, refs, target, layout.SaveOptions{SkipAttached: noAttached, SignatureRepo: repo})
			if err != nil {
				return err
			}
			if tarball != "" {
				if err := writeArchive(target, tarball); err != nil {
					return err
				}
			}
			printSave(a.Stderr, dir+tarball, res)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write an OCI image layout in this directory (must not exist or be empty)")
	cmd.Flags().StringVar(&tarball, "tarball", "", "write a tar archive of the layout to this file (must not exist)")
	cmd.Flags().BoolVar(&noAttached, "no-attached", false, "save the images only, without signatures, attestations or other attachments")
	cmd.Flags().StringVar(&sigRepo, "signature-repository", "", "read the attachments from this repository (default $"+envRepository+", then the image's)")
	reg.register(cmd)
	return cmd
}

// writeArchive tars the layout in dir to path, through a temporary file
// that takes the name only when complete and never replaces a file.
func writeArchive(dir, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = layout.WriteTar(dir, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func printSave(w io.Writer, where string, r *layout.SaveResult) {
	for _, img := range r.Images {
		what := "image"
		if img.Manifests > 1 {
			what = fmt.Sprintf("index and %d manifests", img.Manifests-1)
		}
		if !strings.HasSuffix(img.Name, img.Digest) {
			what = img.Digest + ", " + what
		}
		fmt.Fprintf(w, "Saved %s (%s)\n", img.Name, what)
		for _, s := range img.Attached {
			fmt.Fprintf(w, "  + %s\n", s)
		}
	}
	fmt.Fprintf(w, "Wrote %s: %d image(s), %d blob(s), %s\n", where, len(r.Images), r.Blobs, size(r.Bytes))
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
}

func (a *App) newLoadCommand() *cobra.Command {
	var (
		src        sourceFlags
		from       string
		noAttached bool
		reg        registryFlags
	)
	cmd := &cobra.Command{
		Use:   "load (--dir DIR | --tarball FILE) [--name SAVED] IMAGE",
		Short: "Push an image saved by 'imgsign save', with its signatures, to a registry",
		Long: `Push an image of an OCI image layout (--dir) or a tar archive of one
(--tarball) to IMAGE, a tag or REPOSITORY@DIGEST in a registry, with
everything saved with it, as 'imgsign copy' copies between registries: the
manifest byte for byte (the digest at IMAGE is checked to be the saved one),
the legacy tags .sig, .att and .sbom (merged with a tag already there) and
every referrer (by the referrers API, or the fallback index where the
registry has none). The image's manifests and blobs are re-hashed in the
layout before anything is pushed, and every manifest and blob is checked
against its digest again on the way, so tampered content never lands under
a signed digest.

The image pushed is --name (a reference as saved, e.g. from 'imgsign save'
output), else the one saved under IMAGE's repository and tag, else the only
image of the layout.`,
		Example: `  imgsign load --dir ./release-1.4.2 registry.internal/app:1.4.2
  imgsign load --tarball app-1.4.2.tar --name registry.example.com/app:1.4.2 registry.internal/app:1.4.2`,
		Args: exactArgs(1, "the image to push to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (src.local == "") == (src.tarball == "") {
				return usageError{errors.New("give --dir or --tarball (one of them)")}
			}
			dst, err := name.ParseReference(args[0])
			if err != nil {
				return usageError{fmt.Errorf("image reference %q: %w", args[0], err)}
			}
			st, err := openStore(src)
			if err != nil {
				return err
			}
			defer st.Close()
			saved, d, err := pickSaved(st, from, dst)
			if err != nil {
				return err
			}
			// Content is checked against its digests before anything is
			// pushed (the push checks it again as it streams).
			if _, err := st.CheckImage(d); err != nil {
				return fmt.Errorf("%s: %w", saved, err)
			}
			source, err := oci.NewClient(oci.Options{Transport: layout.Transport(st), Limits: reg.limits, Retries: -1})
			if err != nil {
				return err
			}
			client, ctx, cancel, err := reg.client(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := client.Copy(ctx, saved, dst, oci.CopyOptions{Source: source, SkipAttached: noAttached})
			if err != nil {
				return err
			}
			printCopy(a.Stderr, args[0], res)
			return nil
		},
	}
	cmd.Flags().StringVar(&src.local, "dir", "", "OCI image layout directory to load from")
	cmd.Flags().StringVar(&src.tarball, "tarball", "", "tar archive of an OCI image layout to load from")
	cmd.Flags().StringVar(&from, "name", "", "the saved image to push (its reference in the layout)")
	cmd.Flags().BoolVar(&noAttached, "no-attached", false, "push the image only, without what is attached to it")
	reg.register(cmd)
	return cmd
}

// openStore opens the layout or archive of s.
func openStore(s sourceFlags) (*layout.Store, error) {
	if s.local != "" {
		return layout.OpenDir(s.local)
	}
	return layout.OpenTar(s.tarball)
}

// pickSaved chooses the image of st to load to dst: the one named from,
// else the one saved as dst, else the only one. It returns the reference
// and its descriptor in the layout.
func pickSaved(st *layout.Store, from string, dst name.Reference) (name.Reference, v1.Descriptor, error) {
	if from != "" {
		ref, err := name.ParseReference(from)
		if err != nil {
			return nil, v1.Descriptor{}, usageError{fmt.Errorf("--name %q: %w", from, err)}
		}
		d, err := st.Find(ref)
		return ref, d, err
	}
	images := st.Images()
	var names []string
	for _, img := range images {
		if img.Name.Name() == dst.Name() {
			return img.Name, img.Descriptor, nil
		}
		names = append(names, img.Name.Name())
	}
	switch len(images) {
	case 0:
		return nil, v1.Descriptor{}, usageError{errors.New("the layout names no image by its full reference: give --name with the saved tag (REPOSITORY:TAG)")}
	case 1:
		return images[0].Name, images[0].Descriptor, nil
	}
	return nil, v1.Descriptor{}, usageError{fmt.Errorf("the layout holds %d images; choose one with --name: %s", len(images), strings.Join(names, ", "))}
}
