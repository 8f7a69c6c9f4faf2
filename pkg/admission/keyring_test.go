package admission_test

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/admission"
)

// ring builds a keyring of key=user pairs (the password is the user's).
func ring(pairs ...string) *admission.Keyring {
	var k admission.Keyring
	for _, p := range pairs {
		key, user, _ := strings.Cut(p, "=")
		k.Add(key, authn.AuthConfig{Username: user, Password: user})
	}
	return &k
}

// users lists who Lookup gives for an image, in order.
func users(k *admission.Keyring, image string) string {
	var out []string
	for _, a := range k.Lookup(image) {
		out = append(out, a.Username)
	}
	return strings.Join(out, ",")
}

// TestKeyringRules: each of the kubelet's matching rules
// (pkg/credentialprovider), one case that matches and one that must not.
func TestKeyringRules(t *testing.T) {
	for _, tc := range []struct {
		rule  string
		keys  []string
		image string
		want  string
	}{
		// Host, with or without a scheme; Docker's /v1/ and /v2/ dropped.
		{"host", []string{"registry.example=a"}, "registry.example/team/app", "a"},
		{"another host", []string{"registry.example=a"}, "other.example/team/app", ""},
		{"https scheme stripped", []string{"https://registry.example=a"}, "registry.example/app", "a"},
		{"http scheme stripped", []string{"http://registry.example=a"}, "registry.example/app", "a"},
		{"docker URL /v1/", []string{"https://registry.example/v1/=a"}, "registry.example/app", "a"},
		{"docker URL /v2/", []string{"https://registry.example/v2/=a"}, "registry.example/app", "a"},
		{"host case", []string{"Registry.Example=a"}, "registry.example/app", "a"},
		{"a host is not a suffix", []string{"example=a"}, "registry.example/app", ""},
		{"nor a prefix", []string{"registry.example.com=a"}, "registry.example/app", ""},

		// Ports: equal, or both absent.
		{"port", []string{"registry.example:5000=a"}, "registry.example:5000/app", "a"},
		{"other port", []string{"registry.example:5000=a"}, "registry.example:5001/app", ""},
		{"key without the image's port", []string{"registry.example=a"}, "registry.example:5000/app", ""},
		{"key's port, image without", []string{"registry.example:443=a"}, "registry.example/app", ""},
		{"loopback with port", []string{"127.0.0.1:5000=a"}, "127.0.0.1:5000/app", "a"},

		// Path prefixes, the most specific key first.
		{"path prefix", []string{"quay.io/org=a"}, "quay.io/org/app", "a"},
		{"path not a prefix", []string{"quay.io/org=a"}, "quay.io/other/app", ""},
		{"path is a string prefix", []string{"quay.io/org=a"}, "quay.io/organic/app", "a"},
		{"trailing slash", []string{"quay.io/org/=a"}, "quay.io/organic/app", ""},
		{"most specific first", []string{"quay.io=host", "quay.io/org=org", "quay.io/org/app=app"}, "quay.io/org/app", "app,org,host"},
		{"order of adding does not matter", []string{"quay.io/org/app=app", "quay.io=host", "quay.io/org=org"}, "quay.io/org/other", "org,host"},
		{"path under /v2/", []string{"https://quay.io/v2/org=a"}, "quay.io/org/app", "a"},

		// Globs within one label.
		{"wildcard subdomain", []string{"*.gcr.io=a"}, "eu.gcr.io/p/app", "a"},
		{"wildcard is one label", []string{"*.gcr.io=a"}, "a.b.gcr.io/p/app", ""},
		{"wildcard needs a label", []string{"*.gcr.io=a"}, "gcr.io/p/app", ""},
		{"glob inside a label", []string{"eu*.gcr.io=a"}, "europe.gcr.io/p/app", "a"},
		{"exact before wildcard", []string{"*.gcr.io=wild", "eu.gcr.io=exact"}, "eu.gcr.io/p/app", "exact,wild"},
		{"wildcard and port", []string{"*.example:5000=a"}, "r.example:5000/app", "a"},
		{"malformed glob", []string{"[.example=a"}, "r.example/app", ""},

		// Docker Hub.
		{"docker.io key", []string{"docker.io=a"}, "docker.io/library/nginx", "a"},
		{"index.docker.io key", []string{"https://index.docker.io/v1/=a"}, "docker.io/library/nginx", "a"},
		{"index.docker.io after a matching key", []string{"https://index.docker.io/v1/=idx", "docker.io/library=lib"}, "docker.io/library/nginx", "lib"},
		{"hub key not for other registries", []string{"index.docker.io=a"}, "quay.io/library/nginx", ""},
		{"registry-1 is not a hub key", []string{"registry-1.docker.io=a"}, "docker.io/library/nginx", ""},

		// Credentials under one key stay in order.
		{"same key twice", []string{"r.example=first", "https://r.example/=second"}, "r.example/app", "first,second"},
		{"unparsable key ignored", []string{"%zz=bad", "r.example=a"}, "r.example/app", "a"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if got := users(ring(tc.keys...), tc.image); got != tc.want {
				t.Errorf("keys %v, image %s: credentials of %q, want %q", tc.keys, tc.image, got, tc.want)
			}
		})
	}
}

// TestKeyringRepository: go-containerregistry's names are looked up as
// the kubelet writes them (Docker Hub's as docker.io/library/...).
func TestKeyringRepository(t *testing.T) {
	k := ring("docker.io/myorg=org", "https://index.docker.io/v1/=hub", "registry.example:5000/team=team")
	for repo, want := range map[string]string{
		"nginx":                          "hub",
		"index.docker.io/library/nginx":  "hub",
		"myorg/app":                      "org",
		"docker.io/myorg/app":            "org",
		"registry.example:5000/team/app": "team",
		"registry.example:5000/other":    "",
	} {
		r, err := name.NewRepository(repo)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range k.LookupRepository(r) {
			got = append(got, a.Username)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: %v, want %q", repo, got, want)
		}
	}
	var none *admission.Keyring
	if none.Len() != 0 || none.Lookup("x/y") != nil {
		t.Error("a nil keyring has credentials")
	}
}
