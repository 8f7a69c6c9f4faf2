package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/spf13/cobra"
)

// Kinds of attachments, for tree and clean.
const (
	kindSignature   = "signature"
	kindAttestation = "attestation"
	kindOther       = "other"
	// kindBundle is a Sigstore bundle not yet known to be either.
	kindBundle = "bundle"
)

// attachment is one entry of `imgsign tree`.
type attachment struct {
	Kind          string `json:"kind"`
	Scheme        string `json:"scheme"` // "legacy" or "referrer"
	Digest        string `json:"digest"`
	Tag           string `json:"tag,omitempty"`
	ArtifactType  string `json:"artifactType,omitempty"`
	PredicateType string `json:"predicateType,omitempty"`
	// KeyHint is the key ID a bundle names (unverified).
	KeyHint string `json:"keyHint,omitempty"`
}

type treeResult struct {
	Image       string       `json:"image"`
	Digest      string       `json:"digest"`
	ReferrerAPI bool         `json:"referrersAPI"`
	Attachments []attachment `json:"attachments"`
	Warnings    []string     `json:"warnings,omitempty"`
}

// referrerKind classifies a referrer from its listing entry. A bundle
// listed without its predicate type (cosign v3's entries in a fallback
// index carry no annotations) is kindBundle: read it to know (bundleKind).
func referrerKind(d v1.Descriptor) (kind, predicateType string) {
	pt := d.Annotations[oci.BundlePredicateTypeAnnotation]
	isBundle := d.ArtifactType == bundle.MediaTypeV03 || d.Annotations[oci.BundleContentAnnotation] != ""
	switch {
	case isBundle && pt == statement.CosignSign:
		return kindSignature, pt
	case isBundle && pt != "":
		return kindAttestation, pt
	case isBundle:
		return kindBundle, pt
	}
	return kindOther, pt
}

// bundleKind reads the bundle referrer r and classifies it by the
// predicate type of its statement (unverified: for listing and selecting
// only, never for trust), with the key hint it names. Unreadable, it stays
// kindBundle.
func bundleKind(ctx context.Context, client *oci.Client, repo name.Repository, r v1.Descriptor) (kind, predicateType, hint string) {
	_, blob, err := client.FetchReferrer(ctx, repo, r, bundle.MediaTypeV03, client.Limits().MaxAttestationBytes)
	if err != nil {
		return kindBundle, "", ""
	}
	b, err := bundle.ParseDSSE(blob)
	if err != nil {
		return kindBundle, "", ""
	}
	st, err := statement.Parse(b.Payload)
	switch {
	case err != nil:
		return kindBundle, "", b.Hint
	case st.PredicateType == statement.CosignSign:
		return kindSignature, st.PredicateType, b.Hint
	}
	return kindAttestation, st.PredicateType, b.Hint
}

func legacyKind(suffix string) string {
	switch suffix {
	case oci.SignatureTagSuffix:
		return kindSignature
	case oci.AttestationTagSuffix:
		return kindAttestation
	}
	return kindOther
}

// resolveForAttachments resolves ref (a digest is not fetched) and returns
// the client and digest.
func (a *App) resolveForAttachments(ctx context.Context, reg *registryFlags, arg string) (*oci.Client, context.Context, context.CancelFunc, name.Digest, error) {
	refs, err := parseRefs([]string{arg})
	if err != nil {
		return nil, nil, nil, name.Digest{}, err
	}
	client, ctx, cancel, err := reg.client(ctx, a)
	if err != nil {
		return nil, nil, nil, name.Digest{}, err
	}
	d, ok := refs[0].(name.Digest)
	if !ok {
		r, err := client.Resolve(ctx, refs[0])
		if err != nil {
			cancel()
			return nil, nil, nil, name.Digest{}, err
		}
		d = r.Ref
	}
	return client, ctx, cancel, d, nil
}

