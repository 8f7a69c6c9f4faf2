// Package verify checks container image signatures before deploy. A
// Verifier is built once from the trusted public keys and then asked about
// any number of images; it trusts nothing the registry says until it has
// checked it, in this order: payload bytes against their digest, the
// signature over those exact bytes, and only then the payload's contents.
package verify

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/reponame"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// Outcomes other than success. Verify returns an error wrapping exactly one
// of these (or another error for failures such as an unreachable registry).
var (
	// ErrNoSignatures: the image has no signatures at all.
	ErrNoSignatures = errors.New("no signatures found")
	// ErrImageNotFound: the image or tag does not exist.
	ErrImageNotFound = errors.New("image not found")
	// ErrNotVerified: signatures exist, but none (or fewer than the
	// threshold) verified.
	ErrNotVerified = errors.New("no valid signature")
)

// Verifier verifies images against a fixed set of trusted keys.
type Verifier struct {
	client *oci.Client
	keys   []trustedKey
	logs   *tlog.Trust
	online *tlog.Client
	// keyless, when set, verifies certificate signatures.
	keyless *keyless.Options
	// tsas, when set, verifies key signatures' RFC 3161 timestamps
	// (WithTrustedTimestamps).
	tsas root.TrustedMaterial
}

// NewVerifier returns a Verifier trusting pubs (duplicates, by key ID, count
// once). It needs at least one key, or WithKeyless.
func NewVerifier(client *oci.Client, pubs []crypto.PublicKey, opts ...Option) (*Verifier, error) {
	v := &Verifier{client: client}
	for _, o := range opts {
		o(v)
	}
	if len(pubs) == 0 && v.keyless == nil {
		return nil, errors.New("no public key given")
	}
	seen := map[string]bool{}
	for _, p := range pubs {
		k, err := newTrustedKey(p)
		if err != nil {
			return nil, err
		}
		if !seen[k.id] {
			seen[k.id] = true
			v.keys = append(v.keys, k)
		}
	}
	return v, nil
}

// Options say what a valid signature must show beyond a trusted key.
type Options struct {
	// Annotations must each be present, with the same value, in the
	// payload's "optional" section.
	Annotations map[string]string
	// Threshold is the number of distinct trusted keys that must have
	// signed; 0 means 1.
	Threshold int
	// CheckIdentity requires the payload's docker-reference to name the
	// repository being verified (cosign does not check it).
	CheckIdentity bool
	// SignatureRepo reads signatures from another repository.
	SignatureRepo *name.Repository
	// Platform selects the child manifest of an index to verify instead
	// of the index itself.
	Platform *v1.Platform
	// Format restricts where signatures are looked for; "" (FormatAny)
	// looks in the legacy .sig manifest first, then at bundle referrers.
	Format Format
	// RequireTlog rejects a signature without a verified transparency-log
	// entry. Without it, an entry that is present must still verify.
	RequireTlog bool
	// RequireTimestamp rejects a key signature without an RFC 3161
	// timestamp verified by a trusted TSA (WithTrustedTimestamps), as
	// cosign's --use-signed-timestamps does for bundles. Without it, a
	// timestamp that is present must still verify.
	RequireTimestamp bool
	// ExpectedIdentity, with CheckIdentity, is the repository the signed
	// identity must name instead of the one verified (a mirror verified
	// under the name its images were signed with).
	ExpectedIdentity string
	// MaxAge, when positive, refuses signatures whose trusted signing time
	// (the integrated time a Rekor signed entry timestamp vouches for) is
	// older than this, so an old signed image replayed under a tag can be
	// refused. A signature without a trusted time is refused too.
	MaxAge time.Duration
	// Now is the time MaxAge counts from; nil means time.Now.
	Now func() time.Time
	// KeyWindows bound, per key ID, the VERIFIED signing time of that
	// key's signatures (a trusted log's integrated time, or an RFC 3161
	// timestamp verified by a trusted TSA, WithTrustedTimestamps): a
	// signature outside the window, or with no verified time, does not
	// count.
	KeyWindows map[string]Window
	// VerifyBlobs, once the signatures verified, re-hashes every config
	// and layer blob of the image (streaming, never decompressing), so a
	// blob overwritten in the registry's storage is caught.
	VerifyBlobs bool
}

// identity is the repository a signed identity must name for img.
func (o Options) identity(img name.Digest) string {
	if o.ExpectedIdentity != "" {
		return o.ExpectedIdentity
	}
	return img.Context().Name()
}

// checkAge applies MaxAge to a verified signature's verified signing
// times; it returns the reason for a rejection, or "".
func (o Options) checkAge(times []time.Time) string { return checkAge(o.MaxAge, o.Now, times) }

