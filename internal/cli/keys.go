package cli

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/spf13/cobra"
)

// passwordFlags are the password options shared by commands that read or
// write an encrypted private key.
type passwordFlags struct {
	file string
}

func (p *passwordFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.file, "password-file", "", "read the key password from this file (\"-\" for standard input)\ninstead of "+envPassword+" or a prompt")
}

func (a *App) password(p passwordFlags, prompt string) passwordSource {
	return passwordSource{file: p.file, envs: []string{envPassword, envCosignPassword}, prompt: prompt, app: a}
}

// readPrivateKey loads a private key file, asking for its password only if
// it is encrypted, or opens the key a key URI names (fetching its public
// key once; ctx bounds every later remote call).
func (a *App) readPrivateKey(ctx context.Context, path string, pw passwordSource) (crypto.Signer, error) {
	if keys.IsRemoteRef(path) {
		return keys.OpenRemote(orBackground(ctx), path)
	}
	data, err := keys.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := keys.ParsePrivateKey(data, pw.lazy(false))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}

// writeKeyPair encrypts signer and writes prefix.key and prefix.pub.
func (a *App) writeKeyPair(signer crypto.Signer, prefix string, password []byte, force bool) error {
	privPEM, err := keys.EncryptPrivateKey(signer, password)
	if err != nil {
		return err
	}
	pubPEM, err := keys.MarshalPublicKey(signer.Public())
	if err != nil {
		return err
	}
	id, err := keys.KeyID(signer.Public())
	if err != nil {
		return err
	}
	privPath, pubPath, err := keys.WriteKeyPair(prefix, privPEM, pubPEM, force)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "Private key written to %s\nPublic key written to %s\nKey ID: %s\n", privPath, pubPath, id)
	return nil
}

