package cli

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

// Exit codes of verify, as cosign uses them on its legacy path.
const (
	ExitNoSignatures  = 10 // the image has no signatures
	ExitImageNotFound = 11 // the image or tag does not exist
	ExitNotVerified   = 12 // signatures exist, but none (or too few) verified
)

const verifyExitHelp = `Exit codes:
  0   every image verified
  1   any other error (registry unreachable, ...)
  2   bad command line
  3   a public key file was rejected
  10  no signatures found
  11  image or tag not found
  12  signatures found, but none (or fewer than --threshold) verified
  13  the trust policy rejects the image (a reject scope, or no scope and no default)
With several images, the exit code is that of the first image that failed.`

func verifyExitCode(err error) int {
	switch {
	case errors.Is(err, verify.ErrNoSignatures):
		return ExitNoSignatures
	case errors.Is(err, verify.ErrImageNotFound):
		return ExitImageNotFound
	case errors.Is(err, verify.ErrNotVerified):
		return ExitNotVerified
	case errors.Is(err, gate.ErrRejected):
		return ExitRejected
	case errors.Is(err, layout.ErrContentMismatch), errors.Is(err, layout.ErrHostileArchive):
		return ExitNotVerified
	case errors.Is(err, errNotInLayout), errors.Is(err, oci.ErrNotFound):
		return ExitImageNotFound
	}
	return exitCode(err)
}

// readPublicKeys reads public key files, or fetches the public keys of key
// URIs (a KMS key or a token's key) once each.
func (a *App) readPublicKeys(ctx context.Context, paths []string) ([]crypto.PublicKey, error) {
	pubs := make([]crypto.PublicKey, 0, len(paths))
	for _, p := range paths {
		if keys.IsRemoteRef(p) {
			pub, err := keys.RemotePublicKey(orBackground(ctx), p)
			if err != nil {
				return nil, err
			}
			pubs = append(pubs, pub)
			continue
		}
		data, err := keys.ReadFile(p)
		if err != nil {
			return nil, err
		}
		pub, err := keys.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		pubs = append(pubs, pub)
	}
	return pubs, nil
}