// checkAge refuses what was signed longer than maxAge before now (nil:
// time.Now) by its newest verified signing time, or has no verified time;
// "" when maxAge is not positive or the age is within it.
func checkAge(maxAge time.Duration, now func() time.Time, times []time.Time) string {
	if maxAge <= 0 {
		return ""
	}
	var newest time.Time
	for _, t := range times {
		if t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return fmt.Sprintf("no trusted signing time (a Rekor v1 signed entry timestamp, or an RFC 3161 timestamp by a trusted TSA) to check against the maximum age of %s", maxAge)
	}
	if now == nil {
		now = time.Now
	}
	if age := now().Sub(newest); age > maxAge {
		return fmt.Sprintf("signed %s (at %s), older than the maximum age of %s", age.Round(time.Second), newest.UTC().Format(time.RFC3339), maxAge)
	}
	return ""
}

// verifiedTimes are a key signature's verified signing times: the
// integrated times of its verified log entries, then its verified RFC 3161
// timestamps.
func verifiedTimes(facts []tlog.Facts, stamped []time.Time) []time.Time {
	var out []time.Time
	for _, f := range facts {
		if f.IntegratedTime > 0 {
			out = append(out, time.Unix(f.IntegratedTime, 0))
		}
	}
	return append(out, stamped...)
}

// Format says where to look for signatures.
type Format string

// Formats.
const (
	FormatAny    Format = ""
	FormatLegacy Format = "legacy"
	FormatBundle Format = "bundle"
)

// Result is the verdict on one image. It marshals to the JSON printed by
// `imgsign verify -o json`.
type Result struct {
	// Image is the reference as given.
	Image string `json:"image"`
	// Digest is the manifest digest verified.
	Digest string `json:"digest,omitempty"`
	// Verified is true when enough signatures verified.
	Verified bool `json:"verified"`
	// Signatures are the signatures that verified.
	Signatures []Verified `json:"signatures"`
	// Rejected are the signatures found that did not verify, with reasons.
	Rejected []Rejected `json:"rejected"`
	// Error says why the image failed; empty when Verified.
	Error string `json:"error,omitempty"`
	// Warnings say what was ignored on the way (a truncated list, a
	// fallback tag that is not an index, ...).
	Warnings []string `json:"warnings,omitempty"`
	// Blobs is what Options.VerifyBlobs re-hashed.
	Blobs *oci.BlobCheck `json:"blobs,omitempty"`
}

// Where a signature was found.
const (
	SourceLegacy = "legacy" // the sha256-<hex>.sig manifest
	SourceBundle = "bundle" // a Sigstore bundle referrer
)

// Verified is a signature that checked out. For legacy signatures,
// Critical and Optional keep the shape of cosign's verify output; for
// bundles, Statement is the verified in-toto statement.
type Verified struct {
	Source        string          `json:"source"`
	KeyID         string          `json:"keyID"`
	PayloadDigest string          `json:"payloadDigest,omitempty"`
	Critical      json.RawMessage `json:"critical,omitempty"`
	Optional      json.RawMessage `json:"optional,omitempty"`
	Referrer      string          `json:"referrer,omitempty"`
	Statement     json.RawMessage `json:"statement,omitempty"`
	// Tlog are the verified transparency-log entries of the signature.
	Tlog []tlog.Facts `json:"tlog,omitempty"`
	// TlogUnchecked counts log entries that could not be checked because
	// no log is trusted.
	TlogUnchecked int `json:"tlogUnchecked,omitempty"`
	// Identity is the signer of a certificate (keyless) signature; KeyID
	// is then empty.
	Identity *SignerIdentity `json:"identity,omitempty"`
	// SignedAt are the verified signing times: of a certificate
	// signature, its log integrated times and RFC 3161 timestamps; of a
	// key signature, its RFC 3161 timestamps verified by a trusted TSA
	// (WithTrustedTimestamps; its log times are in Tlog).
	SignedAt []time.Time `json:"signedAt,omitempty"`
	// TimestampsUnchecked counts a key signature's RFC 3161 timestamps
	// that were not checked because no TSA is trusted.
	TimestampsUnchecked int `json:"timestampsUnchecked,omitempty"`
}

// Rejected is a signature that did not check out.
type Rejected struct {
	Source string `json:"source"`
	// Index is the layer's position in the legacy signature manifest; nil
	// for bundles and when the manifest as a whole was refused.
	Index         *int   `json:"index,omitempty"`
	PayloadDigest string `json:"payloadDigest,omitempty"`
	// Referrer is the bundle referrer's manifest digest.
	Referrer string `json:"referrer,omitempty"`
	Reason   string `json:"reason"`
}