func (a *App) newGenerateKeyPairCommand() *cobra.Command {
	var (
		prefix, alg, kmsRef string
		force               bool
		pw                  passwordFlags
	)
	cmd := &cobra.Command{
		Use:   "generate-key-pair [--kms URI]",
		Short: "Generate an encrypted signing key pair",
		Long: `Generate a key pair for signing: PREFIX.key holds the private key, encrypted
with a password in cosign's format (mode 0600), and PREFIX.pub the public
key (PEM, mode 0644). cosign reads both files, and imgsign reads cosign's.

Both files are written atomically, and existing files are never replaced
without --force. An empty password is accepted, as cosign does, but is only
sensible for throw-away keys.

With --kms URI the key is created inside the KMS (awskms://, gcpkms://,
azurekms://, hashivault://) and never leaves it: only PREFIX.pub is written.
--algorithm then takes the provider's own name (AWS: ECC_NIST_P256,
ECC_NIST_P384, RSA_2048...; GCP: ecdsa-p256-sha256...; Vault: ecdsa-p256...);
the default is the provider's ECDSA P-256. A key that already exists under
that name is kept, and its public key written. Credentials come from the
provider's standard chain (environment, config files, workload identity).`,
		Example: `  imgsign generate-key-pair
  IMGSIGN_PASSWORD=... imgsign generate-key-pair --output-key-prefix ci --algorithm ed25519
  imgsign generate-key-pair --kms awskms:///alias/release --output-key-prefix release`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kmsRef != "" {
				return a.generateRemoteKey(cmd, kmsRef, alg, prefix, force)
			}
			algorithm, err := keys.ParseAlgorithm(alg)
			if err != nil {
				return usageError{err}
			}
			signer, err := keys.Generate(algorithm)
			if err != nil {
				return err
			}
			password, err := a.password(pw, "Enter a password for the new private key").get(true)
			if err != nil {
				return err
			}
			return a.writeKeyPair(signer, prefix, password, force)
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "imgsign", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().StringVar(&alg, "algorithm", string(keys.DefaultAlgorithm), "key algorithm: ecdsa-p256, ecdsa-p384, ed25519, rsa-3072 or rsa-4096")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	cmd.Flags().StringVar(&kmsRef, "kms", "", "create the key in this KMS (key URI) and write only PREFIX.pub")
	pw.register(cmd)
	return cmd
}

// generateRemoteKey creates the key kmsRef names in its KMS and writes its
// public key to prefix.pub.
func (a *App) generateRemoteKey(cmd *cobra.Command, ref, alg, prefix string, force bool) error {
	if !keys.IsRemoteRef(ref) || strings.HasPrefix(ref, keys.SchemePKCS11) {
		return usageError{fmt.Errorf("--kms %q is not a KMS key URI (awskms://, gcpkms://, azurekms:// or hashivault://; PKCS#11 keys are made with the token's own tools)", ref)}
	}
	if !cmd.Flags().Changed("algorithm") {
		alg = ""
	}
	pub, err := keys.CreateRemoteKey(orBackground(cmd.Context()), ref, alg)
	if err != nil {
		return err
	}
	pubPEM, err := keys.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	id, err := keys.KeyID(pub)
	if err != nil {
		return err
	}
	_, pubPath := keys.KeyPairPaths(prefix)
	if err := atomicfile.Write(pubPath, pubPEM, keys.PublicKeyMode, force); err != nil {
		return fmt.Errorf("%w (use --force to overwrite)", err)
	}
	fmt.Fprintf(a.Stderr, "Key %s is in %s\nPublic key written to %s\nKey ID: %s\n", ref, keys.ProviderName(ref), pubPath, id)
	return nil
}

func (a *App) newImportKeyPairCommand() *cobra.Command {
	var (
		keyPath, prefix string
		force           bool
		pw              passwordFlags
	)
	cmd := &cobra.Command{
		Use:   "import-key-pair --key FILE",
		Short: "Import an existing private key as an imgsign/cosign key pair",
		Long: `Import a private key made by another tool and write it as PREFIX.key
(encrypted, cosign's format) and PREFIX.pub.

Accepted input: PEM PKCS#8 (RSA, ECDSA, Ed25519), PKCS#1 RSA, SEC1 EC, each
unencrypted, or a key already in the encrypted sigstore/cosign format. The
new key file is encrypted with the password given (asked twice on a
terminal); an encrypted input key is decrypted with that same password.
Use 'imgsign key change-password' afterwards to change it.`,
		Example: `  openssl genpkey -algorithm ed25519 -out release.pem
  imgsign import-key-pair --key release.pem --output-key-prefix release`,
		Args: exactArgs(0, "no arguments (the key is given with --key)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyPath == "" {
				return usageError{fmt.Errorf("--key is required")}
			}
			src := a.password(pw, "Enter a password for the imported private key")
			password, err := src.get(true)
			if err != nil {
				return err
			}
			data, err := keys.ReadFile(keyPath)
			if err != nil {
				return err
			}
			signer, err := keys.ParsePrivateKey(data, func() ([]byte, error) { return password, nil })
			if err != nil {
				return fmt.Errorf("%s: %w", keyPath, err)
			}
			return a.writeKeyPair(signer, prefix, password, force)
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "private key file to import (required)")
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "import-imgsign", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	pw.register(cmd)
	return cmd
}

func (a *App) newPublicKeyCommand() *cobra.Command {
	var (
		keyPath, outfile string
		force            bool
		pw               passwordFlags
	)
	cmd := &cobra.Command{
		Use:   "public-key --key FILE|URI",
		Short: "Print the public key of a private key",
		Long: `Print the PEM public key of a private key file (any format import-key-pair
accepts) or of a key in a KMS or on a PKCS#11 token (a key URI), or write
it to --outfile.`,
		Example: `  imgsign public-key --key imgsign.key > imgsign.pub
  AWS_REGION=eu-west-2 imgsign public-key --key awskms:///alias/release`,
		Args: exactArgs(0, "no arguments (the key is given with --key)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyPath == "" {
				return usageError{fmt.Errorf("--key is required")}
			}
			signer, err := a.readPrivateKey(cmd.Context(), keyPath, a.password(pw, "Enter the password of "+keyPath))
			if err != nil {
				return err
			}
			pubPEM, err := keys.MarshalPublicKey(signer.Public())
			if err != nil {
				return err
			}
			if outfile == "" {
				_, err = a.Stdout.Write(pubPEM)
				return err
			}
			if err := atomicfile.Write(outfile, pubPEM, keys.PublicKeyMode, force); err != nil {
				return fmt.Errorf("%w (use --force to overwrite)", err)
			}
			fmt.Fprintf(a.Stderr, "Public key written to %s\n", outfile)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "private key file or key URI (awskms://, gcpkms://, azurekms://,\nhashivault://, pkcs11:) (required)")
	cmd.Flags().StringVar(&outfile, "outfile", "", "write the public key to this file instead of standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite --outfile if it exists")
	pw.register(cmd)
	return cmd
}

func (a *App) newKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Inspect keys and change key passwords",
		Args:  exactArgs(0, "a subcommand (info, change-password)"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.newKeyInfoCommand(), a.newChangePasswordCommand())
	return cmd
}

