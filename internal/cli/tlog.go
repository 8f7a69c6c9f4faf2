package cli

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imgsign/imgsign/internal/atomicfile"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
)

// logRequestTimeout bounds one request to a transparency log; --timeout
// bounds the whole command.
const logRequestTimeout = 30 * time.Second

// logFlags are the transparency-log flags of sign and verify.
type logFlags struct {
	url         string
	version     string
	keys        []string
	trustedRoot string
	require     bool
	requireTS   bool
}

func (f *logFlags) registerSign(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "rekor-url", "", "record each signature in this Rekor log before storing it (nothing is stored if the log fails)")
	fl.StringVar(&f.version, "rekor-version", "auto", "Rekor API of --rekor-url: 1 (rekor-server), 2 (rekor-tiles) or auto (ask the log)")
}

func (f *logFlags) registerVerify(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.keys, "rekor-key", nil, "trusted transparency-log public key, PEM (repeatable)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json whose transparency logs are trusted (with --key,\nits timestamp authorities verify signatures' RFC 3161 timestamps too)")
	f.registerOnline(cmd)
	fl.BoolVar(&f.require, "require-tlog", false, "reject signatures without a verified transparency-log entry")
}

// registerRequireTimestamp registers --require-timestamp (verify,
// verify-attestation, verify-blob).
func (f *logFlags) registerRequireTimestamp(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.requireTS, "require-timestamp", false, "reject key signatures without an RFC 3161 timestamp verified by a TSA of\n--trusted-root (as cosign's --use-signed-timestamps)")
}

// registerOnline registers only --rekor-url, for commands whose trusted
// logs come from a policy.
func (f *logFlags) registerOnline(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "rekor-url", "", "look signatures up in this Rekor v1 log when no entry travels with them")
}

// client returns the log client, or nil without --rekor-url.
func (f *logFlags) client() (*tlog.Client, error) {
	if f.url == "" {
		return nil, nil
	}
	v := 0
	switch f.version {
	case "auto", "":
	case "1", "v1":
		v = tlog.V1
	case "2", "v2":
		v = tlog.V2
	default:
		return nil, usageError{fmt.Errorf("--rekor-version must be 1, 2 or auto, not %q", f.version)}
	}
	c, err := tlog.NewClient(f.url, v, &http.Client{Timeout: logRequestTimeout})
	if err != nil {
		return nil, usageError{fmt.Errorf("--rekor-url: %w", err)}
	}
	return c, nil
}

// verifierOptions returns the Verifier options the log flags ask for.
func (f *logFlags) verifierOptions() ([]verify.Option, error) {
	p, err := f.policy()
	if err != nil {
		return nil, err
	}
	opts := []verify.Option{verify.WithTrustedLogs(p.Trust)}
	if p.Online != nil {
		opts = append(opts, verify.WithOnlineLog(p.Online))
	}
	tsas, err := f.trustedTimestamps()
	if err != nil {
		return nil, err
	}
	if tsas != nil {
		opts = append(opts, verify.WithTrustedTimestamps(tsas))
	}
	if f.requireTS && tsas == nil {
		return nil, usageError{fmt.Errorf("--require-timestamp needs --trusted-root naming a timestamp authority")}
	}
	return opts, nil
}

// trustedTimestamps is the --trusted-root whose timestamp authorities
// verify key signatures' RFC 3161 timestamps; nil without --trusted-root
// or when it lists no TSA (key signatures' timestamps are then ignored).
func (f *logFlags) trustedTimestamps() (root.TrustedMaterial, error) {
	if f.trustedRoot == "" {
		return nil, nil
	}
	tr, err := trustroot.LoadFile(f.trustedRoot)
	if err != nil {
		return nil, err
	}
	if len(tr.TimestampingAuthorities()) == 0 {
		return nil, nil
	}
	return tr, nil
}

