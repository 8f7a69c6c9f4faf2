package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/blob"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/spf13/cobra"
)

// maxSignatureFileBytes bounds a --signature file.
const maxSignatureFileBytes = 64 << 10

func (a *App) newSignBlobCommand() *cobra.Command {
	var (
		keyPath, outSig, outBundle string
		outCert                    string
		force                      bool
		pw                         passwordFlags
		logs                       logFlags
		kf                         keylessSignFlags
	)
	cmd := &cobra.Command{
		Use:   "sign-blob [--key KEY] FILE",
		Short: "Sign a file (a release archive, an image tarball), as cosign sign-blob does",
		Long: `Sign FILE, reading it once as a stream (its size does not matter). The
base64 signature is printed on standard output, or written to
--output-signature; --bundle also writes a Sigstore bundle (v0.3), the
format cosign v3 writes and reads. 'cosign verify-blob' accepts both.

With --rekor-url the signature is first recorded in that Rekor log (a
hashedrekord entry of the file's SHA-256; ECDSA and RSA keys), and the
entry goes into the bundle; nothing is written if the log fails.

With --key and --timestamp-server-url (and --bundle), the signature is
timestamped by that RFC 3161 timestamp authority, as cosign sign-blob
does; the timestamp goes into the bundle, and 'verify-blob --key
--trusted-root' (or cosign's) verifies it against the root's TSAs. Nothing
is written if the TSA fails (exit 16).

` + keylessSignHelp + `

A keyless blob signature is only useful with its certificate: write
--bundle (certificate, log entry, timestamps: what verify-blob and cosign
verify-blob read), or --output-signature with --output-certificate.`,
		Example: `  # keyless, in CI:
  imgsign sign-blob --bundle app.tar.gz.sigstore.json app.tar.gz
  imgsign sign-blob --key imgsign.key --bundle app.tar.gz.bundle app.tar.gz
  imgsign sign-blob --key imgsign.key --output-signature app.tar.gz.sig app.tar.gz
  imgsign sign-blob --key imgsign.key --timestamp-server-url https://tsa.internal/api/v1/timestamp --bundle app.tar.gz.bundle app.tar.gz`,
		Args: exactArgs(1, "one file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return a.signBlobKeyless(cmd.Context(), args[0], &kf, &logs, blobOutputs{sig: outSig, cert: outCert, bundle: outBundle, force: force})
			}
			if kf.given() || outCert != "" {
				return usageError{fmt.Errorf("--key signs with a key: the keyless flags (--identity-token, --signing-config, --fulcio-url, --trusted-root, --output-certificate) do not apply")}
			}
			logClient, err := logs.client()
			if err != nil {
				return err
			}
			timestamps, err := kf.keyTimestamps("no file was written")
			if err != nil {
				return err
			}
			if timestamps != nil && outBundle == "" {
				return usageError{fmt.Errorf("--timestamp-server-url needs --bundle: the timestamp travels in the bundle")}
			}
			key, err := a.readPrivateKey(cmd.Context(), keyPath, a.password(pw, "Enter the password of "+keyPath))
			if err != nil {
				return err
			}
			f, err := openInput(args[0], a.Stdin)
			if err != nil {
				return err
			}
			defer f.Close()
			sig, err := blob.Sign(key, f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			b64 := base64.StdEncoding.EncodeToString(sig.Sig)
			var entries []*tlog.Entry
			if logClient != nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), logRequestTimeout)
				defer cancel()
				e, err := sign.Record(ctx, logClient, tlog.Want{Digest: sig.Digest, Signature: sig.Sig, PublicKey: key.Public()})
				if err != nil {
					return err
				}
				entries = append(entries, e)
				fmt.Fprintf(a.Stderr, "Recorded in transparency log %s at index %d\n", logClient.URL(), e.GetLogIndex())
			}
			var tokens [][]byte
			if timestamps != nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), logRequestTimeout)
				defer cancel()
				if tokens, err = timestamps.Timestamp(ctx, sig.Sig, "the signature of "+args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.Stderr, "Timestamped by %s\n", strings.Join(timestamps.URLs(), ", "))
			}
			if outBundle != "" {
				hint, err := keys.KeyID(key.Public())
				if err != nil {
					return err
				}
				data, err := bundle.MarshalMessageSignature(bundle.MessageSignature{Hint: hint, Digest: sig.Digest, Hash: sig.Hash, Signature: sig.Sig, TlogEntries: entries, TimestampTokens: tokens})
				if err != nil {
					return err
				}
				if err := atomicfile.Write(outBundle, data, 0o644, force); err != nil {
					return err
				}
				fmt.Fprintf(a.Stderr, "Bundle written to %s\n", outBundle)
			}
			if outSig != "" {
				if err := atomicfile.Write(outSig, []byte(b64), 0o644, force); err != nil {
					return err
				}
				fmt.Fprintf(a.Stderr, "Signature written to %s\n", outSig)
				return nil
			}
			if outBundle == "" {
				_, err = fmt.Fprintln(a.Stdout, b64)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "private key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:); without it, sign keyless")
	cmd.Flags().StringVar(&outSig, "output-signature", "", "write the base64 signature to this file")
	cmd.Flags().StringVar(&outCert, "output-certificate", "", "keyless: write the signing certificate (PEM) to this file")
	cmd.Flags().StringVar(&outBundle, "bundle", "", "write a Sigstore bundle (v0.3) to this file")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing output files")
	logs.registerSign(cmd)
	kf.register(cmd)
	pw.register(cmd)
	return cmd
}

