package reponame

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// Every spelling of a repository has one normal form, the one
// go-containerregistry gives the plainest spelling.
func TestRepository(t *testing.T) {
	for want, spellings := range map[string][]string{
		"registry.example.com/team/app":  {"registry.example.com/team/app", "registry.example.com:443/team/app", "REGISTRY.example.com:443/team/app", "registry.example.com:0443/team/app"},
		"registry.example.com:5000/app":  {"registry.example.com:5000/app", "Registry.Example.com:5000/app"},
		"registry.example.com:4430/app":  {"registry.example.com:4430/app"},
		"registry.example.com:44/app":    {"registry.example.com:44/app"},
		"index.docker.io/library/alpine": {"docker.io/library/alpine", "index.docker.io/library/alpine", "docker.io:443/library/alpine", "index.docker.io:443/library/alpine", "DOCKER.IO/library/alpine"},
		"index.docker.io/myorg/app":      {"docker.io/myorg/app", "index.docker.io:443/myorg/app"},
		"127.0.0.1/app":                  {"127.0.0.1:443/app"},
		"[::1]/app":                      {"[::1]:443/app"},
		"[::1]:5000/app":                 {"[::1]:5000/app"},
		"registry":                       {"registry:443", "REGISTRY"},
	} {
		for _, s := range spellings {
			if got := Repository(s); got != want {
				t.Errorf("Repository(%q) = %q, want %q", s, got, want)
			}
		}
	}
	// Image references as users write them: go-containerregistry adds
	// the registry and library/, this package the rest.
	for _, ref := range []string{"alpine", "alpine:3", "docker.io/alpine", "docker.io:443/library/alpine:3", "index.docker.io/library/alpine@sha256:" + "0000000000000000000000000000000000000000000000000000000000000000"} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := Repository(r.Context().Name()); got != "index.docker.io/library/alpine" {
			t.Errorf("%s: %s", ref, got)
		}
	}
}
