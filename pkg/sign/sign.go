// Package sign signs container images by digest and stores the signatures
// next to them in the registry, in either or both of cosign's layouts:
//
//   - legacy: the tag sha256-<hex>.sig holds one layer per signature, whose
//     blob is the simple signing payload and whose
//     dev.cosignproject.cosign/signature annotation is the base64 signature
//     over exactly those bytes;
//   - bundle (cosign v3): a Sigstore bundle v0.3, a DSSE envelope around an
//     in-toto statement about the image digest, pushed as an OCI 1.1
//     referrer of the image.
//
// A Signer signs with one private key (NewSigner), or keyless
// (NewKeylessSigner) with the one ephemeral key and Fulcio certificate of a
// pkg/keylesssign.Signer: then each legacy layer also carries cosign's
// certificate, chain, Rekor bundle and timestamp annotations, and each
// bundle the certificate, log entry and timestamps. Key signatures may be
// logged (Options.Log) and timestamped by RFC 3161 authorities
// (Options.Timestamps) too.
package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/keylesssign"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/sync/errgroup"
)

// Signer signs images with one private key, or keyless with one
// ephemeral key and its short-lived certificate (NewKeylessSigner).
type Signer struct {
	client  *oci.Client
	sv      signature.SignerVerifier
	keyless *keylesssign.Signer
}

// NewKeylessSigner returns a Signer that signs keyless: every image with
// ks's one ephemeral key and certificate, each signature recorded in ks's
// logs and timestamped by its TSAs (sigstore-go) before anything is
// written. Options.Log is ignored (ks names the logs). A fresh key never
// matches an earlier signature, so every run adds its signatures.
func NewKeylessSigner(client *oci.Client, ks *keylesssign.Signer) *Signer {
	return &Signer{client: client, keyless: ks}
}

// NewSigner returns a Signer that signs with key and talks to registries
// through client. Signatures are made as cosign verifies them by default:
// ECDSA and RSA (PKCS #1 v1.5) over SHA-256, Ed25519 over the message.
// key may be a keys.Signer whose private key is in a KMS or on a token; it
// is then used as is (one remote signing call per signature).
func NewSigner(client *oci.Client, key crypto.Signer) (*Signer, error) {
	sv, err := keys.AsSigner(key, "")
	if err != nil {
		return nil, err
	}
	return &Signer{client: client, sv: sv}, nil
}

// Format says where signatures are stored.
type Format string

// Storage formats.
const (
	// FormatLegacy is cosign's legacy layout: tag sha256-<hex>.sig, one
	// simple-signing layer per signature. Every cosign release and the
	// admission controllers built on it read it.
	FormatLegacy Format = "legacy"
	// FormatBundle is cosign v3's layout: a Sigstore bundle (DSSE envelope
	// around an in-toto statement) pushed as an OCI 1.1 referrer of the image.
	FormatBundle Format = "bundle"
	// FormatBoth writes both, so that every verifier finds a signature.
	FormatBoth Format = "both"
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatLegacy, FormatBundle, FormatBoth:
		return f, nil
	}
	return "", fmt.Errorf("format %q: choose legacy, bundle or both", s)
}

// Legacy reports whether f writes the legacy layout ("" means both).
func (f Format) Legacy() bool { return f == FormatLegacy || f == FormatBoth || f == "" }

// Bundle reports whether f writes a bundle referrer ("" means both).
func (f Format) Bundle() bool { return f == FormatBundle || f == FormatBoth || f == "" }

// Options control what is signed and where it is stored.
type Options struct {
	// Annotations go into the payload's "optional" section (legacy) and
	// the statement subject's annotations (bundle).
	Annotations map[string]string
	// SignatureRepo stores signatures in another repository; nil means the
	// image's own repository.
	SignatureRepo *name.Repository
	// Recursive also signs every manifest an index lists.
	Recursive bool
	// Upload writes the signatures to the registry. Without it, Sign only
	// resolves the image and returns the legacy signature.
	Upload bool
	// Format says where to store signatures; "" means FormatBoth.
	Format Format
	// Payload makes the legacy simple-signing payload and its signature
	// (Signature.Payload and .Signature) even when Format stores only a
	// bundle. Without it a bundle-only upload costs one signing operation
	// per image (one remote call with a KMS key), not two.
	Payload bool
	// Log, when set, records every signature in this transparency log
	// before anything is written to the registry: if the log fails, the
	// registry is left untouched. The entries travel with the signatures
	// (legacy annotations, bundle tlogEntries).
	Log *tlog.Client
	// Timestamps, when set (key signing with Upload), has every stored
	// signature timestamped (RFC 3161) over its raw bytes before anything
	// is written to the registry: if a TSA fails, the registry is left
	// untouched. The legacy layer carries the first TSA's token in cosign's
	// dev.sigstore.cosign/rfc3161timestamp annotation, the bundle every
	// TSA's in timestampVerificationData, as cosign writes them with
	// --timestamp-server-url. Keyless signers ignore it (their TSAs come
	// with the keylesssign.Signer).
	Timestamps *tsa.Client
}

