package oci

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// list is a list of descriptors stored under a tag: the layers of a legacy
// attachment manifest, or the manifests of a referrers fallback index.
type list struct {
	name string
	// read returns the stored entries and the digest of what holds them;
	// none (and no error) when the tag is missing.
	read func() ([]v1.Descriptor, v1.Hash, error)
	// prepare uploads what a write of entries needs (nil: nothing).
	prepare func([]v1.Descriptor) error
	// write stores entries under the tag and returns the new digest.
	write func([]v1.Descriptor) (v1.Hash, error)
	// reload uploads the blobs the new entries need again; called when the
	// registry says a referenced blob is unknown.
	reload func() error
}

// Bounds of one converge call.
const (
	// writeAttempts bounds the writes.
	writeAttempts = 25
	// maxRounds bounds the reads (writes, settle reads, lost races).
	maxRounds = 400
)

// After our last write, the list is watched until it has not changed for
// settleQuiet, reading every settlePoll: every writer that read the list
// before our write writes within that burst, and if one dropped our entry,
// we see it and merge it in again.
const (
	settleQuiet = 600 * time.Millisecond
	settlePoll  = 120 * time.Millisecond
)

// converge adds adds to l, keeping every entry already there, and returns
// once the stored list holds them all and has been stable for a while.
// present reports whether entries already hold adds[i].
//
// Registries offer no compare-and-swap for tags: two writers can each read
// the list, add their entry and write, and the second write drops the
// first entry. Two things keep entries from being lost: the list is read
// again just before each write (and the merge redone if it changed), which
// leaves a stale window of one request; and every writer watches the list
// after writing until writes stop, merging its entry in again if a writer
// that was stale dropped it.
func (c *Client) converge(ctx context.Context, l list, adds []v1.Descriptor, present func(entries []v1.Descriptor, i int) bool) (AddResult, error) {
	var (
		res         AddResult
		lastSeen    v1.Hash
		stableSince time.Time
		firstRead   = true
	)
	for round := 0; round < maxRounds && res.Writes < writeAttempts; round++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		current, digest, err := l.read()
		if err != nil {
			return res, err
		}
		var missing []v1.Descriptor
		for i := range adds {
			if !present(current, i) {
				missing = append(missing, adds[i])
			}
		}
		if firstRead {
			res.Added = len(missing)
			firstRead = false
		}
		if len(missing) == 0 {
			res.Digest = digest
			if res.Writes == 0 {
				return res, nil // nothing to add
			}
			if digest != lastSeen {
				lastSeen, stableSince = digest, time.Now()
			}
			if time.Since(stableSince) >= settleQuiet {
				return res, nil
			}
			sleep(ctx, settlePoll+jitter())
			continue
		}
		entries := append(current, missing...)
		if len(entries) > c.limits.MaxSignatures {
			return res, fmt.Errorf("%s: %w: adding would make %d entries (limit %d)", l.name, ErrTooMany, len(entries), c.limits.MaxSignatures)
		}
		if l.prepare != nil {
			if err := l.prepare(entries); err != nil {
				return res, err
			}
			// Preparing took requests; if the list moved meanwhile, merge
			// again from what is stored now rather than write a stale list.
			if _, now, err := l.read(); err != nil {
				return res, err
			} else if now != digest {
				continue
			}
		}
		d, err := l.write(entries)
		res.Writes++
		if isBlobUnknown(err) && l.reload != nil {
			// Concurrent uploads of the same blob (identical payloads from
			// several signers) can leave it briefly unlinked in some
			// registries: upload again and retry.
			sleep(ctx, jitter())
			if err := l.reload(); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			return res, err
		}
		res.Digest, lastSeen, stableSince = d, d, time.Now()
		sleep(ctx, jitter())
	}
	return res, fmt.Errorf("%s: concurrent writers kept replacing it; gave up after %d writes", l.name, res.Writes)
}
