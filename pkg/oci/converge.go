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
	name  string
	read  func() ([]v1.Descriptor, v1.Hash, error) // none (and no error) when the tag is missing
	write func([]v1.Descriptor) (v1.Hash, error)
	// reload uploads the blobs the new entries need again; called when the
	// registry says a referenced blob is unknown.
	reload func() error
}

// writeAttempts bounds the writes of one converge call.
const writeAttempts = 25

// Settle schedules: after a write, the list is read again at these
// intervals and every entry of ours must still be there each time, so that
// a writer who read the list before our write and writes after it is
// noticed (and repaired). When another writer was seen, the watch is longer.
var (
	quietSettle     = []time.Duration{100 * time.Millisecond}
	contendedSettle = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second}
)

// converge adds adds to l, keeping every entry already there, and returns
// once the stored list holds them all on consecutive reads. present reports
// whether entries already hold adds[i].
//
// Registries offer no compare-and-swap for tags: two writers can each read
// the list, add their entry and write, and the second write drops the first
// entry. So the list is read back after writing; whoever finds an entry of
// theirs missing merges it in again.
func (c *Client) converge(ctx context.Context, l list, adds []v1.Descriptor, present func(entries []v1.Descriptor, i int) bool) (AddResult, error) {
	var (
		res       AddResult
		checks    int  // settle reads since the last write
		contended bool // another writer was seen
		firstRead = true
	)
	for res.Writes < writeAttempts {
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
			if res.Writes == 0 {
				res.Digest = digest
				return res, nil // nothing to add
			}
			if digest != res.Digest {
				contended = true // someone wrote after us, keeping ours
			}
			schedule := quietSettle
			if contended {
				schedule = contendedSettle
			}
			if checks >= len(schedule) {
				res.Digest = digest
				return res, nil
			}
			sleep(ctx, schedule[checks]+jitter())
			checks++
			continue
		}
		if res.Writes > 0 {
			contended = true // a concurrent write dropped ours
		}
		checks = 0
		entries := append(current, missing...)
		if len(entries) > c.limits.MaxSignatures {
			return res, fmt.Errorf("%s: %w: adding would make %d entries (limit %d)", l.name, ErrTooMany, len(entries), c.limits.MaxSignatures)
		}
		d, err := l.write(entries)
		res.Writes++
		if isBlobUnknown(err) && l.reload != nil {
			// Concurrent uploads of the same blob (identical payloads from
			// several signers) can leave it briefly unlinked in some
			// registries: upload again and retry.
			contended = true
			sleep(ctx, jitter())
			if err := l.reload(); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			return res, err
		}
		res.Digest = d
		sleep(ctx, jitter())
	}
	return res, fmt.Errorf("%s: concurrent writers kept replacing it; gave up after %d writes", l.name, writeAttempts)
}
