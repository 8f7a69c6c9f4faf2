package oci

import (
	"context"
	"errors"
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
	// write stores entries under the tag, on condition that the tag still
	// holds what cond says (where the registry honours HTTP preconditions),
	// and returns the new digest. A failed condition is errPrecondition.
	write func([]v1.Descriptor, precondition) (v1.Hash, error)
	// reload uploads the blobs the new entries need again; called when the
	// registry says a referenced blob is unknown.
	reload func() error
}

// Bounds of one converge call.
const (
	// writeAttempts bounds the writes.
	writeAttempts = 25
	// maxRounds bounds the reads (writes, confirmation reads, lost races).
	maxRounds = 400
)

// Timing of converge. A writer's wait after its last write is a lease,
// not a guess at when others are done: every writer sends its write at most
// maxStale after the read it merged from (else it reads again), so a writer
// that read before our write lands its write within maxStale plus one
// request's flight of it. Reading back once after that, and finding our
// entries, proves no such writer dropped them.
const (
	// maxStale is how old the read a write is merged from may be.
	maxStale = 15 * time.Millisecond
	// leaseSlack is added to the lease beside twice the slowest request
	// seen, which stands for the flight of another writer's write.
	leaseSlack = 5 * time.Millisecond
)

// converge adds adds to l, keeping every entry already there, by verified
// writes: read, merge, write (conditionally, where the registry honours
// If-Match), read back, and merge again until the list read back holds
// our entries and every entry seen in it so far. present reports whether
// entries already hold adds[i].
//
// Registries here (distribution 2.8, go-containerregistry's registry) have
// no compare-and-swap for tags: they send an ETag but ignore If-Match on a
// PUT, so two writers can each read the list, add their entry and write,
// and the second write drops the first entry. What keeps entries from
// being lost:
//
//   - a write is sent at most maxStale after the read it merges from (the
//     list is read again otherwise, and the merge redone if it changed);
//   - after its last write, a writer reads the list back once its lease
//     (maxStale, twice the slowest request it saw, leaseSlack) has passed:
//     any writer that read before our write has written by then, and if
//     it dropped our entry, we merge it in again and write again;
//   - each writer merges in again every entry it has seen stored (entries
//     of others too), so a stale write is also repaired by any writer still
//     running, not only by the one whose entry it dropped;
//   - a writer that saw others write waits for two leases in a row with
//     the list unchanged.
//
// The rounds are bounded (writeAttempts, maxRounds). A writer alone waits
// one lease (tens of milliseconds on a near registry) after its write.
func (c *Client) converge(ctx context.Context, l list, adds []v1.Descriptor, present func(entries []v1.Descriptor, i int) bool) (AddResult, error) {
	var (
		res       AddResult
		firstRead = true
		seen      []v1.Descriptor // every entry seen stored, in order
		seenKeys  = map[string]bool{}
		written   v1.Hash   // digest of our last write
		last      v1.Hash   // digest of the previous read
		readAt    time.Time // when the last read finished
		slowest   time.Duration
		contended bool // another writer was seen
		confirmed int  // lease reads in a row showing the same complete list
		noConds   bool // the registry fails preconditions it should pass
	)
	timed := func(f func() error) error {
		start := time.Now()
		err := f()
		slowest = max(slowest, time.Since(start))
		return err
	}
	read := func() (current []v1.Descriptor, digest v1.Hash, err error) {
		err = timed(func() error { current, digest, err = l.read(); return err })
		readAt = time.Now()
		return current, digest, err
	}
	lease := func() time.Duration { return maxStale + 2*slowest + leaseSlack }
	for round := 0; round < maxRounds && res.Writes < writeAttempts; round++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		current, digest, err := read()
		if err != nil {
			return res, err
		}
		if !firstRead && digest != last && digest != written {
			contended = true
		}
		changed := digest != last
		last = digest
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
		// Entries seen before and dropped since: a stale writer overwrote
		// them; put them back.
		stored := map[string]bool{}
		for _, e := range current {
			stored[entryKey(e)] = true
		}
		for _, e := range missing {
			stored[entryKey(e)] = true // ours: never added twice
		}
		for _, e := range seen {
			if k := entryKey(e); !stored[k] {
				stored[k] = true
				missing = append(missing, e)
				contended = true
			}
		}
		for _, e := range current {
			if k := entryKey(e); !seenKeys[k] {
				seenKeys[k] = true
				seen = append(seen, e)
			}
		}
		if len(missing) == 0 {
			res.Digest = digest
			if res.Writes == 0 {
				return res, nil // nothing to add
			}
			// A read one lease after our write (or after the previous such
			// read) that holds everything.
			if changed {
				confirmed = 0
			}
			confirmed++
			if confirmed >= 2 || (!contended && confirmed >= 1) {
				return res, nil
			}
			sleep(ctx, lease())
			continue
		}
		confirmed = 0
		entries := append(append([]v1.Descriptor(nil), current...), missing...)
		if len(entries) > c.limits.MaxSignatures {
			return res, fmt.Errorf("%s: %w: adding would make %d entries (limit %d)", l.name, ErrTooMany, len(entries), c.limits.MaxSignatures)
		}
		if l.prepare != nil {
			if err := l.prepare(entries); err != nil { // several requests: not one flight
				return res, err
			}
			// Requests went by since the read: if the list moved
			// meanwhile, merge again from what is stored now rather than
			// write a stale list.
			if _, now, err := read(); err != nil {
				return res, err
			} else if now != digest {
				contended = true
				last = now
				continue
			}
		}
		if time.Since(readAt) > maxStale {
			continue // too old to merge from: read again
		}
		cond := precondition{digest: digest, off: noConds}
		var d v1.Hash
		err = timed(func() error { d, err = l.write(entries, cond); return err })
		res.Writes++
		switch {
		case errors.Is(err, errPrecondition):
			// Someone wrote since our read (or the registry misjudges the
			// condition: then stop sending it if the list did not move).
			if _, now, rerr := l.read(); rerr == nil && now == digest {
				noConds = true
			}
			contended = true
			continue
		case isBlobUnknown(err) && l.reload != nil:
			// Concurrent uploads of the same blob (identical payloads from
			// several signers) can leave it briefly unlinked in some
			// registries: upload again and retry.
			sleep(ctx, jitter())
			if err := l.reload(); err != nil {
				return res, err
			}
			continue
		case err != nil:
			return res, err
		}
		res.Digest, written, last = d, d, d
		sleep(ctx, lease())
	}
	return res, fmt.Errorf("%s: concurrent writers kept replacing it; gave up after %d writes", l.name, res.Writes)
}

// entryKey identifies a list entry: its digest and, for a legacy
// signature layer, its signature (identical payloads signed by several
// keys are several entries).
func entryKey(d v1.Descriptor) string {
	return d.Digest.String() + "\x00" + d.Annotations[SignatureAnnotation]
}
