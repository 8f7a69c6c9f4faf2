package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sigstore/sigstore-go/pkg/root"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/k8simages"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/trustpolicy"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
)

// ExitRejected is verify's exit code when the trust policy rejects an image
// outright (a scope that says reject, or no scope and no default).
const ExitRejected = 13

// gateFlags are the flags of the policy gate (verify --policy, dockerfile).
type gateFlags struct {
	policy    string
	manifests []string
	jobs      int
	blobs     bool
	// platform and format come from verify's own flags.
	platform *v1.Platform
	format   verify.Format
}

func (f *gateFlags) register(cmd *cobra.Command, withManifests bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "trust policy file: which keys, logs, attestations and ages each registry and repository requires (see 'imgsign policy validate')")
	fl.IntVar(&f.jobs, "jobs", gate.DefaultJobs, "images verified at once")
	fl.BoolVar(&f.blobs, "verify-blobs", false, "also re-hash every config and layer blob (streamed, never decompressed) to catch content changed in the registry's storage")
	if withManifests {
		fl.StringArrayVarP(&f.manifests, "filename", "f", nil, "Kubernetes manifests (multi-document YAML or JSON, - for standard input) whose images to verify (repeatable)")
	}
}

// manifestRefs returns the images of the -f manifests, each once, in order.
func (a *App) manifestRefs(paths []string) ([]name.Reference, error) {
	var images []k8simages.Image
	for _, p := range paths {
		var err error
		var found []k8simages.Image
		if p == "-" {
			found, err = k8simages.Images(a.Stdin)
		} else {
			var fh *os.File
			if fh, err = os.Open(p); err != nil {
				return nil, usageError{err}
			}
			found, err = k8simages.Images(fh)
			fh.Close()
		}
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", p, err)}
		}
		images = append(images, found...)
	}
	return parseRefs(k8simages.Unique(images))
}

// loadPolicy reads a trust policy; its errors are the user's to fix.
func loadPolicy(path string) (*trustpolicy.Policy, error) {
	p, err := trustpolicy.Load(path)
	if errors.Is(err, keys.ErrKeyRefused) || errors.Is(err, keys.ErrKeyUnreachable) || errors.Is(err, keys.ErrNoProvider) || trustroot.IsTrustError(err) {
		// A kms: key the provider refused (exit 3) or could not serve, or
		// a malformed trustedRoot file (exit 15).
		return nil, err
	}
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// runGate verifies refs against a policy and reports like verify: a line
// per image (and rejections) on stderr, -o json on stdout. It returns the
// results, and an error carrying the exit code of the first failure.
func (a *App) runGate(ctx context.Context, f *gateFlags, reg *registryFlags, logs *logFlags, refs []name.Reference, output string) ([]gate.Result, error) {
	p, err := loadPolicy(f.policy)
	if err != nil {
		return nil, err
	}
	if f.jobs < 1 {
		return nil, usageError{fmt.Errorf("--jobs must be at least 1")}
	}
	online, err := logs.client()
	if err != nil {
		return nil, err
	}
	client, ctx, cancel, err := reg.client(ctx, a)
	if err != nil {
		return nil, err
	}
	defer cancel()
	results := gate.New(client, p, gate.Options{Jobs: f.jobs, Online: online, VerifyBlobs: f.blobs, Platform: f.platform, Format: f.format, DefaultTrustedRoot: sync.OnceValues(func() (root.TrustedMaterial, error) { return defaultTrustedRoot(ctx) })}).Check(ctx, refs)
	var first error
	failed := 0
	for i := range results {
		r := &results[i]
		a.printGateVerdict(r)
		if r.Err() != nil {
			failed++
			if first == nil {
				first = r.Err()
			}
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
		fmt.Fprintf(a.Stderr, "%d of %d image(s) failed the policy\n", failed, len(results))
		return results, exitError{code: verifyExitCode(first), err: first, reported: true}
	}
	fmt.Fprintf(a.Stderr, "All %d image(s) meet the policy\n", len(results))
	return results, nil
}

// printGateVerdict writes the human summary of one image to stderr.
func (a *App) printGateVerdict(r *gate.Result) {
	scope := "scope " + r.Scope
	switch {
	case r.Scope == "":
		scope = "no scope"
	case r.Scope == "default":
		scope = "the default"
	}
	at := ""
	if r.Digest != "" && !strings.HasSuffix(r.Image, r.Digest) {
		at = " (" + r.Digest + ")"
	}
	switch {
	case r.Err() != nil:
		fmt.Fprintf(a.Stderr, "FAILED %s%s [%s]: %s\n", r.Image, at, scope, oneLine(r.Error))
	case r.Unsigned:
		fmt.Fprintf(a.Stderr, "Accepted %s%s unsigned [%s allows unsigned images]\n", r.Image, at, scope)
	default:
		fmt.Fprintf(a.Stderr, "Verified %s%s [%s]: %d valid signature(s), %d attestation type(s)\n", r.Image, at, scope, len(r.Signatures.Signatures), len(r.Attestations))
	}
	if r.Signatures != nil {
		if b := r.Signatures.Blobs; b != nil && r.Err() == nil {
			fmt.Fprintf(a.Stderr, "  content re-hashed: %d manifest(s), %d blob(s), %d bytes\n", b.Manifests, b.Blobs, b.Bytes)
		}
		for _, s := range r.Signatures.Signatures {
			a.printSigner(s.Source+" signature", s.KeyID, s.Identity, s.SignedAt, s.Tlog, s.TlogUnchecked, s.TimestampsUnchecked)
		}
		a.printRejections(r.Signatures.Rejected, r.Signatures.Warnings, "signature")
	}
	for _, at := range r.Attestations {
		if at != nil {
			a.printRejections(at.Rejected, at.Warnings, "attestation")
		}
	}
}

func (a *App) newPolicyCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "policy",
		Short: "Check and explain trust policy files",
	}
	root.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a trust policy file and explain it in plain words",
		Long: `Parse FILE strictly (an unknown field is an error, with its line), load every
key and trusted root it names, compile its conditions, and explain what it
requires of each registry and repository, in the order scopes are matched
(the most specific first).`,
		Example: `  imgsign policy validate deploy-policy.yaml`,
		Args:    exactArgs(1, "one policy file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPolicy(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "%s is valid.\n\n", args[0])
			p.Explain(a.Stdout)
			return nil
		},
	})
	return root
}
