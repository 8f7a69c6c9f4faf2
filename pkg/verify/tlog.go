package verify

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/imgsign/imgsign/pkg/tlog"
)

// Option configures a Verifier.
type Option func(*Verifier)

// WithTrustedLogs makes the Verifier check transparency-log entries
// against these logs. Without trusted logs, entries that travel with a
// signature cannot be checked: they are reported as unchecked, and
// RequireTlog fails.
func WithTrustedLogs(t *tlog.Trust) Option { return func(v *Verifier) { v.logs = t } }

// WithOnlineLog makes the Verifier look a signature up in this Rekor v1 log
// when no entry travels with it (two requests per signature).
func WithOnlineLog(c *tlog.Client) Option { return func(v *Verifier) { v.online = c } }

// logCheck is what the log check of one signature found.
type logCheck struct {
	facts     []tlog.Facts
	unchecked int
	// reason is why the signature is rejected; empty when it is not.
	reason string
}

// checkLog applies the Verifier's log policy (tlog.Policy.Check) to a
// signature and the entries that travel with it; parseErrs are entries
// that did not even parse, which reject the signature.
func (v *Verifier) checkLog(ctx context.Context, w tlog.Want, entries []*tlog.Entry, parseErrs []error, require bool) logCheck {
	if len(parseErrs) > 0 {
		return logCheck{reason: "transparency-log entry: " + parseErrs[0].Error()}
	}
	p := tlog.Policy{Trust: v.logs, Online: v.online, Require: require}
	r, err := p.Check(ctx, w, entries)
	c := logCheck{facts: r.Facts, unchecked: r.Unchecked}
	if err != nil {
		c.reason = err.Error()
	}
	return c
}

// digest is the SHA-256 of b.
func digest(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// legacyEntries reads the log entries a legacy signature or attestation
// layer carries in its annotations (cosign's and imgsign's); errs holds the
// annotations that did not parse.
func legacyEntries(annotations map[string]string) (entries []*tlog.Entry, errs []error) {
	for _, a := range []struct {
		name  string
		parse func([]byte) (*tlog.Entry, error)
	}{{tlog.EntryAnnotation, tlog.ParseEntry}, {tlog.CosignBundleAnnotation, tlog.ParseCosignBundle}} {
		s, ok := annotations[a.name]
		if !ok {
			continue
		}
		e, err := a.parse([]byte(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("annotation %s: %w", a.name, err))
			continue
		}
		entries = append(entries, e)
	}
	return entries, errs
}

// want is what a log entry of a verified DSSE envelope must record.
func (c dsseCheck) want(payloadType string, payload []byte) tlog.Want {
	return tlog.Want{Digest: c.paeDigest, Signature: c.sig, PublicKey: c.key.pub, Envelope: &tlog.Envelope{PayloadType: payloadType, Payload: payload}}
}
