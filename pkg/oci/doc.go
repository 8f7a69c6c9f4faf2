// Package oci talks to OCI registries for imgsign, through
// go-containerregistry only: it resolves references to digests, reads and
// writes cosign's signature storage, and enforces the limits and transport
// rules that untrusted registries call for.
//
// Everything read from a registry is treated as hostile: manifests and blobs
// are size-limited before they are read, content fetched by digest is hashed
// as it is read and refused on mismatch, and plain HTTP is only used for
// loopback registries unless the caller allows it.
package oci
