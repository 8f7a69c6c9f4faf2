// Package reponame writes registry and repository names in the one normal
// form imgsign compares them in (policy scopes, identity remaps, signed
// identities, image references): the registry lowercased, without the
// HTTPS default port (registry:443 is registry), and Docker Hub as
// index.docker.io (docker.io, docker.io:443, index.docker.io:443), as
// go-containerregistry names it. The repository path is kept as written:
// go-containerregistry has already added library/ to a one-segment Docker
// Hub repository of an image reference.
package reponame

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Registry returns the normal form of a registry host[:port].
func Registry(reg string) string {
	reg = strings.ToLower(reg)
	if i := strings.LastIndexByte(reg, ':'); i >= 0 && isDefaultPort(reg[i+1:]) {
		reg = reg[:i]
	}
	if reg == "docker.io" {
		return name.DefaultRegistry
	}
	return reg
}

// Repository returns the normal form of a repository name
// (registry/path, as name.Repository.Name() writes it).
func Repository(repo string) string {
	reg, rest, found := strings.Cut(repo, "/")
	reg = Registry(reg)
	if !found {
		return reg
	}
	return reg + "/" + rest
}

// isDefaultPort reports whether port is 443, written in decimal digits.
func isDefaultPort(port string) bool {
	port = strings.TrimLeft(port, "0")
	return port == "443"
}
