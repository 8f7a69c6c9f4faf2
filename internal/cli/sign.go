package cli

import (
	"fmt"
	"strings"

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/spf13/cobra"
)

func (a *App) newSignCommand() *cobra.Command {
	var (
		keyPath, sigRepo, outSig, outPayload, format string
		outCert                                      string
		outEntry                                     string
		annotations                                  []string
		recursive, upload, force                     bool
		jobs                                         int
		pw                                           passwordFlags
		reg                                          registryFlags
		logs                                         logFlags
		kf                                           keylessSignFlags
	)
	cmd := &cobra.Command{
		Use:   "sign [--key KEY] IMAGE...",
		Short: "Sign container images and store the signatures in the registry",
		Long: `Sign each IMAGE. The reference is resolved once to its manifest digest
(computed from the bytes received) and only the digest is signed: a tag is
never what is signed. The signature is stored next to the image in cosign's
formats, so 'cosign verify' (v2 and v3) accepts it.

--format says where signatures are stored: "legacy" (cosign v1/v2's tag
sha256-<hex>.sig, read by every cosign release and the admission
controllers built on it), "bundle" (cosign v3's Sigstore bundle, pushed as
an OCI 1.1 referrer, or listed in the fallback index sha256-<hex> where the
registry has no referrers API), or "both" (the default, so that every
verifier, old or new, finds a signature).

Existing signatures are kept; signing again with the same key and
annotations adds nothing. Concurrent signers of one image do not lose each
other's signatures: the signature manifest is read back after writing and
merged again if another writer replaced it.

Several IMAGEs are signed --jobs at a time, over one connection pool and
one authentication per registry, with the key decrypted once (keyless: one
certificate). Every image is resolved and signed (and logged) before the
first registry write: if any of that fails, nothing is written.

With --key and --rekor-url, each signature is first recorded in that Rekor
log (v1: a hashedrekord 0.0.1 entry with a signed entry timestamp; v2:
hashedrekord 0.0.2 with an inclusion proof and checkpoint). If the log fails, nothing is
written to the registry. The entry travels with the signature: in cosign's
dev.sigstore.cosign/bundle annotation (v1, which cosign verifies), in
imgsign's dev.imgsign.tlog-entry annotation (the whole entry with its
proof), and in the bundle's tlogEntries.

With --upload=false nothing is written to the registry; --output-signature,
--output-payload and --output-tlog-entry save the signature, the exact
signed payload and its log entry (--output-certificate, keyless: the
signing certificate).

` + keyTimestampHelp + `

` + keylessSignHelp + `

In the legacy layout a keyless signature carries cosign's certificate,
chain, Rekor bundle and RFC 3161 timestamp annotations; a bundle carries
the certificate, the log entry with its inclusion proof, and timestamps.
Each image costs one signature, log entry and timestamp per layout
(--format both: two).`,
		Example: `  # keyless, in GitHub Actions (permissions: id-token: write) or GitLab CI:
  imgsign sign registry.example.com/app@sha256:...
  imgsign sign --identity-token token.jwt --signing-config signing_config.json registry.example.com/app:1.4.2
  imgsign sign --key imgsign.key registry.example.com/app:1.4.2
  imgsign sign --key imgsign.key -a git_sha=$GIT_SHA --recursive registry.example.com/app:1.4.2
  imgsign sign --key imgsign.key --rekor-url https://rekor.example.com registry.example.com/app:1.4.2
  imgsign sign --key imgsign.key --timestamp-server-url https://tsa.internal/api/v1/timestamp registry.example.com/app:1.4.2
  imgsign sign --key imgsign.key --upload=false --output-signature app.sig --output-payload app.json IMAGE`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("expected at least one image")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" && pw.file != "" {
				return usageError{fmt.Errorf("--password-file needs --key (keyless signing has no key to decrypt)")}
			}
			if keyPath != "" && kf.given() {
				return usageError{fmt.Errorf("--key signs with a key: the keyless flags (--identity-token, --signing-config, --fulcio-url, --trusted-root) do not apply")}
			}
			if outCert != "" && keyPath != "" {
				return usageError{fmt.Errorf("--output-certificate is for keyless signing (without --key)")}
			}
			if jobs < 1 {
				return usageError{fmt.Errorf("--jobs must be at least 1")}
			}
			f, err := sign.ParseFormat(format)
			if err != nil {
				return usageError{err}
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			ann, err := parseAnnotations(annotations)
			if err != nil {
				return err
			}
			repo, err := a.signatureRepo(sigRepo)
			if err != nil {
				return err
			}
			var (
				signer     *sign.Signer
				logClient  *tlog.Client
				timestamps *tsa.Client
				ks         *keylessSigner
				logName    string
			)
			if keyPath == "" {
				client, ctx, cancel, err := reg.client(cmd.Context(), a)
				if err != nil {
					return err
				}
				defer cancel()
				if ks, err = a.newKeylessSigner(ctx, &kf, &logs, !upload || f.Legacy()); err != nil {
					return err
				}
				defer ks.reportStats(a.Stderr, &kf)
				signer, logName = sign.NewKeylessSigner(client, ks.Signer), ks.logNames()
				cmd.SetContext(ctx)
			} else {
				if logClient, err = logs.client(); err != nil {
					return err
				}
				if outEntry != "" && logClient == nil {
					return usageError{fmt.Errorf("--output-tlog-entry needs --rekor-url")}
				}
				if timestamps, err = kf.keyTimestamps("nothing was written to the registry"); err != nil {
					return err
				}
				if timestamps != nil && !upload {
					return usageError{fmt.Errorf("--timestamp-server-url with --upload=false: the timestamp travels only with a stored signature")}
				}
				key, client, ctx, cancel, err := a.signingClient(cmd.Context(), &reg, keyPath, pw)
				if err != nil {
					return err
				}
				defer cancel()
				if signer, err = sign.NewSigner(client, key); err != nil {
					return err
				}
				if logClient != nil {
					logName = logClient.URL()
				}
				cmd.SetContext(ctx)
			}
			results, err := signer.SignAll(cmd.Context(), refs, sign.Options{Annotations: ann, SignatureRepo: repo, Recursive: recursive, Upload: upload, Format: f, Log: logClient, Timestamps: timestamps, Payload: outPayload != "" || outSig != ""}, jobs)
			if err != nil {
				return err
			}
			var all []sign.Signature
			var firstErr error
			for _, r := range results {
				for _, s := range r.Signatures {
					switch {
					case !upload:
						fmt.Fprintf(a.Stderr, "Signed %s (not uploaded)\n", s.Image)
					case s.Added:
						fmt.Fprintf(a.Stderr, "Signed %s, signature stored in %s\n", s.Image, where(s))
					default:
						fmt.Fprintf(a.Stderr, "%s already carries this signature in %s\n", s.Image, where(s))
					}
					if timestamps != nil && upload {
						fmt.Fprintf(a.Stderr, "  timestamped by %s\n", strings.Join(timestamps.URLs(), ", "))
					}
					for _, e := range []*tlog.Entry{s.Entry, s.BundleEntry} {
						if e != nil {
							fmt.Fprintf(a.Stderr, "  recorded in transparency log %s at index %d\n", logName, e.GetLogIndex())
						}
					}
				}
				all = append(all, r.Signatures...)
				if r.Err != nil {
					if len(results) > 1 {
						fmt.Fprintf(a.Stderr, "Error: %s: %v\n", r.Ref, r.Err)
					}
					if firstErr == nil {
						firstErr = r.Err
					}
				}
			}
			if firstErr != nil {
				return firstErr
			}
			if outCert != "" {
				if err := atomicfile.Write(outCert, []byte(ks.CertificatePEM()), 0o644, force); err != nil {
					return err
				}
			}
			if outSig == "" && outPayload == "" && outEntry == "" {
				return nil
			}
			if len(all) != 1 {
				return usageError{fmt.Errorf("--output-signature, --output-payload and --output-tlog-entry need exactly one signed manifest, not %d", len(all))}
			}
			if outEntry != "" {
				if all[0].Entry == nil {
					return fmt.Errorf("--output-tlog-entry: the legacy signature was not logged (use --format legacy or both, or --upload=false)")
				}
				data, err := tlog.MarshalEntry(all[0].Entry)
				if err != nil {
					return err
				}
				if err := atomicfile.Write(outEntry, data, 0o644, force); err != nil {
					return err
				}
			}
			if outPayload != "" {
				if err := atomicfile.Write(outPayload, all[0].Payload, 0o644, force); err != nil {
					return err
				}
			}
			if outSig != "" {
				if err := atomicfile.Write(outSig, []byte(all[0].Signature), 0o644, force); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "private key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:); without it, sign keyless")
	f.StringVar(&outCert, "output-certificate", "", "keyless: write the signing certificate (PEM) to this file")
	f.StringArrayVarP(&annotations, "annotation", "a", nil, "key=value to include in the signed payload (repeatable)")
	f.StringVar(&sigRepo, "signature-repository", "", "store signatures in this repository (default $"+envRepository+", then the image's)")
	f.BoolVar(&recursive, "recursive", false, "for an index, also sign every manifest it lists")
	f.StringVar(&format, "format", string(sign.FormatBoth), "where to store signatures: legacy, bundle or both")
	f.BoolVar(&upload, "upload", true, "store the signature in the registry")
	f.StringVar(&outSig, "output-signature", "", "write the base64 signature to this file")
	f.StringVar(&outPayload, "output-payload", "", "write the signed payload to this file")
	f.StringVar(&outEntry, "output-tlog-entry", "", "write the signature's transparency-log entry (Sigstore JSON) to this file")
	f.BoolVar(&force, "force", false, "overwrite --output-* files")
	f.IntVar(&jobs, "jobs", sign.DefaultJobs, "images signed at once")
	logs.registerSign(cmd)
	kf.register(cmd)
	pw.register(cmd)
	reg.register(cmd)
	return cmd
}

// where says where a signature was stored.
func where(s sign.Signature) string {
	var places []string
	if s.Tag != "" {
		places = append(places, s.Tag)
	}
	if s.Referrer != "" {
		places = append(places, "bundle referrer "+s.Referrer)
	}
	return strings.Join(places, " and ")
}