// Verify checks the signatures of the image ref names. It returns the
// Result (never nil) and, unless the image verified, an error wrapping
// ErrNoSignatures, ErrImageNotFound or ErrNotVerified, or another error.
//
// A tag is resolved exactly once; everything after works on the digest.
// A digest reference is not fetched at all unless Platform asks for a child:
// the signatures name the digest they cover.
func (v *Verifier) Verify(ctx context.Context, ref name.Reference, o Options) (*Result, error) {
	res := &Result{Image: ref.String(), Signatures: []Verified{}, Rejected: []Rejected{}}
	fail := func(err error) (*Result, error) {
		res.Error = err.Error()
		return res, err
	}
	d, err := v.resolve(ctx, ref, o.Platform)
	if err != nil {
		return fail(err)
	}
	res.Digest = d.DigestStr()

	// Legacy first: where imgsign signed (both formats by default) it is
	// the cheapest proof; bundles are read when it is not enough.
	st := &state{signers: map[string]bool{}}
	var errs []error
	if o.Format != FormatBundle {
		if err := v.verifyLegacy(ctx, d, o, res, st); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Format != FormatLegacy && len(st.signers) < threshold(o) {
		if err := v.verifyBundles(ctx, d, o, res, st); err != nil {
			errs = append(errs, err)
		}
	}
	need := threshold(o)
	switch {
	case len(st.signers) >= need && o.VerifyBlobs:
		check, err := v.client.VerifyBlobs(ctx, d)
		res.Blobs = &check
		if err != nil {
			if errors.Is(err, oci.ErrBlobMismatch) || errors.Is(err, oci.ErrNotFound) {
				err = fmt.Errorf("%w: the signed manifest's content does not match: %v", ErrNotVerified, err)
			}
			return fail(err)
		}
		res.Verified = true
		return res, nil
	case len(st.signers) >= need:
		res.Verified = true
		return res, nil
	case len(errs) > 0 && st.found == 0:
		return fail(errors.Join(errs...))
	}
	for _, err := range errs {
		res.Warnings = append(res.Warnings, err.Error())
	}
	switch {
	case st.found == 0:
		return fail(fmt.Errorf("%w (looked in %s)", ErrNoSignatures, strings.Join(st.looked, " and ")))
	case len(st.signers) == 0:
		return fail(fmt.Errorf("%w among %d signature(s)", ErrNotVerified, st.found))
	}
	return fail(fmt.Errorf("%w: %d distinct trusted key(s) signed, %d required", ErrNotVerified, len(st.signers), need))
}

// state accumulates what the sources of one verification found.
type state struct {
	signers map[string]bool // key IDs with a verified signature
	found   int             // signatures found, verified or not
	looked  []string        // where signatures were looked for
}

// threshold is the number of distinct keys that must have signed.
func threshold(o Options) int { return max(o.Threshold, 1) }

// verifyLegacy checks the signatures in the legacy .sig manifest.
func (v *Verifier) verifyLegacy(ctx context.Context, d name.Digest, o Options, res *Result, st *state) error {
	tag, err := oci.AttachedTag(d, o.SignatureRepo, oci.SignatureTagSuffix)
	if err != nil {
		return err
	}
	st.looked = append(st.looked, tag.String())
	m, _, err := v.client.ReadManifest(ctx, tag)
	switch {
	case errors.Is(err, oci.ErrNotFound):
		return nil
	case errors.Is(err, oci.ErrTooMany), errors.Is(err, oci.ErrTooLarge):
		st.found++
		res.Rejected = append(res.Rejected, Rejected{Source: SourceLegacy, Reason: err.Error()})
		return nil
	case err != nil:
		return err
	}
	st.found += len(m.Layers)
	blobs := map[v1.Hash][]byte{}
	for i, layer := range m.Layers {
		ver, reason := v.checkLayer(ctx, tag.Context(), d, layer, o, blobs)
		if reason != "" {
			res.Rejected = append(res.Rejected, Rejected{Source: SourceLegacy, Index: &i, PayloadDigest: layer.Digest.String(), Reason: reason})
			continue
		}
		res.Signatures = append(res.Signatures, *ver)
		st.signers[signerOf(*ver)] = true
	}
	return nil
}

// resolve returns the digest to verify.
func (v *Verifier) resolve(ctx context.Context, ref name.Reference, platform *v1.Platform) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok && platform == nil {
		if _, err := v1.NewHash(d.DigestStr()); err != nil {
			return name.Digest{}, err
		}
		return d, nil
	}
	r, err := v.client.Resolve(ctx, ref)
	if errors.Is(err, oci.ErrNotFound) {
		return name.Digest{}, fmt.Errorf("%w: %v", ErrImageNotFound, err)
	}
	if err != nil {
		return name.Digest{}, err
	}
	if platform == nil {
		return r.Ref, nil
	}
	if !r.Descriptor.MediaType.IsIndex() {
		return name.Digest{}, fmt.Errorf("%s: --platform given but %s is not an index", ref, r.Ref.DigestStr())
	}
	child, err := r.PlatformManifest(*platform)
	if errors.Is(err, oci.ErrNotFound) {
		return name.Digest{}, fmt.Errorf("%w: %v", ErrImageNotFound, err)
	}
	if err != nil {
		return name.Digest{}, err
	}
	return r.Ref.Context().Digest(child.Digest.String()), nil
}

