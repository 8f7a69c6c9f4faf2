package release

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// ko is a kos: entry (goreleaser's ko pipe: the container image).
type ko struct {
	ID                 string            `yaml:"id"`
	Build              string            `yaml:"build"`
	Main               string            `yaml:"main"`
	BaseImage          string            `yaml:"base_image"`
	Repositories       []string          `yaml:"repositories"`
	Bare               bool              `yaml:"bare"`
	Platforms          []string          `yaml:"platforms"`
	Tags               []string          `yaml:"tags"`
	User               string            `yaml:"user"`
	CreationTime       string            `yaml:"creation_time"`
	KoDataCreationTime string            `yaml:"ko_data_creation_time"`
	SBOM               string            `yaml:"sbom"`
	Labels             map[string]string `yaml:"labels"`
}

// dockerSign is a docker_signs: entry.
type dockerSign struct {
	ID        string   `yaml:"id"`
	IDs       []string `yaml:"ids"`
	Artifacts string   `yaml:"artifacts"`
	Cmd       string   `yaml:"cmd"`
	Args      []string `yaml:"args"`
}

// pinnedStaticBase is a static base image (distroless or Chainguard),
// pinned by digest.
var pinnedStaticBase = regexp.MustCompile(`^(gcr\.io/distroless/static(-debian\d+)?|cgr\.dev/chainguard/static)(:[\w.-]+)?@sha256:[0-9a-f]{64}$`)

// TestKosConfig: the release publishes the webhook's image, the one
// deploy/webhook.yaml runs: built from the default build by ko (no Docker
// daemon), on a digest-pinned static base, for linux on every architecture
// the binaries have, tagged with the version and latest, reproducibly, and
// signed keyless by digest.
func TestKosConfig(t *testing.T) {
	c := load(t)
	if len(c.Kos) != 1 {
		t.Fatalf("%d kos entries, want 1", len(c.Kos))
	}
	k, b := c.Kos[0], c.Builds[0]
	if k.Build != b.ID || k.Main != b.Main {
		t.Errorf("kos build, main = %q, %q; want the default build %q, %q", k.Build, k.Main, b.ID, b.Main)
	}
	if !pinnedStaticBase.MatchString(k.BaseImage) {
		t.Errorf("kos base_image %q: want distroless/static or chainguard/static pinned by digest", k.BaseImage)
	}
	var want []string
	for _, arch := range b.Goarch {
		want = append(want, "linux/"+arch)
	}
	if !slices.Contains(b.Goos, "linux") || !sameSet(k.Platforms, want) {
		t.Errorf("kos platforms = %v, want %v (linux on every architecture of the binaries)", k.Platforms, want)
	}
	var tags []string
	for _, tag := range k.Tags {
		tags = append(tags, template.ReplaceAllString(tag, "<$1>"))
	}
	if !sameSet(tags, []string{"<Version>", "latest"}) {
		t.Errorf("kos tags = %v, want {{ .Version }} and latest", k.Tags)
	}
	if len(k.Repositories) != 1 || !k.Bare {
		t.Errorf("kos repositories = %v, bare %v: want one repository, used as written (bare)", k.Repositories, k.Bare)
	}
	if k.User != "65532:65532" {
		t.Errorf("kos user = %q, want 65532:65532 (deploy/webhook.yaml runs as 65532)", k.User)
	}
	for name, v := range map[string]string{"creation_time": k.CreationTime, "ko_data_creation_time": k.KoDataCreationTime} {
		if m := template.FindStringSubmatch(v); m == nil || m[1] != "CommitTimestamp" {
			t.Errorf("kos %s = %q, want {{ .CommitTimestamp }} (reproducible images)", name, v)
		}
	}

	// deploy/webhook.yaml runs a version of this image, not latest.
	image := webhookImage(t)
	repo, tag, _ := strings.Cut(image, ":")
	if len(k.Repositories) == 1 && repo != k.Repositories[0] {
		t.Errorf("deploy/webhook.yaml runs %s, the release publishes %s", image, k.Repositories[0])
	}
	if tag == "" || strings.HasPrefix(tag, "latest") || !regexp.MustCompile(`^\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$`).MatchString(tag) {
		t.Errorf("deploy/webhook.yaml runs %s: want a released version (X.Y.Z, optionally @sha256:...)", image)
	}

	// Once releases exist, it runs the latest one (edit it before tagging).
	if out, err := exec.Command("git", "-C", repoRoot, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*").Output(); err == nil {
		if v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v"); !strings.HasPrefix(tag, v) || len(tag) > len(v) && tag[len(v)] != '@' {
			t.Errorf("deploy/webhook.yaml runs %s, the latest release is %s", image, v)
		}
	}

	// Signed keyless, by digest.
	if len(c.DockerSigns) != 1 {
		t.Fatalf("%d docker_signs, want 1", len(c.DockerSigns))
	}
	s := c.DockerSigns[0]
	if !slices.Equal(s.IDs, []string{k.ID}) || s.Artifacts != "manifests" || s.Cmd != "cosign" {
		t.Errorf("docker_signs = %+v: want cosign over the kos image's manifests (ids [%s], artifacts: manifests)", s, k.ID)
	}
	if !slices.Contains(s.Args, "${artifact}@${digest}") || !slices.Contains(s.Args, "--yes") || slices.ContainsFunc(s.Args, func(a string) bool { return strings.HasPrefix(a, "--key") }) {
		t.Errorf("docker_signs args = %v: want a keyless signature (no --key) of ${artifact}@${digest}, non-interactive (--yes)", s.Args)
	}
}

// webhookImage is the image of the webhook container in deploy/webhook.yaml.
func webhookImage(t *testing.T) string {
	t.Helper()
	f, err := os.Open(repoRoot + "/deploy/webhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name, Image string
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("deploy/webhook.yaml: no Deployment with a container (%v)", err)
		}
		if doc.Kind == "Deployment" && len(doc.Spec.Template.Spec.Containers) > 0 {
			return doc.Spec.Template.Spec.Containers[0].Image
		}
	}
}