// Signature is one signed image.
type Signature struct {
	// Image is the digest reference that was signed.
	Image name.Digest `json:"image"`
	// Payload is the exact simple-signing bytes signed (legacy format).
	Payload []byte `json:"-"`
	// Signature is the base64 signature over Payload.
	Signature string `json:"signature"`
	// Tag is the legacy signature tag written (empty without it).
	Tag string `json:"signatureTag,omitempty"`
	// Referrer is the digest of the bundle referrer written (empty
	// without it).
	Referrer string `json:"referrer,omitempty"`
	// Added is false when identical signatures were already stored.
	Added bool `json:"added"`
	// Entry is the log entry of the legacy signature (nil without Log).
	Entry *tlog.Entry `json:"-"`
	// BundleEntry is the log entry of the bundle signature (nil without
	// Log, or when an identical logged bundle was already stored).
	BundleEntry *tlog.Entry `json:"-"`
	// Annotations are the legacy layer's annotations beyond the signature
	// (keyless: certificate, chain, log entry, timestamp; key: log entry
	// and timestamp, when timestamped).
	Annotations map[string]string `json:"-"`
}

// Annotations imgsign adds to its bundle referrers, so that signing again
// can find its own earlier signature without reading every bundle. They are
// hints only: a match is verified before anything is skipped.
const (
	keyIDAnnotation     = "dev.imgsign.key-id"
	statementAnnotation = "dev.imgsign.statement-digest"
)

// Sign resolves ref to its manifest digest (once: a tag is never read
// again), signs that digest and, with Upload, stores the signatures. With
// Recursive and an index, every child manifest is signed too, the index
// first.
func (s *Signer) Sign(ctx context.Context, ref name.Reference, o Options) ([]Signature, error) {
	res, err := s.SignAll(ctx, []name.Reference{ref}, o, 1)
	if err != nil {
		return nil, err
	}
	return res[0].Signatures, res[0].Err
}

// DefaultJobs is how many images SignAll signs at once by default.
const DefaultJobs = 8

// Result is what signing one image reference did.
type Result struct {
	Ref        name.Reference
	Signatures []Signature // what was stored (some, when Err is set)
	Err        error
}

// SignAll signs every ref as Sign does, at most jobs at once (0 means
// DefaultJobs), through the one client (one connection pool and one
// authentication per registry) and the one key. The Signer is used
// concurrently: its key must be safe for concurrent use, as software keys
// and KMS clients are.
//
// Every image is resolved and signed, and every signature logged and
// timestamped, before the first registry write: if any of that fails,
// SignAll returns the error and the registry is left untouched. Then the
// signatures are stored, and each image's outcome is in its Result (in the
// order of refs).
func (s *Signer) SignAll(ctx context.Context, refs []name.Reference, o Options, jobs int) ([]Result, error) {
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	plans := make([][]*pendingSignature, len(refs))
	errs := make([]error, len(refs))
	each(len(refs), jobs, func(i int) {
		if plans[i], errs[i] = s.plan(ctx, refs[i], o); errs[i] != nil {
			cancel() // nothing will be written: stop the others
		}
	})
	// The first failure in the order of refs, not one it cancelled.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	out := make([]Result, len(refs))
	each(len(refs), jobs, func(i int) {
		out[i].Ref = refs[i]
		for _, p := range plans[i] {
			sig, err := s.store(ctx, p, o)
			if err != nil {
				out[i].Err = err
				return
			}
			out[i].Signatures = append(out[i].Signatures, sig)
		}
	})
	return out, nil
}