// policy returns the log policy the verify flags ask for.
func (f *logFlags) policy() (tlog.Policy, error) {
	trust := &tlog.Trust{}
	p := tlog.Policy{Trust: trust, Require: f.require}
	logs, err := tlog.LoadKeyFiles(f.keys...)
	if err != nil {
		return p, err
	}
	trust.Add(logs...)
	if f.trustedRoot != "" {
		logs, err := tlog.LoadTrustedRoot(f.trustedRoot)
		if err != nil {
			// A root of timestamp authorities only (no log) is fine: they
			// verify key signatures' timestamps (trustedTimestamps).
			if tsas, terr := f.trustedTimestamps(); terr != nil || tsas == nil {
				return p, err
			}
		}
		trust.Add(logs...)
	}
	if f.require && trust.Empty() {
		return p, usageError{fmt.Errorf("--require-tlog needs trusted log keys: give --rekor-key or --trusted-root")}
	}
	if p.Online, err = f.client(); err != nil {
		return p, err
	}
	if p.Online != nil && trust.Empty() {
		return p, usageError{fmt.Errorf("--rekor-url needs trusted log keys to check what the log answers: give --rekor-key or --trusted-root")}
	}
	return p, nil
}

// describeLog says what the log check of a verified signature or
// attestation found.
func describeLog(facts []tlog.Facts, unchecked int) []string {
	var out []string
	for _, f := range facts {
		when := ""
		if f.IntegratedTime > 0 {
			when = ", integrated " + time.Unix(f.IntegratedTime, 0).UTC().Format(time.RFC3339)
		}
		out = append(out, fmt.Sprintf("logged in %s at index %d%s (checked: %s)", f.Log, f.LogIndex, when, strings.Join(f.Checked, ", ")))
	}
	if unchecked > 0 {
		out = append(out, fmt.Sprintf("its %d transparency-log entries were not checked: no log is trusted (--rekor-key, --trusted-root)", unchecked))
	}
	return out
}

