package verify

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

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

// checkLog checks the log entries that travel with a signature (entries;
// parseErrs are entries that did not even parse) or, with none and an
// online log, looks the signature up. Every entry present must verify;
// with RequireTlog, at least one must.
func (v *Verifier) checkLog(ctx context.Context, w tlog.Want, entries []*tlog.Entry, parseErrs []error, require bool) logCheck {
	var c logCheck
	if len(parseErrs) > 0 {
		c.reason = "transparency-log entry: " + parseErrs[0].Error()
		return c
	}
	switch {
	case len(entries) > 0 && v.logs.Empty():
		c.unchecked = len(entries)
	case len(entries) > 0:
		for _, e := range entries {
			f, err := v.logs.Verify(e, w)
			if err != nil {
				c.reason = err.Error()
				return c
			}
			c.facts = mergeFacts(c.facts, *f)
		}
	case v.online != nil && !v.logs.Empty():
		found, err := v.online.Lookup(ctx, w)
		if err != nil {
			c.reason = "transparency-log lookup: " + err.Error()
			return c
		}
		// The log may hold entries of other signatures over the same
		// payload: those are not this signature's, not forgeries.
		var why []string
		for _, e := range found {
			f, err := v.logs.Verify(e, w)
			if err != nil {
				why = append(why, err.Error())
				continue
			}
			c.facts = append(c.facts, *f)
			break
		}
		if len(c.facts) == 0 && require {
			c.reason = fmt.Sprintf("no entry for this signature in %s (%d entries for its payload checked)", v.online.URL(), len(found))
			if len(why) > 0 {
				c.reason += ": " + strings.Join(why, "; ")
			}
			return c
		}
	}
	if require && len(c.facts) == 0 {
		switch {
		case c.unchecked > 0:
			c.reason = "its transparency-log entry cannot be checked: no log is trusted (give --rekor-key or --trusted-root)"
		default:
			c.reason = "no transparency-log entry (required by --require-tlog)"
		}
	}
	return c
}

// digest is the SHA-256 of b.
func digest(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// mergeFacts adds f to facts; the same entry met twice (cosign's annotation
// and imgsign's carry one entry in two forms) is reported once, with
// everything checked on it.
func mergeFacts(facts []tlog.Facts, f tlog.Facts) []tlog.Facts {
	for i, have := range facts {
		if have.LogID == f.LogID && have.LogIndex == f.LogIndex {
			for _, c := range f.Checked {
				if !slices.Contains(have.Checked, c) {
					facts[i].Checked = append(facts[i].Checked, c)
				}
			}
			return facts
		}
	}
	return append(facts, f)
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
	return tlog.Want{Digest: digest(c.pae), Signature: c.sig, PublicKey: c.key.pub, Envelope: &tlog.Envelope{PayloadType: payloadType, Payload: payload}}
}
