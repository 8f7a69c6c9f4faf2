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
	"bytes"
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

// MaxRestBytes caps an envelope apart from its payload: the payload type
// and up to MaxSignatures signatures with their key IDs.
const MaxRestBytes = 256 << 10

// ParseInPlace decodes an envelope strictly: one JSON object with exactly
// the DSSE members, each once, a base64 payload and 1 to MaxSignatures
// base64 signatures.
//
// It consumes data: the payload, the bulk of an envelope, is decoded in
// place (see Hoist) and Envelope.Payload aliases data, so that an envelope
// costs its size once. Only the rest, at most MaxRestBytes, is decoded by
// encoding/json.
func ParseInPlace(data []byte) (*Envelope, error) {
	rest, payload, err := Hoist(data, MaxRestBytes, []string{"payload"})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// Members by exact name, each once (encoding/json would match others
	// case-insensitively, and keep the last of a member given twice).
	dec := json.NewDecoder(bytes.NewReader(rest))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, _ := dec.Token()
		k, _ := t.(string)
		switch {
		case k != "payloadType" && k != "payload" && k != "signatures":
			return nil, fmt.Errorf("%w: unknown member %q", ErrInvalid, k)
		case seen[k]:
			return nil, fmt.Errorf("%w: member %q twice", ErrInvalid, k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	var raw struct {
		PayloadType string `json:"payloadType"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(rest, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if n := len(raw.Signatures); n == 0 || n > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures (need 1 to %d)", ErrInvalid, n, MaxSignatures)
	}
	e := &Envelope{PayloadType: raw.PayloadType, Payload: payload}
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
