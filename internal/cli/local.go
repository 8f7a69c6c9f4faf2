package cli

import (
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/spf13/cobra"
)

// sourceFlags choose where verification reads images and signatures:
// registries (the default), an OCI image layout (--local) or an archive of
// one (--tarball).
type sourceFlags struct {
	local, tarball string
	registrySigs   bool
}

func (s *sourceFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.local, "local", "", "read images and signatures from this OCI image layout directory ('imgsign save'), with no network at all")
	f.StringVar(&s.tarball, "tarball", "", "read images and signatures from this tar archive of an OCI layout ('imgsign save --tarball', 'docker save' of Docker 25+) without unpacking it; its content is re-hashed first")
	f.BoolVar(&s.registrySigs, "registry-signatures", false, "with --local or --tarball: read signatures and attestations from the registry each image is named after (a 'docker save' archive carries none); the image itself still comes from the layout")
}

func (s *sourceFlags) set() bool { return s.local != "" || s.tarball != "" }

// check refuses options that would need the network (unless signatures
// come from registries) or that a layout cannot honour.
func (s *sourceFlags) check(logs *logFlags, sigRepo string) error {
	switch {
	case s.local != "" && s.tarball != "":
		return usageError{errors.New("--local and --tarball: give one of them")}
	case s.registrySigs && !s.set():
		return usageError{errors.New("--registry-signatures goes with --local or --tarball")}
	case !s.set() || s.registrySigs:
		return nil
	case logs.url != "":
		return usageError{errors.New("--rekor-url looks signatures up online; with --local or --tarball verification is offline: give the log's keys (--rekor-key, --trusted-root) to check the entries saved with the signatures")}
	case sigRepo != "":
		return usageError{errors.New("--signature-repository cannot be used with --local or --tarball: the layout holds the signatures saved with each image")}
	}
	return nil
}

// useSource, when --local or --tarball is given, checks the other options
// (see check), opens the layout or archive, points reg's client at it and,
// with no image named, returns every image it names. Each image's manifest
// (--local) or whole content and the `docker load` list (--tarball) is
// checked first. Without a source it returns refs as they are. The caller
// calls done when finished with the client.
func (a *App) useSource(s *sourceFlags, reg *registryFlags, logs *logFlags, sigRepo string, refs []name.Reference) (out []name.Reference, done func(), err error) {
	if err := s.check(logs, sigRepo); err != nil || !s.set() {
		return refs, func() {}, err
	}
	st, err := openStore(*s)
	if err != nil {
		return nil, nil, exitError{code: verifyExitCode(err), err: err}
	}
	if refs, err = a.prepareSource(s, st, refs); err != nil {
		st.Close()
		return nil, nil, exitError{code: verifyExitCode(err), err: fmt.Errorf("%s: %w", s.local+s.tarball, err)}
	}
	if s.registrySigs {
		reg.overlay = st
	} else {
		reg.transport = layout.Transport(st)
	}
	return refs, func() { st.Close() }, nil
}

// prepareSource lists the images to verify and checks them in the layout.
func (a *App) prepareSource(s *sourceFlags, st *layout.Store, refs []name.Reference) ([]name.Reference, error) {
	if len(refs) == 0 {
		for _, img := range st.Images() {
			refs = append(refs, img.Name)
		}
		if len(refs) == 0 {
			return nil, usageError{errors.New("it names no image by its full reference: give the image to verify (REGISTRY/REPOSITORY:TAG; its tag is looked up in the layout)")}
		}
	}
	if s.tarball != "" {
		return refs, a.checkArchive(st, refs)
	}
	// Each image's manifest must be what index.json (or the digest asked
	// for) says, or what is verified is not what a loader loads.
	for _, ref := range refs {
		if err := checkLocalManifest(st, ref); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

var errNotInLayout = errors.New("not in the layout")

// checkLocalManifest checks the manifest ref names in the layout.
func checkLocalManifest(st *layout.Store, ref name.Reference) error {
	d, err := st.Find(ref)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, errNotInLayout)
	}
	if err := st.CheckManifest(d); err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	return nil
}

// checkArchive re-hashes each image's content in the archive before any
// signature is read, and checks that a loader (docker load, podman load)
// would load nothing else, under no other name.
func (a *App) checkArchive(st *layout.Store, refs []name.Reference) error {
	var verified []layout.Verified
	for _, ref := range refs {
		d, err := st.Find(ref)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, errNotInLayout)
		}
		c, err := st.CheckImage(d)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		fmt.Fprintf(a.Stderr, "Content of %s (%s) matches its digests: %d manifest(s), %d blob(s), %d bytes re-hashed\n", ref, c.Digest, c.Manifests, c.Blobs, c.Bytes)
		for _, ab := range c.Absent {
			fmt.Fprintf(a.Stderr, "  note: manifest %s (%s) is not in the archive\n", ab.Digest, platformString(ab.Platform))
		}
		verified = append(verified, layout.Verified{Ref: ref, Checked: c})
	}
	if err := st.CheckLoad(verified); err != nil {
		return fmt.Errorf("%w (name every image of the archive, or none)", err)
	}
	return nil
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "no platform"
	}
	return p.String()
}
