package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
)

// maxCertFileBytes bounds a --ca-roots, --ca-intermediates, --certificate or
// --certificate-chain file.
const maxCertFileBytes = 1 << 20

// keylessFlags are cosign's certificate (keyless) verification flags, the
// one place every verifying command registers them and turns them into
// keyless.Options.
type keylessFlags struct {
	id                                         keyless.Identity
	caRoots, caIntermediates, cert, certChain  string
	ignoreSCT, ignoreTlog, useSignedTimestamps bool
}

func (f *keylessFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.id.Subject, "certificate-identity", "", "keyless: the signer's identity (certificate SAN: an email, a workflow URL) that must match exactly")
	fl.StringVar(&f.id.SubjectRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the WHOLE certificate identity must match (anchored, unlike cosign)")
	fl.StringVar(&f.id.Issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer that must have vouched for the identity, exactly (e.g. https://token.actions.githubusercontent.com)")
	fl.StringVar(&f.id.IssuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the WHOLE OIDC issuer must match (anchored)")
	fl.StringVar(&f.id.GithubWorkflowTrigger, "certificate-github-workflow-trigger", "", "keyless: the GitHub Actions event that triggered the signing workflow (e.g. push)")
	fl.StringVar(&f.id.GithubWorkflowSHA, "certificate-github-workflow-sha", "", "keyless: the commit SHA the signing workflow ran on")
	fl.StringVar(&f.id.GithubWorkflowName, "certificate-github-workflow-name", "", "keyless: the name of the signing workflow")
	fl.StringVar(&f.id.GithubWorkflowRepository, "certificate-github-workflow-repository", "", "keyless: the repository of the signing workflow (owner/name)")
	fl.StringVar(&f.id.GithubWorkflowRef, "certificate-github-workflow-ref", "", "keyless: the git ref the signing workflow ran on (e.g. refs/heads/main)")
	fl.StringVar(&f.caRoots, "ca-roots", "", "keyless, private CA: PEM file of root certificates to trust instead of the trusted root's Fulcio")
	fl.StringVar(&f.caIntermediates, "ca-intermediates", "", "keyless, private CA: PEM file of intermediate certificates (with --ca-roots)")
	fl.StringVar(&f.cert, "certificate", "", "keyless: PEM certificate that must be the signing certificate")
	fl.StringVar(&f.certChain, "certificate-chain", "", "keyless, private CA: PEM chain of --certificate's issuers, root last (trusted as --ca-intermediates and --ca-roots)")
	fl.BoolVar(&f.ignoreSCT, "insecure-ignore-sct", false, "keyless: do not require an embedded SCT in the certificate (a private CA without a CT log)")
}

// registerBlob adds cosign's --insecure-ignore-tlog and
// --use-signed-timestamps (verify, verify-attestation, verify-blob).
func (f *keylessFlags) registerBlob(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.ignoreTlog, "insecure-ignore-tlog", false, "keyless: do not require a transparency-log entry (a verified RFC 3161 timestamp must then give the signing time)")
	fl.BoolVar(&f.useSignedTimestamps, "use-signed-timestamps", false, "accepted for cosign compatibility: RFC 3161 timestamps in the bundle are always verified and used")
}

// given reports whether any keyless flag was given.
func (f *keylessFlags) given() bool {
	id := f.id
	return id != (keyless.Identity{}) || f.caRoots != "" || f.caIntermediates != "" || f.cert != "" || f.certChain != ""
}

// options turns the flags into keyless.Options; the trusted root comes
// from trustedRoot (--trusted-root), or defaultTrustedRoot without it. It
// is a usage error to ask for certificates without an identity.
func (f *keylessFlags) options(ctx context.Context, trustedRoot string) (keyless.Options, error) {
	if err := f.id.Validate(); err != nil {
		return keyless.Options{}, usageError{err}
	}
	o := keyless.Options{Identities: []keyless.Identity{f.id}, IgnoreSCT: f.ignoreSCT, IgnoreTlog: f.ignoreTlog}
	var tr root.TrustedMaterial
	if trustedRoot != "" {
		r, err := trustroot.LoadFile(trustedRoot)
		if err != nil {
			return o, fmt.Errorf("--trusted-root: %w", err)
		}
		tr = r
	} else {
		r, err := defaultTrustedRoot(ctx)
		if err != nil {
			if f.caRoots == "" && f.certChain == "" {
				return o, err
			}
			r = &root.BaseTrustedMaterial{} // a private CA may stand alone
		}
		tr = r
	}
	if f.cert != "" {
		certs, err := readCerts(f.cert)
		if err != nil {
			return o, err
		}
		o.Certificate = certs[0]
	}
	var roots, inter []*x509.Certificate
	if f.caRoots != "" {
		certs, err := readCerts(f.caRoots)
		if err != nil {
			return o, err
		}
		roots = certs
	}
	if f.caIntermediates != "" {
		certs, err := readCerts(f.caIntermediates)
		if err != nil {
			return o, err
		}
		inter = certs
	}
	if f.certChain != "" {
		certs, err := readCerts(f.certChain)
		if err != nil {
			return o, err
		}
		roots = append(roots, certs[len(certs)-1])
		inter = append(inter, certs[:len(certs)-1]...)
	}
	if len(inter) > 0 && len(roots) == 0 {
		return o, usageError{errors.New("--ca-intermediates needs --ca-roots")}
	}
	if len(roots) > 0 {
		tr = privateCA(tr, roots, inter)
	}
	o.Trusted = tr
	return o, nil
}

// privateCA replaces the certificate authorities of tr with roots and
// their intermediates (cosign's --ca-roots): logs, CT logs and TSAs stay.
func privateCA(tr root.TrustedMaterial, roots, inter []*x509.Certificate) root.TrustedMaterial {
	cas := make([]root.CertificateAuthority, 0, len(roots))
	for _, r := range roots {
		cas = append(cas, &root.FulcioCertificateAuthority{Root: r, Intermediates: inter})
	}
	return caOverride{TrustedMaterial: tr, cas: cas}
}

type caOverride struct {
	root.TrustedMaterial
	cas []root.CertificateAuthority
}

func (c caOverride) FulcioCertificateAuthorities() []root.CertificateAuthority { return c.cas }

// verifierOption returns the option that makes an image Verifier accept
// certificate signatures, or nil when no keyless flag was given.
func (f *keylessFlags) verifierOption(ctx context.Context, trustedRoot string) (verify.Option, error) {
	if !f.given() {
		return nil, nil
	}
	o, err := f.options(ctx, trustedRoot)
	if err != nil {
		return nil, err
	}
	return verify.WithKeyless(o), nil
}

// verifierOptions are the options of an image Verifier for keys (the log
// flags) and certificates (the keyless flags), with keyPaths the --key
// files given: without keys, the log flags only name the trusted root.
func verifierOptions(ctx context.Context, logs *logFlags, kl *keylessFlags, keyPaths []string) ([]verify.Option, error) {
	var opts []verify.Option
	if logs.requireTS && len(keyPaths) == 0 {
		return nil, usageError{fmt.Errorf("--require-timestamp is for key signatures (--key): a certificate signature always needs a verified time")}
	}
	if len(keyPaths) > 0 {
		lo, err := logs.verifierOptions()
		if err != nil {
			return nil, err
		}
		opts = append(opts, lo...)
	}
	ko, err := kl.verifierOption(ctx, logs.trustedRoot)
	if err != nil {
		return nil, err
	}
	if ko != nil {
		opts = append(opts, ko)
	}
	return opts, nil
}

// readCerts reads one or more PEM certificates.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := readSmallFile(path, maxCertFileBytes)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return out, nil
}

// defaultTrustedRoot is the trusted root used for certificates when no
// --trusted-root is given: the Sigstore public-good root (or the one 'imgsign
// trust init' chose) from TUF, refreshed and cached (pkg/trustroot). Its
// errors are trust errors (exit 15) that name --trusted-root and trust init.
func defaultTrustedRoot(ctx context.Context) (root.TrustedMaterial, error) {
	tr, err := trustroot.Load(orBackground(ctx), trustroot.Options{Warn: func(m string) { fmt.Fprintf(os.Stderr, "Warning: %s\n", m) }})
	if err != nil {
		return nil, err // never a typed nil *TrustedRoot inside the interface
	}
	return tr, nil
}
