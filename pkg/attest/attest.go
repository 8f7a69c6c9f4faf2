// Package attest signs in-toto statements about images (provenance, SBOMs,
// vulnerability reports, VEX) and stores them as cosign does: a DSSE
// envelope in a layer of the legacy tag sha256-<hex>.att, and/or a Sigstore
// bundle attached as an OCI 1.1 referrer.
package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keylesssign"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/tsa"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PredicateTypeAnnotation is the annotation of a legacy attestation layer
// that names its predicate type, so readers can select before downloading.
const PredicateTypeAnnotation = "predicateType"

// MaxPredicateBytes is the largest predicate or statement accepted.
const MaxPredicateBytes = 16 << 20

// predicateTypes maps cosign's --type names to predicate type URIs.
var predicateTypes = map[string]string{
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
}

// PredicateType returns the predicate type URI for a cosign type name
// (slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex,
// custom, ...) or checks that t is itself an absolute URI.
func PredicateType(t string) (string, error) {
	if uri, ok := predicateTypes[t]; ok {
		return uri, nil
	}
	if u, err := url.ParseRequestURI(t); err == nil && u.Scheme != "" && u.Host != "" {
		return t, nil
	}
	return "", fmt.Errorf("predicate type %q: not a known type (slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, custom) nor an absolute URI", t)
}

// ErrInvalidInput is wrapped when the predicate or statement is refused.
var ErrInvalidInput = errors.New("invalid attestation input")

// Options say what to attest and where to store it.
type Options struct {
	// PredicateType is the predicate type URI (see PredicateType).
	PredicateType string
	// Predicate is the predicate JSON; or Statement is a whole in-toto
	// statement, whose subject must name the image digest. Exactly one.
	Predicate []byte
	Statement []byte
	// Format is legacy (.att tag), bundle (referrer) or both ("" = both).
	Format sign.Format
	// Log, when set, records the attestation's signature in this
	// transparency log before anything is written to the registry.
	Log *tlog.Client
	// Timestamps, when set (key signing), has the attestation timestamped
	// (RFC 3161) before anything is written to the registry, as cosign
	// does: the bundle's timestamps (every TSA's) cover the envelope's
	// signature; the legacy layer's (the first TSA's, in cosign's
	// dev.sigstore.cosign/rfc3161timestamp annotation) covers the whole
	// layer, as cosign v2 writes it and cosign v2 and v3 verify it: one
	// request per TSA and layout. Keyless attesters ignore it.
	Timestamps *tsa.Client
}

// Attestation is one stored attestation.
type Attestation struct {
	Image         name.Digest `json:"image"`
	PredicateType string      `json:"predicateType"`
	Tag           string      `json:"attestationTag,omitempty"`
	Referrer      string      `json:"referrer,omitempty"`
	// Entry is the attestation's log entry (nil without Options.Log).
	Entry *tlog.Entry `json:"-"`
}

// Attester signs attestations with one key, or keyless
// (NewKeylessAttester).
type Attester struct {
	pub     crypto.PublicKey
	client  *oci.Client
	sv      signature.SignerVerifier
	hint    string
	keyless *keylesssign.Signer
}

// NewKeylessAttester returns an Attester that signs keyless with ks's
// ephemeral key and certificate; the envelope is logged in ks's logs
// (Options.Log is ignored) and timestamped by its TSAs before anything is
// written. The legacy layer stores the envelope exactly as logged, with
// cosign's certificate, chain and Rekor bundle annotations and, with a
// TSA, a timestamp of its own over the layer (as cosign verifies it: a
// second timestamp request).
func NewKeylessAttester(client *oci.Client, ks *keylesssign.Signer) *Attester {
	return &Attester{client: client, keyless: ks}
}

// NewAttester returns an Attester signing with key.
func NewAttester(client *oci.Client, key crypto.Signer) (*Attester, error) {
	sv, err := keys.AsSigner(key, "")
	if err != nil {
		return nil, err
	}
	hint, err := keys.KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &Attester{pub: key.Public(), client: client, sv: sv, hint: hint}, nil
}

// Statement builds (or, given a whole statement, checks) the statement to
// sign for the image with digest d.
func Statement(repo name.Repository, d v1.Hash, o Options) ([]byte, error) {
	if (o.Predicate == nil) == (o.Statement == nil) {
		return nil, fmt.Errorf("%w: give a predicate or a statement, not both", ErrInvalidInput)
	}
	if len(o.Predicate) > MaxPredicateBytes || len(o.Statement) > MaxPredicateBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidInput, MaxPredicateBytes)
	}
	if o.Statement != nil {
		s, err := statement.Parse(o.Statement)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
		}
		if _, ok := s.SubjectFor(d); !ok {
			return nil, fmt.Errorf("%w: the statement's subject does not name %s", ErrInvalidInput, d)
		}
		if o.PredicateType != "" && s.PredicateType != o.PredicateType {
			return nil, fmt.Errorf("%w: the statement's predicate type is %q, not %q", ErrInvalidInput, s.PredicateType, o.PredicateType)
		}
		return o.Statement, nil
	}
	if !json.Valid(o.Predicate) || !bytes.HasPrefix(bytes.TrimSpace(o.Predicate), []byte("{")) {
		return nil, fmt.Errorf("%w: the predicate is not a JSON object", ErrInvalidInput)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, o.Predicate); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return statement.ForImageNamed(repo.Name(), d, o.PredicateType, compact.Bytes())
}

