package cli

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/version"
	"github.com/imgsign/imgsign/pkg/layout"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/spf13/cobra"
)

// Environment variables read by registry commands.
const (
	envRegistryUsername = "IMGSIGN_REGISTRY_USERNAME"
	envRegistryPassword = "IMGSIGN_REGISTRY_PASSWORD"
	envRepository       = "IMGSIGN_REPOSITORY"
	envCosignRepository = "COSIGN_REPOSITORY"
)

// registryFlags are the options of every command that talks to a registry.
type registryFlags struct {
	username, password   string
	caCerts              []string
	clientCert, clientKy string
	insecure, allowHTTP  bool
	retries              int
	timeout              time.Duration
	requestTimeout       time.Duration
	limits               oci.Limits
	// transport, when set, replaces the network: an OCI layout's
	// (--local, --tarball).
	transport http.RoundTripper
	// overlay, when set, answers image content while signatures come from
	// the network (--registry-signatures).
	overlay *layout.Store
}

func (r *registryFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&r.username, "registry-username", "", "registry user name (default $"+envRegistryUsername+"; otherwise the Docker config file and credential helpers)")
	f.StringVar(&r.password, "registry-password", "", "registry password (prefer $"+envRegistryPassword+": flags show in process lists)")
	r.registerConnection(cmd)
}

// registerConnection registers the options other than credentials.
func (r *registryFlags) registerConnection(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&r.caCerts, "registry-cacert", nil, "PEM file of a CA to trust for registry TLS (repeatable)")
	f.StringVar(&r.clientCert, "registry-client-cert", "", "PEM client certificate for registry TLS")
	f.StringVar(&r.clientKy, "registry-client-key", "", "PEM key of --registry-client-cert")
	f.BoolVar(&r.insecure, "allow-insecure-registry", false, "skip TLS certificate verification (never for production)")
	f.BoolVar(&r.allowHTTP, "allow-http-registry", false, "allow plain HTTP to registries not on this machine (loopback may always use it)")
	f.IntVar(&r.retries, "retries", oci.DefaultRetries, "retries of a request failing with 408, 429 or 5xx, with exponential backoff")
	f.DurationVar(&r.timeout, "timeout", 5*time.Minute, "give up after this long")
	f.DurationVar(&r.requestTimeout, "request-timeout", oci.DefaultRequestTimeout, "per registry request: a manifest, signature, bundle or attestation\nmust arrive whole within it, and a blob (copy, save, --verify-blobs)\nfails when no byte arrives for that long (0: no limit)")
	f.Int64Var(&r.limits.MaxManifestBytes, "max-manifest-bytes", oci.DefaultMaxManifestBytes, "largest manifest read from a registry")
	f.IntVar(&r.limits.MaxSignatures, "max-signatures", oci.DefaultMaxSignatures, "most signatures one image may carry; more is refused")
	f.Int64Var(&r.limits.MaxPayloadBytes, "max-payload-bytes", oci.DefaultMaxPayloadBytes, "largest signature payload read")
}

// client builds the registry client and a context bounded by --timeout.
func (r *registryFlags) client(ctx context.Context, a *App) (*oci.Client, context.Context, context.CancelFunc, error) {
	o, err := r.options(a)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := oci.NewClient(o)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	return c, ctx, cancel, nil
}

// options are the registry client options the flags ask for.
func (r *registryFlags) options(a *App) (oci.Options, error) {
	user, pass := r.username, r.password
	if user == "" {
		user, _ = a.LookupEnv(envRegistryUsername)
	}
	if pass == "" {
		pass, _ = a.LookupEnv(envRegistryPassword)
	}
	if (user == "") != (pass == "") {
		return oci.Options{}, usageError{fmt.Errorf("registry credentials need both a user name and a password")}
	}
	retries := r.retries
	if retries == 0 || r.transport != nil {
		retries = -1 // none asked for, or a local layout: nothing to retry
	}
	o := oci.Options{
		Username: user, Password: pass,
		CACertFiles:    r.caCerts,
		ClientCertFile: r.clientCert, ClientKeyFile: r.clientKy,
		InsecureSkipTLSVerify: r.insecure,
		AllowHTTP:             r.allowHTTP,
		Retries:               retries,
		Limits:                r.limits,
		RequestTimeout:        requestTimeout(r.requestTimeout),
		UserAgent:             "imgsign/" + version.Get().Version,
		Transport:             r.transport,
	}
	if r.overlay != nil {
		network, err := oci.NetworkTransport(o)
		if err != nil {
			return oci.Options{}, err
		}
		o.Transport = layout.Overlay(r.overlay, network)
	}
	return o, nil
}

// requestTimeout maps the --request-timeout value to oci.Options: 0 (no
// limit) is negative there, where zero means the default.
func requestTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// signingClient loads the private key (asking for its password only if it
// is encrypted) and makes a registry client bounded by --timeout.
func (a *App) signingClient(ctx context.Context, reg *registryFlags, keyPath string, pw passwordFlags) (crypto.Signer, *oci.Client, context.Context, context.CancelFunc, error) {
	key, err := a.readPrivateKey(ctx, keyPath, a.password(pw, "Enter the password of "+keyPath))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	client, ctx, cancel, err := reg.client(ctx, a)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return key, client, ctx, cancel, nil
}

// signatureRepo returns the repository given by flag or environment.
func (a *App) signatureRepo(flag string) (*name.Repository, error) {
	v := flag
	if v == "" {
		v, _ = a.LookupEnv(envRepository)
	}
	if v == "" {
		v, _ = a.LookupEnv(envCosignRepository)
	}
	if v == "" {
		return nil, nil
	}
	r, err := name.NewRepository(v)
	if err != nil {
		return nil, usageError{fmt.Errorf("signature repository %q: %w", v, err)}
	}
	return &r, nil
}

// parseRefs parses image references given as arguments.
func parseRefs(args []string) ([]name.Reference, error) {
	refs := make([]name.Reference, 0, len(args))
	for _, a := range args {
		r, err := name.ParseReference(a)
		if err != nil {
			return nil, usageError{fmt.Errorf("image reference %q: %w", a, err)}
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// parseAnnotations parses repeated -a key=value flags.
func parseAnnotations(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("annotation %q is not key=value", kv)}
		}
		m[k] = v
	}
	return m, nil
}