func (a *App) newTrustedRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "trusted-root",
		Short: "Make Sigstore trusted roots (trusted_root.json) naming your transparency logs and timestamp authorities",
	}
	var (
		keys      []string
		urls      []string
		origins   []string
		tsaChains []string
		tsaURLs   []string
		out       string
		validFrom string
		force     bool
	)
	create := &cobra.Command{
		Use:   "create (--rekor-key PEM [--rekor-url URL] | --timestamp-certificate-chain PEM [--timestamp-url URL])... [--out FILE]",
		Short: "Write a trusted root listing transparency logs and their keys, and timestamp authorities",
		Long: `Write a Sigstore trusted root (trusted_root.json) that lists each log key given
with --rekor-key, with the matching --rekor-url (in order) as its base URL.
imgsign verify --trusted-root and cosign verify --trusted-root read it, so a
private Rekor can be trusted by both tools.

Rekor v1 logs (ECDSA or RSA keys): the log ID is the SHA-256 of the key's
PKIX encoding, as Rekor v1 derives it.

Rekor v2 logs (Ed25519 keys) are named by the origin of their checkpoints:
the log ID is SHA-256(origin || "\n" || 0x01 || key) and the base URL is
https://ORIGIN, as cosign v3 expects. Give the origin with --rekor-origin
(in order, like --rekor-url), or it is read from the checkpoint the log
publishes at --rekor-url/checkpoint (its read side: tiles and checkpoint),
after checking the key signed that checkpoint.

--timestamp-certificate-chain PEM (repeatable) adds an RFC 3161 timestamp
authority: its certificate chain, the TSA's certificate first and the
trust anchor last, as the TSA serves it (timestamp-authority:
/api/v1/timestamp/certchain); --timestamp-url (in order) names it. A root
of TSAs alone (no --rekor-key) is what key signatures timestamped with
'sign --key K --timestamp-server-url' need to be dated without a log:
'imgsign verify --key --trusted-root' and cosign verify --trusted-root
--use-signed-timestamps read it.`,
		Example: `  imgsign trusted-root create --rekor-key rekor.pub --rekor-url https://rekor.internal --out trusted_root.json
  imgsign trusted-root create --rekor-key rekor-v2.pub --rekor-origin log2.internal --out trusted_root.json
  imgsign trusted-root create --rekor-key rekor-v2.pub --rekor-url https://tiles.log2.internal --out trusted_root.json
  imgsign trusted-root create --timestamp-certificate-chain tsa-chain.pem --timestamp-url https://tsa.internal/api/v1/timestamp --out trusted_root.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 && len(tsaChains) == 0 {
				return usageError{fmt.Errorf("--rekor-key or --timestamp-certificate-chain is required")}
			}
			if len(tsaURLs) > len(tsaChains) {
				return usageError{fmt.Errorf("%d --timestamp-url for %d --timestamp-certificate-chain", len(tsaURLs), len(tsaChains))}
			}
			if len(urls) > len(keys) {
				return usageError{fmt.Errorf("%d --rekor-url for %d --rekor-key", len(urls), len(keys))}
			}
			from := time.Unix(0, 0)
			if validFrom != "" {
				t, err := time.Parse(time.RFC3339, validFrom)
				if err != nil {
					return usageError{fmt.Errorf("--valid-from: %w", err)}
				}
				from = t
			}
			logs, err := tlog.LoadKeyFiles(keys...)
			if err != nil {
				return err
			}
			if len(origins) > len(keys) {
				return usageError{fmt.Errorf("%d --rekor-origin for %d --rekor-key", len(origins), len(keys))}
			}
			for i, u := range urls {
				logs[i].BaseURL = u
			}
			for i, l := range logs {
				if _, v2 := l.Key.(ed25519.PublicKey); !v2 {
					if i < len(origins) && origins[i] != "" {
						return usageError{fmt.Errorf("--rekor-origin for %s: %w", keys[i], tlog.ErrNotTileLog)}
					}
					continue
				}
				origin := ""
				switch {
				case i < len(origins) && origins[i] != "":
					origin = origins[i]
				case i < len(urls) && urls[i] != "":
					hc := &http.Client{Timeout: 30 * time.Second}
					if origin, err = l.CheckpointOrigin(cmd.Context(), hc, urls[i]); err != nil {
						return fmt.Errorf("%s: %w (give the origin with --rekor-origin)", keys[i], err)
					}
				default:
					return usageError{fmt.Errorf("%s is an Ed25519 (Rekor v2) log key: give its checkpoint origin with --rekor-origin, or --rekor-url where its checkpoint is published", keys[i])}
				}
				if err := l.SetOrigin(origin); err != nil {
					return usageError{fmt.Errorf("%s: %w", keys[i], err)}
				}
				if strings.Contains(origin, ":") {
					fmt.Fprintf(a.Stderr, "Warning: origin %q has a port: cosign checks Rekor v2 checkpoints under the base URL's host name without its port, so only imgsign will accept this log's entries\n", origin)
				}
			}
			data, err := tlog.TrustedRoot(logs, from)
			if err != nil {
				return err
			}
			if len(tsaChains) > 0 {
				var chains [][]byte
				for _, p := range tsaChains {
					c, err := readSmallFile(p, maxCertFileBytes)
					if err != nil {
						return usageError{err}
					}
					chains = append(chains, c)
				}
				if data, err = tsa.AddToTrustedRoot(data, chains, tsaURLs, from); err != nil {
					return usageError{err}
				}
			}
			data = append(data, '\n')
			if out == "" || out == "-" {
				_, err = a.Stdout.Write(data)
				return err
			}
			return atomicfile.Write(out, data, 0o644, force)
		},
	}
	f := create.Flags()
	f.StringArrayVar(&keys, "rekor-key", nil, "log public key, PEM (repeatable)")
	f.StringArrayVar(&urls, "rekor-url", nil, "base URL of the log of the --rekor-key at the same position (repeatable)")
	f.StringArrayVar(&origins, "rekor-origin", nil, "checkpoint origin of the Rekor v2 log of the --rekor-key at the same position (default: read from --rekor-url/checkpoint)")
	f.StringArrayVar(&tsaChains, "timestamp-certificate-chain", nil, "RFC 3161 timestamp authority's certificate chain, PEM, TSA certificate first (repeatable)")
	f.StringArrayVar(&tsaURLs, "timestamp-url", nil, "URL of the TSA of the --timestamp-certificate-chain at the same position (repeatable)")
	f.StringVar(&validFrom, "valid-from", "", "RFC 3339 time from which the keys and TSAs are valid (default: the Unix epoch)")
	f.StringVar(&out, "out", "", "write to this file instead of standard output")
	f.BoolVar(&force, "force", false, "overwrite --out")
	root.AddCommand(create)
	return root
}