func (a *App) newKeyInfoCommand() *cobra.Command {
	var (
		output string
		pw     passwordFlags
	)
	cmd := &cobra.Command{
		Use:   "info FILE",
		Short: "Describe a private or public key: algorithm, size and key ID",
		Long: `Describe a key file: whether it is private or public, its format, algorithm,
size or curve, and its key ID, the base64 SHA-256 of the PKIX public key
(what cosign v3 bundles record as publicKey.hint). An encrypted private key
needs its password, because its public half is inside the encryption.`,
		Example: `  imgsign key info imgsign.pub
  imgsign key info -o json imgsign.key`,
		Args: exactArgs(1, "one key file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output must be text or json, not %q", output)}
			}
			data, err := keys.ReadFile(args[0])
			if err != nil {
				return err
			}
			info, err := keys.Inspect(data, a.password(pw, "Enter the password of "+args[0]).lazy(false))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if output == "json" {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			_, err = fmt.Fprint(a.Stdout, info.String())
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	pw.register(cmd)
	return cmd
}

func (a *App) newChangePasswordCommand() *cobra.Command {
	var (
		keyPath, newFile string
		pw               passwordFlags
	)
	cmd := &cobra.Command{
		Use:   "change-password --key FILE",
		Short: "Re-encrypt a private key with a new password, in place",
		Long: `Re-encrypt an encrypted private key with a new password. The file is
replaced atomically: on any failure the old file stays as it was.

The current password comes from --password-file, IMGSIGN_PASSWORD (or
COSIGN_PASSWORD) or a prompt; the new one from --new-password-file,
IMGSIGN_NEW_PASSWORD or a prompt (asked twice).`,
		Example: `  imgsign key change-password --key imgsign.key`,
		Args:    exactArgs(0, "no arguments (the key is given with --key)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyPath == "" {
				return usageError{fmt.Errorf("--key is required")}
			}
			data, err := keys.ReadFile(keyPath)
			if err != nil {
				return err
			}
			if format, err := keys.FormatOf(data); err != nil {
				return fmt.Errorf("%s: %w", keyPath, err)
			} else if !format.Encrypted() {
				return fmt.Errorf("%s: %w: not an encrypted private key (use import-key-pair to encrypt it)", keyPath, keys.ErrUnsupportedKey)
			}
			signer, err := keys.ParsePrivateKey(data, a.password(pw, "Enter the current password of "+keyPath).lazy(false))
			if err != nil {
				return fmt.Errorf("%s: %w", keyPath, err)
			}
			newSrc := passwordSource{file: newFile, envs: []string{envNewPassword}, prompt: "Enter the new password", app: a}
			newPassword, err := newSrc.get(true)
			if err != nil {
				return err
			}
			privPEM, err := keys.EncryptPrivateKey(signer, newPassword)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(keyPath, privPEM, keys.PrivateKeyMode, true); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "Password of %s changed\n", keyPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "encrypted private key file (required)")
	cmd.Flags().StringVar(&newFile, "new-password-file", "", "read the new password from this file (\"-\" for standard input)\ninstead of "+envNewPassword+" or a prompt")
	pw.register(cmd)
	return cmd
}

// orBackground returns ctx, or context.Background() when ctx is nil (a
// command run without ExecuteContext).
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
