package tlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/sigstore/rekor-tiles/v2/pkg/note"
	tilesverify "github.com/sigstore/rekor-tiles/v2/pkg/verify"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/util"
	rekorverify "github.com/sigstore/rekor/pkg/verify"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Verify checks e offline: it must come from a trusted log, carry a valid
// signed entry timestamp or a valid inclusion proof up to a checkpoint the
// log signed (every one present must be valid), be within the log key's
// validity, and record exactly w. It returns what the entry proves, or an
// error wrapping ErrInvalid that says why it was rejected.
func (t *Trust) Verify(e *Entry, w Want) (*Facts, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: no entry", ErrInvalid)
	}
	// The cheapest check first, and the one that defeats a copied entry:
	// does it record this signature at all?
	kind, err := bind(e.GetCanonicalizedBody(), e.GetKindVersion(), w)
	if err != nil {
		return nil, err
	}
	set := e.GetInclusionPromise().GetSignedEntryTimestamp()
	p := e.GetInclusionProof()
	if len(set) == 0 && p == nil {
		return nil, fmt.Errorf("%w: it has neither a signed entry timestamp nor an inclusion proof", ErrInvalid)
	}
	var cp string
	if p != nil {
		cp = p.GetCheckpoint().GetEnvelope()
		if len(cp) > MaxCheckpointBytes {
			return nil, fmt.Errorf("%w: checkpoint of %d bytes (limit %d)", ErrInvalid, len(cp), MaxCheckpointBytes)
		}
	}
	origin, _, _ := strings.Cut(cp, "\n")
	log := t.lookup(e.GetLogId().GetKeyId(), origin)
	if log == nil {
		return nil, fmt.Errorf("%w: it comes from log %x, which is not trusted (give its key with --rekor-key or --trusted-root)", ErrInvalid, e.GetLogId().GetKeyId())
	}
	// Only the SET signs the integrated time: without one, it is whatever
	// the entry's bearer wrote, so it is neither reported nor relied on.
	var integrated int64
	if len(set) > 0 {
		integrated = e.GetIntegratedTime()
	}
	facts := &Facts{Log: log.name(), LogID: hex.EncodeToString(e.GetLogId().GetKeyId()), LogIndex: e.GetLogIndex(), IntegratedTime: integrated, Kind: kind}
	if len(set) > 0 {
		if err := log.verifySET(e); err != nil {
			return nil, err
		}
		facts.Checked = append(facts.Checked, CheckedSET)
	}
	if p != nil {
		if err := log.verifyProof(e, origin); err != nil {
			return nil, err
		}
		facts.Checked = append(facts.Checked, CheckedProof)
	}
	if err := log.validAt(integrated); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(set) == 0 && log.isV1() {
		if err := log.validWithoutSET(e.GetIntegratedTime(), t.now()); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return facts, nil
}

// isV1 reports whether l is a Rekor v1 log: ECDSA or RSA keys (Rekor v2
// signs Ed25519 checkpoints, and its entries' time comes from timestamps).
func (l *Log) isV1() bool {
	_, ed := l.Key.(ed25519.PublicKey)
	return !ed
}

// validWithoutSET checks the log key's validity for a Rekor v1 entry
// proven by its inclusion proof alone. No signed time says when it was
// logged, only that a checkpoint the key signed includes it: the key must
// be valid now (a key whose validity ended, or has not begun, could have
// signed that checkpoint at any time), and the time the entry claims
// (unsigned, so only a consistency check) must be within the validity too.
func (l *Log) validWithoutSET(claimed int64, now time.Time) error {
	if !l.ValidUntil.IsZero() && now.After(l.ValidUntil) {
		return fmt.Errorf("the log key's validity ended at %s and the entry has no signed entry timestamp to show it was logged before then", l.ValidUntil.UTC().Format(time.RFC3339))
	}
	if !l.ValidFrom.IsZero() && now.Before(l.ValidFrom) {
		return fmt.Errorf("the log key is not valid before %s", l.ValidFrom.UTC().Format(time.RFC3339))
	}
	return l.validAt(claimed)
}