// Attest resolves ref once, builds and signs the statement, and stores it.
func (a *Attester) Attest(ctx context.Context, ref name.Reference, o Options) (*Attestation, error) {
	if err := a.client.Authenticate(ctx, ref.Context(), true); err != nil {
		return nil, err
	}
	res, err := a.client.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	h := res.Descriptor.Digest
	stmt, err := Statement(ref.Context(), h, o)
	if err != nil {
		return nil, err
	}
	s, _ := statement.Parse(stmt)
	pt := s.PredicateType
	out := &Attestation{Image: res.Ref, PredicateType: pt}
	var (
		body, bundleData []byte
		entries          []*tlog.Entry
		extra            map[string]string
	)
	if a.keyless != nil {
		signed, err := a.keyless.DSSE(ctx, statement.PayloadType, stmt)
		if err != nil {
			return nil, fmt.Errorf("attest %s: %w", res.Ref, err)
		}
		// The legacy layer holds the envelope exactly as logged: a Rekor v1
		// dsse entry binds the hash of those bytes.
		if body, err = json.Marshal(signed.Bundle.GetDsseEnvelope()); err != nil {
			return nil, err
		}
		if bundleData, err = signed.JSON(); err != nil {
			return nil, err
		}
		if extra, err = a.keyless.LegacyAnnotations(signed); err != nil {
			return nil, err
		}
		if o.Format.Legacy() {
			// The layer's own timestamp, over the layer, as cosign verifies it.
			ts, err := a.keyless.AttestationTimestamp(ctx, body)
			if err != nil {
				return nil, fmt.Errorf("attest %s: %w", res.Ref, err)
			}
			if ts != "" {
				extra[oci.TimestampAnnotation] = ts
			}
		}
		out.Entry = signed.Entry
	} else {
		env := envelope.Envelope{PayloadType: statement.PayloadType, Payload: stmt}
		pae := env.PAE() // built once: a statement may be up to MaxPredicateBytes
		sig, err := a.sv.SignMessage(bytes.NewReader(pae))
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		// The legacy layer: the envelope as stored, and as logged (cosign
		// checks the entry's envelope hash against these very bytes).
		if body, err = envelope.Marshal(env.PayloadType, stmt, sig); err != nil {
			return nil, err
		}
		if o.Log != nil {
			d := sha256.Sum256(pae)
			e, err := sign.Record(ctx, o.Log, tlog.Want{Digest: d[:], Signature: sig, PublicKey: a.pub, Envelope: &tlog.Envelope{PayloadType: env.PayloadType, Payload: stmt, Raw: body}})
			if err != nil {
				return nil, err
			}
			entries, out.Entry = append(entries, e), e
		}
		if o.Format.Bundle() {
			var timestamps [][]byte
			if o.Timestamps != nil {
				if timestamps, err = o.Timestamps.Timestamp(ctx, sig, "the attestation's bundle signature"); err != nil {
					return nil, fmt.Errorf("attest %s: %w", res.Ref, err)
				}
			}
			if bundleData, err = bundle.MarshalTimestampedDSSE(a.hint, env.PayloadType, stmt, sig, timestamps, entries...); err != nil {
				return nil, err
			}
		}
		extra = map[string]string{}
		if out.Entry != nil {
			if extra, err = tlog.Annotations(out.Entry); err != nil {
				return nil, err
			}
		}
		if o.Timestamps != nil && o.Format.Legacy() {
			token, err := o.Timestamps.One(ctx, body, "the attestation layer")
			if err != nil {
				return nil, fmt.Errorf("attest %s: %w", res.Ref, err)
			}
			if extra[oci.TimestampAnnotation], err = tsa.Annotation(token); err != nil {
				return nil, err
			}
		}
	}
	if o.Format.Legacy() {
		tag, err := oci.AttachedTag(res.Ref, nil, oci.AttestationTagSuffix)
		if err != nil {
			return nil, err
		}
		att := oci.Attachment{Payload: body, MediaType: oci.DSSEMediaType,
			Annotations: map[string]string{oci.SignatureAnnotation: "", PredicateTypeAnnotation: pt}}
		maps.Copy(att.Annotations, extra)
		if _, err := a.client.AddAttachments(ctx, tag, []oci.Attachment{att}, nil); err != nil {
			return nil, err
		}
		out.Tag = tag.String()
	}
	if o.Format.Bundle() {
		d, err := a.client.PushReferrer(ctx, res.Ref, res.Descriptor, bundle.Artifact(bundleData, pt, nil))
		if err != nil {
			return nil, err
		}
		out.Referrer = res.Ref.Context().Digest(d.Digest.String()).String()
	}
	return out, nil
}
