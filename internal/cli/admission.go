package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/imgsign/imgsign/pkg/admission"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/spf13/cobra"
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
	root.AddCommand(a.newAdmissionServeCommand())
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
credential helpers, or --registry-username/--registry-password.

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
	s, err := admission.NewServer(admission.Config{
		PolicyFile: f.policy, Client: client,
		Gate:     gate.Options{Jobs: f.jobs, Online: online},
		WarnOnly: f.warnOnly, Timeout: f.reviewTimeout,
		CacheSize: f.cacheSize, CacheTTL: f.cacheTTL, NegativeTTL: f.negativeTTL,
		ReloadInterval: f.reload, Log: log,
	})
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