// verifySET checks the signed entry timestamp: the log's signature over the
// canonical JSON of the body, integrated time, log ID and log index.
func (l *Log) verifySET(e *Entry) error {
	if e.GetIntegratedTime() <= 0 {
		return fmt.Errorf("%w: a signed entry timestamp without an integrated time", ErrInvalid)
	}
	body, index, t, id := b64.EncodeToString(e.GetCanonicalizedBody()), e.GetLogIndex(), e.GetIntegratedTime(), hex.EncodeToString(e.GetLogId().GetKeyId())
	anon := &models.LogEntryAnon{
		Body: body, LogIndex: &index, IntegratedTime: &t, LogID: &id,
		Verification: &models.LogEntryAnonVerification{SignedEntryTimestamp: strfmt.Base64(e.GetInclusionPromise().GetSignedEntryTimestamp())},
	}
	if err := rekorverify.VerifySignedEntryTimestamp(context.Background(), anon, l.verifier); err != nil {
		return fmt.Errorf("%w: the signed entry timestamp does not verify with the key of log %s", ErrInvalid, l.name())
	}
	return nil
}

// checkpoint is a verified checkpoint's size and root hash.
type checkpoint struct {
	size uint64
	root []byte
}

// verifyProof checks the inclusion proof: a checkpoint signed by the log,
// and the entry's leaf hashing up to the checkpoint's root.
func (l *Log) verifyProof(e *Entry, origin string) error {
	p := e.GetInclusionProof()
	if n := len(p.GetHashes()); n > MaxProofHashes {
		return fmt.Errorf("%w: inclusion proof with %d hashes (limit %d)", ErrInvalid, n, MaxProofHashes)
	}
	if p.GetLogIndex() < 0 || p.GetTreeSize() <= p.GetLogIndex() {
		return fmt.Errorf("%w: inclusion proof index %d outside a tree of size %d", ErrInvalid, p.GetLogIndex(), p.GetTreeSize())
	}
	text := p.GetCheckpoint().GetEnvelope()
	if text == "" {
		return fmt.Errorf("%w: inclusion proof without a checkpoint", ErrInvalid)
	}
	cp, err := l.verifyCheckpoint(text, origin)
	if err != nil {
		return err
	}
	if cp.size != uint64(p.GetTreeSize()) || (len(p.GetRootHash()) > 0 && !bytes.Equal(cp.root, p.GetRootHash())) {
		return fmt.Errorf("%w: the inclusion proof is for tree size %d, the checkpoint for %d (or another root)", ErrInvalid, p.GetTreeSize(), cp.size)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(e.GetCanonicalizedBody())
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.GetLogIndex()), cp.size, leaf, p.GetHashes(), cp.root); err != nil {
		return fmt.Errorf("%w: the inclusion proof does not hash to the checkpoint's root: %v", ErrInvalid, err)
	}
	return nil
}

// verifyCheckpoint checks a checkpoint's signature by the log. Rekor v2's
// Ed25519 checkpoints are standard signed notes; Rekor v1's (ECDSA, with
// spaces in the origin) are checked with Rekor's own code.
func (l *Log) verifyCheckpoint(text, origin string) (checkpoint, error) {
	if _, ok := l.Key.(ed25519.PublicKey); ok {
		nv, err := note.NewNoteVerifier(origin, l.verifier)
		if err != nil {
			return checkpoint{}, fmt.Errorf("%w: checkpoint origin %q: %v", ErrInvalid, origin, err)
		}
		cp, err := tilesverify.VerifyCheckpoint(text, nv)
		if err != nil {
			return checkpoint{}, fmt.Errorf("%w: the checkpoint is not signed by log %s", ErrInvalid, l.name())
		}
		return checkpoint{size: cp.Size, root: cp.Hash}, nil
	}
	var sc util.SignedCheckpoint
	if err := sc.UnmarshalText([]byte(text)); err != nil {
		return checkpoint{}, fmt.Errorf("%w: malformed checkpoint: %v", ErrInvalid, err)
	}
	if !sc.Verify(l.verifier) {
		return checkpoint{}, fmt.Errorf("%w: the checkpoint is not signed by log %s", ErrInvalid, l.name())
	}
	return checkpoint{size: sc.Size, root: sc.Hash}, nil
}
