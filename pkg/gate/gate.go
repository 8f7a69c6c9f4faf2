// Package gate verifies every image a release uses against a trust policy,
// before a deploy. A Gate is built once from a policy and a registry client
// and then asked about any number of images:
//
//   - each image is matched to the policy's most specific scope, whose
//     requirement decides: reject, accept unsigned, or verify (keys and a
//     threshold, transparency log, annotations, identity, maximum age,
//     attestations);
//   - a reference is resolved once; each (digest, scope) is verified once,
//     however many times it is referenced;
//   - images are checked by a bounded pool of workers sharing one registry
//     client (one authentication and one connection pool per registry).
//
// A Gate that lives long (an admission webhook) sets Options.Cache: tags
// are then resolved again on every Check, verdicts are kept by the cache
// (bounded, with expiry) instead of for the Gate's lifetime, and concurrent
// checks of one digest still share one verification.
package gate

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/sigstore/sigstore-go/pkg/root"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/trustpolicy"
	"github.com/imgsign/imgsign/pkg/verify"
)

// DefaultJobs is how many images are checked at once by default.
const DefaultJobs = 8

// ErrRejected is wrapped when the policy rejects an image outright (a
// scope that says reject, or no scope and no default).
var ErrRejected = errors.New("rejected by policy")

// Options configure a Gate.
type Options struct {
	// Jobs bounds the images checked at once; 0 means DefaultJobs.
	Jobs int
	// Online, when set, is a Rekor v1 log asked about signatures that
	// carry no entry.
	Online *tlog.Client
	// DefaultTrustedRoot gives the trusted root of certificate
	// (identities) requirements that name none; nil refuses them.
	DefaultTrustedRoot func() (root.TrustedMaterial, error)
	// Now is the time maximum ages count from; nil means time.Now.
	Now func() time.Time
	// VerifyBlobs re-hashes every config and layer blob of each image
	// (verify.Options.VerifyBlobs; unsigned images accepted by the policy
	// too).
	VerifyBlobs bool
	// Platform, when set, checks the manifest of this platform of each
	// image that is an index (as a node of that platform pulls it), instead
	// of the index; an image manifest is checked as it is.
	Platform *v1.Platform
	// Format says where signatures and attestations are looked for
	// (verify.FormatAny when empty).
	Format verify.Format
	// Cache, when set, keeps verdicts across Checks of a long-lived Gate.
	// Without it a Gate remembers every reference and verdict for its
	// lifetime (right for one command run).
	Cache Cache
}

// Cache keeps verdicts of a long-lived Gate, by a key naming the scope and
// the digest (a Gate serves one policy, so a cache shared by the Gates of
// several policies must tell them apart itself). Put is called with every
// verdict except those cut short by the caller's context; the cache decides
// what to keep and for how long (Result.Err tells failures). It must be
// safe for concurrent use.
type Cache interface {
	Get(key string) (Result, bool)
	Put(key string, r Result)
}

// Gate checks images against one trust policy.
type Gate struct {
	client *oci.Client
	policy *trustpolicy.Policy
	o      Options

	mu        sync.Mutex
	verifiers map[*trustpolicy.Requirement]*verify.Verifier
	resolved  flight[resolved] // by reference
	checked   flight[Result]   // by scope and digest
}

type resolved struct {
	d   name.Digest
	err error
}

// New returns a Gate for policy, reading registries through client.
func New(client *oci.Client, policy *trustpolicy.Policy, o Options) *Gate {
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	g := &Gate{client: client, policy: policy, o: o, verifiers: map[*trustpolicy.Requirement]*verify.Verifier{}}
	// A long-lived Gate shares work only while it is in flight.
	g.resolved.forget = o.Cache != nil
	g.checked.forget = o.Cache != nil
	return g
}

// Result is the verdict on one image reference. It marshals into the JSON
// report of `imgsign verify --policy`.
type Result struct {
	// Image is the reference as given.
	Image string `json:"image"`
	// Digest is the manifest digest the reference resolved to.
	Digest string `json:"digest,omitempty"`
	// Scope is the policy scope that decided ("default" for the default
	// requirement, "" when nothing matched), and Line its line.
	Scope string `json:"scope"`
	Line  int    `json:"line,omitempty"`
	// Verified is true when the image meets the scope's requirement.
	Verified bool `json:"verified"`
	// Unsigned is true when the scope accepts unsigned images.
	Unsigned bool `json:"acceptedUnsigned,omitempty"`
	// Signatures is the signature verification, when one was required.
	Signatures *verify.Result `json:"signatures,omitempty"`
	// Attestations are the attestation verifications required.
	Attestations []*verify.AttestationResult `json:"attestations,omitempty"`
	// Error says why the image failed; empty when Verified.
	Error string `json:"error,omitempty"`

	err error
}

