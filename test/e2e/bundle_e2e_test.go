//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/imgsign/imgsign/internal/testreg"
)

// bundleRegistry is a registry for the bundle interop tests: the real
// docker-registry (no referrers API: the fallback index path), or
// go-containerregistry's registry with the referrers API.
type bundleRegistry struct {
	name  string
	host  string
	flags []string // imgsign flags
	cflag []string // cosign flags
	push  func(t *testing.T, repoTag string) name.Digest
}

func bundleRegistries(t *testing.T) []bundleRegistry {
	real := startRegistry(t, true, true)
	api := testreg.Start(t, nil, ggcrregistry.WithReferrersSupport(true))
	return []bundleRegistry{
		{
			name: "docker-registry-fallback", host: real.host, flags: real.flags(),
			cflag: []string{"--registry-cacert", real.caFile, "--registry-username", real.username, "--registry-password", real.password},
			push:  func(t *testing.T, repoTag string) name.Digest { return real.pushImage(t, repoTag) },
		},
		{
			name: "referrers-api", host: api.Host,
			cflag: []string{"--allow-http-registry"},
			push: func(t *testing.T, repoTag string) name.Digest {
				tag, _ := name.NewTag(api.Ref(repoTag))
				img, _ := random.Image(256, 1)
				if err := remote.Write(tag, img); err != nil {
					t.Fatal(err)
				}
				d, _ := img.Digest()
				return tag.Context().Digest(d.String())
			},
		},
	}
}

// TestBundleInterop: cosign v3's default output (a bundle referrer) verifies
// with imgsign, and imgsign's bundles verify with cosign v3, on a registry
// with the referrers API and on one without.
func TestBundleInterop(t *testing.T) {
	bin := imgsign(t)
	c3, c2 := tool(t, cosign3), tool(t, cosign2)
	dir := t.TempDir()
	pw := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	k := keyPair(t, dir, "k")
	root := emptyTrustedRoot(t, dir)
	for _, reg := range bundleRegistries(t) {
		t.Run(reg.name, func(t *testing.T) {
			// cosign v3, default format, signs; imgsign verifies.
			d := reg.push(t, "fromcosign/app:v1")
			run(t, pw, c3, args("sign", "--key", k+".key", "--tlog-upload=false", "--use-signing-config=false", "-y", "-a", "team=web", reg.cflag, d.String())...).must(t, 0, "")
			for _, format := range []string{"any", "bundle"} {
				r := run(t, nil, bin, args("verify", "--key", k+".pub", "--format", format, "-a", "team=web", "-o", "json", reg.flags, d.String())...)
				r.must(t, 0, "bundle signature by key")
			}
			run(t, nil, bin, args("verify", "--key", k+".pub", "--format", "legacy", reg.flags, d.String())...).must(t, 10, "no signatures")
			run(t, nil, bin, args("verify", "--key", k+".pub", "-a", "team=db", reg.flags, d.String())...).must(t, 12, "annotation")

			// imgsign signs bundles; cosign v3 verifies them.
			d2 := reg.push(t, "fromimgsign/app:v1")
			run(t, pw, bin, args("sign", "--key", k+".key", "--format", "bundle", "-a", "team=web", reg.flags, d2.String())...).must(t, 0, "bundle referrer")
			run(t, nil, c3, args("verify", "--key", k+".pub", "--insecure-ignore-tlog", "-a", "team=web", reg.cflag, d2.String())...).must(t, 0, d2.DigestStr())

			// The default (both) satisfies cosign v2, which reads only the legacy tag.
			d3 := reg.push(t, "both/app:v1")
			run(t, pw, bin, args("sign", "--key", k+".key", reg.flags, d3.String())...).must(t, 0, ".sig and bundle referrer")
			run(t, nil, c3, args("verify", "--key", k+".pub", "--insecure-ignore-tlog", reg.cflag, d3.String())...).must(t, 0, d3.DigestStr())
			run(t, nil, c2, args("verify", "--key", k+".pub", "--insecure-ignore-tlog", "--trusted-root", root, reg.cflag, d3.String())...).must(t, 0, d3.DigestStr())

			// Concurrent bundle signers lose nothing, even on the fallback index.
			d4 := reg.push(t, "race/app:v1")
			const n = 6
			done := make(chan result, n)
			prefixes := make([]string, n)
			for i := range prefixes {
				prefixes[i] = keyPair(t, dir, fmt.Sprintf("%s-r%d", reg.name, i))
			}
			for i := 0; i < n; i++ {
				go func(i int) {
					done <- run(t, pw, bin, args("sign", "--key", prefixes[i]+".key", "--format", "bundle", reg.flags, d4.String())...)
				}(i)
			}
			for i := 0; i < n; i++ {
				(<-done).must(t, 0, "Signed")
			}
			verifyArgs := []string{"verify", "--format", "bundle", "--threshold", fmt.Sprint(n)}
			for _, p := range prefixes {
				verifyArgs = append(verifyArgs, "--key", p+".pub")
			}
			out := run(t, nil, bin, args(verifyArgs, reg.flags, d4.String())...)
			out.must(t, 0, fmt.Sprintf("%d valid signature(s)", n))
			if strings.Count(out.stderr, "bundle signature by key") != n {
				t.Fatalf("want %d bundle signatures:\n%s", n, out.stderr)
			}
		})
	}
}
