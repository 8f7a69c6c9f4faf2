package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/imgsign/imgsign/pkg/admission"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func (a *App) newAdmissionCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "admission",
		Short: "Enforce a trust policy where Kubernetes admits Pods (an admission webhook)",
		Long: `A Kubernetes admission webhook that checks every image a workload would run
against a trust policy (the same file and the same checks as
'imgsign verify --policy'), when the API server is asked to create or update it.

  imgsign admission serve   serves the webhook
  imgsign admission config  prints its webhook configurations`,
	}
	root.AddCommand(a.newAdmissionServeCommand(), a.newAdmissionConfigCommand())
	return root
}

type admissionServeFlags struct {
	policy, cert, key, listen string
	warnOnly                  bool
	reviewTimeout, drain      time.Duration
	reload                    time.Duration
	cacheSize                 int
	cacheTTL, negativeTTL     time.Duration
	jobs                      int
	logFormat                 string
	pullSecrets               bool
	kubeconfig                string
}

func (a *App) newAdmissionServeCommand() *cobra.Command {
	var (
		f    admissionServeFlags
		reg  registryFlags
		logs logFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --policy FILE --tls-cert FILE --tls-key FILE",
		Short: "Serve the admission webhook over HTTPS",
		Long: `Serve admission.k8s.io/v1 AdmissionReviews over HTTPS:

  /validate  validating webhook: refuses a workload when an image it would run
             fails the policy, naming each refused image and why
  /mutate    mutating webhook: the same verdict, and every image reference not
             already pinned is rewritten to NAME:TAG@sha256:... of the digest
             verified, so the kubelet pulls exactly what was verified
  /healthz   liveness; /readyz readiness (and the policy in force);
  /metrics   Prometheus metrics (reviews, verdicts, latency, cache)

Checked: containers, init containers, ephemeral containers and image volumes of
Pods, and the Pod templates of Deployments, ReplicaSets, StatefulSets,
DaemonSets, Jobs, CronJobs, ReplicationControllers and PodTemplates, on CREATE
and UPDATE (on UPDATE, only images the old object did not run).

Verdicts are cached by (policy, digest) for --cache-ttl (failures for
--negative-ttl); tags are resolved with one HEAD per review. Verification
stops at --review-timeout (or sooner when the API server's own timeout is
shorter): an image not verified by then is refused, with that reason. The
policy file is re-read when it changes; a file that does not load keeps the
old policy in force, and is logged, counted in the metrics and shown by
/readyz. SIGTERM stops taking connections and answers the reviews in flight.

Registry credentials come from the Docker config file ($DOCKER_CONFIG) and
credential helpers, or --registry-username/--registry-password; with
--pull-secrets, each workload's imagePullSecrets and its service account's
are read through the Kubernetes API and tried first, as the kubelet would.

'imgsign admission config' prints the webhook configurations that register it.`,
		Example: `  imgsign admission serve --policy /etc/imgsign/policy.yaml \
      --tls-cert /etc/imgsign/tls/tls.crt --tls-key /etc/imgsign/tls/tls.key`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runAdmissionServe(cmd.Context(), &f, &reg, &logs)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "trust policy file (see 'imgsign policy validate'); re-read when it changes")
	fl.StringVar(&f.cert, "tls-cert", "", "PEM certificate chain the webhook serves (re-read when it changes)")
	fl.StringVar(&f.key, "tls-key", "", "PEM private key of --tls-cert")
	fl.StringVar(&f.listen, "listen", ":8443", "address to listen on")
	fl.BoolVar(&f.warnOnly, "warn-only", false, "admit everything, with a warning for each image the policy refuses (to roll a policy out)")
	fl.DurationVar(&f.reviewTimeout, "review-timeout", admission.DefaultTimeout, "longest verification of one review; keep it below the webhook's timeoutSeconds")
	fl.DurationVar(&f.drain, "drain-timeout", admission.DefaultDrainTimeout, "on SIGTERM, how long to wait for reviews in flight")
	fl.DurationVar(&f.reload, "policy-reload-interval", admission.DefaultReloadInterval, "how often the policy file is checked for changes")
	fl.IntVar(&f.cacheSize, "cache-size", admission.DefaultCacheSize, "most verdicts cached")
	fl.DurationVar(&f.cacheTTL, "cache-ttl", admission.DefaultCacheTTL, "how long a verified digest stays verified (negative: never cached)")
	fl.DurationVar(&f.negativeTTL, "negative-ttl", admission.DefaultNegativeTTL, "how long a refused digest stays refused (negative: never cached)")
	fl.IntVar(&f.jobs, "jobs", gate.DefaultJobs, "images of one review verified at once")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fl.BoolVar(&f.pullSecrets, "pull-secrets", false, "read each workload's imagePullSecrets and its service account's through the Kubernetes API (get on secrets and serviceaccounts) and use them, as the kubelet would, before the webhook's own credentials")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "with --pull-secrets: the kubeconfig file to reach the API server (default: the in-cluster service account)")
	reg.register(cmd)
	// The server runs until stopped; reviews are bounded by --review-timeout.
	_ = fl.MarkHidden("timeout")
	logs.registerOnline(cmd)
	return cmd
}

