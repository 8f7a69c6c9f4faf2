package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/blob"
	"github.com/imgsign/imgsign/pkg/idtoken"
	"github.com/imgsign/imgsign/pkg/keylesssign"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
)

// keylessSignFlags are the flags of keyless signing (sign, attest,
// sign-blob without --key). --rekor-url and --rekor-version are the log
// flags' (logFlags.registerSign).
type keylessSignFlags struct {
	token, signingConfig, fulcioURL, tsaURL, trustedRoot string
	verbose                                              bool
}

// keylessSignHelp is the part of each signing command's help about keyless
// signing.
const keylessSignHelp = `Without --key, signing is keyless (Sigstore): an ephemeral key is made in
memory, Fulcio certifies it for the identity of an OIDC token, every
signature is recorded in a transparency log and/or timestamped by a
timestamp authority, and the key is thrown away. Every signature of one
call shares the one key and certificate (one Fulcio request).

The identity token comes from --identity-token (the token, or a file
holding it), else $SIGSTORE_ID_TOKEN (GitLab CI: "id_tokens:
SIGSTORE_ID_TOKEN: aud: sigstore"), else GitHub Actions' token endpoint (a
job with "permissions: id-token: write"; audience "sigstore"). The token is
never printed, not even with --verbose.

The services come from a Sigstore signing config: --signing-config FILE,
else the one in the TUF repository ('imgsign trust init'; the public-good
Sigstore by default), as cosign v3. --fulcio-url, --rekor-url (with
--rekor-version) and --timestamp-server-url override it. Rekor v2 needs a
timestamp authority; the legacy image layout needs Rekor v1 (cosign reads
only a v1 signed entry timestamp there).`

