// Package statement builds and parses in-toto Statements, the payload that
// DSSE envelopes carry for cosign v3 signatures and for attestations.
// Statement v1 is written; v1 and v0.1 are read. Parsing is strict: unknown
// members are errors, the number of subjects is capped, and a statement two
// JSON readers could read differently (a key twice in an object, keys that
// differ only in case where encoding/json folds them) is refused.
package statement

import (
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Constants of the formats.
const (
	// PayloadType is the DSSE payloadType of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// TypeV1 and TypeV01 are the statement types read; TypeV1 is written.
	TypeV1  = "https://in-toto.io/Statement/v1"
	TypeV01 = "https://in-toto.io/Statement/v0.1"
	// CosignSign is the predicate type of a cosign v3 image signature.
	CosignSign = "https://sigstore.dev/cosign/sign/v1"
	// MaxSubjects caps the subjects of a statement read.
	MaxSubjects = 1024
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid in-toto statement")

// Subject is a statement subject (an in-toto ResourceDescriptor, as far as
// statements about images use it).
type Subject struct {
	Name        string            `json:"name,omitempty"`
	Digest      map[string]string `json:"digest"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// Statement is an in-toto statement.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// ForImage returns the statement v1 about the image with manifest digest d,
// with the given predicate (nil means {}) and subject annotations, encoded
// as cosign v3 encodes it.
func ForImage(d v1.Hash, predicateType string, predicate json.RawMessage, annotations map[string]string) ([]byte, error) {
	if predicate == nil {
		predicate = json.RawMessage("{}")
	}
	sub := Subject{Digest: map[string]string{d.Algorithm: d.Hex}}
	if len(annotations) > 0 {
		sub.Annotations = make(map[string]any, len(annotations))
		for k, v := range annotations {
			sub.Annotations[k] = v
		}
	}
	return json.Marshal(Statement{Type: TypeV1, Subject: []Subject{sub}, PredicateType: predicateType, Predicate: predicate})
}

// ForImageNamed is ForImage with the subject named (the image repository),
// as cosign names the subjects of attestations.
func ForImageNamed(subjectName string, d v1.Hash, predicateType string, predicate json.RawMessage) ([]byte, error) {
	if predicate == nil {
		predicate = json.RawMessage("{}")
	}
	sub := Subject{Name: subjectName, Digest: map[string]string{d.Algorithm: d.Hex}}
	return json.Marshal(Statement{Type: TypeV1, Subject: []Subject{sub}, PredicateType: predicateType, Predicate: predicate})
}

// Parse parses a statement strictly.
// Keys defined twice, or keys of the statement or a subject that differ
// only in case, are refused as ambiguous. The statement's Predicate is a
// slice of data (not a copy).
func Parse(data []byte) (*Statement, error) {
	predicate, err := checkKeys(data)
	if err != nil {
		return nil, err
	}
	// Unknown members were refused by checkKeys; Unmarshal refuses data
	// after the statement and, unlike a Decoder, makes no copy of the
	// input. The predicate, the bulk of a large statement, is not decoded:
	// it is the slice checkKeys found.
	var raw struct {
		Type          string    `json:"_type"`
		Subject       []Subject `json:"subject"`
		PredicateType string    `json:"predicateType"`
		Predicate     skipped   `json:"predicate"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	s := Statement{Type: raw.Type, Subject: raw.Subject, PredicateType: raw.PredicateType, Predicate: predicate}
	if s.Type != TypeV1 && s.Type != TypeV01 {
		return nil, fmt.Errorf("%w: _type %q", ErrInvalid, s.Type)
	}
	if len(s.Subject) == 0 || len(s.Subject) > MaxSubjects {
		return nil, fmt.Errorf("%w: %d subjects (need 1 to %d)", ErrInvalid, len(s.Subject), MaxSubjects)
	}
	if s.PredicateType == "" {
		return nil, fmt.Errorf("%w: no predicateType", ErrInvalid)
	}
	return &s, nil
}

// skipped is a JSON value accepted and not kept.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// SubjectFor returns the subject whose digest names d, if any. A subject
// that lists the digest under the same algorithm with another value never
// matches.
func (s *Statement) SubjectFor(d v1.Hash) (*Subject, bool) {
	for i := range s.Subject {
		if s.Subject[i].Digest[d.Algorithm] == d.Hex {
			return &s.Subject[i], true
		}
	}
	return nil, false
}

// MissingAnnotations returns the keys of want that the subject does not
// carry with exactly that string value.
func (sub *Subject) MissingAnnotations(want map[string]string) []string {
	var missing []string
	for k, v := range want {
		if got, ok := sub.Annotations[k].(string); !ok || got != v {
			missing = append(missing, k)
		}
	}
	return missing
}
