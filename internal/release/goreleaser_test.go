package release

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	configPath = "../../.goreleaser.yaml"
	repoRoot   = "../.."
	versionPkg = "github.com/imgsign/imgsign/internal/version"
	// sizeBudget is the most the default release binary may weigh (stripped,
	// every KMS provider linked), on the platform the test runs on.
	sizeBudget = 40_000_000
)

// releaseTags are the build tags of every release build (and of `make
// build`): grpcnotrace keeps gRPC from linking golang.org/x/net/trace, whose
// html/template use of reflection turns off the linker's removal of unused
// methods (10 MB).
var releaseTags = []string{"grpcnotrace"}

// config is the part of .goreleaser.yaml this test relies on. It is decoded
// with KnownFields, so a key that is misspelt, misplaced or not declared here
// fails the test: add a field when the configuration grows a key. (goreleaser
// itself also decodes strictly; scripts/goreleaser-check.sh runs it.)
type config struct {
	Version     int    `yaml:"version"`
	ProjectName string `yaml:"project_name"`
	Before      struct {
		Hooks []string `yaml:"hooks"`
	} `yaml:"before"`
	Builds   []build   `yaml:"builds"`
	Archives []archive `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	Snapshot struct {
		VersionTemplate string `yaml:"version_template"`
	} `yaml:"snapshot"`
	Changelog struct {
		Sort string `yaml:"sort"`
	} `yaml:"changelog"`
	Release struct {
		GitHub struct {
			Owner string `yaml:"owner"`
			Name  string `yaml:"name"`
		} `yaml:"github"`
	} `yaml:"release"`

	// The container image and its signature: kos_test.go.
	Kos         []ko         `yaml:"kos"`
	DockerSigns []dockerSign `yaml:"docker_signs"`
}

type build struct {
	ID           string   `yaml:"id"`
	Main         string   `yaml:"main"`
	Binary       string   `yaml:"binary"`
	Env          []string `yaml:"env"`
	Tags         []string `yaml:"tags"`
	Goos         []string `yaml:"goos"`
	Goarch       []string `yaml:"goarch"`
	Flags        []string `yaml:"flags"`
	Ldflags      []string `yaml:"ldflags"`
	ModTimestamp string   `yaml:"mod_timestamp"`
}

type archive struct {
	ID              string   `yaml:"id"`
	IDs             []string `yaml:"ids"`
	NameTemplate    string   `yaml:"name_template"`
	Formats         []string `yaml:"formats"`
	FormatOverrides []struct {
		Goos    string   `yaml:"goos"`
		Formats []string `yaml:"formats"`
	} `yaml:"format_overrides"`
	Files []string `yaml:"files"`
}

func decode(data []byte) (config, error) {
	var c config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return c, errors.New("more than one YAML document")
	}
	return c, nil
}

func load(t *testing.T) config {
	t.Helper()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decode(data)
	if err != nil {
		t.Fatalf("%s: %v", configPath, err)
	}
	return c
}

// TestDecodeIsStrict makes sure the decoding above would catch a typo.
func TestDecodeIsStrict(t *testing.T) {
	for _, doc := range []string{
		"version: 2\nbuilds:\n  - main: ./cmd/imgsign\n    go_os: [linux]\n",
		"version: 2\narchives:\n  - format_overrides:\n      - goos: windows\n        format: zip\n",
		"version: 2\nchecksum:\n  algorithim: sha256\n",
		"version: 2\nversion: 2\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// template matches a goreleaser template such as "{{ .Version }}" or
// "{{.Version}}", capturing the field.
var template = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// xFlags returns the -X assignments in ldflags: variable => value, with each
// template "{{ .Field }}" in a value written as "<Field>". (goreleaser
// expands the templates before Go splits the flags at spaces.)
func xFlags(t *testing.T, ldflags []string) map[string]string {
	t.Helper()
	ld := template.ReplaceAllString(strings.Join(ldflags, " "), "<$1>")
	fields := strings.Fields(ld)
	x := map[string]string{}
	for i, f := range fields {
		if f != "-X" {
			continue
		}
		if i+1 == len(fields) {
			t.Fatalf("ldflags end in -X")
		}
		name, value, ok := strings.Cut(fields[i+1], "=")
		if !ok {
			t.Fatalf("ldflags: -X %s lacks =", fields[i+1])
		}
		x[name] = value
	}
	return x
}

func TestGoreleaserConfig(t *testing.T) {
	c := load(t)
	if c.Version != 2 {
		t.Errorf("version = %d, want 2 (goreleaser v2 configuration)", c.Version)
	}

	if len(c.Builds) != 2 {
		t.Fatalf("%d builds, want 2 (default and pkcs11)", len(c.Builds))
	}
	b := c.Builds[0]
	if b.ID != "imgsign" || !slices.Equal(b.Tags, releaseTags) {
		t.Errorf("first build = %q with tags %v, want the default build imgsign with tags %v", b.ID, b.Tags, releaseTags)
	}
	p := c.Builds[1]
	if p.ID != "imgsign-pkcs11" || !slices.Equal(p.Tags, append(slices.Clone(releaseTags), "pkcs11")) || !slices.Contains(p.Env, "CGO_ENABLED=1") ||
		!slices.Equal(p.Goos, []string{"linux"}) || p.Main != b.Main || p.Binary != b.Binary ||
		!slices.Equal(p.Ldflags, b.Ldflags) || !slices.Equal(p.Flags, b.Flags) || p.ModTimestamp != b.ModTimestamp {
		t.Errorf("pkcs11 build = %+v: want id imgsign-pkcs11, tags %v + pkcs11, CGO_ENABLED=1, linux only, and the default build's main, binary, flags, ldflags and mod_timestamp", p, releaseTags)
	}
	if b.Main != "./cmd/imgsign" || b.Binary != "imgsign" {
		t.Errorf("build main, binary = %q, %q; want ./cmd/imgsign, imgsign", b.Main, b.Binary)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, b.Main, "main.go")); err != nil {
		t.Errorf("build main: %v", err)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("env = %v: CGO_ENABLED=0 is needed for static cross-builds", b.Env)
	}
	if !sameSet(b.Goos, []string{"linux", "darwin", "windows"}) {
		t.Errorf("goos = %v, want linux, darwin, windows", b.Goos)
	}
	if !sameSet(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("goarch = %v, want amd64, arm64", b.Goarch)
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^TAGS\s*:=\s*(.*)$`).FindSubmatch(mk); m == nil || !slices.Equal(strings.Fields(string(m[1])), releaseTags) {
		t.Errorf("Makefile TAGS = %q, want the release's tags %v (make build and make bench measure the release binary)", m, releaseTags)
	}
	if !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("flags = %v, want -trimpath (reproducible builds)", b.Flags)
	}
	if m := template.FindStringSubmatch(b.ModTimestamp); m == nil || m[1] != "CommitTimestamp" {
		t.Errorf("mod_timestamp = %q, want {{ .CommitTimestamp }} (reproducible builds)", b.ModTimestamp)
	}

	x := xFlags(t, b.Ldflags)
	for v, field := range map[string]string{"Version": "Version", "Commit": "FullCommit", "Date": "CommitDate"} {
		value, ok := x[versionPkg+"."+v]
		if !ok {
			t.Errorf("ldflags do not set %s.%s (-X flags: %v)", versionPkg, v, x)
			continue
		}
		if value != "<"+field+">" {
			t.Errorf("ldflags set %s to %q, want {{ .%s }}", v, value, field)
		}
	}

	if len(c.Archives) != 2 {
		t.Fatalf("%d archives, want 2 (default and pkcs11)", len(c.Archives))
	}
	if pa := c.Archives[1]; !slices.Equal(pa.IDs, []string{p.ID}) || !strings.Contains(pa.NameTemplate, "pkcs11") || !slices.Equal(pa.Formats, []string{"tar.gz"}) {
		t.Errorf("pkcs11 archive = %+v: want ids [%s], a name saying pkcs11, tar.gz", pa, p.ID)
	}
	a := c.Archives[0]
	if !slices.Equal(a.IDs, []string{b.ID}) {
		t.Errorf("archive ids = %v, want only the default build %q", a.IDs, b.ID)
	}
	if !slices.Equal(a.Formats, []string{"tar.gz"}) {
		t.Errorf("archive formats = %v, want [tar.gz]", a.Formats)
	}
	if len(a.FormatOverrides) != 1 || a.FormatOverrides[0].Goos != "windows" ||
		!slices.Equal(a.FormatOverrides[0].Formats, []string{"zip"}) {
		t.Errorf("archive format_overrides = %+v, want windows: [zip]", a.FormatOverrides)
	}
	// One archive per platform: the name must tell them apart.
	var parts []string
	for _, m := range template.FindAllStringSubmatch(a.NameTemplate, -1) {
		parts = append(parts, m[1])
	}
	for _, part := range []string{"Version", "Os", "Arch"} {
		if !slices.Contains(parts, part) {
			t.Errorf("archive name_template %q lacks {{ .%s }}", a.NameTemplate, part)
		}
	}
	if !slices.Contains(a.Files, "README.md") {
		t.Errorf("archive files = %v lack README.md", a.Files)
	}
	for _, f := range a.Files {
		// goreleaser fails on a literal path that matches nothing.
		if !strings.ContainsAny(f, "*?[{") {
			if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
				t.Errorf("archive file: %v", err)
			}
		}
	}

	if alg := c.Checksum.Algorithm; alg != "" && alg != "sha256" {
		t.Errorf("checksum algorithm = %q, want sha256 (goreleaser's default)", alg)
	}
	if c.Checksum.NameTemplate == "" {
		t.Error("checksum name_template is not set")
	}
	if c.Snapshot.VersionTemplate == "" {
		t.Error("snapshot version_template is not set")
	}
	if c.Changelog.Sort != "asc" {
		t.Errorf("changelog sort = %q, want asc", c.Changelog.Sort)
	}
}

