// Package envelope reads and writes DSSE envelopes in the JSON form cosign
// stores in legacy attestation layers (tag sha256-<hex>.att):
//
//	{"payloadType":"application/vnd.in-toto+json","payload":"<b64>",
//	 "signatures":[{"keyid":"","sig":"<b64>"}]}
//
// The signature is over the DSSE pre-authentication encoding (PAE) of the
// payload type and the exact payload bytes.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// MaxSignatures caps the signatures of an envelope read.
const MaxSignatures = 8

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid DSSE envelope")

// Envelope is a parsed envelope with its payload decoded.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  [][]byte
}

// PAE returns the bytes the envelope's signatures are over.
func (e *Envelope) PAE() []byte { return dsse.PAE(e.PayloadType, e.Payload) }

// Marshal encodes an envelope with one signature.
func Marshal(payloadType string, payload, sig []byte) ([]byte, error) {
	return json.Marshal(dsse.Envelope{
		PayloadType: payloadType,
		Payload:     b64(payload),
		Signatures:  []dsse.Signature{{Sig: b64(sig)}},
	})
}

// Parse decodes an envelope strictly: one JSON object with exactly the DSSE
// members, base64 payload and signatures, 1 to MaxSignatures signatures.
func Parse(data []byte) (*Envelope, error) {
	// Keys first, without copying values: exactly the envelope's members
	// (encoding/json would match others case-insensitively).
	var keys map[string]skipValue
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for k := range keys {
		switch k {
		case "payloadType", "payload", "signatures":
		default:
			return nil, fmt.Errorf("%w: unknown member %q", ErrInvalid, k)
		}
	}
	var raw struct {
		PayloadType string        `json:"payloadType"`
		Payload     base64Payload `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	// The payload, the bulk of an envelope, is decoded from the input in
	// place: the envelope costs its size plus the decoded payload.
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if n := len(raw.Signatures); n == 0 || n > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures (need 1 to %d)", ErrInvalid, n, MaxSignatures)
	}
	e := &Envelope{PayloadType: raw.PayloadType, Payload: raw.Payload}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	for _, s := range raw.Signatures {
		sig, err := unb64(s.Sig)
		if err != nil || len(sig) == 0 {
			return nil, fmt.Errorf("%w: a signature is empty or not base64", ErrInvalid)
		}
		e.Signatures = append(e.Signatures, sig)
	}
	return e, nil
}