func (a *App) newTreeCommand() *cobra.Command {
	var (
		output, sigRepo string
		reg             registryFlags
	)
	cmd := &cobra.Command{
		Use:   "tree IMAGE",
		Short: "Show everything attached to an image: signatures, attestations, SBOMs",
		Long: `List what is attached to IMAGE in both storage schemes: the legacy tags
sha256-<hex>.sig, .att and .sbom, and OCI 1.1 referrers (from the registry's
referrers API, or the fallback index where it has none), with their types,
digests and, for Sigstore bundles, the key ID they name. Nothing here is
verified: use verify for that.`,
		Example: `  imgsign tree registry.example.com/app:1.4.2
  imgsign tree -o json registry.example.com/app@sha256:...`,
		Args: exactArgs(1, "one image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", output)}
			}
			repo, err := a.signatureRepo(sigRepo)
			if err != nil {
				return err
			}
			client, ctx, cancel, d, err := a.resolveForAttachments(cmd.Context(), &reg, args[0])
			if err != nil {
				return err
			}
			defer cancel()
			att, err := client.ListAttached(ctx, d, repo)
			if err != nil {
				return err
			}
			res := treeResult{Image: args[0], Digest: d.DigestStr(), ReferrerAPI: att.Referrers.API, Attachments: []attachment{}, Warnings: att.Referrers.Warnings}
			for _, l := range att.Legacy {
				for _, layer := range l.Layers {
					res.Attachments = append(res.Attachments, attachment{
						Kind: legacyKind(l.Suffix), Scheme: "legacy", Digest: layer.Digest.String(), Tag: l.Tag.String(),
						ArtifactType: string(layer.MediaType), PredicateType: layer.Annotations["predicateType"],
					})
				}
			}
			subjectRepo := d.Context()
			if repo != nil {
				subjectRepo = *repo
			}
			fetched := 0
			for _, r := range att.Referrers.Descriptors {
				kind, pt := referrerKind(r)
				e := attachment{Kind: kind, Scheme: "referrer", Digest: r.Digest.String(), ArtifactType: r.ArtifactType, PredicateType: pt}
				if kind != kindOther && fetched < client.Limits().MaxSignatures {
					fetched++
					k, pt, hint := bundleKind(ctx, client, subjectRepo, r)
					e.KeyHint = hint
					if kind == kindBundle {
						e.Kind, e.PredicateType = k, pt
					}
				}
				res.Attachments = append(res.Attachments, e)
			}
			if output == "json" {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printTree(a.Stdout, res)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&sigRepo, "signature-repository", "", "read attachments from this repository (default $"+envRepository+", then the image's)")
	reg.register(cmd)
	return cmd
}

func printTree(w io.Writer, r treeResult) {
	fmt.Fprintf(w, "%s (%s)\n", r.Image, r.Digest)
	if len(r.Attachments) == 0 {
		fmt.Fprintln(w, "└── nothing attached")
	}
	for i, e := range r.Attachments {
		branch := "├──"
		if i == len(r.Attachments)-1 {
			branch = "└──"
		}
		where := "referrer"
		if e.Scheme == "legacy" {
			where = "legacy " + e.Tag[strings.LastIndex(e.Tag, ":")+1:]
		} else if !r.ReferrerAPI {
			where = "referrer (fallback index)"
		}
		line := fmt.Sprintf("%s %-11s %s  [%s]", branch, e.Kind, e.Digest, where)
		if e.PredicateType != "" && e.PredicateType != statement.CosignSign {
			line += "  " + e.PredicateType
		}
		if e.KeyHint != "" {
			line += "  key " + e.KeyHint
		}
		fmt.Fprintln(w, line)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
}

func (a *App) newCleanCommand() *cobra.Command {
	var (
		kind, sigRepo string
		yes           bool
		reg           registryFlags
	)
	cmd := &cobra.Command{
		Use:   "clean --yes [--type signature|attestation|all] IMAGE",
		Short: "Remove signatures and other attachments from an image",
		Long: `Delete what is attached to IMAGE, in both storage schemes: the legacy tags
(.sig for signatures, .att for attestations, and .sbom too with --type all)
and the matching referrer manifests, removing them from the fallback index
where the registry has no referrers API. The registry must allow deletes.
This cannot be undone, so --yes is required.`,
		Example: `  imgsign clean --yes --type signature registry.example.com/app:1.4.2`,
		Args:    exactArgs(1, "one image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != kindSignature && kind != kindAttestation && kind != "all" {
				return usageError{fmt.Errorf("--type must be signature, attestation or all, not %q", kind)}
			}
			if !yes {
				return usageError{fmt.Errorf("clean deletes signatures for good: pass --yes to confirm")}
			}
			repo, err := a.signatureRepo(sigRepo)
			if err != nil {
				return err
			}
			client, ctx, cancel, d, err := a.resolveForAttachments(cmd.Context(), &reg, args[0])
			if err != nil {
				return err
			}
			defer cancel()
			if err := client.Authenticate(ctx, d.Context(), true); err != nil {
				return err
			}
			want := func(k string) bool { return kind == "all" || kind == k }
			att, err := client.ListAttached(ctx, d, repo)
			if err != nil {
				return err
			}
			legacy := 0
			for _, l := range att.Legacy {
				if !want(legacyKind(l.Suffix)) {
					continue
				}
				if err := client.DeleteTagged(ctx, l.Tag, l.Digest); err != nil {
					return err
				}
				legacy++
			}
			subject := d
			if repo != nil {
				subject = repo.Digest(d.DigestStr())
			}
			n, err := client.RemoveReferrers(ctx, subject, func(r v1.Descriptor) bool {
				k, _ := referrerKind(r)
				if k == kindBundle && kind != "all" {
					k, _, _ = bundleKind(ctx, client, subject.Context(), r)
				}
				return want(k)
			})
			fmt.Fprintf(a.Stderr, "Removed %d legacy tag(s) and %d referrer(s) from %s\n", legacy, n, d)
			return err
		},
	}
	cmd.Flags().StringVar(&kind, "type", "all", "what to remove: signature, attestation or all")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	cmd.Flags().StringVar(&sigRepo, "signature-repository", "", "remove attachments from this repository (default $"+envRepository+", then the image's)")
	reg.register(cmd)
	return cmd
}