func (a *App) newVerifyCommand() *cobra.Command {
	var (
		tf                trustFlags
		sigRepo, platform string
		output            string
		reg               registryFlags
		src               sourceFlags
	)
	logs, gf := &tf.logs, &tf.gf
	cmd := &cobra.Command{
		Use:   "verify (--key PUB | --policy FILE) [--local DIR | --tarball FILE] [-f MANIFESTS]... IMAGE...",
		Short: "Verify the signatures of container images before deploy",
		Long: `Verify each IMAGE against trusted public keys, and refuse anything that does
not check out. A tag is resolved once to its digest; each signature payload
is fetched by digest and checked as it is read, its signature is checked
over those exact bytes, and only then is it parsed. The payload must name
this image's digest (a signature of another image is refused) and carry
every -a key=value given.

Signatures are found in both of cosign's layouts: the legacy tag
sha256-<hex>.sig (cosign v1/v2) and Sigstore bundles attached as OCI 1.1
referrers (cosign v3; the registry's referrers API, or the fallback index
where it has none). A bundle verifies only if its DSSE signature checks over
the exact envelope payload with a trusted key, and the signed in-toto
statement is a cosign signature whose subject is this image's digest.

Transparency logs (Rekor v1 and v2): an entry that travels with a signature
(cosign's bundle annotation, imgsign's full entry, a bundle's tlogEntries)
is checked offline against the log keys of --rekor-key or --trusted-root:
the signed entry timestamp and/or the inclusion proof up to a checkpoint the
log signed, and that the entry records this very signature, key and payload
digest (an entry copied from another signature is refused). An entry that
is present but does not verify is always a rejection. With --rekor-url and
no entry attached, the signature is looked up in that Rekor v1 log. With
--require-tlog, a signature without a verified entry is rejected.

RFC 3161 timestamps of key signatures ('sign --key K --timestamp-server-url',
cosign's the same) are checked against the timestamp authorities of
--trusted-root (a policy: its requirement's trustedRoot): every timestamp
present must verify over the signature by a TSA of the root, or the
signature is rejected with the reason; a verified one is the signature's
verified signing time (printed, and signedAt in -o json), which a key's
notBefore/notAfter window and the maximum age judge, as a log's integrated
time. Without a trusted TSA, timestamps are ignored (no time, no refusal);
--require-timestamp rejects key signatures without a verified one.

With --policy FILE, a trust policy decides per registry and repository
which keys (and how many), logs, annotations, identity, attestations and
maximum signature age each image needs, or that it is accepted unsigned or
rejected ('imgsign policy validate FILE' explains a policy). Images come
from the arguments and from Kubernetes manifests (-f, repeatable: Pods,
Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, init and ephemeral
containers, multi-document YAML, Lists); they are verified --jobs at a
time, each digest once however often it is referenced, and every image
gets a verdict.

Air-gapped and before load: --local DIR reads images and signatures from an
OCI image layout written by 'imgsign save' (no network at all: log entries
are checked with --rekor-key or --trusted-root); --tarball FILE reads a tar
archive of one ('imgsign save --tarball', or 'docker save' of Docker 25+
with the containerd image store; its signatures are not in it: add
--registry-signatures to read them from the registry the image is named
after, the image itself still coming from the archive alone). An
archive is read in place, never unpacked: first every manifest and every
config and layer blob of each image is re-hashed against the digests the
signed manifest names, and the 'docker load' list (manifest.json) must name
only that content; only then are signatures checked. Without IMAGE, every
image the layout names is verified; an archive holding an image that is not
verified is refused.

"No signatures" is never a pass. A human summary, with the reason each
rejected signature was refused, goes to standard error; -o json prints a
machine-readable result per image on standard output.

` + verifyExitHelp,
		Example: `  imgsign verify --trusted-root trusted_root.json \
    --certificate-identity https://github.com/org/app/.github/workflows/release.yml@refs/heads/main \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com ghcr.io/org/app:1.4.2
  imgsign verify --key imgsign.pub registry.example.com/app:1.4.2
  imgsign verify --key team-a.pub --key team-b.pub --threshold 2 registry.example.com/app@sha256:...
  imgsign verify --key imgsign.pub --platform linux/arm64 -o json registry.example.com/app:1.4.2
  imgsign verify --key imgsign.pub --rekor-key rekor.pub --require-tlog registry.example.com/app:1.4.2
  imgsign verify --key imgsign.pub --trusted-root trusted_root.json --rekor-url https://rekor.example.com IMAGE
  imgsign verify --key imgsign.pub --local ./app-1.4.2 registry.example.com/app:1.4.2
  imgsign verify --policy policy.yaml --tarball app-1.4.2.tar`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", output)}
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			fromManifests, err := a.manifestRefs(gf.manifests)
			if err != nil {
				return err
			}
			refs = append(refs, fromManifests...)
			refs, done, err := a.useSource(&src, &reg, logs, sigRepo, refs)
			if err != nil {
				return err
			}
			defer done()
			if len(refs) == 0 {
				return usageError{fmt.Errorf("expected at least one image (as an argument or in -f manifests)")}
			}
			if gf.policy != "" {
				if err := tf.checkPolicy(sigRepo); err != nil {
					return err
				}
				if gf.platform, err = parsePlatform(platform); err != nil {
					return err
				}
				if gf.format, err = parseLookFormat(tf.format); err != nil {
					return err
				}
				_, err := a.runGate(cmd.Context(), gf, &reg, logs, refs, output)
				return err
			}
			opts, err := tf.keyOptions()
			if err != nil {
				return err
			}
			if opts.Platform, err = parsePlatform(platform); err != nil {
				return err
			}
			if opts.SignatureRepo, err = a.signatureRepo(sigRepo); err != nil {
				return err
			}
			_, err = a.verifyRefs(cmd.Context(), &tf, &reg, refs, opts, output)
			return err
		},
	}
	f := cmd.Flags()
	tf.register(cmd, true)
	f.StringVar(&sigRepo, "signature-repository", "", "read signatures from this repository (default $"+envRepository+", then the image's)")
	f.StringVar(&platform, "platform", "", "for an index, verify the manifest of this platform (os/arch[/variant]) instead")
	f.StringVarP(&output, "output", "o", "text", "output on standard output: text (nothing) or json")
	src.register(cmd)
	reg.register(cmd)
	return cmd
}

// verifyRefs verifies refs against the keys or certificate identities of
// tf (key mode; opts from tf.keyOptions, with any Platform or SignatureRepo
// set), --jobs at a time over one registry client. It prints each verdict
// in order on stderr as verify does, and with output "json" the results on
// stdout. It returns a result per reference and an error carrying the exit
// code of the first failure. verify, dockerfile verify|pin and diff all
// verify through it.
func (a *App) verifyRefs(ctx context.Context, tf *trustFlags, reg *registryFlags, refs []name.Reference, opts verify.Options, output string) ([]*verify.Result, error) {
	if tf.gf.jobs < 1 {
		return nil, usageError{fmt.Errorf("--jobs must be at least 1")}
	}
	logOpts, err := tf.verifierOptions(ctx)
	if err != nil {
		return nil, err
	}
	v, ctx, cancel, err := a.verifier(ctx, reg, tf.keyPaths, logOpts...)
	if err != nil {
		return nil, err
	}
	defer cancel()
	results := make([]*verify.Result, len(refs))
	errs := make([]error, len(refs))
	var g errgroup.Group
	g.SetLimit(tf.gf.jobs)
	for i, ref := range refs {
		g.Go(func() error {
			results[i], errs[i] = v.Verify(ctx, ref, opts)
			return nil // each image's verdict is its own
		})
	}
	g.Wait()
	var first error
	for i, res := range results {
		a.printVerdict(res, errs[i])
		if errs[i] != nil && first == nil {
			first = errs[i]
		}
	}
	if output == "json" {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return results, err
		}
	}
	if first != nil {
		return results, exitError{code: verifyExitCode(first), err: first, reported: true}
	}
	return results, nil
}

