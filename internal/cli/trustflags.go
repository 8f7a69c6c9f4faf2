package cli

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
)

// trustFlags are the flags that say what an image must be signed with:
// trusted keys or certificate identities (--key, --certificate-identity...,
// --threshold, -a, --check-identity, --format, the log flags) or a trust
// policy (--policy). verify and diff share them, and
// the one code path below that turns them into verification.
type trustFlags struct {
	keyPaths, annotations []string
	threshold             int
	checkIdentity         bool
	format                string
	kl                    keylessFlags
	logs                  logFlags
	gf                    gateFlags
}

func (t *trustFlags) register(cmd *cobra.Command, withManifests bool) {
	f := cmd.Flags()
	f.StringArrayVar(&t.keyPaths, "key", nil, "trusted public key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:) (repeatable: any key may match)")
	f.IntVar(&t.threshold, "threshold", 1, "number of distinct signers (keys, or certificate identity+issuer pairs) that must have signed")
	f.StringArrayVarP(&t.annotations, "annotation", "a", nil, "key=value the signed payload must carry (repeatable)")
	f.BoolVar(&t.checkIdentity, "check-identity", false, "require the signed docker-reference to name the repository verified")
	f.StringVar(&t.format, "format", "any", "where to look for signatures: any (legacy tag, then bundle referrers), legacy or bundle")
	t.logs.registerVerify(cmd)
	t.logs.registerRequireTimestamp(cmd)
	t.kl.register(cmd)
	t.kl.registerBlob(cmd)
	t.gf.register(cmd, withManifests)
}

// set reports whether any verification was asked for.
func (t *trustFlags) set() bool { return len(t.keyPaths) > 0 || t.kl.given() || t.gf.policy != "" }

// checkPolicy refuses key-mode flags next to --policy, which says the same
// per scope.
func (t *trustFlags) checkPolicy(sigRepo string) error {
	if len(t.keyPaths) > 0 || t.kl.given() || len(t.annotations) > 0 || t.threshold != 1 || t.checkIdentity || len(t.logs.keys) > 0 || t.logs.trustedRoot != "" || t.logs.require || t.logs.requireTS {
		return usageError{fmt.Errorf("--policy says per scope what --key, --certificate-identity, --threshold, -a, --check-identity, --rekor-key, --trusted-root, --require-tlog and --require-timestamp would: give one or the other")}
	}
	if sigRepo != "" {
		return usageError{fmt.Errorf("--signature-repository is not supported with --policy yet (attestations cannot be read from another repository)")}
	}
	return nil
}

// keyOptions checks the key-mode flags and returns the verify options
// they ask for (without the signature repository and platform).
func (t *trustFlags) keyOptions() (verify.Options, error) {
	if len(t.keyPaths) == 0 && !t.kl.given() {
		return verify.Options{}, usageError{fmt.Errorf("--key or --policy is required, or a certificate identity (--certificate-identity or --certificate-identity-regexp, with --certificate-oidc-issuer or --certificate-oidc-issuer-regexp) for keyless signatures")}
	}
	if t.threshold < 1 || (t.threshold > len(t.keyPaths) && !t.kl.given()) {
		return verify.Options{}, usageError{fmt.Errorf("--threshold must be between 1 and the number of keys (%d)", len(t.keyPaths))}
	}
	look, err := parseLookFormat(t.format)
	if err != nil {
		return verify.Options{}, err
	}
	ann, err := parseAnnotations(t.annotations)
	if err != nil {
		return verify.Options{}, err
	}
	return verify.Options{Annotations: ann, Threshold: t.threshold, CheckIdentity: t.checkIdentity, Format: look, RequireTlog: t.logs.require, RequireTimestamp: t.logs.requireTS, VerifyBlobs: t.gf.blobs}, nil
}

// verifierOptions are the log and keyless options of a Verifier for these
// flags.
func (t *trustFlags) verifierOptions(ctx context.Context) ([]verify.Option, error) {
	return verifierOptions(ctx, &t.logs, &t.kl, t.keyPaths)
}

// verifyImage verifies one image (a digest, so that what is verified is
// what is then read) against the keys or the policy, through reg's client,
// reporting as verify does on stderr. It returns who signed it.
func (a *App) verifyImage(ctx context.Context, t *trustFlags, reg *registryFlags, ref name.Reference, platform *v1.Platform) ([]string, error) {
	if t.gf.policy != "" {
		if err := t.checkPolicy(""); err != nil {
			return nil, err
		}
		look, err := parseLookFormat(t.format)
		if err != nil {
			return nil, err
		}
		gf := t.gf
		gf.platform, gf.format = platform, look
		results, err := a.runGate(ctx, &gf, reg, &t.logs, []name.Reference{ref}, "text")
		if err != nil {
			return nil, err
		}
		var by []string
		for _, r := range results {
			if r.Unsigned {
				by = append(by, "unsigned (allowed by scope "+r.Scope+")")
			}
			if r.Signatures != nil {
				by = append(by, signers(r.Signatures)...)
			}
		}
		return by, nil
	}
	opts, err := t.keyOptions()
	if err != nil {
		return nil, err
	}
	opts.Platform = platform
	results, err := a.verifyRefs(ctx, t, reg, []name.Reference{ref}, opts, "text")
	if err != nil {
		return nil, err
	}
	return signers(results[0]), nil
}

// signers names the keys and certificate identities that signed, once
// each.
func signers(res *verify.Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range res.Signatures {
		w := signerName(s.KeyID, s.Identity)
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}
