package payload

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

const digest = "sha256:72a3c1cb2ad7a1b2e0d2f8dfa0a2b61c4e1f3a5b6c7d8e9f00112233445566ff"

func TestBuildMatchesCosign(t *testing.T) {
	ref, err := name.NewDigest("127.0.0.1:5001/demo/app@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Build(ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"critical":{"identity":{"docker-reference":"127.0.0.1:5001/demo/app"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`
	if string(got) != want {
		t.Errorf("Build =\n%s\nwant\n%s", got, want)
	}
	got, _ = Build(ref, map[string]string{"team": "web", "env": "prod"})
	if !strings.HasSuffix(string(got), `"optional":{"env":"prod","team":"web"}}`) {
		t.Errorf("annotations: %s", got)
	}
	p, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest.String() != digest || p.DockerReference != "127.0.0.1:5001/demo/app" {
		t.Errorf("Parse = %+v", p)
	}
	if m := p.MissingAnnotations(map[string]string{"team": "web"}); len(m) != 0 {
		t.Errorf("missing = %v", m)
	}
	if m := p.MissingAnnotations(map[string]string{"team": "db", "x": "y"}); len(m) != 2 {
		t.Errorf("missing = %v, want both", m)
	}
}

func TestParseRejects(t *testing.T) {
	good := `{"critical":{"identity":{"docker-reference":"r/a"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("good payload: %v", err)
	}
	cases := map[string]string{
		"empty":            ``,
		"not json":         `nope`,
		"array":            `[]`,
		"trailing":         good + `{}`,
		"no critical":      `{"optional":null}`,
		"unknown critical": strings.Replace(good, `"type"`, `"extra":1,"type"`, 1),
		"unknown top":      strings.Replace(good, `"optional"`, `"other":1,"optional"`, 1),
		"wrong type":       strings.Replace(good, "cosign container image signature", "atomic container signature", 1),
		"bad digest":       strings.Replace(good, digest, "sha256:abc", 1),
		"md5 digest":       strings.Replace(good, digest, "md5:"+strings.Repeat("a", 32), 1),
		"no reference":     strings.Replace(good, `"r/a"`, `""`, 1),
		"optional string":  strings.Replace(good, `"optional":null`, `"optional":"x"`, 1),
	}
	for name, in := range cases {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
