package verify

import (
	"context"
	"crypto/sha256"
	"fmt"
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
func (v *Verifier) checkLog(ctx context.Context, w tlog.Want, entries []*tlog.Entry, parseErrs []error, o Options) logCheck {
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
			c.facts = append(c.facts, *f)
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
		if len(c.facts) == 0 && o.RequireTlog {
			c.reason = fmt.Sprintf("no entry for this signature in %s (%d entries for its payload checked)", v.online.URL(), len(found))
			if len(why) > 0 {
				c.reason += ": " + strings.Join(why, "; ")
			}
			return c
		}
	}
	if o.RequireTlog && len(c.facts) == 0 {
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
