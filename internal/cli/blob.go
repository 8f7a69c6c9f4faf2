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

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/blob"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/spf13/cobra"
)

// maxSignatureFileBytes bounds a --signature file.
const maxSignatureFileBytes = 64 << 10

func (a *App) newSignBlobCommand() *cobra.Command {
	var (
		keyPath, outSig, outBundle string
		force                      bool
		pw                         passwordFlags
		logs                       logFlags
	)
	cmd := &cobra.Command{
		Use:   "sign-blob --key KEY FILE",
		Short: "Sign a file (a release archive, an image tarball), as cosign sign-blob does",
		Long: `Sign FILE, reading it once as a stream (its size does not matter). The
base64 signature is printed on standard output, or written to
--output-signature; --bundle also writes a Sigstore bundle (v0.3), the
format cosign v3 writes and reads. 'cosign verify-blob' accepts both.

With --rekor-url the signature is first recorded in that Rekor log (a
hashedrekord entry of the file's SHA-256; ECDSA and RSA keys), and the
entry goes into the bundle; nothing is written if the log fails.`,
		Example: `  imgsign sign-blob --key imgsign.key --bundle app.tar.gz.bundle app.tar.gz
  imgsign sign-blob --key imgsign.key --output-signature app.tar.gz.sig app.tar.gz`,
		Args: exactArgs(1, "one file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return usageError{fmt.Errorf("--key is required")}
			}
			logClient, err := logs.client()
			if err != nil {
				return err
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
			if outBundle != "" {
				hint, err := keys.KeyID(key.Public())
				if err != nil {
					return err
				}
				data, err := bundle.MarshalMessageSignature(bundle.MessageSignature{Hint: hint, Digest: sig.Digest, Hash: sig.Hash, Signature: sig.Sig, TlogEntries: entries})
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
	cmd.Flags().StringVar(&keyPath, "key", "", "private key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:) (required)")
	cmd.Flags().StringVar(&outSig, "output-signature", "", "write the base64 signature to this file")
	cmd.Flags().StringVar(&outBundle, "bundle", "", "write a Sigstore bundle (v0.3) to this file")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing output files")
	logs.registerSign(cmd)
	pw.register(cmd)
	return cmd
}

func (a *App) newVerifyBlobCommand() *cobra.Command {
	var (
		keyPaths       []string
		sigPath, bPath string
		logs           logFlags
	)
	cmd := &cobra.Command{
		Use:   "verify-blob --key PUB (--signature F | --bundle F) FILE",
		Short: "Verify a file's signature, as cosign verify-blob does",
		Long: `Verify FILE against a base64 signature (--signature) or a Sigstore bundle
(--bundle) made by imgsign sign-blob or cosign sign-blob. The file is read
once as a stream. A bundle must state this file's digest.

Transparency-log entries in the bundle are checked as verify checks them
(--rekor-key, --trusted-root, --rekor-url, --require-tlog): an entry that is
present but invalid fails the verification.

Exit codes: 0 verified, 12 the signature does not verify, 3 a key was
rejected, 1 any other error.`,
		Example: `  imgsign verify-blob --key imgsign.pub --bundle app.tar.gz.bundle app.tar.gz`,
		Args:    exactArgs(1, "one file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keyPaths) == 0 {
				return usageError{fmt.Errorf("--key is required")}
			}
			if (sigPath == "") == (bPath == "") {
				return usageError{fmt.Errorf("give exactly one of --signature and --bundle")}
			}
			pubs, err := a.readPublicKeys(cmd.Context(), keyPaths)
			if err != nil {
				return err
			}
			policy, err := logs.policy()
			if err != nil {
				return err
			}
			var (
				sig []byte
				ms  *bundle.MessageSignature
			)
			if sigPath != "" {
				raw, err := readSmallFile(sigPath, maxSignatureFileBytes)
				if err != nil {
					return err
				}
				if sig, err = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw))); err != nil {
					return exitError{code: ExitNotVerified, err: fmt.Errorf("%s is not a base64 signature", sigPath)}
				}
			} else {
				raw, err := readSmallFile(bPath, bundle.MaxBundleBytes)
				if err != nil {
					return err
				}
				if ms, err = bundle.ParseMessageSignature(raw); err != nil {
					return exitError{code: ExitNotVerified, err: fmt.Errorf("%s: %w", bPath, err)}
				}
				sig = ms.Signature
			}
			f, err := openInput(args[0], a.Stdin)
			if err != nil {
				return err
			}
			defer f.Close()
			d, err := blob.Digest(f, hasEd25519(pubs))
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			if ms != nil {
				if !bytes.Equal(d.Of(ms.Hash), ms.Digest) {
					err := fmt.Errorf("the bundle signs another file (its %v digest differs from %s's)", ms.Hash, args[0])
					fmt.Fprintf(a.Stderr, "FAILED %s: %s\n", args[0], err)
					return exitError{code: ExitNotVerified, err: err, reported: true}
				}
			}
			id, err := blob.Verify(pubs, sig, d)
			if errors.Is(err, blob.ErrNotVerified) {
				fmt.Fprintf(a.Stderr, "FAILED %s: %s\n", args[0], err)
				return exitError{code: ExitNotVerified, err: err, reported: true}
			}
			if err != nil {
				return err
			}
			var entries []*tlog.Entry
			if ms != nil {
				entries = ms.TlogEntries
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), logRequestTimeout)
			defer cancel()
			lr, err := policy.Check(ctx, tlog.Want{Digest: d.Of(crypto.SHA256), Signature: sig, PublicKey: pubByID(pubs, id)}, entries)
			if err != nil {
				fmt.Fprintf(a.Stderr, "FAILED %s: %s\n", args[0], oneLine(err.Error()))
				return exitError{code: ExitNotVerified, err: err, reported: true}
			}
			fmt.Fprintf(a.Stderr, "Verified %s: signed by key %s\n", args[0], id)
			for _, line := range describeLog(lr.Facts, lr.Unchecked) {
				fmt.Fprintf(a.Stderr, "  %s\n", line)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted public key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:) (repeatable: any key may match)")
	cmd.Flags().StringVar(&sigPath, "signature", "", "base64 signature file")
	cmd.Flags().StringVar(&bPath, "bundle", "", "Sigstore bundle file")
	logs.registerVerify(cmd)
	return cmd
}

// pubByID returns the key of pubs whose key ID is id.
func pubByID(pubs []crypto.PublicKey, id string) crypto.PublicKey {
	for _, p := range pubs {
		if k, err := keys.KeyID(p); err == nil && k == id {
			return p
		}
	}
	return nil
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