// printVerdict writes the human summary of one image to stderr.
func (a *App) printVerdict(res *verify.Result, err error) {
	if err == nil {
		at := ""
		if !strings.HasSuffix(res.Image, res.Digest) {
			at = " (" + res.Digest + ")"
		}
		fmt.Fprintf(a.Stderr, "Verified %s%s: %d valid signature(s)\n", res.Image, at, len(res.Signatures))
		if b := res.Blobs; b != nil {
			fmt.Fprintf(a.Stderr, "  content re-hashed: %d manifest(s), %d blob(s), %d bytes\n", b.Manifests, b.Blobs, b.Bytes)
		}
		for _, s := range res.Signatures {
			a.printSigner(s.Source+" signature", s.KeyID, s.Identity, s.SignedAt, s.Tlog, s.TlogUnchecked, s.TimestampsUnchecked)
		}
	} else {
		at := ""
		if res.Digest != "" && !strings.HasSuffix(res.Image, res.Digest) {
			at = " (" + res.Digest + ")"
		}
		fmt.Fprintf(a.Stderr, "FAILED %s%s: %s\n", res.Image, at, oneLine(err.Error()))
	}
	a.printRejections(res.Rejected, res.Warnings, "signature")
}

// printSigner writes who made one verified signature or attestation
// (what): the key and its log entries, or the certificate identity and its
// verified signing times.
func (a *App) printSigner(what, keyID string, id *verify.SignerIdentity, signedAt []time.Time, facts []tlog.Facts, unchecked, tsUnchecked int) {
	if id != nil {
		fmt.Fprintf(a.Stderr, "  %s by %s (issuer %s)\n", what, id.Subject, id.Issuer)
		for _, t := range signedAt {
			fmt.Fprintf(a.Stderr, "    signed at %s (verified)\n", t.UTC().Format(time.RFC3339))
		}
		return
	}
	fmt.Fprintf(a.Stderr, "  %s by key %s\n", what, keyID)
	for _, line := range describeLog(facts, unchecked) {
		fmt.Fprintf(a.Stderr, "    %s\n", line)
	}
	for _, t := range signedAt {
		fmt.Fprintf(a.Stderr, "    timestamped at %s (RFC 3161, verified by a trusted TSA)\n", t.UTC().Format(time.RFC3339))
	}
	if tsUnchecked > 0 {
		fmt.Fprintf(a.Stderr, "    its %d RFC 3161 timestamp(s) were not checked: no timestamp authority is trusted (--trusted-root)\n", tsUnchecked)
	}
}

// signerName names who made a verified signature: its key, or its
// certificate identity and issuer.
func signerName(keyID string, id *verify.SignerIdentity) string {
	if id != nil {
		return id.Subject + " (issuer " + id.Issuer + ")"
	}
	return "key " + keyID
}

// printRejections lists rejected signatures or attestations (noun) and
// warnings on stderr.
func (a *App) printRejections(rejected []verify.Rejected, warnings []string, noun string) {
	for _, r := range rejected {
		what := "legacy " + noun + "s"
		switch {
		case r.Source == verify.SourceBundle:
			what = "bundle " + r.Referrer
		case r.Index != nil:
			what = fmt.Sprintf("legacy %s #%d (%s)", noun, *r.Index, r.PayloadDigest)
		}
		fmt.Fprintf(a.Stderr, "  rejected %s: %s\n", what, oneLine(r.Reason))
	}
	for _, w := range warnings {
		fmt.Fprintf(a.Stderr, "  warning: %s\n", w)
	}
}

// verifier loads the trusted public keys and makes a Verifier with a
// registry client bounded by --timeout.
func (a *App) verifier(ctx context.Context, reg *registryFlags, keyPaths []string, opts ...verify.Option) (*verify.Verifier, context.Context, context.CancelFunc, error) {
	pubs, err := a.readPublicKeys(ctx, keyPaths)
	if err != nil {
		return nil, nil, nil, err
	}
	client, ctx, cancel, err := reg.client(ctx, a)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := verify.NewVerifier(client, pubs, opts...)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return v, ctx, cancel, nil
}

// parseLookFormat parses verify's --format.
func parseLookFormat(s string) (verify.Format, error) {
	switch s {
	case "any":
		return verify.FormatAny, nil
	case "legacy", "bundle":
		return verify.Format(s), nil
	}
	return "", usageError{fmt.Errorf("--format must be any, legacy or bundle, not %q", s)}
}

// parsePlatform parses --platform; "" means none.
func parsePlatform(s string) (*v1.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, usageError{fmt.Errorf("--platform %q is not os/arch[/variant]", s)}
	}
	return p, nil
}
