package admission

import (
	"net"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keyring holds the registry credentials of pull secrets and finds those
// for an image as the kubelet does (k8s.io/kubernetes
// pkg/credentialprovider, BasicDockerKeyring; importing it would bring in
// the whole of Kubernetes):
//
//   - A key is a registry host with an optional port and path, with or
//     without a scheme: "registry.example", "registry.example:5000",
//     "https://registry.example/team", "quay.io/org". The scheme is dropped,
//     and so is a leading /v1/ or /v2/ of the path (Docker's URLs), so
//     "https://index.docker.io/v1/" is the key index.docker.io.
//   - A key matches an image repository when the hosts have the same number
//     of dot-separated labels and each label of the key, a glob, matches the
//     repository's (*.gcr.io matches eu.gcr.io, not a.b.gcr.io); the ports are
//     equal (none matches none only); and the key's path is a prefix of the
//     repository's path (a string prefix, as the kubelet tests it:
//     quay.io/org matches quay.io/org/app, and quay.io/organic/app too).
//   - Every matching key counts, the most specific first: keys are tried in
//     reverse lexical order, so quay.io/org comes before quay.io, and
//     eu.gcr.io before *.gcr.io. Credentials under one key keep the order of
//     the secrets.
//   - Docker Hub's images (docker.io/library/nginx) match the key
//     docker.io, and, when no key matched, the key index.docker.io.
//
// Hosts are compared without regard to case (the kubelet compares them as
// written; a host name is case-insensitive).
type Keyring struct {
	keys  []string // distinct, in reverse lexical order
	creds map[string][]authn.AuthConfig
}

// Docker Hub, as the kubelet names it.
const (
	dockerHubImageHost = "docker.io"       // what image names normalise to
	dockerHubKey       = "index.docker.io" // the key of its credentials
)

// Add records the credentials of one key of a Docker config. A key that
// does not parse as a URL is ignored, as the kubelet ignores it.
func (k *Keyring) Add(key string, auth authn.AuthConfig) {
	value := key
	if !strings.HasPrefix(value, "https://") && !strings.HasPrefix(value, "http://") {
		value = "https://" + value
	}
	u, err := url.Parse(value)
	if err != nil || u.Host == "" {
		return
	}
	p := u.Path
	if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
		p = p[3:]
	}
	norm := strings.ToLower(u.Host)
	if p != "" && p != "/" {
		norm += p
	}
	if k.creds == nil {
		k.creds = map[string][]authn.AuthConfig{}
	}
	if _, seen := k.creds[norm]; !seen {
		k.keys = append(k.keys, norm)
		slices.Sort(k.keys)
		slices.Reverse(k.keys)
	}
	k.creds[norm] = append(k.creds[norm], auth)
}

// Len is the number of distinct keys.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// Lookup returns the credentials for an image repository, written as the
// kubelet writes it ("host[:port]/path", Docker Hub's as
// docker.io/library/nginx), the most specific key's first; none when no key
// matches.
func (k *Keyring) Lookup(image string) []authn.AuthConfig {
	if k == nil {
		return nil
	}
	var out []authn.AuthConfig
	for _, key := range k.keys {
		if keyMatches(key, image) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) == 0 && isDockerHub(image) {
		out = k.creds[dockerHubKey]
	}
	return out
}

// LookupRepository is Lookup for a parsed repository.
func (k *Keyring) LookupRepository(repo name.Repository) []authn.AuthConfig {
	return k.Lookup(kubeletImage(repo))
}

// kubeletImage writes a repository as the kubelet looks it up: Docker
// Hub's registry as docker.io.
func kubeletImage(repo name.Repository) string {
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = dockerHubImageHost
	}
	return reg + "/" + repo.RepositoryStr()
}

// keyMatches is the kubelet's URLsMatch: same number of host labels, each
// matching its glob, the same port, and the key's path a prefix of the
// image's.
func keyMatches(key, image string) bool {
	k, err := url.Parse("https://" + key)
	if err != nil {
		return false
	}
	im, err := url.Parse("https://" + image)
	if err != nil {
		return false
	}
	kh, kp := splitHost(k.Host)
	ih, ip := splitHost(im.Host)
	if kp != ip || len(kh) != len(ih) {
		return false
	}
	for i := range kh {
		if ok, err := path.Match(kh[i], ih[i]); err != nil || !ok {
			return false
		}
	}
	return strings.HasPrefix(im.Path, k.Path)
}

// splitHost splits host[:port] into its lowercase labels and its port.
func splitHost(hostport string) ([]string, string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(strings.ToLower(host), "."), port
}

// isDockerHub is the kubelet's isDefaultRegistryMatch: an image with no
// registry part, or whose first part is docker.io, index.docker.io or a
// name without a dot or a colon (a Docker Hub namespace).
func isDockerHub(image string) bool {
	first, _, found := strings.Cut(image, "/")
	if first == "" {
		return false
	}
	if !found {
		return true
	}
	if first == dockerHubImageHost || first == dockerHubKey {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// registryKeychain gives one set of credentials for one registry, and
// nothing (anonymous, so that a multi-keychain goes on) for any other.
type registryKeychain struct {
	registry string
	auth     authn.AuthConfig
}

func (r registryKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if res.RegistryStr() != r.registry {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(r.auth), nil
}