func (f *keylessSignFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.token, "identity-token", "", "keyless: OIDC identity token, or a file holding it (default $SIGSTORE_ID_TOKEN, then GitHub Actions)")
	fl.StringVar(&f.signingConfig, "signing-config", "", "keyless: Sigstore signing_config.json naming Fulcio, Rekor and TSAs (default: the TUF repository's)")
	fl.StringVar(&f.fulcioURL, "fulcio-url", "", "keyless: Fulcio URL (overrides the signing config)")
	fl.StringVar(&f.tsaURL, "timestamp-server-url", "", "RFC 3161 timestamp authority URL (keyless: overrides the signing config;\nwith --key: timestamp each signature, see above)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "keyless: trusted_root.json to check each new signature against (default: the TUF repository's, with its signing config)")
	fl.BoolVar(&f.verbose, "verbose", false, "keyless: say which token source, services and certificate were used (never the token)")
}

// given reports whether a keyless-only flag was given
// (--timestamp-server-url is for key signing too).
func (f *keylessSignFlags) given() bool {
	return f.token != "" || f.signingConfig != "" || f.fulcioURL != "" || f.trustedRoot != ""
}

// keyTimestamps is the TSA client of key signing: nil without
// --timestamp-server-url. untouched says what a TSA failure leaves as it
// was (in its message).
func (f *keylessSignFlags) keyTimestamps(untouched string) (*tsa.Client, error) {
	if f.tsaURL == "" {
		return nil, nil
	}
	u, err := url.Parse(f.tsaURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--timestamp-server-url %q: not an http(s) URL (the TSA's RFC 3161 endpoint, e.g. https://tsa.example/api/v1/timestamp)", f.tsaURL)}
	}
	return tsa.New([]string{f.tsaURL}, tsa.Options{Timeout: logRequestTimeout, Untouched: untouched}), nil
}

// keyTimestampHelp is the part of sign's and attest's help about
// timestamping key signatures.
const keyTimestampHelp = `With --key and --timestamp-server-url URL, each signature is also
timestamped by that RFC 3161 timestamp authority (with or without
--rekor-url), as cosign does: the timestamp covers the signature's bytes
(a legacy attestation layer's: the whole layer, as cosign v2 writes and
cosign verifies it). The legacy layer carries it in cosign's
dev.sigstore.cosign/rfc3161timestamp annotation, the bundle in
timestampVerificationData. A verifier that trusts the TSA ('imgsign verify
--trusted-root', a policy's trustedRoot; cosign verify --trusted-root R
--use-signed-timestamps --insecure-ignore-tlog) takes it as the
signature's verified signing time, without a transparency log: a private
TSA is enough for keys with notBefore/notAfter windows. Timestamps are fetched with the
signatures, before anything is written: if the TSA fails, nothing is
written (exit 16).`

// keylessSigner is a run's keyless signer and what to tell the user.
type keylessSigner struct {
	*keylesssign.Signer
	services keylesssign.Services
}

// newKeylessSigner finds the token, picks the services and buys the run's
// one certificate. legacy says the legacy layout will be written (it needs
// Rekor v1). Nothing is written anywhere.
func (a *App) newKeylessSigner(ctx context.Context, f *keylessSignFlags, logs *logFlags, legacy bool) (*keylessSigner, error) {
	ctx = orBackground(ctx)
	tok, err := idtoken.Get(ctx, idtoken.Options{Flag: f.token, LookupEnv: a.LookupEnv, HTTPClient: &http.Client{Timeout: logRequestTimeout}})
	if err != nil {
		return nil, err
	}
	a.verbosef(f, "Using the %s\n", tok)
	var (
		sc      *root.SigningConfig
		trusted root.TrustedMaterial
	)
	warn := func(m string) { fmt.Fprintf(a.Stderr, "Warning: %s\n", m) }
	switch {
	case f.signingConfig != "":
		if sc, err = root.NewSigningConfigFromPath(f.signingConfig); err != nil {
			return nil, usageError{fmt.Errorf("--signing-config %s: %w", f.signingConfig, err)}
		}
	case f.fulcioURL != "" && (logs.url != "" || f.tsaURL != ""):
		// Every service given: no signing config needed.
	default:
		if sc, err = trustroot.LoadSigningConfig(ctx, trustroot.Options{Warn: warn}); err != nil {
			return nil, fmt.Errorf("keyless signing needs a signing config (give --signing-config, or --fulcio-url with --rekor-url or --timestamp-server-url): %w", err)
		}
		if f.trustedRoot == "" {
			tr, err := trustroot.Load(ctx, trustroot.Options{Warn: warn})
			if err != nil {
				return nil, err
			}
			trusted = tr
		}
	}
	if f.trustedRoot != "" {
		tr, err := root.NewTrustedRootFromPath(f.trustedRoot)
		if err != nil {
			return nil, fmt.Errorf("%w: --trusted-root %s: %v", trustroot.ErrMalformed, f.trustedRoot, err)
		}
		trusted = tr
	}
	o := keylesssign.Overrides{FulcioURL: f.fulcioURL, RekorURL: logs.url, TSAURL: f.tsaURL}
	if logs.url != "" {
		lc, err := logs.client()
		if err != nil {
			return nil, err
		}
		v, err := lc.Version(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: transparency log %s: %v", keylesssign.ErrService, logs.url, err)
		}
		o.RekorVersion = uint32(v)
	}
	versions := []uint32{1, 2}
	if legacy {
		versions = []uint32{1}
	}
	svc, err := keylesssign.Select(sc, o, versions, time.Now())
	if err != nil {
		if legacy && sc != nil && logs.url == "" {
			err = fmt.Errorf("%w (the legacy layout needs a Rekor v1 log: give --format bundle, or --rekor-url of a v1 log)", err)
		}
		return nil, usageError{err}
	}
	if legacy {
		for _, l := range svc.Logs {
			if l.Version != tlog.V1 {
				return nil, usageError{fmt.Errorf("the legacy layout needs a Rekor v1 log, and %s is Rekor v%d: use --format bundle with Rekor v2 (cosign reads only a Rekor v1 signed entry timestamp in the legacy layout)", l.URL, l.Version)}
			}
		}
	}
	for _, l := range svc.Logs {
		a.verbosef(f, "Transparency log: %s (Rekor v%d)\n", l.URL, l.Version)
	}
	for _, t := range svc.TSAs {
		a.verbosef(f, "Timestamp authority: %s\n", t)
	}
	a.verbosef(f, "Requesting a certificate from Fulcio %s\n", svc.Fulcio)
	ks, err := keylesssign.New(ctx, keylesssign.Options{Services: svc, Token: tok, Trusted: trusted, Timeout: logRequestTimeout})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.Stderr, "Signing keyless as %s (certificate from %s, valid until %s)\n", ks.Identity(), svc.Fulcio, ks.NotAfter().UTC().Format(time.RFC3339))
	return &keylessSigner{Signer: ks, services: svc}, nil
}

// verbosef prints with --verbose.
func (a *App) verbosef(f *keylessSignFlags, format string, args ...any) {
	if f.verbose {
		fmt.Fprintf(a.Stderr, format, args...)
	}
}

// reportStats prints, with --verbose, what the run asked of the services.
func (k *keylessSigner) reportStats(w io.Writer, f *keylessSignFlags) {
	if !f.verbose {
		return
	}
	st := k.Stats()
	fmt.Fprintf(w, "Keyless: %d Fulcio request(s), %d signature(s), %d log entr(ies), %d timestamp request(s)\n",
		st.FulcioRequests, st.Signatures, st.LogEntries, st.TSARequests)
}

// logNames says where a keyless signature was logged.
func (k *keylessSigner) logNames() string {
	var out []string
	for _, l := range k.services.Logs {
		out = append(out, l.URL)
	}
	return strings.Join(out, ", ")
}

// blobOutputs are sign-blob's output files.
type blobOutputs struct {
	sig, cert, bundle string
	force             bool
}

// signBlobKeyless signs a file keyless: read once as a stream, its SHA-256
// signed with the run's certificate, logged and timestamped; the outputs
// are written only then (none if anything failed).
func (a *App) signBlobKeyless(ctx context.Context, path string, f *keylessSignFlags, logs *logFlags, out blobOutputs) error {
	ctx = orBackground(ctx)
	if out.bundle == "" && out.cert == "" {
		return usageError{fmt.Errorf("keyless sign-blob needs --bundle, or --output-certificate with the signature: a keyless signature alone cannot be verified")}
	}
	for _, p := range []string{out.sig, out.cert, out.bundle} {
		if p != "" && !out.force {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s: %w (use --force)", p, fs.ErrExist)
			}
		}
	}
	in, err := openInput(path, a.Stdin)
	if err != nil {
		return err
	}
	defer in.Close()
	ks, err := a.newKeylessSigner(ctx, f, logs, false)
	if err != nil {
		return err
	}
	defer ks.reportStats(a.Stderr, f)
	d, err := blob.Digest(in, false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	signed, err := ks.Digest(ctx, d.SHA256)
	if err != nil {
		return err
	}
	if signed.Entry != nil {
		fmt.Fprintf(a.Stderr, "Recorded in transparency log %s at index %d\n", ks.logNames(), signed.Entry.GetLogIndex())
	}
	b64 := base64.StdEncoding.EncodeToString(signed.Signature)
	if out.bundle != "" {
		data, err := signed.JSON()
		if err != nil {
			return err
		}
		if err := atomicfile.Write(out.bundle, data, 0o644, out.force); err != nil {
			return err
		}
		fmt.Fprintf(a.Stderr, "Bundle written to %s\n", out.bundle)
	}
	if out.cert != "" {
		if err := atomicfile.Write(out.cert, []byte(ks.CertificatePEM()), 0o644, out.force); err != nil {
			return err
		}
		fmt.Fprintf(a.Stderr, "Certificate written to %s\n", out.cert)
	}
	if out.sig != "" {
		if err := atomicfile.Write(out.sig, []byte(b64), 0o644, out.force); err != nil {
			return err
		}
		fmt.Fprintf(a.Stderr, "Signature written to %s\n", out.sig)
	}
	if out.bundle == "" && out.sig == "" {
		_, err = fmt.Fprintln(a.Stdout, b64)
	}
	return err
}
