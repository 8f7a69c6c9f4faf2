package verify_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
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

// The attestations of one image are read within a total: once it is
// spent, later ones are not downloaded, and a rejection says why.
func TestAttestationTotalBytes(t *testing.T) {
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("total/app:v1"))
	h, _ := v1.NewHash(d.DigestStr())
	for _, fill := range []string{"a", "b", "c"} {
		stmt, _ := statement.ForImage(h, slsa02, json.RawMessage(`{"x":"`+strings.Repeat(fill, 3000)+`"}`), nil)
		attachAtt(t, f, d, f.key, statement.PayloadType, stmt, slsa02)
	}
	c, err := oci.NewClient(oci.Options{Retries: -1, Limits: oci.Limits{MaxAttestationBytes: 8000, MaxAttestationTotalBytes: 9000}})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	res, err := f.verifyAtt(t, d, verify.AttestationOptions{PredicateType: slsa02, Format: verify.FormatLegacy}, f.key.Public())
	if err != nil || len(res.Attestations) != 2 || len(res.Rejected) != 1 {
		t.Fatalf("err = %v, %d verified, rejected %+v; want 2 verified (about 4500 bytes each) and 1 over the total", err, len(res.Attestations), res.Rejected)
	}
	if r := res.Rejected[0].Reason; !strings.Contains(r, "9000 bytes allowed in total") {
		t.Fatalf("reason %q does not name the total", r)
	}
}
