package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
)

const typeHelp = "predicate type: slsaprovenance (v0.2), slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, custom, or a URI"

func (a *App) newAttestCommand() *cobra.Command {
	var (
		keyPath, predicatePath, statementPath, typ, format string
		pw                                                 passwordFlags
		reg                                                registryFlags
		logs                                               logFlags
		kf                                                 keylessSignFlags
	)
	cmd := &cobra.Command{
		Use:   "attest [--key KEY] --type TYPE (--predicate FILE | --statement FILE) IMAGE",
		Short: "Sign an in-toto attestation (provenance, SBOM, vulnerability report, VEX) about an image",
		Long: `Attest IMAGE: build an in-toto statement (v1) whose subject is the image's
manifest digest and whose predicate is the JSON in --predicate (or take a
whole statement from --statement; its subject must name the digest), sign
it in a DSSE envelope, and store it as cosign does: a layer of the legacy tag
sha256-<hex>.att and/or a Sigstore bundle referrer (--format, default both).
The predicate must be a JSON object of at most 16 MiB.

With --rekor-url the attestation's signature is first recorded in that
Rekor log (v1: a dsse entry, as cosign v3 writes; v2: a hashedrekord over
the envelope's PAE); if the log fails, nothing is written to the registry.

` + keyTimestampHelp + `

` + keylessSignHelp + `

A keyless attestation is logged once; the legacy layer stores the envelope
exactly as logged, with the certificate, chain and Rekor bundle annotations.
With a timestamp authority, the bundle's timestamp covers the signature and
the legacy layer gets its own, over the whole layer, as cosign verifies it.`,
		Example: `  # keyless, in CI:
  imgsign attest --type slsaprovenance1 --predicate provenance.json registry.example.com/app@sha256:...
  imgsign attest --key imgsign.key --type slsaprovenance1 --predicate provenance.json registry.example.com/app:1.4.2
  imgsign attest --key imgsign.key --timestamp-server-url https://tsa.internal/api/v1/timestamp --type slsaprovenance1 --predicate provenance.json IMAGE
  imgsign attest --key imgsign.key --type cyclonedx --predicate sbom.cdx.json registry.example.com/app:1.4.2`,
		Args: exactArgs(1, "one image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ == "" {
				return usageError{fmt.Errorf("--type is required")}
			}
			if keyPath != "" && kf.given() {
				return usageError{fmt.Errorf("--key signs with a key: the keyless flags (--identity-token, --signing-config, --fulcio-url, --trusted-root) do not apply")}
			}
			if (predicatePath == "") == (statementPath == "") {
				return usageError{fmt.Errorf("give exactly one of --predicate and --statement")}
			}
			pt, err := attest.PredicateType(typ)
			if err != nil {
				return usageError{err}
			}
			f, err := sign.ParseFormat(format)
			if err != nil {
				return usageError{err}
			}
			o := attest.Options{PredicateType: pt, Format: f}
			if keyPath != "" {
				if o.Log, err = logs.client(); err != nil {
					return err
				}
				if o.Timestamps, err = kf.keyTimestamps("nothing was written to the registry"); err != nil {
					return err
				}
			}
			if predicatePath != "" {
				o.Predicate, err = readInputFile(predicatePath, a.Stdin, attest.MaxPredicateBytes)
			} else {
				o.Statement, err = readInputFile(statementPath, a.Stdin, attest.MaxPredicateBytes)
			}
			if err != nil {
				return err
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			var (
				at      *attest.Attester
				logName string
			)
			if keyPath == "" {
				client, ctx, cancel, err := reg.client(cmd.Context(), a)
				if err != nil {
					return err
				}
				defer cancel()
				ks, err := a.newKeylessSigner(ctx, &kf, &logs, f.Legacy())
				if err != nil {
					return err
				}
				defer ks.reportStats(a.Stderr, &kf)
				at, logName = attest.NewKeylessAttester(client, ks.Signer), ks.logNames()
				cmd.SetContext(ctx)
			} else {
				key, client, ctx, cancel, err := a.signingClient(cmd.Context(), &reg, keyPath, pw)
				if err != nil {
					return err
				}
				defer cancel()
				if at, err = attest.NewAttester(client, key); err != nil {
					return err
				}
				if o.Log != nil {
					logName = o.Log.URL()
				}
				cmd.SetContext(ctx)
			}
			out, err := at.Attest(cmd.Context(), refs[0], o)
			if err != nil {
				if errors.Is(err, attest.ErrInvalidInput) {
					return usageError{err}
				}
				return err
			}
			where := ""
			if out.Tag != "" {
				where = out.Tag
			}
			if out.Referrer != "" {
				if where != "" {
					where += " and "
				}
				where += "bundle referrer " + out.Referrer
			}
			fmt.Fprintf(a.Stderr, "Attested %s (%s), stored in %s\n", out.Image, out.PredicateType, where)
			if o.Timestamps != nil {
				fmt.Fprintf(a.Stderr, "  timestamped by %s\n", strings.Join(o.Timestamps.URLs(), ", "))
			}
			if out.Entry != nil {
				fmt.Fprintf(a.Stderr, "  recorded in transparency log %s at index %d\n", logName, out.Entry.GetLogIndex())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "private key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:); without it, sign keyless")
	f.StringVar(&typ, "type", "", typeHelp+" (required)")
	f.StringVar(&predicatePath, "predicate", "", "predicate JSON file (\"-\" for standard input)")
	f.StringVar(&statementPath, "statement", "", "a whole in-toto statement instead of a predicate")
	f.StringVar(&format, "format", string(sign.FormatBoth), "where to store the attestation: legacy, bundle or both")
	logs.registerSign(cmd)
	kf.register(cmd)
	pw.register(cmd)
	reg.register(cmd)
	return cmd
}

func (a *App) newVerifyAttestationCommand() *cobra.Command {
	var (
		keyPaths                        []string
		kl                              keylessFlags
		typ, policyPath, format, platfm string
		reg                             registryFlags
		logs                            logFlags
		src                             sourceFlags
	)
	cmd := &cobra.Command{
		Use:   "verify-attestation --key PUB --type TYPE [--policy FILE] [--local DIR | --tarball FILE] IMAGE...",
		Short: "Verify an image's attestations of one type, and conditions on them",
		Long: `Verify the attestations of --type about each IMAGE. Attestations are chosen
by type from what the registry lists (layer annotations, referrer entries)
before anything is downloaded. One verifies only if its DSSE signature
checks with a trusted key over the exact payload, the payload is an in-toto
statement (v1 or v0.1) that parses strictly, its predicate type is the one
asked for and the one the registry claimed, and its subject is the image's
digest. No attestation of the type is a failure even if others exist.

--policy FILE adds conditions on the predicate in CEL:

  conditions:
    - name: built by our CI
      expression: predicate.builder.id == "https://ci.example/builder"

Transparency-log entries that travel with an attestation are checked as
verify checks them (--rekor-key, --trusted-root, --rekor-url,
--require-tlog): an entry present but invalid is a rejection.

--local DIR and --tarball FILE read the image and its attestations from an
OCI image layout or an archive of one, as verify does (IMAGE may then be
left out: every image of the layout is checked).

A failed condition is reported by name. The verified statements are printed
as JSON on standard output; reasons for rejections go to standard error.

` + verifyExitHelp,
		Example: `  imgsign verify-attestation --key imgsign.pub --type slsaprovenance1 --policy slsa.yaml registry.example.com/app:1.4.2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !src.set() {
				return usageError{fmt.Errorf("expected at least one image")}
			}
			if (len(keyPaths) == 0 && !kl.given()) || typ == "" {
				return usageError{fmt.Errorf("--key and --type are required (or, for keyless attestations, --certificate-identity and --certificate-oidc-issuer instead of --key)")}
			}
			pt, err := attest.PredicateType(typ)
			if err != nil {
				return usageError{err}
			}
			o := verify.AttestationOptions{PredicateType: pt, RequireTlog: logs.require, RequireTimestamp: logs.requireTS}
			if o.Format, err = parseLookFormat(format); err != nil {
				return err
			}
			if o.Platform, err = parsePlatform(platfm); err != nil {
				return err
			}
			if policyPath != "" {
				if o.Policy, err = policy.Load(policyPath); err != nil {
					return usageError{err}
				}
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			refs, done, err := a.useSource(&src, &reg, &logs, "", refs)
			if err != nil {
				return err
			}
			defer done()
			logOpts, err := verifierOptions(cmd.Context(), &logs, &kl, keyPaths)
			if err != nil {
				return err
			}
			v, ctx, cancel, err := a.verifier(cmd.Context(), &reg, keyPaths, logOpts...)
			if err != nil {
				return err
			}
			defer cancel()
			var (
				first    error
				verified []json.RawMessage
			)
			for _, ref := range refs {
				res, err := v.VerifyAttestations(ctx, ref, o)
				a.printAttestationVerdict(res, err)
				for _, at := range res.Attestations {
					verified = append(verified, at.Statement)
				}
				if err != nil && first == nil {
					first = err
				}
			}
			// Streamed: statements may be up to an attestation's size.
			if err := writeIndentedArray(a.Stdout, verified); err != nil {
				return err
			}
			if first != nil {
				return exitError{code: verifyExitCode(first), err: first, reported: true}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&keyPaths, "key", nil, "trusted public key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:) (repeatable: any key may match)")
	f.StringVar(&typ, "type", "", typeHelp+" (required)")
	f.StringVar(&policyPath, "policy", "", "CEL conditions the predicate must meet (YAML or JSON)")
	f.StringVar(&format, "format", "any", "where to look: any, legacy (.att tag) or bundle (referrers)")
	f.StringVar(&platfm, "platform", "", "for an index, verify the manifest of this platform (os/arch[/variant])")
	logs.registerVerify(cmd)
	logs.registerRequireTimestamp(cmd)
	kl.register(cmd)
	kl.registerBlob(cmd)
	src.register(cmd)
	reg.register(cmd)
	return cmd
}

func (a *App) printAttestationVerdict(res *verify.AttestationResult, err error) {
	if err == nil {
		fmt.Fprintf(a.Stderr, "Verified %d attestation(s) of %s (%s)\n", len(res.Attestations), res.Image, res.Digest)
		for _, at := range res.Attestations {
			a.printSigner(at.Source+" attestation", at.KeyID, at.Identity, at.SignedAt, at.Tlog, at.TlogUnchecked, at.TimestampsUnchecked)
		}
	} else {
		fmt.Fprintf(a.Stderr, "FAILED %s: %s\n", res.Image, oneLine(err.Error()))
	}
	a.printRejections(res.Rejected, res.Warnings, "attestation")
}

// readInputFile reads a file (or standard input for "-") of at most max
// bytes.
func readInputFile(path string, stdin io.Reader, max int64) ([]byte, error) {
	if path == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, max+1))
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > max {
			return nil, usageError{fmt.Errorf("standard input is larger than %d bytes", max)}
		}
		return data, nil
	}
	data, err := readSmallFile(path, max)
	if err != nil {
		return nil, usageError{err}
	}
	return data, nil
}
