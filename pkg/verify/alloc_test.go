package verify_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
)

// A validly signed attestation near the size limit is verified with a
// bounded number of copies of it: allocations are counted (deterministic),
// not timed.
func TestLargeAttestationAllocations(t *testing.T) {
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("big/app:v1"))
	h, _ := v1.NewHash(d.DigestStr())
	pred := `{"blob":"` + strings.Repeat("x", 20<<20) + `"}`
	stmt, err := statement.ForImage(h, slsa02, json.RawMessage(pred), nil)
	if err != nil {
		t.Fatal(err)
	}
	attachAtt(t, f, d, f.key, statement.PayloadType, stmt, slsa02)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02, Format: verify.FormatLegacy}, f.key.Public())
	runtime.ReadMemStats(&after)
	if err != nil || !res.Verified {
		t.Fatalf("verify: %v %+v", err, res.Rejected)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB allocated for a %d MiB statement", alloc>>20, len(stmt)>>20)
	if alloc > uint64(4*len(stmt)) {
		t.Errorf("%d MiB allocated, more than 4 copies of the %d MiB statement", alloc>>20, len(stmt)>>20)
	}
}