// checkLayer verifies one signature layer, returning the verified signature
// or the reason it was rejected.
func (v *Verifier) checkLayer(ctx context.Context, repo name.Repository, img name.Digest, layer v1.Descriptor, o Options, blobs map[v1.Hash][]byte) (*Verified, string) {
	if layer.MediaType != oci.SimpleSigningMediaType {
		return nil, fmt.Sprintf("layer media type %q is not a simple signing payload", layer.MediaType)
	}
	sigB64, ok := layer.Annotations[oci.SignatureAnnotation]
	if !ok || sigB64 == "" {
		return nil, "no signature annotation"
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return nil, "signature annotation is not base64"
	}
	p, ok := blobs[layer.Digest]
	if !ok {
		p, err = v.client.FetchBlob(ctx, repo, layer, v.client.Limits().MaxPayloadBytes)
		if err != nil {
			return nil, "payload: " + err.Error()
		}
		blobs[layer.Digest] = p
	}
	key := v.signedBy(sig, p)
	var kr *keyless.Result
	if key == nil {
		_, hasCert := layer.Annotations[oci.CertificateAnnotation]
		switch {
		case hasCert && v.keyless != nil:
			if kr, err = v.verifyLegacyKeyless(layer.Annotations, sig, p); err != nil {
				return nil, err.Error()
			}
		case hasCert && len(v.keys) == 0:
			return nil, noKeylessReason
		default:
			return nil, "signature does not verify with any trusted key"
		}
	}
	// Only now, with the bytes authenticated, is the payload parsed.
	parsed, err := payload.Parse(p)
	if err != nil {
		return nil, err.Error()
	}
	if parsed.Digest.String() != img.DigestStr() {
		return nil, fmt.Sprintf("payload signs %s, not this image (%s)", parsed.Digest, img.DigestStr())
	}
	if missing := parsed.MissingAnnotations(o.Annotations); len(missing) > 0 {
		return nil, "missing or different annotation(s): " + joinSorted(missing)
	}
	if o.CheckIdentity {
		claimed, err := name.ParseReference(parsed.DockerReference)
		if want := o.identity(img); err != nil || reponame.Repository(claimed.Context().Name()) != reponame.Repository(want) {
			return nil, fmt.Sprintf("signed identity %q is not repository %s", parsed.DockerReference, want)
		}
	}
	var raw struct {
		Critical json.RawMessage `json:"critical"`
		Optional json.RawMessage `json:"optional"`
	}
	_ = json.Unmarshal(p, &raw) // cannot fail: Parse accepted it
	if kr != nil {              // its log entry and timestamps were verified with it
		if reason := o.checkAge(kr.SignedAt); reason != "" {
			return nil, reason
		}
		ver := &Verified{Source: SourceLegacy, PayloadDigest: layer.Digest.String(), Critical: raw.Critical, Optional: raw.Optional}
		keylessVerified(ver, kr)
		return ver, ""
	}
	stamped, tsUnchecked, err := v.legacyKeyTimestamp(layer.Annotations, sig, "the signature")
	if err != nil {
		return nil, err.Error()
	}
	if reason := requireStamp(o.RequireTimestamp, stamped); reason != "" {
		return nil, reason
	}
	entries, bad := legacyEntries(layer.Annotations)
	lc := v.checkLog(ctx, tlog.Want{Digest: digest(p), Signature: sig, PublicKey: key.pub}, entries, bad, o.RequireTlog)
	if lc.reason == "" {
		lc.reason = o.checkTimes(key.id, verifiedTimes(lc.facts, stamped))
	}
	if lc.reason != "" {
		return nil, lc.reason
	}
	return &Verified{Source: SourceLegacy, KeyID: key.id, PayloadDigest: layer.Digest.String(), Critical: raw.Critical, Optional: raw.Optional, Tlog: lc.facts, TlogUnchecked: lc.unchecked, SignedAt: stamped, TimestampsUnchecked: tsUnchecked}, ""
}

// joinSorted lists names in order.
func joinSorted(names []string) string {
	sort.Strings(names)
	return strings.Join(names, ", ")
}