// TestLdflagsReachTheBinary builds imgsign as the release does (tags, flags,
// ldflags) and checks that `imgsign version` reports what the ldflags set,
// and that the binary is within sizeBudget.
func TestLdflagsReachTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds imgsign")
	}
	b := load(t).Builds[0]
	values := map[string]string{"Version": "9.9.9-test", "FullCommit": "0123abcd", "CommitDate": "2026-11-24T00:00:00Z"}
	ld := template.ReplaceAllStringFunc(strings.Join(b.Ldflags, " "), func(s string) string {
		field := template.FindStringSubmatch(s)[1]
		v, ok := values[field]
		if !ok {
			t.Fatalf("ldflags use {{ .%s }}, which this test does not know", field)
		}
		return v
	})
	bin := filepath.Join(t.TempDir(), "imgsign")
	args := append([]string{"build", "-tags", strings.Join(b.Tags, ",")}, b.Flags...)
	args = append(args, "-ldflags", ld, "-o", bin, filepath.Join(repoRoot, b.Main))
	build := exec.Command("go", args...)
	build.Env = append(os.Environ(), b.Env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if fi, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	} else if fi.Size() > sizeBudget {
		t.Errorf("release binary is %d bytes, over the %d budget: `go run ./scripts/bench -size` lists the largest packages", fi.Size(), sizeBudget)
	} else {
		t.Logf("release binary: %d bytes (budget %d)", fi.Size(), sizeBudget)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("imgsign version: %v\n%s", err, out)
	}
	for _, want := range []string{"imgsign  9.9.9-test\n", "commit   0123abcd\n", "built    2026-11-24T00:00:00Z\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("imgsign version lacks %q:\n%s", want, out)
		}
	}
}
