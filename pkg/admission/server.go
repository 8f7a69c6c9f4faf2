package admission

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/imgsign/imgsign/pkg/gate"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/trustpolicy"
	"github.com/imgsign/imgsign/pkg/verify"
)

// Defaults of a Server.
const (
	// DefaultTimeout bounds the verification of one review. The webhook
	// configuration's timeoutSeconds (ConfigTimeoutSeconds) must be
	// larger; a shorter timeout the API server asks for (?timeout=) wins.
	DefaultTimeout = 8 * time.Second
	// DefaultReloadInterval is how often the policy file is looked at.
	DefaultReloadInterval = 5 * time.Second
	// DefaultDrainTimeout bounds how long SIGTERM waits for reviews in
	// flight.
	DefaultDrainTimeout = 25 * time.Second

	// maxMessage bounds a denial's message, so it stays readable in
	// kubectl's output.
	maxMessage = 2048
	// maxReason bounds the reason given for one image.
	maxReason = 240
)

// Config configures a Server.
type Config struct {
	// PolicyFile is the trust policy (trustpolicy's format), re-read when
	// it changes.
	PolicyFile string
	// Client reads registries (its keychain supplies credentials).
	Client *oci.Client
	// Gate holds the gate options other than Cache (which the Server sets).
	Gate gate.Options
	// WarnOnly admits every object, with a warning per refused image.
	WarnOnly bool
	// Timeout bounds verification per review (DefaultTimeout when 0).
	Timeout time.Duration
	// CacheSize, CacheTTL and NegativeTTL size the verdict cache (the
	// Default* values when 0; a negative TTL disables that kind of entry).
	CacheSize             int
	CacheTTL, NegativeTTL time.Duration
	// ReloadInterval is how often the policy file is checked for changes
	// (DefaultReloadInterval when 0).
	ReloadInterval time.Duration
	// Log receives one line per review and per policy reload (slog's
	// default logger when nil).
	Log *slog.Logger
	// RegistryRequests, when set, is reported in the metrics.
	RegistryRequests func() uint64
	// Now is the clock of the cache (time.Now when nil).
	Now func() time.Time
	// Credentials, when set, finds the registry credentials of each
	// workload's pull secrets; each image is then read with those of the
	// keys that match it (Keyring), best first, then with Client's own,
	// the next credentials only when the registry refuses the last.
	// NewClient must then be set too: it makes a client like Client whose
	// keychain tries kc first.
	Credentials Credentials
	NewClient   func(kc authn.Keychain) (*oci.Client, error)
}

// maxCredentialClients bounds the registry clients kept for distinct
// pull-secret credentials of a registry (each keeps its tokens and
// connections).
const maxCredentialClients = 256

// Server answers AdmissionReviews. Make one with NewServer; it is safe for
// concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	cache   *cache
	metrics *metrics

	policy    atomic.Pointer[policyState]
	clientsMu sync.Mutex
	clients   map[string]*oci.Client // by credentials
	reloadMu  sync.Mutex
	reloadErr atomic.Pointer[string]
	draining  atomic.Bool
}

// policyState is the policy in force and the Gates that enforce it: one
// with the webhook's own credentials, one per registry and pull-secret
// credentials.
type policyState struct {
	gate   *gate.Gate
	policy *trustpolicy.Policy
	opts   gate.Options
	id     string // SHA-256 of the file, hex
	loaded time.Time

	mu      sync.Mutex
	byCreds map[string]*gate.Gate
}