func (a *App) newVerifyBlobCommand() *cobra.Command {
	var (
		keyPaths       []string
		sigPath, bPath string
		logs           logFlags
		kl             keylessFlags
	)
	cmd := &cobra.Command{
		Use:   "verify-blob (--key PUB | --certificate-identity ID --certificate-oidc-issuer URL) (--signature F | --bundle F) FILE",
		Short: "Verify a file's signature, as cosign verify-blob does",
		Long: `Verify FILE against a base64 signature (--signature) or a Sigstore bundle
(--bundle, v0.1 to v0.3) made by imgsign sign-blob or cosign sign-blob. The
file is read once as a stream. A bundle must state this file's digest.

Key signatures (--key): transparency-log entries in the bundle are checked as
verify checks them (--rekor-key, --trusted-root, --rekor-url, --require-tlog):
an entry that is present but invalid fails the verification. With
--trusted-root, its timestamp authorities verify the bundle's RFC 3161
timestamps: every one must verify, and --require-timestamp rejects a bundle
without one.

Keyless signatures (a certificate in the bundle): give the identity that must
have signed (--certificate-identity or --certificate-identity-regexp, and
--certificate-oidc-issuer or --certificate-oidc-issuer-regexp; regular
expressions match the WHOLE value) and the trusted root (--trusted-root).
The certificate must chain to the root's CAs at the verified signing time (a
Rekor entry's integrated time or an RFC 3161 timestamp from a trusted TSA),
carry an SCT from a trusted CT log (unless --insecure-ignore-sct), and have a
transparency-log entry (unless --insecure-ignore-tlog). Timestamps in the
bundle are always verified and used (--use-signed-timestamps is accepted).

Exit codes: 0 verified, 12 the signature does not verify, 2 a bad command
line, 3 a key was rejected, 1 any other error.`,
		Example: `  imgsign verify-blob --key imgsign.pub --bundle app.tar.gz.bundle app.tar.gz
  imgsign verify-blob --bundle app.tar.gz.sigstore.json --trusted-root trusted_root.json \
    --certificate-identity https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.0.0 \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com app.tar.gz`,
		Args: exactArgs(1, "one file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keyPaths) > 0 && kl.given() {
				return usageError{fmt.Errorf("give --key or a certificate identity (--certificate-identity ...), not both")}
			}
			if len(keyPaths) == 0 && !kl.given() {
				return usageError{fmt.Errorf("--key is required, or a certificate identity (--certificate-identity or --certificate-identity-regexp, with --certificate-oidc-issuer or --certificate-oidc-issuer-regexp)")}
			}
			if (sigPath == "") == (bPath == "") {
				return usageError{fmt.Errorf("give exactly one of --signature and --bundle")}
			}
			if len(keyPaths) == 0 && sigPath != "" {
				return usageError{fmt.Errorf("a certificate identity needs --bundle (a bare --signature carries no certificate)")}
			}
			if logs.requireTS && len(keyPaths) == 0 {
				return usageError{fmt.Errorf("--require-timestamp is for key signatures (--key): a certificate signature always needs a verified time")}
			}
			if logs.requireTS && bPath == "" {
				return usageError{fmt.Errorf("--require-timestamp needs --bundle: a bare --signature carries no timestamp")}
			}
			var (
				opts blob.BundleOptions
				err  error
			)
			if len(keyPaths) > 0 {
				if opts.Keys, err = a.readPublicKeys(cmd.Context(), keyPaths); err != nil {
					return err
				}
				lf := logs
				if logs.trustedRoot != "" {
					// Its TSAs verify the bundle's timestamps; its logs,
					// if it lists any, the bundle's log entries.
					tr, err := trustroot.LoadFile(logs.trustedRoot)
					if err != nil {
						return fmt.Errorf("--trusted-root: %w", err)
					}
					opts.Trusted = tr
					if len(tr.RekorLogs()) == 0 {
						lf.trustedRoot = ""
					}
				}
				if logs.requireTS && (opts.Trusted == nil || len(opts.Trusted.TimestampingAuthorities()) == 0) {
					return usageError{fmt.Errorf("--require-timestamp needs --trusted-root naming a timestamp authority")}
				}
				if opts.Log, err = lf.policy(); err != nil {
					return err
				}
			} else {
				o, err := kl.options(cmd.Context(), logs.trustedRoot)
				if err != nil {
					return err
				}
				opts.Keyless = &o
			}
			var sig, bundleData []byte
			if sigPath != "" {
				raw, err := readSmallFile(sigPath, maxSignatureFileBytes)
				if err != nil {
					return err
				}
				if sig, err = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw))); err != nil {
					return exitError{code: ExitNotVerified, err: fmt.Errorf("%s is not a base64 signature", sigPath)}
				}
			} else if bundleData, err = readSmallFile(bPath, bundle.MaxBundleBytes); err != nil {
				return err
			}
			f, err := openInput(args[0], a.Stdin)
			if err != nil {
				return err
			}
			defer f.Close()
			d, err := blob.Digest(f, hasEd25519(opts.Keys))
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			failed := func(err error) error {
				fmt.Fprintf(a.Stderr, "FAILED %s: %s\n", args[0], oneLine(err.Error()))
				return exitError{code: ExitNotVerified, err: err, reported: true}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), logRequestTimeout)
			defer cancel()
			var res *blob.BundleResult
			if bundleData != nil {
				if res, err = blob.VerifyBundle(ctx, bundleData, d, opts); err != nil {
					return failed(err)
				}
			} else {
				id, pub, err := blob.VerifyKey(opts.Keys, sig, d)
				if errors.Is(err, blob.ErrNotVerified) {
					return failed(err)
				}
				if err != nil {
					return err
				}
				lr, err := opts.Log.Check(ctx, tlog.Want{Digest: d.Of(crypto.SHA256), Signature: sig, PublicKey: pub}, nil)
				if err != nil {
					return failed(err)
				}
				res = &blob.BundleResult{KeyID: id, Log: lr}
			}
			if k := res.Keyless; k != nil {
				fmt.Fprintf(a.Stderr, "Verified %s: signed by %s (issuer %s)\n", args[0], k.Subject, k.Issuer)
				for _, t := range k.SignedAt {
					fmt.Fprintf(a.Stderr, "  signed at %s (verified)\n", t.UTC().Format(time.RFC3339))
				}
				return nil
			}
			if logs.requireTS && len(res.Timestamps) == 0 {
				return failed(errors.New("no RFC 3161 timestamp verified by a trusted timestamp authority (one is required)"))
			}
			fmt.Fprintf(a.Stderr, "Verified %s: signed by key %s\n", args[0], res.KeyID)
			for _, t := range res.Timestamps {
				fmt.Fprintf(a.Stderr, "  timestamped at %s (verified)\n", t.UTC().Format(time.RFC3339))
			}
			for _, line := range describeLog(res.Log.Facts, res.Log.Unchecked) {
				fmt.Fprintf(a.Stderr, "  %s\n", line)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted public key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:) (repeatable: any key may match)")
	cmd.Flags().StringVar(&sigPath, "signature", "", "base64 signature file")
	cmd.Flags().StringVar(&bPath, "bundle", "", "Sigstore bundle file")
	logs.registerVerify(cmd)
	logs.registerRequireTimestamp(cmd)
	kl.register(cmd)
	kl.registerBlob(cmd)
	return cmd
}

func hasEd25519(pubs []crypto.PublicKey) bool {
	for _, p := range pubs {
		if _, ok := p.(ed25519.PublicKey); ok {
			return true
		}
	}
	return false
}

// openInput opens a file, or standard input for "-".
func openInput(path string, stdin io.Reader) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(path)
}

// readSmallFile reads a file of at most max bytes.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}
