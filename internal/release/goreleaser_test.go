package release

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// config is the part of .goreleaser.yaml this test checks; decoding is
// strict so a misspelt key fails the test.
type config struct {
	Version     int    `yaml:"version"`
	ProjectName string `yaml:"project_name"`
	Before      any    `yaml:"before"`
	Builds      []struct {
		ID           string   `yaml:"id"`
		Main         string   `yaml:"main"`
		Binary       string   `yaml:"binary"`
		Env          []string `yaml:"env"`
		Goos         []string `yaml:"goos"`
		Goarch       []string `yaml:"goarch"`
		Flags        []string `yaml:"flags"`
		Ldflags      []string `yaml:"ldflags"`
		ModTimestamp string   `yaml:"mod_timestamp"`
	} `yaml:"builds"`
	Archives []struct {
		ID              string   `yaml:"id"`
		IDs             []string `yaml:"ids"`
		NameTemplate    string   `yaml:"name_template"`
		Formats         []string `yaml:"formats"`
		FormatOverrides []struct {
			Goos    string   `yaml:"goos"`
			Formats []string `yaml:"formats"`
		} `yaml:"format_overrides"`
		Files []string `yaml:"files"`
	} `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	Snapshot  any `yaml:"snapshot"`
	Changelog any `yaml:"changelog"`
	Release   any `yaml:"release"`
}

func load(t *testing.T) config {
	t.Helper()
	data, err := os.ReadFile("../../.goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	return c
}

func TestGoreleaserConfig(t *testing.T) {
	c := load(t)
	if c.Version != 2 {
		t.Errorf("version = %d, want 2", c.Version)
	}
	if len(c.Builds) != 1 {
		t.Fatalf("%d builds, want 1", len(c.Builds))
	}
	b := c.Builds[0]
	if b.Main != "./cmd/imgsign" || b.Binary != "imgsign" {
		t.Errorf("build main/binary = %s/%s", b.Main, b.Binary)
	}
	if _, err := os.Stat(filepath.Join("../..", b.Main, "main.go")); err != nil {
		t.Errorf("build main: %v", err)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Error("CGO must be off for static cross-builds")
	}
	sortEq := func(got, want []string) bool {
		g := slices.Clone(got)
		slices.Sort(g)
		return slices.Equal(g, want)
	}
	if !sortEq(b.Goos, []string{"darwin", "linux", "windows"}) || !sortEq(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("platforms = %v × %v", b.Goos, b.Goarch)
	}
	ld := strings.Join(b.Ldflags, " ")
	for _, v := range []string{"Version", "Commit", "Date"} {
		if !strings.Contains(ld, "-X github.com/imgsign/imgsign/internal/version."+v+"=") {
			t.Errorf("ldflags do not set internal/version.%s", v)
		}
	}
	if len(c.Archives) != 1 {
		t.Fatalf("%d archives, want 1", len(c.Archives))
	}
	a := c.Archives[0]
	if !slices.Equal(a.Formats, []string{"tar.gz"}) || len(a.FormatOverrides) != 1 ||
		a.FormatOverrides[0].Goos != "windows" || !slices.Equal(a.FormatOverrides[0].Formats, []string{"zip"}) {
		t.Errorf("archive formats = %v, overrides %+v", a.Formats, a.FormatOverrides)
	}
	for _, part := range []string{"{{ .Os }}", "{{ .Arch }}"} {
		if !strings.Contains(a.NameTemplate, part) {
			t.Errorf("archive name %q lacks %s: archives would collide", a.NameTemplate, part)
		}
	}
	if c.Checksum.Algorithm != "sha256" || c.Checksum.NameTemplate == "" {
		t.Errorf("checksum = %+v", c.Checksum)
	}
}

// TestLdflagsReachTheBinary builds the way the release does and checks that
// `imgsign version` reports what the ldflags set.
func TestLdflagsReachTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	c := load(t)
	ld := strings.Join(c.Builds[0].Ldflags, " ")
	r := strings.NewReplacer("{{ .Version }}", "9.9.9-test", "{{ .FullCommit }}", "0123abcd", "{{ .CommitDate }}", "2026-11-24T00:00:00Z")
	bin := filepath.Join(t.TempDir(), "imgsign")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", r.Replace(ld), "-o", bin, "../../cmd/imgsign")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	for _, want := range []string{"9.9.9-test", "0123abcd", "2026-11-24T00:00:00Z"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}
