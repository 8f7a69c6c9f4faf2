package keyless

import (
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// parsedEntity is a signed entity whose parts are parsed once, for one
// verification. sigstore-go asks an entity for its certificate, signature
// and log entries several times while verifying it, and a bundle parses
// them (an X.509 certificate, the Rekor entry body) on every call. It
// holds what the entity returned, errors included, so sigstore-go sees
// exactly what the entity says.
type parsedEntity struct {
	sgverify.SignedEntity
	vc      sgverify.VerificationContent
	vcErr   error
	sc      sgverify.SignatureContent
	scErr   error
	entries []*sgtlog.Entry
	tlErr   error
	ts      [][]byte
	tsErr   error
}

// parseOnce returns e with its parts parsed once (e itself when it already
// is).
func parseOnce(e sgverify.SignedEntity) *parsedEntity {
	if p, ok := e.(*parsedEntity); ok {
		return p
	}
	p := &parsedEntity{SignedEntity: e}
	p.vc, p.vcErr = e.VerificationContent()
	p.sc, p.scErr = e.SignatureContent()
	p.entries, p.tlErr = e.TlogEntries()
	p.ts, p.tsErr = e.Timestamps()
	return p
}

func (p *parsedEntity) VerificationContent() (sgverify.VerificationContent, error) {
	return p.vc, p.vcErr
}

func (p *parsedEntity) SignatureContent() (sgverify.SignatureContent, error) { return p.sc, p.scErr }

func (p *parsedEntity) TlogEntries() ([]*sgtlog.Entry, error) { return p.entries, p.tlErr }

func (p *parsedEntity) Timestamps() ([][]byte, error) { return p.ts, p.tsErr }