// Err returns why the image failed (wrapping ErrRejected or one of verify's
// errors), or nil.
func (r *Result) Err() error { return r.err }

// Check verifies refs, at most Options.Jobs at a time, and returns one
// Result per reference, in order. It never stops early: every image gets
// a verdict.
func (g *Gate) Check(ctx context.Context, refs []name.Reference) []Result {
	out := make([]Result, len(refs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(g.o.Jobs, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i] = g.checkOne(ctx, refs[i])
			}
		}()
	}
	for i := range refs {
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

// checkOne decides about one reference.
func (g *Gate) checkOne(ctx context.Context, ref name.Reference) Result {
	m := g.policy.Match(ref.Context().Name())
	res := Result{Image: ref.String(), Scope: m.Scope, Line: m.Line}
	fail := func(err error) Result {
		res.err, res.Error = err, err.Error()
		return res
	}
	req := m.Requirement
	if req.Reject {
		where := "no scope of the policy matches it, and there is no default"
		if m.Scope != "" {
			where = fmt.Sprintf("scope %s (line %d) rejects it", m.Scope, m.Line)
		}
		return fail(fmt.Errorf("%w: %s", ErrRejected, where))
	}
	r, err := g.resolved.do(ctx, ref.String(), func() resolved {
		d, err := g.resolve(ctx, ref)
		return resolved{d, err}
	})
	if err == nil {
		err = r.err
	}
	if err != nil {
		return fail(err)
	}
	d := r.d
	res.Digest = d.DigestStr()
	if req.AcceptUnsigned {
		if g.o.VerifyBlobs {
			if _, err := g.client.VerifyBlobs(ctx, d); err != nil {
				return fail(err)
			}
		}
		res.Verified, res.Unsigned = true, true
		return res
	}
	// Each (scope, digest) is verified once, whatever the references.
	key := m.Scope + "\x00" + d.String()
	if g.o.Cache != nil {
		if hit, ok := g.o.Cache.Get(key); ok {
			hit.Image = res.Image
			return hit
		}
	}
	shared, err := g.checked.do(ctx, key, func() Result {
		r := g.verify(ctx, d, req, res)
		if g.o.Cache != nil && ctx.Err() == nil {
			g.o.Cache.Put(key, r)
		}
		return r
	})
	if err != nil {
		return fail(err)
	}
	shared.Image = res.Image
	return shared
}

// resolve returns the digest a reference names, fetching tags once; with
// Options.Platform, the digest of that platform's manifest of an index.
func (g *Gate) resolve(ctx context.Context, ref name.Reference) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok && g.o.Platform == nil {
		return d, nil
	}
	if g.o.Cache != nil && g.o.Platform == nil {
		// A long-lived gate asks about a tag on every Check: one HEAD.
		d, err := g.client.HeadDigest(ctx, ref)
		if errors.Is(err, oci.ErrNotFound) {
			return name.Digest{}, fmt.Errorf("%w: %v", verify.ErrImageNotFound, err)
		}
		return d, err
	}
	r, err := g.client.Resolve(ctx, ref)
	if err == nil && g.o.Platform != nil && r.Descriptor.MediaType.IsIndex() {
		var child v1.Descriptor
		if child, err = r.PlatformManifest(*g.o.Platform); err == nil {
			return r.Ref.Context().Digest(child.Digest.String()), nil
		}
	}
	if errors.Is(err, oci.ErrNotFound) {
		return name.Digest{}, fmt.Errorf("%w: %v", verify.ErrImageNotFound, err)
	}
	if err != nil {
		return name.Digest{}, err
	}
	return r.Ref, nil
}

