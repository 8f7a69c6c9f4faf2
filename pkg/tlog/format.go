package tlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/imgsign/imgsign/internal/pbjson"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	rekorpb "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/generated/models"
	"google.golang.org/protobuf/encoding/protojson"
)

// Annotations on a legacy signature layer that carry log entries.
const (
	// CosignBundleAnnotation is cosign's: a Rekor v1 SET and the entry it
	// covers (no inclusion proof). cosign verifies it.
	CosignBundleAnnotation = "dev.sigstore.cosign/bundle"
	// EntryAnnotation is imgsign's: the whole entry (protojson
	// TransparencyLogEntry) with its inclusion proof and checkpoint, from
	// Rekor v1 or v2. Other readers ignore it.
	EntryAnnotation = "dev.imgsign.tlog-entry"
)

// Annotations returns the annotations that carry e on a legacy signature
// or attestation layer: imgsign's whole entry always, cosign's bundle when e
// has a SET (Rekor v1).
func Annotations(e *Entry) (map[string]string, error) {
	full, err := MarshalEntry(e)
	if err != nil {
		return nil, err
	}
	out := map[string]string{EntryAnnotation: string(full)}
	if len(e.GetInclusionPromise().GetSignedEntryTimestamp()) > 0 {
		cb, err := CosignBundle(e)
		if err != nil {
			return nil, err
		}
		out[CosignBundleAnnotation] = string(cb)
	}
	return out, nil
}

// cosignBundle is the JSON of CosignBundleAnnotation.
type cosignBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// CosignBundle encodes e as cosign's bundle annotation. e must carry a SET
// (Rekor v2 entries have none and cannot be written so).
func CosignBundle(e *Entry) ([]byte, error) {
	if len(e.GetInclusionPromise().GetSignedEntryTimestamp()) == 0 {
		return nil, fmt.Errorf("a cosign bundle needs a signed entry timestamp (Rekor v1)")
	}
	var b cosignBundle
	b.SignedEntryTimestamp = e.GetInclusionPromise().GetSignedEntryTimestamp()
	b.Payload.Body = b64.EncodeToString(e.GetCanonicalizedBody())
	b.Payload.IntegratedTime = e.GetIntegratedTime()
	b.Payload.LogIndex = e.GetLogIndex()
	b.Payload.LogID = hex.EncodeToString(e.GetLogId().GetKeyId())
	return json.Marshal(b)
}

// ParseCosignBundle decodes cosign's bundle annotation strictly.
func ParseCosignBundle(data []byte) (*Entry, error) {
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: cosign bundle of %d bytes (limit %d)", ErrInvalid, len(data), MaxResponseBytes)
	}
	var b cosignBundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: cosign bundle: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: cosign bundle: data after the JSON object", ErrInvalid)
	}
	body, err := b64.DecodeString(b.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: cosign bundle body is not base64", ErrInvalid)
	}
	id, err := hex.DecodeString(b.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("%w: cosign bundle log ID is not hex", ErrInvalid)
	}
	if len(b.SignedEntryTimestamp) == 0 {
		return nil, fmt.Errorf("%w: cosign bundle without a signed entry timestamp", ErrInvalid)
	}
	return newEntry(body, id, b.Payload.LogIndex, b.Payload.IntegratedTime, b.SignedEntryTimestamp, nil)
}

// newEntry assembles an Entry, its kind read from the body.
func newEntry(body, logID []byte, index, integrated int64, set []byte, proof *rekorpb.InclusionProof) (*Entry, error) {
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: entry body of %d bytes (limit %d)", ErrInvalid, len(body), MaxBodyBytes)
	}
	h, err := kindOf(body)
	if err != nil {
		return nil, err
	}
	e := &Entry{
		LogIndex:          index,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &rekorpb.KindVersion{Kind: h.Kind, Version: h.APIVersion},
		IntegratedTime:    integrated,
		InclusionProof:    proof,
		CanonicalizedBody: body,
	}
	if len(set) > 0 {
		e.InclusionPromise = &rekorpb.InclusionPromise{SignedEntryTimestamp: set}
	}
	return e, nil
}

// fromV1 converts a Rekor v1 API entry.
func fromV1(a *models.LogEntryAnon) (*Entry, error) {
	s, ok := a.Body.(string)
	if !ok || a.LogID == nil || a.LogIndex == nil || a.IntegratedTime == nil {
		return nil, fmt.Errorf("%w: Rekor v1 entry lacks its body, log ID, index or time", ErrInvalid)
	}
	body, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: Rekor v1 entry body is not base64", ErrInvalid)
	}
	id, err := hex.DecodeString(*a.LogID)
	if err != nil {
		return nil, fmt.Errorf("%w: Rekor v1 log ID is not hex", ErrInvalid)
	}
	var set []byte
	var proof *rekorpb.InclusionProof
	if v := a.Verification; v != nil {
		set = v.SignedEntryTimestamp
		if ip := v.InclusionProof; ip != nil {
			if ip.LogIndex == nil || ip.TreeSize == nil || ip.RootHash == nil || ip.Checkpoint == nil {
				return nil, fmt.Errorf("%w: Rekor v1 inclusion proof is incomplete", ErrInvalid)
			}
			if len(ip.Hashes) > MaxProofHashes {
				return nil, fmt.Errorf("%w: inclusion proof with %d hashes (limit %d)", ErrInvalid, len(ip.Hashes), MaxProofHashes)
			}
			proof = &rekorpb.InclusionProof{LogIndex: *ip.LogIndex, TreeSize: *ip.TreeSize, Checkpoint: &rekorpb.Checkpoint{Envelope: *ip.Checkpoint}}
			if proof.RootHash, err = hex.DecodeString(*ip.RootHash); err != nil {
				return nil, fmt.Errorf("%w: inclusion proof root is not hex", ErrInvalid)
			}
			for _, h := range ip.Hashes {
				hb, err := hex.DecodeString(h)
				if err != nil {
					return nil, fmt.Errorf("%w: inclusion proof hash is not hex", ErrInvalid)
				}
				proof.Hashes = append(proof.Hashes, hb)
			}
		}
	}
	return newEntry(body, id, *a.LogIndex, *a.IntegratedTime, set, proof)
}

// MarshalEntry encodes e as Sigstore bundles do (protojson), compactly.
func MarshalEntry(e *Entry) ([]byte, error) { return pbjson.Marshal(e) }

// ParseEntry decodes an entry in the Sigstore bundle form, strictly.
func ParseEntry(data []byte) (*Entry, error) {
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrInvalid, len(data), MaxResponseBytes)
	}
	var e Entry
	if err := protojson.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &e, nil
}