// each runs f(0..n-1), at most jobs at once, and waits for all.
func each(n, jobs int, f func(i int)) {
	var g errgroup.Group
	g.SetLimit(jobs)
	for i := range n {
		g.Go(func() error { f(i); return nil })
	}
	g.Wait()
}

// plan resolves ref and makes (and logs) the signatures of what it names
// (its children too, with Recursive). It writes nothing.
func (s *Signer) plan(ctx context.Context, ref name.Reference, o Options) ([]*pendingSignature, error) {
	if o.Upload && o.SignatureRepo == nil {
		// One registry handshake, with write access, for reads and writes.
		if err := s.client.Authenticate(ctx, ref.Context(), true); err != nil {
			return nil, err
		}
	}
	res, err := s.client.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	type target struct {
		ref  name.Digest
		desc v1.Descriptor
	}
	targets := []target{{res.Ref, res.Descriptor}}
	if o.Recursive && res.Descriptor.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(res.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed index: %w", res.Ref, err)
		}
		for _, m := range idx.Manifests {
			targets = append(targets, target{res.Ref.Context().Digest(m.Digest.String()), m})
		}
	}
	pending := make([]*pendingSignature, 0, len(targets))
	for _, t := range targets {
		p, err := s.prepare(ctx, t.ref, t.desc, o)
		if err != nil {
			return nil, err
		}
		pending = append(pending, p)
	}
	return pending, nil
}

// pendingSignature is an image's signatures, made and logged, not yet
// stored.
type pendingSignature struct {
	sig    Signature
	desc   v1.Descriptor
	bundle *pendingBundle
}