func (a *App) runAdmissionServe(ctx context.Context, f *admissionServeFlags, reg *registryFlags, logs *logFlags) error {
	switch {
	case f.policy == "":
		return usageError{fmt.Errorf("--policy is required")}
	case f.cert == "" || f.key == "":
		return usageError{fmt.Errorf("--tls-cert and --tls-key are required (the API server only calls webhooks over HTTPS)")}
	case f.jobs < 1:
		return usageError{fmt.Errorf("--jobs must be at least 1")}
	case f.reviewTimeout <= 0:
		return usageError{fmt.Errorf("--review-timeout must be positive")}
	}
	var log *slog.Logger
	switch f.logFormat {
	case "json":
		log = slog.New(slog.NewJSONHandler(a.Stderr, nil))
	case "text":
		log = slog.New(slog.NewTextHandler(a.Stderr, nil))
	default:
		return usageError{fmt.Errorf("--log-format must be json or text, not %q", f.logFormat)}
	}
	online, err := logs.client()
	if err != nil {
		return err
	}
	client, _, cancel, err := reg.client(ctx, a)
	if err != nil {
		return err
	}
	defer cancel()
	cfg := admission.Config{
		PolicyFile: f.policy, Client: client,
		Gate:     gate.Options{Jobs: f.jobs, Online: online},
		WarnOnly: f.warnOnly, Timeout: f.reviewTimeout,
		CacheSize: f.cacheSize, CacheTTL: f.cacheTTL, NegativeTTL: f.negativeTTL,
		ReloadInterval: f.reload, Log: log,
	}
	if f.kubeconfig != "" && !f.pullSecrets {
		return usageError{fmt.Errorf("--kubeconfig is only used with --pull-secrets")}
	}
	if f.pullSecrets {
		if cfg.Credentials, cfg.NewClient, err = a.pullSecretCredentials(reg, f.kubeconfig); err != nil {
			return err
		}
	}
	s, err := admission.NewServer(cfg)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	log.Info("serving admission reviews", "address", ln.Addr().String(), "policy", f.policy, "warnOnly", f.warnOnly)
	return s.ServeTLS(ctx, ln, f.cert, f.key, f.drain)
}