// NewServer loads the policy file and returns a Server enforcing it. A
// policy that does not load is an error (wrapping trustpolicy.ErrInvalid
// when its contents are at fault).
func NewServer(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("admission: no registry client")
	}
	if cfg.Credentials != nil && cfg.NewClient == nil {
		return nil, errors.New("admission: Credentials without NewClient")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Log, metrics: newMetrics(), clients: map[string]*oci.Client{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.cache = newCache(cfg.CacheSize, cfg.CacheTTL, cfg.NegativeTTL, cfg.Now)
	s.metrics.registryCalls = cfg.RegistryRequests
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the policy file and, when it changed and loads, puts it in
// force. It reports whether a new policy is in force. A file that does not
// load leaves the old policy in force; the error is returned, logged,
// counted and shown by /readyz until a file that loads replaces it.
func (s *Server) Reload() (bool, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	changed, err := s.reload()
	cur := s.policy.Load()
	if err != nil {
		msg := err.Error()
		if prev := s.reloadErr.Swap(&msg); cur != nil && (prev == nil || *prev != msg) {
			s.log.Error("policy file did not load; the policy loaded before stays in force", "file", s.cfg.PolicyFile, "error", msg, "policy", cur.id[:12], "loaded", cur.loaded.Format(time.RFC3339))
		}
		if cur != nil {
			s.metrics.reloadErrors.Add(1)
		}
		s.metrics.policyOK.Store(false)
		return false, err
	}
	s.reloadErr.Store(nil)
	s.metrics.policyOK.Store(true)
	if changed {
		s.metrics.reloads.Add(1)
		s.metrics.policyLoaded.Store(cur.loaded.Unix())
		s.log.Info("policy loaded", "file", s.cfg.PolicyFile, "policy", cur.id[:12])
	}
	return changed, nil
}

func (s *Server) reload() (bool, error) {
	f, err := os.Open(s.cfg.PolicyFile)
	if err != nil {
		return false, err
	}
	data, err := io.ReadAll(io.LimitReader(f, trustpolicy.MaxPolicyBytes+1))
	f.Close()
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.cfg.PolicyFile, err)
	}
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:])
	if cur := s.policy.Load(); cur != nil && cur.id == id {
		return false, nil
	}
	if len(data) > trustpolicy.MaxPolicyBytes {
		return false, fmt.Errorf("%s: %w: larger than %d bytes", s.cfg.PolicyFile, trustpolicy.ErrInvalid, trustpolicy.MaxPolicyBytes)
	}
	p, err := trustpolicy.Parse(data, s.cfg.PolicyFile, filepath.Dir(s.cfg.PolicyFile))
	if err != nil {
		return false, err
	}
	o := s.cfg.Gate
	o.Cache = policyCache{c: s.cache, policy: id}
	s.policy.Store(&policyState{gate: gate.New(s.cfg.Client, p, o), policy: p, opts: o, id: id, loaded: s.cfg.Now(), byCreds: map[string]*gate.Gate{}})
	return true, nil
}

// gateFor returns the Gate of the policy in force that reads registries
// with the credentials kc (named by credID) before the webhook's own.
func (s *Server) gateFor(st *policyState, credID string, kc authn.Keychain) (*gate.Gate, error) {
	if credID == "" {
		return st.gate, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.byCreds[credID]; ok {
		return g, nil
	}
	s.clientsMu.Lock()
	c, ok := s.clients[credID]
	if !ok {
		var err error
		if c, err = s.cfg.NewClient(kc); err != nil {
			s.clientsMu.Unlock()
			return nil, err
		}
		if len(s.clients) >= maxCredentialClients {
			clear(s.clients)
		}
		s.clients[credID] = c
	}
	s.clientsMu.Unlock()
	if len(st.byCreds) >= maxCredentialClients {
		clear(st.byCreds)
	}
	o := st.opts
	o.Cache = policyCache{c: s.cache, policy: st.id, creds: credID}
	g := gate.New(c, st.policy, o)
	st.byCreds[credID] = g
	return g, nil
}

// watch re-reads the policy file every ReloadInterval until ctx ends.
func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reload() // logged and counted inside
		}
	}
}

// Handler serves /validate, /mutate, /healthz, /readyz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) { s.serveReview(w, r, false) })
	mux.HandleFunc("/mutate", func(w http.ResponseWriter, r *http.Request) { s.serveReview(w, r, true) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", s.serveReady)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.metrics.write(w, s.cache)
	})
	return mux
}

// serveReady answers 503 while draining; otherwise 200, saying which policy
// is in force and, when the file on disk did not load, why.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	cur := s.policy.Load()
	fmt.Fprintf(w, "ready: policy %s (sha256 %s) loaded %s\n", s.cfg.PolicyFile, cur.id[:12], cur.loaded.UTC().Format(time.RFC3339))
	if e := s.reloadErr.Load(); e != nil {
		fmt.Fprintf(w, "policy file not loaded (the policy above stays in force): %s\n", *e)
	}
}

