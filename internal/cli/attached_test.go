package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/imgsign/imgsign/internal/testreg"
)

func TestTreeAndClean(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers-api=%v", api), func(t *testing.T) {
			reg := testreg.Start(t, nil, registry.WithReferrersSupport(api))
			img := reg.PushImage(t, reg.Ref("t/app:v1"))
			dir := t.TempDir()
			prefix := filepath.Join(dir, "k")
			env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
			env("pw").do(t, "sign", "--key", prefix+".key", img.String()).expect(t, ExitOK, "Signed")

			r := env("").do(t, "tree", "-o", "json", img.String())
			r.expect(t, ExitOK, "")
			var tree treeResult
			if err := json.Unmarshal([]byte(r.stdout), &tree); err != nil {
				t.Fatal(err)
			}
			if tree.ReferrerAPI != api || len(tree.Attachments) != 2 {
				t.Fatalf("tree = %+v", tree)
			}
			kinds := map[string]int{}
			for _, a := range tree.Attachments {
				kinds[a.Scheme+"/"+a.Kind]++
				if a.Scheme == "referrer" && a.KeyHint == "" {
					t.Errorf("no key hint for the bundle: %+v", a)
				}
			}
			if kinds["legacy/signature"] != 1 || kinds["referrer/signature"] != 1 {
				t.Errorf("kinds = %v", kinds)
			}
			text := env("").do(t, "tree", img.String())
			if !strings.Contains(text.stdout, "signature") || !strings.Contains(text.stdout, img.DigestStr()) {
				t.Errorf("text tree:\n%s", text.stdout)
			}

			env("").do(t, "clean", img.String()).expect(t, ExitUsage, "--yes")
			env("").do(t, "clean", "--yes", "--type", "attestation", img.String()).expect(t, ExitOK, "Removed 0 legacy tag(s) and 0 referrer(s)")
			env("").do(t, "clean", "--yes", "--type", "signature", img.String()).expect(t, ExitOK, "Removed 1 legacy tag(s) and 1 referrer(s)")
			env("").do(t, "verify", "--key", prefix+".pub", img.String()).expect(t, ExitNoSignatures, "no signatures")
			after := env("").do(t, "tree", "-o", "json", img.String())
			var empty treeResult
			json.Unmarshal([]byte(after.stdout), &empty)
			if len(empty.Attachments) != 0 {
				t.Fatalf("attachments left after clean: %+v", empty.Attachments)
			}
		})
	}
}