func (a *App) newAdmissionConfigCommand() *cobra.Command {
	var (
		c      admission.WebhookConfig
		caFile string
		only   string
	)
	cmd := &cobra.Command{
		Use:   "config (--url URL | --service NAMESPACE/NAME[:PORT]) --ca-file FILE",
		Short: "Print the webhook configurations that register the admission webhook",
		Long: `Print a MutatingWebhookConfiguration (/mutate: pins tags to the digests
verified) and a ValidatingWebhookConfiguration (/validate: refuses what the
policy refuses, after every mutating webhook has run) for 'kubectl apply -f -'.

They send CREATE and UPDATE of Pods (and their ephemeral containers),
PodTemplates, ReplicationControllers, Deployments, ReplicaSets, StatefulSets,
DaemonSets, Jobs and CronJobs, with failurePolicy Fail (no answer: refused),
sideEffects None and a timeout above the server's --review-timeout. Namespaces
opt in with a label (--namespace-label); kube-system and the webhook's own
namespace are never sent, so the webhook cannot lock itself or the control
plane out.`,
		Example: `  # The webhook in the cluster, behind the Service of deploy/:
  imgsign admission config --service imgsign-system/imgsign --ca-file ca.crt | kubectl apply -f -
  kubectl label namespace prod imgsign.dev/enforce=true

  # The webhook elsewhere:
  imgsign admission config --url https://webhook.example.com:8443 --ca-file ca.crt`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caFile == "" {
				return usageError{fmt.Errorf("--ca-file is required: the API server must know the CA of the webhook's certificate")}
			}
			ca, err := os.ReadFile(caFile)
			if err != nil {
				return usageError{err}
			}
			c.CABundle = ca
			switch only {
			case "both":
				c.Validate, c.Mutate = true, true
			case "validate":
				c.Validate = true
			case "mutate":
				c.Mutate = true
			default:
				return usageError{fmt.Errorf("--webhooks must be both, validate or mutate, not %q", only)}
			}
			out, err := admission.WebhookConfigurations(c)
			if err != nil {
				return usageError{err}
			}
			_, err = a.Stdout.Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&c.URL, "url", "", "the webhook's address, https://HOST[:PORT] (paths are added)")
	fl.StringVar(&c.Service, "service", "", "the webhook's Service in the cluster, NAMESPACE/NAME[:PORT]")
	fl.StringVar(&caFile, "ca-file", "", "PEM file of the CA that signed the webhook's TLS certificate (the caBundle)")
	fl.StringVar(&c.Name, "name", admission.DefaultName, "name of the two configurations")
	fl.StringVar(&c.Namespace, "webhook-namespace", "", "the webhook's own namespace, never checked (default: the service's, else "+admission.DefaultNamespace+")")
	fl.StringVar(&c.NamespaceLabel, "namespace-label", admission.DefaultNamespaceLabel, `only namespaces with this KEY=VALUE label are checked ("-": every namespace but kube-system and the webhook's)`)
	fl.IntVar(&c.TimeoutSeconds, "timeout-seconds", admission.ConfigTimeoutSeconds, "the API server's timeout per call (1-30); keep the server's --review-timeout below it")
	fl.BoolVar(&c.FailOpen, "fail-open", false, "failurePolicy Ignore: admit when the webhook does not answer (not recommended)")
	fl.StringVar(&only, "webhooks", "both", "which configurations: both, validate or mutate")
	return cmd
}

// pullSecretCredentials reads pull secrets with client-go (in the cluster,
// or through a kubeconfig file) and makes registry clients that try them
// before the flags' own credentials.
func (a *App) pullSecretCredentials(reg *registryFlags, kubeconfig string) (admission.Credentials, func(authn.Keychain) (*oci.Client, error), error) {
	var (
		rc  *rest.Config
		err error
	)
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--pull-secrets: the Kubernetes API: %w", err)}
	}
	rc.UserAgent = "imgsign-admission"
	kc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--pull-secrets: %w", err)}
	}
	base, err := reg.options(a)
	if err != nil {
		return nil, nil, err
	}
	newClient := func(secrets authn.Keychain) (*oci.Client, error) {
		o := base
		own := o.Keychain
		if own == nil {
			own = authn.DefaultKeychain
		}
		if o.Username != "" {
			own = staticKeychain{authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password})}
		}
		o.Username, o.Password = "", ""
		o.Keychain = authn.NewMultiKeychain(secrets, own)
		return oci.NewClient(o)
	}
	return admission.KubeCredentials{Client: kc}, newClient, nil
}

// staticKeychain gives the same credentials for every registry.
type staticKeychain struct{ a authn.Authenticator }

func (s staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return s.a, nil }
