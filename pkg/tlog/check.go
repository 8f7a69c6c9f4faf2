package tlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Policy is how a verification treats the transparency log.
type Policy struct {
	// Trust holds the trusted logs; without any, entries cannot be checked
	// and are only counted.
	Trust *Trust
	// Online, when set, is a Rekor v1 log asked about signatures that
	// carry no entry.
	Online *Client
	// Require rejects a signature without a verified entry.
	Require bool
}

// Result is what Check found about one signature.
type Result struct {
	// Facts are the verified entries (one per distinct entry).
	Facts []Facts
	// Unchecked counts entries present but not checked: no log trusted.
	Unchecked int
}

// ErrRequired is wrapped when Require finds no verified entry.
var ErrRequired = errors.New("no transparency-log entry")

// Check applies p to a signature described by w and the entries that
// travel with it. Every entry present must verify (an invalid entry is a
// rejection, never ignored); with none present, the online log is asked;
// with Require, at least one verified entry is needed. The error wraps
// ErrInvalid, ErrRequired or a lookup failure.
func (p Policy) Check(ctx context.Context, w Want, entries []*Entry) (Result, error) {
	var r Result
	switch {
	case len(entries) > 0 && p.Trust.Empty():
		r.Unchecked = len(entries)
	case len(entries) > 0:
		for _, e := range entries {
			f, err := p.Trust.Verify(e, w)
			if err != nil {
				return r, err
			}
			r.Facts = mergeFacts(r.Facts, *f)
		}
	case p.Online != nil && !p.Trust.Empty():
		found, err := p.Online.Lookup(ctx, w)
		if err != nil {
			return r, fmt.Errorf("transparency-log lookup: %w", err)
		}
		// The log may hold entries of other signatures over the same
		// payload: those are not this signature's, and not forgeries.
		var why []string
		for _, e := range found {
			f, err := p.Trust.Verify(e, w)
			if err != nil {
				why = append(why, err.Error())
				continue
			}
			r.Facts = append(r.Facts, *f)
			break
		}
		if len(r.Facts) == 0 && p.Require {
			msg := fmt.Sprintf("no entry for this signature in %s (%d entries for its payload checked)", p.Online.URL(), len(found))
			if len(why) > 0 {
				msg += ": " + strings.Join(why, "; ")
			}
			return r, fmt.Errorf("%w: %s", ErrRequired, msg)
		}
	}
	if p.Require && len(r.Facts) == 0 {
		if r.Unchecked > 0 {
			return r, fmt.Errorf("%w could be checked: no log is trusted (give --rekor-key or --trusted-root)", ErrRequired)
		}
		return r, fmt.Errorf("%w (required by --require-tlog)", ErrRequired)
	}
	return r, nil
}

// mergeFacts adds f to facts; the same entry met twice (cosign's annotation
// and imgsign's carry one entry in two forms) is reported once, with
// everything checked on it.
func mergeFacts(facts []Facts, f Facts) []Facts {
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