// verify checks the signatures and attestations req asks of d.
func (g *Gate) verify(ctx context.Context, d name.Digest, req *trustpolicy.Requirement, res Result) Result {
	fail := func(err error) Result {
		res.err, res.Error = err, err.Error()
		return res
	}
	v, err := g.verifier(req)
	if err != nil {
		return fail(err)
	}
	o := verify.Options{Annotations: req.Annotations, Threshold: req.Threshold, MaxAge: req.MaxAge, Now: g.o.Now, VerifyBlobs: g.o.VerifyBlobs, Format: g.o.Format}
	for _, k := range req.Keys {
		if !k.NotBefore.IsZero() || !k.NotAfter.IsZero() {
			if o.KeyWindows == nil {
				o.KeyWindows = map[string]verify.Window{}
			}
			o.KeyWindows[k.ID] = verify.Window{NotBefore: k.NotBefore, NotAfter: k.NotAfter}
		}
	}
	if req.Tlog != nil {
		o.RequireTlog = req.Tlog.Required
	}
	if id := req.Identity; id != nil && id.RequireMatch {
		o.CheckIdentity, o.ExpectedIdentity = true, id.Expected(d.Context().Name())
	}
	sigs, err := v.Verify(ctx, d, o)
	res.Signatures = sigs
	if err != nil {
		return fail(err)
	}
	// Attestations meet the requirement as signatures do: made by
	// Threshold distinct keys, within MaxAge and each key's window; a
	// statement cannot carry signed annotations, so with annotations required only the keys whose
	// signature met them count.
	var signedBy map[string]bool
	if len(req.Annotations) > 0 {
		signedBy = map[string]bool{}
		for _, s := range sigs.Signatures {
			signedBy[s.KeyID] = true
		}
	}
	for _, a := range req.Attestations {
		ao := verify.AttestationOptions{PredicateType: a.Type, Policy: a.Conditions, RequireTlog: o.RequireTlog, Format: g.o.Format,
			Threshold: req.Threshold, MaxAge: req.MaxAge, Now: g.o.Now, SignedBy: signedBy, KeyWindows: o.KeyWindows}
		ar, err := v.VerifyAttestations(ctx, d, ao)
		res.Attestations = append(res.Attestations, ar)
		if err != nil {
			return fail(fmt.Errorf("attestation %s: %w", a.Name, err))
		}
	}
	res.Verified = true
	return res
}

// verifier returns the Verifier of a requirement, made once.
func (g *Gate) verifier(req *trustpolicy.Requirement) (*verify.Verifier, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.verifiers[req]; ok {
		return v, nil
	}
	pubs := make([]crypto.PublicKey, 0, len(req.Keys))
	for _, k := range req.Keys {
		pubs = append(pubs, k.Public)
	}
	trust := &tlog.Trust{}
	if req.Tlog != nil {
		trust.Add(req.Tlog.Logs...)
	}
	opts := []verify.Option{verify.WithTrustedLogs(trust)}
	if g.o.Online != nil && !trust.Empty() {
		opts = append(opts, verify.WithOnlineLog(g.o.Online))
	}
	if req.TrustedRoot != nil {
		opts = append(opts, verify.WithTrustedTimestamps(req.TrustedRoot))
	}
	if len(req.Identities) > 0 {
		ko := keyless.Options{Trusted: req.TrustedRoot}
		if ko.Trusted == nil {
			if g.o.DefaultTrustedRoot == nil {
				return nil, errors.New("the policy lists identities but names no trustedRoot")
			}
			tr, err := g.o.DefaultTrustedRoot()
			if err != nil {
				return nil, err
			}
			ko.Trusted = tr
		}
		for _, id := range req.Identities {
			ko.Identities = append(ko.Identities, id.Identity)
		}
		opts = append(opts, verify.WithKeyless(ko))
	}
	v, err := verify.NewVerifier(g.client, pubs, opts...)
	if err != nil {
		return nil, err
	}
	g.verifiers[req] = v
	return v, nil
}

// flight runs a function once per key; callers with the same key wait for
// the first one's value. With forget, a key is run again once its value is
// out (single flight); without, the value is kept for good (a memo).
type flight[V any] struct {
	mu     sync.Mutex
	calls  map[string]*call[V]
	forget bool
}

type call[V any] struct {
	done chan struct{}
	v    V
}

// do returns fn's value for key, running fn only for the first caller.
// A caller whose context ends while waiting gets the context's error.
func (f *flight[V]) do(ctx context.Context, key string, fn func() V) (V, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*call[V]{}
	}
	c, waiting := f.calls[key]
	if !waiting {
		c = &call[V]{done: make(chan struct{})}
		f.calls[key] = c
	}
	f.mu.Unlock()
	if !waiting {
		c.v = fn()
		close(c.done)
		if f.forget {
			f.mu.Lock()
			delete(f.calls, key)
			f.mu.Unlock()
		}
		return c.v, nil
	}
	select {
	case <-c.done:
		return c.v, nil
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
