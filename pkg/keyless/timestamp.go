package keyless

import (
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// VerifyTimestamp verifies an RFC 3161 timestamp token whose message
// imprint covers message (not necessarily a signature: cosign's legacy
// attestations timestamp the whole envelope) against the timestamping
// authorities of trusted, with sigstore-go (as cosign v3 verifies a legacy
// timestamp), and returns the verified time and authority.
func VerifyTimestamp(token, message []byte, trusted root.TrustedMaterial) (*root.Timestamp, error) {
	if trusted == nil {
		return nil, errors.New("no trusted root")
	}
	ts, errs, err := sgverify.VerifySignedTimestamp(&imprintOf{token: token, message: message}, withChainCache(trusted, false))
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		if len(trusted.TimestampingAuthorities()) == 0 {
			return nil, errors.New("the trusted root lists no timestamp authority")
		}
		return nil, fmt.Errorf("not verified by a timestamp authority of the trusted root: %w", errors.Join(errs...))
	}
	return ts[0], nil
}

// imprintOf is one timestamp token over message, as sigstore-go's
// timestamp verification reads an entity.
type imprintOf struct {
	sgverify.BaseSignedEntity
	token, message []byte
}

func (e *imprintOf) Timestamps() ([][]byte, error) { return [][]byte{e.token}, nil }

func (e *imprintOf) SignatureContent() (sgverify.SignatureContent, error) { return e, nil }

// Signature is what the timestamp's imprint covers.
func (e *imprintOf) Signature() []byte { return e.message }

func (e *imprintOf) EnvelopeContent() sgverify.EnvelopeContent { return nil }

func (e *imprintOf) MessageSignatureContent() sgverify.MessageSignatureContent { return nil }