// prepare signs the image d (described by desc) and records the signatures
// in the log. It writes nothing (it may read, to find a bundle already
// stored).
func (s *Signer) prepare(ctx context.Context, d name.Digest, desc v1.Descriptor, o Options) (*pendingSignature, error) {
	ps := &pendingSignature{sig: Signature{Image: d}, desc: desc}
	legacy := !o.Upload || o.Format.Legacy()
	if legacy || o.Payload {
		p, err := payload.Build(d, o.Annotations)
		if err != nil {
			return nil, err
		}
		ps.sig.Payload = p
		if s.keyless != nil {
			// One signature, logged and timestamped, with its certificate.
			signed, err := s.keyless.Message(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("sign %s: %w", d, err)
			}
			ps.sig.Signature, ps.sig.Entry = base64.StdEncoding.EncodeToString(signed.Signature), signed.Entry
			if ps.sig.Annotations, err = s.keyless.LegacyAnnotations(signed); err != nil {
				return nil, err
			}
		} else {
			raw, err := s.sv.SignMessage(bytes.NewReader(p))
			if err != nil {
				return nil, fmt.Errorf("sign %s: %w", d, err)
			}
			ps.sig.Signature = base64.StdEncoding.EncodeToString(raw)
			if o.Log != nil && legacy {
				if ps.sig.Entry, err = s.record(ctx, o.Log, p, raw, nil); err != nil {
					return nil, err
				}
			}
			if o.Timestamps != nil && o.Upload && o.Format.Legacy() {
				if ps.sig.Annotations, err = s.timestampLegacy(ctx, o.Timestamps, d, raw, ps.sig.Entry); err != nil {
					return nil, err
				}
			}
		}
	}
	if o.Upload && o.Format.Bundle() {
		var err error
		if ps.bundle, err = s.prepareBundle(ctx, d, o); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// timestampLegacy timestamps a legacy key signature (its raw bytes, as
// cosign does) and returns the layer's annotations: cosign's timestamp
// annotation, and the log entry's when there is one.
func (s *Signer) timestampLegacy(ctx context.Context, c *tsa.Client, d name.Digest, sig []byte, entry *tlog.Entry) (map[string]string, error) {
	token, err := c.One(ctx, sig, "the signature of "+d.String())
	if err != nil {
		return nil, err
	}
	ann := map[string]string{}
	if entry != nil {
		if ann, err = tlog.Annotations(entry); err != nil {
			return nil, err
		}
	}
	if ann[oci.TimestampAnnotation], err = tsa.Annotation(token); err != nil {
		return nil, err
	}
	return ann, nil
}

// store writes prepared signatures (nothing without Upload).
func (s *Signer) store(ctx context.Context, ps *pendingSignature, o Options) (Signature, error) {
	sig := ps.sig
	if !o.Upload {
		sig.Added = true
		return sig, nil
	}
	if o.Format.Legacy() {
		tag, added, err := s.storeLegacy(ctx, sig, o)
		if err != nil {
			return Signature{}, err
		}
		sig.Tag, sig.Added = tag, added
	}
	if b := ps.bundle; b != nil {
		ref, added, err := s.pushBundle(ctx, ps.desc, b)
		if err != nil {
			return Signature{}, err
		}
		sig.Referrer, sig.Added, sig.BundleEntry = ref, sig.Added || added, b.entry
	}
	return sig, nil
}

// record uploads a signature over msg (the PAE of env, when env is set) to
// the log.
func (s *Signer) record(ctx context.Context, log *tlog.Client, msg, sig []byte, env *tlog.Envelope) (*tlog.Entry, error) {
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, err
	}
	return Record(ctx, log, tlog.Want{Digest: digestOf(msg), Signature: sig, PublicKey: pub, Envelope: env})
}

// Record uploads w to the log before anything is written to the registry;
// its error says that nothing was written.
func Record(ctx context.Context, log *tlog.Client, w tlog.Want) (*tlog.Entry, error) {
	e, err := log.Upload(ctx, w)
	if err != nil {
		return nil, &logFailure{err}
	}
	return e, nil
}

// ErrLogFailed is matched (errors.Is) by every failure of Record: the log
// refused the signature, answered something else than its entry, or could
// not be reached. Signing records before it writes, so nothing was written.
var ErrLogFailed = errors.New("the transparency log did not record the signature")

// logFailure is a Record error: its cause, and ErrLogFailed.
type logFailure struct{ err error }

func (f *logFailure) Error() string {
	return "record the signature in the transparency log (nothing was written to the registry): " + f.err.Error()
}
func (f *logFailure) Unwrap() error        { return f.err }
func (f *logFailure) Is(target error) bool { return target == ErrLogFailed }

func digestOf(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// storeLegacy adds the signature to the legacy .sig manifest, with its log
// entry (if any) in the annotations cosign and imgsign read.
func (s *Signer) storeLegacy(ctx context.Context, sig Signature, o Options) (string, bool, error) {
	d, p, sigB64, entry := sig.Image, sig.Payload, sig.Signature, sig.Entry
	tag, err := oci.AttachedTag(d, o.SignatureRepo, oci.SignatureTagSuffix)
	if err != nil {
		return "", false, err
	}
	att := oci.Attachment{
		Payload:     p,
		MediaType:   oci.SimpleSigningMediaType,
		Annotations: map[string]string{oci.SignatureAnnotation: sigB64},
	}
	if sig.Annotations != nil {
		maps.Copy(att.Annotations, sig.Annotations)
	} else if entry != nil {
		ann, err := tlog.Annotations(entry)
		if err != nil {
			return "", false, err
		}
		maps.Copy(att.Annotations, ann)
	}
	payloadDigest := att.Descriptor().Digest
	// A layer with the same payload whose signature verifies with this key
	// is the same signature (ECDSA signatures differ on every run); when
	// logging, only if it was logged too.
	same := func(l v1.Descriptor) bool {
		if s.keyless != nil {
			return false // a fresh key: nothing stored is this signature
		}
		if l.Digest != payloadDigest || (entry != nil && l.Annotations[tlog.EntryAnnotation] == "" && l.Annotations[tlog.CosignBundleAnnotation] == "") {
			return false
		}
		if _, ts := att.Annotations[oci.TimestampAnnotation]; ts && l.Annotations[oci.TimestampAnnotation] == "" {
			return false // timestamping: an untimestamped layer is not this signature
		}
		b, err := base64.StdEncoding.DecodeString(l.Annotations[oci.SignatureAnnotation])
		return err == nil && s.sv.VerifySignature(bytes.NewReader(b), bytes.NewReader(p)) == nil
	}
	res, err := s.client.AddAttachments(ctx, tag, []oci.Attachment{att}, []oci.Matcher{same})
	if err != nil {
		return "", false, err
	}
	return tag.String(), res.Added > 0, nil
}

// pendingBundle is a bundle signature ready to push, or one found already
// stored (existing != "").
type pendingBundle struct {
	subject  name.Digest
	data     []byte
	hint     string
	stmt     v1.Hash
	existing string
	entry    *tlog.Entry
}

// prepareBundle signs a Sigstore bundle for d and records it in the log,
// unless a bundle with the same statement signed by this key (and logged,
// when logging) is already stored. It writes nothing.
func (s *Signer) prepareBundle(ctx context.Context, d name.Digest, o Options) (*pendingBundle, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	stmt, err := statement.ForImage(h, statement.CosignSign, nil, o.Annotations)
	if err != nil {
		return nil, err
	}
	subject := d
	if o.SignatureRepo != nil {
		subject = o.SignatureRepo.Digest(d.DigestStr())
	}
	stmtDigest, _, _ := v1.SHA256(bytes.NewReader(stmt))
	if s.keyless != nil {
		signed, err := s.keyless.DSSE(ctx, statement.PayloadType, stmt)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", d, err)
		}
		b, err := signed.JSON()
		if err != nil {
			return nil, err
		}
		return &pendingBundle{subject: subject, data: b, stmt: stmtDigest, entry: signed.Entry}, nil
	}
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, err
	}
	hint, err := keys.KeyID(pub)
	if err != nil {
		return nil, err
	}
	if ref, ok := s.findBundle(ctx, subject, hint, stmtDigest, stmt, o.Log != nil, o.Timestamps != nil); ok {
		return &pendingBundle{existing: ref}, nil
	}
	pae := dsse.PAE(statement.PayloadType, stmt)
	sig, err := s.sv.SignMessage(bytes.NewReader(pae))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", d, err)
	}
	var entries []*tlog.Entry
	if o.Log != nil {
		e, err := s.record(ctx, o.Log, pae, sig, &tlog.Envelope{PayloadType: statement.PayloadType, Payload: stmt})
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	var timestamps [][]byte
	if o.Timestamps != nil {
		if timestamps, err = o.Timestamps.Timestamp(ctx, sig, "the bundle signature of "+d.String()); err != nil {
			return nil, err
		}
	}
	b, err := bundle.MarshalTimestampedDSSE(hint, statement.PayloadType, stmt, sig, timestamps, entries...)
	if err != nil {
		return nil, err
	}
	var entry *tlog.Entry
	if len(entries) > 0 {
		entry = entries[0]
	}
	return &pendingBundle{subject: subject, data: b, hint: hint, stmt: stmtDigest, entry: entry}, nil
}

