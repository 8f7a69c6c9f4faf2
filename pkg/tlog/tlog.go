// Package tlog records signatures in Rekor transparency logs and verifies
// log entries. An entry is held in the Sigstore form both log versions
// share (protobuf-specs' TransparencyLogEntry), whichever way it travelled:
//
//   - Rekor v1 answers an upload with a signed entry timestamp (SET) and an
//     inclusion proof against a signed checkpoint; cosign keeps only the SET,
//     in the dev.sigstore.cosign/bundle annotation (see CosignBundle);
//   - Rekor v2 answers with an inclusion proof and a checkpoint, no SET and
//     no integrated time;
//   - a Sigstore bundle carries entries as TransparencyLogEntry.
//
// Verify checks an entry offline against trusted log keys (Trust): the SET
// and/or the inclusion proof up to a checkpoint signed by the log, and that
// the entry's body binds exactly this signature, this public key and this
// digest. A valid entry copied from another signature is rejected.
package tlog

import (
	"crypto/sha256"
	"errors"

	rekorpb "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
)

// Entry is a transparency-log entry, in the Sigstore bundle's form.
type Entry = rekorpb.TransparencyLogEntry

// Entry kinds and versions imgsign writes and reads.
const (
	KindHashedRekord = "hashedrekord"
	KindDSSE         = "dsse"   // Rekor v1's record of a DSSE envelope, as cosign v3 writes it
	KindIntoto       = "intoto" // Rekor v1's older record of a DSSE envelope (0.0.2), as cosign v2 attestations write it
	VersionV001      = "0.0.1"  // Rekor v1
	VersionV002      = "0.0.2"  // Rekor v2
)

// Limits on untrusted log data (log responses, annotations, bundles). They
// are far above what a real log sends: a hashedrekord body with an RSA-4096
// key is about 2 KiB, a proof for a tree of 2^63 leaves has 63 hashes.
const (
	// MaxResponseBytes bounds one log response read.
	MaxResponseBytes = 1 << 20
	// MaxBodyBytes bounds an entry's canonicalized body.
	MaxBodyBytes = 64 << 10
	// MaxProofHashes bounds the hashes of an inclusion proof.
	MaxProofHashes = 64
	// MaxCheckpointBytes bounds a checkpoint (signed note).
	MaxCheckpointBytes = 16 << 10
	// MaxSearchResults bounds the entries considered from one search.
	MaxSearchResults = 32
)

// ErrInvalid is wrapped by every rejection of an entry: malformed, not
// signed by a trusted log, or not about this signature.
var ErrInvalid = errors.New("invalid transparency log entry")

// Want is what a log entry must bind: the signature it travels with, the
// key that made it and the digest of what was signed.
type Want struct {
	// Digest is the SHA-256 of the signed bytes (the simple-signing
	// payload, or a DSSE envelope's PAE).
	Digest []byte
	// Signature is the raw signature.
	Signature []byte
	// PublicKey is the key the signature verified with.
	PublicKey any
	// Envelope is set when the signature is over a DSSE envelope's PAE
	// (Digest is then the PAE's SHA-256). Rekor v1 records it as a dsse
	// 0.0.1 entry (cosign v3 accepts nothing else for DSSE bundles), Rekor
	// v2 as a hashedrekord over the PAE.
	Envelope *Envelope
}

// Envelope is the DSSE envelope a signature was made over.
type Envelope struct {
	PayloadType string
	Payload     []byte
	// Raw is the envelope exactly as it is stored (a legacy attestation's
	// layer). A Rekor v1 dsse entry records the SHA-256 of the envelope
	// sent, and cosign compares it with the stored bytes, so they are sent
	// byte for byte. Nil: an envelope is built from PayloadType, Payload
	// and the signature.
	Raw []byte
}

// searchDigest is the digest a Rekor v1 log indexes the entry under: the
// signed bytes' for hashedrekord, the envelope payload's for dsse.
func (w Want) searchDigest() []byte {
	if w.Envelope != nil {
		d := sha256.Sum256(w.Envelope.Payload)
		return d[:]
	}
	return w.Digest
}

// Facts are what a verified entry proves. They marshal into verify's JSON.
type Facts struct {
	// Log names the log: its base URL when known, else its ID.
	Log string `json:"log"`
	// LogID is the hex log ID.
	LogID string `json:"logID"`
	// LogIndex is the entry's index in the log.
	LogIndex int64 `json:"logIndex"`
	// IntegratedTime is when the log says it recorded the entry (Unix
	// seconds), as its SET signs it; 0 without a SET (Rekor v2 records no
	// time; elsewhere an unsigned time is not reported).
	IntegratedTime int64 `json:"integratedTime,omitempty"`
	// Kind is the entry's kind and version ("hashedrekord/0.0.1").
	Kind string `json:"kind"`
	// Checked lists what was verified: "signed-entry-timestamp",
	// "inclusion-proof".
	Checked []string `json:"checked"`
}

// What Facts.Checked lists.
const (
	CheckedSET   = "signed-entry-timestamp"
	CheckedProof = "inclusion-proof"
)
