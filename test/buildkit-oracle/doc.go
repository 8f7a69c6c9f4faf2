// Package oracle checks package dockerfile against BuildKit's own
// Dockerfile parser, instruction parser and shell lexer
// (github.com/moby/buildkit/frontend/dockerfile/...), used as the oracle in
// tests only. It is a module of its own so that BuildKit and what it
// requires never enter imgsign's module graph: imgsign keeps its own
// parser (byte offsets for pinning, fail-closed expansion, bounded work),
// and this module checks that it reads FROM lines as BuildKit does.
package oracle
