package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
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

// Bundles listed without annotations (cosign v3's entries in a fallback
// index) are told apart by reading them: tree labels them, and clean
// --type attestation leaves the signature bundle alone.
func TestTreeAndCleanUnannotatedBundles(t *testing.T) {
	reg := testreg.Start(t, nil, registry.WithReferrersSupport(false))
	img := reg.PushImage(t, reg.Ref("t/app:v1"))
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	env("pw").do(t, "sign", "--format", "bundle", "--key", prefix+".key", img.String()).expect(t, ExitOK, "Signed")
	pred := filepath.Join(dir, "sbom.json")
	os.WriteFile(pred, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), 0o644)
	env("pw").do(t, "attest", "--key", prefix+".key", "--type", "cyclonedx", "--predicate", pred, img.String()).expect(t, ExitOK, "Attested")

	// Strip the entries' annotations, as cosign v3 writes them.
	tag, _ := name.NewTag(reg.Ref("t/app:sha256-" + strings.TrimPrefix(img.DigestStr(), "sha256:")))
	desc, err := remote.Get(tag)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("fallback index: %v %v", idx, err)
	}
	for i := range idx.Manifests {
		idx.Manifests[i].Annotations = nil
	}
	raw, _ := json.Marshal(idx)
	if err := remote.Put(tag, rawIndex(raw)); err != nil {
		t.Fatal(err)
	}

	r := env("").do(t, "tree", "-o", "json", img.String())
	var tree treeResult
	if err := json.Unmarshal([]byte(r.stdout), &tree); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, a := range tree.Attachments {
		if a.Scheme == "referrer" {
			kinds[a.Kind]++
		}
	}
	if kinds[kindSignature] != 1 || kinds[kindAttestation] != 1 {
		t.Fatalf("kinds %v, want a signature and an attestation: %+v", kinds, tree.Attachments)
	}
	env("").do(t, "clean", "--yes", "--type", "attestation", img.String()).expect(t, ExitOK, "1 referrer(s)")
	env("").do(t, "verify", "--format", "bundle", "--key", prefix+".pub", img.String()).expect(t, ExitOK, "Verified")
}

type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
