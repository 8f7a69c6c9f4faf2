// Package release holds tests of the release configuration
// (.goreleaser.yaml); it has no code.
package release