// serveReview reads one AdmissionReview and answers it.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, mutate bool) {
	start := time.Now()
	s.metrics.inflight.Add(1)
	defer s.metrics.inflight.Add(-1)
	endpoint := "validate"
	if mutate {
		endpoint = "mutate"
	}
	if r.Method != http.MethodPost {
		s.metrics.malformed.Add(1)
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "an AdmissionReview is POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	if err != nil {
		s.metrics.malformed.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("%v: larger than %d bytes", ErrMalformed, MaxReviewBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, fmt.Sprintf("reading the AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	review, err := ParseReview(body)
	if err != nil {
		s.metrics.malformed.Add(1)
		s.log.Warn("malformed AdmissionReview", "endpoint", endpoint, "error", err.Error())
		if review == nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.write(w, review.Request.UID, &Response{Status: &Status{Code: http.StatusBadRequest, Reason: "BadRequest", Message: "imgsign: " + err.Error()}})
		s.metrics.review(endpoint, "error", time.Since(start), nil)
		return
	}
	timeout := s.cfg.Timeout
	if t, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && t > 0 {
		// Answer well before the API server gives up.
		if t -= max(t/5, 500*time.Millisecond); t < timeout {
			timeout = max(t, 100*time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	resp, verdict, counts := s.Review(ctx, review.Request, mutate)
	s.write(w, review.Request.UID, resp)
	d := time.Since(start)
	s.metrics.review(endpoint, verdict, d, counts)
	q := review.Request
	s.log.Info("review", "endpoint", endpoint, "uid", q.UID, "operation", q.Operation, "kind", q.Kind.Kind,
		"namespace", q.Namespace, "name", q.Name, "verdict", verdict, "ms", d.Milliseconds(), "message", statusMessage(resp))
}

func statusMessage(r *Response) string {
	if r.Status != nil {
		return r.Status.Message
	}
	return strings.Join(r.Warnings, "; ")
}

func (s *Server) write(w http.ResponseWriter, uid string, resp *Response) {
	resp.UID = uid
	out, err := json.Marshal(Review{APIVersion: ReviewAPIVersion, Kind: ReviewKind, Response: resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// Review decides about one admission request: the response (without its
// uid), the verdict for the metrics (allowed, denied, warned, error) and
// how many images got each image verdict (verified, unsigned, failed). ctx
// bounds the verification: an image not decided by then is refused, with
// that reason.
func (s *Server) Review(ctx context.Context, q *Request, mutate bool) (*Response, string, map[string]int) {
	if q.Operation != "CREATE" && q.Operation != "UPDATE" {
		return &Response{Allowed: true}, "allowed", nil
	}
	images, pull, err := Images(q.Kind, q.Object)
	if err != nil {
		return deny(http.StatusBadRequest, "imgsign: "+err.Error()), "error", nil
	}
	if q.Operation == "UPDATE" && !isNullJSON(q.OldObject) {
		// Images the object already ran were admitted then.
		old, _, err := Images(q.Kind, q.OldObject)
		if err == nil {
			had := make(map[string]bool, len(old))
			for _, im := range old {
				had[im.Ref] = true
			}
			kept := images[:0:0]
			for _, im := range images {
				if !had[im.Ref] {
					kept = append(kept, im)
				}
			}
			images = kept
		}
	}
	if len(images) == 0 {
		return &Response{Allowed: true}, "allowed", nil
	}

	// Distinct references, parsed as the kubelet reads them (Docker Hub by
	// default).
	index := map[string]int{}
	var refs []name.Reference
	var bad []string
	for _, im := range images {
		if _, seen := index[im.Ref]; seen {
			continue
		}
		ref, err := name.ParseReference(im.Ref)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s (%s): not an image reference: %v", im.Ref, im.Where, err))
			index[im.Ref] = -1
			continue
		}
		index[im.Ref] = len(refs)
		refs = append(refs, ref)
	}
	if len(bad) > 0 {
		return deny(http.StatusBadRequest, refusal(bad)), "error", nil
	}
	if len(refs) > MaxImages {
		return deny(http.StatusBadRequest, fmt.Sprintf("imgsign: %d distinct images, more than the %d one review may check", len(refs), MaxImages)), "error", nil
	}

	st := s.policy.Load()
	tries, err := s.credentialGates(ctx, st, q.Namespace, pull, refs)
	if err != nil {
		// Fail closed: without them an image might look missing.
		return deny(http.StatusInternalServerError, "imgsign: registry credentials of the pull secrets: "+oneLine(err.Error())), "error", nil
	}
	results := s.checkAll(ctx, tries, refs)
	counts := map[string]int{}
	var failures []string
	var ops []patchOp
	for _, im := range images {
		res := &results[index[im.Ref]]
		if res.err != nil {
			failures = append(failures, fmt.Sprintf("%s (%s): %s", im.Ref, im.Where, shortReason(res)))
			continue
		}
		if _, pinned := refs[index[im.Ref]].(name.Digest); !pinned && res.Digest != "" {
			ops = append(ops, patchOp{Op: "replace", Path: im.Path, Value: im.Ref + "@" + res.Digest})
		}
	}
	for i := range results {
		switch r := &results[i]; {
		case r.err != nil:
			counts["failed"]++
		case r.Unsigned:
			counts["unsigned"]++
		default:
			counts["verified"]++
		}
	}
	resp := &Response{Allowed: true}
	verdict := "allowed"
	if len(failures) > 0 {
		if !s.cfg.WarnOnly {
			return deny(http.StatusForbidden, refusal(failures)), "denied", counts
		}
		for _, f := range failures {
			resp.Warnings = append(resp.Warnings, "imgsign (warn-only): refused "+f)
		}
		verdict = "warned"
	}
	if mutate && len(ops) > 0 {
		patch, err := json.Marshal(ops)
		if err != nil {
			return deny(http.StatusInternalServerError, "imgsign: "+err.Error()), "error", counts
		}
		pt := patchTypeJSON
		resp.Patch, resp.PatchType = patch, &pt
	}
	return resp, verdict, counts
}

// outcome is the gate's verdict on one image, or why there is none.
type outcome struct {
	gate.Result
	err error // Result.Err(), or the deadline's error
}

// maxCredentialTries bounds the credentials one image is tried with in a
// review (pull-secret ones, then the webhook's own).
const maxCredentialTries = 8

// credentialGates returns, for each ref, the gates to try it with in turn,
// as the kubelet tries credentials: one per matching pull-secret
// credentials (Keyring: the most specific key first; under one key, in the
// order of the secrets), then the webhook's own (st.gate), which an image
// no key matches gets alone. At most maxCredentialTries per image.
func (s *Server) credentialGates(ctx context.Context, st *policyState, namespace string, pull PullSecrets, refs []name.Reference) ([][]*gate.Gate, error) {
	tries := make([][]*gate.Gate, len(refs))
	for i := range tries {
		tries[i] = []*gate.Gate{st.gate}
	}
	if s.cfg.Credentials == nil {
		return tries, nil
	}
	ring, err := s.cfg.Credentials.Keyring(ctx, namespace, pull)
	if err != nil || ring == nil {
		return tries, err
	}
	for i, ref := range refs {
		reg := ref.Context().RegistryStr()
		var gates []*gate.Gate
		seen := map[string]bool{}
		for _, a := range ring.LookupRepository(ref.Context()) {
			h := sha256.Sum256(fmt.Appendf(nil, "%q %q %q %q %q", reg, a.Username, a.Password, a.IdentityToken, a.RegistryToken))
			id := hex.EncodeToString(h[:])
			if seen[id] {
				continue
			}
			seen[id] = true
			g, err := s.gateFor(st, id, registryKeychain{registry: reg, auth: a})
			if err != nil {
				return nil, err
			}
			gates = append(gates, g)
		}
		tries[i] = append(gates[:min(len(gates), maxCredentialTries-1)], st.gate)
	}
	return tries, nil
}

// checkAll checks each ref with the first of its gates (tries), the gates
// side by side; a ref the registry refused to those credentials (HTTP 401
// or 403) is checked again with its next gate, until one is let in or none
// is left.
func (s *Server) checkAll(ctx context.Context, tries [][]*gate.Gate, refs []name.Reference) []outcome {
	out := make([]outcome, len(refs))
	pending := make([]int, len(refs))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; len(pending) > 0; round++ {
		var order []*gate.Gate
		byGate := map[*gate.Gate][]int{}
		for _, i := range pending {
			g := tries[i][round]
			if byGate[g] == nil {
				order = append(order, g)
			}
			byGate[g] = append(byGate[g], i)
		}
		var wg sync.WaitGroup
		for _, g := range order {
			idx := byGate[g]
			sub := make([]name.Reference, len(idx))
			for j, i := range idx {
				sub[j] = refs[i]
			}
			wg.Go(func() {
				for j, r := range s.check(ctx, g, sub) {
					out[idx[j]] = r
				}
			})
		}
		wg.Wait()
		next := pending[:0]
		for _, i := range pending {
			if round+1 < len(tries[i]) && refusedCredentials(out[i].err) && ctx.Err() == nil {
				next = append(next, i)
			}
		}
		pending = next
	}
	return out
}

// refusedCredentials reports whether a registry refused the credentials an
// image was read with.
func refusedCredentials(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden)
}

// check runs the gate of the policy in force, and answers by the deadline
// whatever the registries do: an image without a verdict by then fails.
func (s *Server) check(ctx context.Context, g *gate.Gate, refs []name.Reference) []outcome {
	done := make(chan []gate.Result, 1)
	go func() { done <- g.Check(ctx, refs) }()
	var results []gate.Result
	select {
	case results = <-done:
	case <-ctx.Done():
		// The gate's requests end with ctx; give it a moment to say so.
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case results = <-done:
		case <-t.C:
		}
		t.Stop()
	}
	out := make([]outcome, len(refs))
	for i, ref := range refs {
		if results == nil {
			out[i] = outcome{Result: gate.Result{Image: ref.String()}, err: context.DeadlineExceeded}
			continue
		}
		out[i] = outcome{Result: results[i], err: results[i].Err()}
		if out[i].err != nil && ctx.Err() != nil && !out[i].Verified {
			// Whatever the gate said, the deadline cut it short.
			out[i].err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, out[i].err)
		}
	}
	return out
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

func deny(code int32, msg string) *Response {
	reason := "Forbidden"
	if code == http.StatusBadRequest {
		reason = "BadRequest"
	}
	return &Response{Allowed: false, Status: &Status{Code: code, Reason: reason, Message: msg}}
}

// refusal is a denial's message: each refused image and why, cut to stay
// readable.
func refusal(lines []string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "imgsign: %d image(s) refused by the trust policy: ", len(lines))
	for i, l := range lines {
		if i > 0 {
			b.WriteString("; ")
		}
		if b.Len()+len(l) > maxMessage {
			fmt.Fprintf(&b, "and %d more", len(lines)-i)
			break
		}
		b.WriteString(l)
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// shortReason says in a few words why an image failed.
func shortReason(r *outcome) string {
	err := r.err
	var why string
	var terr *transport.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		why = "not verified in time: the registry or transparency log did not answer before the webhook's deadline"
	case errors.Is(err, gate.ErrRejected):
		why = strings.TrimPrefix(r.Error, gate.ErrRejected.Error()+": ")
		why = "rejected by policy: " + why
	case errors.Is(err, verify.ErrImageNotFound):
		why = "image not found in its registry"
	case errors.Is(err, verify.ErrNoSignatures):
		why = "not signed (no signatures found)"
	case errors.As(err, &terr):
		why = fmt.Sprintf("the registry refused a request (HTTP %d", terr.StatusCode)
		for _, d := range terr.Errors {
			why += " " + string(d.Code)
			if d.Message != "" {
				why += ": " + d.Message
			}
		}
		why += ")"
	default:
		why = r.Error
	}
	if r.Scope != "" && r.Scope != "default" && !errors.Is(err, gate.ErrRejected) {
		why += " [scope " + r.Scope + "]"
	}
	why = strings.Join(strings.Fields(why), " ")
	if len(why) > maxReason {
		why = why[:maxReason] + "..."
	}
	return why
}

// ServeTLS serves the Handler on ln with the certificate in certFile and
// keyFile (re-read when they change, for rotation) and re-reads the policy
// file, until ctx ends; then it stops taking new connections, answers the
// reviews in flight (for at most drain) and returns.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, certFile, keyFile string, drain time.Duration) error {
	certs, err := newCertReloader(certFile, keyFile)
	if err != nil {
		return err
	}
	if drain <= 0 {
		drain = DefaultDrainTimeout
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.Timeout + 30*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.watch(wctx)
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down: answering the reviews in flight", "inflight", s.metrics.inflight.Load())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	return nil
}

// certCheckInterval is how often, at most, the certificate files are looked
// at for a change.
var certCheckInterval = 5 * time.Second

// certReloader serves a certificate pair, re-read when either file changes
// (checked at most every certCheckInterval).
type certReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	stamp             string
	checked           time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) fileStamp() string {
	var b strings.Builder
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return b.String()
}

func (c *certReloader) load() error {
	stamp := c.fileStamp()
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) > certCheckInterval {
		c.checked = time.Now()
		if c.fileStamp() != c.stamp {
			c.load() // on error the old certificate stays
		}
	}
	return c.cert, nil
}
