package verify_test

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/verify"
)

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
