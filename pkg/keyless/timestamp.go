package keyless

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

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

// everyTimestamp requires each RFC 3161 timestamp of a certificate
// signature to count: verified by a TSA of trusted over sig, and the
// certificate (with intermediates, through chainTrust) valid at its time.
// sigstore-go keeps the timestamps that verify and drops the others
// (a second one from the same authority too, unchecked against the
// certificate), so a token that would prove the certificate expired, or
// that no trusted TSA made, would otherwise pass unseen. verified are the
// times sigstore-go verified; when they hold one result per token, each
// was verified and the certificate checked at its time, and nothing is
// done again.
func everyTimestamp(tokens [][]byte, verified []sgverify.TimestampVerificationResult, sig []byte, cert *x509.Certificate, trusted, chainTrust root.TrustedMaterial) error {
	n := 0
	for _, v := range verified {
		if v.Type == "TimestampAuthority" {
			n++
		}
	}
	if n == len(tokens) {
		return nil
	}
	for i, token := range tokens {
		ts, errs, err := sgverify.VerifySignedTimestamp(&imprintOf{token: token, message: sig}, trusted)
		if err == nil && len(ts) == 0 {
			err = errors.Join(errs...)
		}
		if err != nil {
			return fmt.Errorf("RFC 3161 timestamp %d of %d does not verify (every timestamp of a signature must): %w", i+1, len(tokens), err)
		}
		if _, err := sgverify.VerifyLeafCertificate(ts[0].Time, cert, chainTrust); err != nil {
			return fmt.Errorf("RFC 3161 timestamp %d of %d (%s) is outside certificate validity (%s to %s): %w", i+1, len(tokens), ts[0].Time.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), err)
		}
	}
	return nil
}