// pushBundle stores a prepared bundle as a referrer of the image (desc).
func (s *Signer) pushBundle(ctx context.Context, desc v1.Descriptor, b *pendingBundle) (string, bool, error) {
	if b.existing != "" {
		return b.existing, false, nil
	}
	ann := map[string]string{statementAnnotation: b.stmt.String()}
	if b.hint != "" {
		ann[keyIDAnnotation] = b.hint
	}
	pushed, err := s.client.PushReferrer(ctx, b.subject, desc, bundle.Artifact(b.data, statement.CosignSign, ann))
	if err != nil {
		return "", false, err
	}
	return b.subject.Context().Digest(pushed.Digest.String()).String(), true, nil
}

// findBundle looks for a bundle referrer of subject that this key already
// made over the same statement (logged and timestamped, when asked to
// be). The annotations only narrow the search: the candidate's bundle is
// fetched and its signature verified.
func (s *Signer) findBundle(ctx context.Context, subject name.Digest, hint string, stmtDigest v1.Hash, stmt []byte, logged, timestamped bool) (string, bool) {
	refs, err := s.client.ListReferrers(ctx, subject)
	if err != nil {
		return "", false
	}
	for _, r := range refs.Descriptors {
		if r.Annotations[keyIDAnnotation] != hint || r.Annotations[statementAnnotation] != stmtDigest.String() {
			continue
		}
		_, b, err := s.client.FetchReferrer(ctx, subject.Context(), r, bundle.MediaTypeV03, s.client.Limits().MaxPayloadBytes)
		if err != nil {
			continue
		}
		env, err := bundle.ParseDSSE(b)
		if err != nil || !bytes.Equal(env.Payload, stmt) || env.PayloadType != statement.PayloadType || (logged && len(env.TlogEntries) == 0) || (timestamped && len(env.Timestamps) == 0) {
			continue
		}
		for _, sig := range env.Signatures {
			if s.sv.VerifySignature(bytes.NewReader(sig), bytes.NewReader(dsse.PAE(env.PayloadType, env.Payload))) == nil {
				return subject.Context().Digest(r.Digest.String()).String(), true
			}
		}
	}
	return "", false
}
