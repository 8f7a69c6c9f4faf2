//go:build linux

package e2e

import (
	"encoding/json"
	"testing"
)

// TestTreeAndCleanRealRegistry: tree lists both storage schemes and clean
// removes them from a real registry (deletes enabled, no referrers API).
func TestTreeAndCleanRealRegistry(t *testing.T) {
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	d := reg.pushImage(t, "tree/app:v1")
	pw := []string{"IMGSIGN_PASSWORD=pw"}
	run(t, pw, bin, args("sign", "--key", k+".key", reg.flags(), d.String())...).must(t, 0, "Signed")

	out := run(t, nil, bin, args("tree", "-o", "json", reg.flags(), d.String())...).must(t, 0, "")
	var tree struct {
		ReferrersAPI bool `json:"referrersAPI"`
		Attachments  []struct {
			Kind, Scheme, KeyHint string
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &tree); err != nil {
		t.Fatal(err)
	}
	if tree.ReferrersAPI || len(tree.Attachments) != 2 {
		t.Fatalf("tree = %+v", tree)
	}
	run(t, nil, bin, args("clean", "--yes", "--type", "signature", reg.flags(), d.String())...).must(t, 0, "Removed 1 legacy tag(s) and 1 referrer(s)")
	run(t, nil, bin, args("verify", "--key", k+".pub", reg.flags(), d.String())...).must(t, 10, "no signatures")
	run(t, nil, bin, args("tree", reg.flags(), d.String())...).must(t, 0, "nothing attached")
}
