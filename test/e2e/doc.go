// Package e2e runs the built imgsign binary against real components: a real
// registry server (Debian's docker-registry, distribution 2.8) with TLS and
// basic auth, the real cosign v3 and v2 binaries for interoperability, real
// Rekor v1 and v2 logs, and a real keyless stack (Fulcio, a CT log, a
// timestamp authority, OIDC issuers of our own: keyless_infra_test.go).
// scripts/install-tools.sh installs them; without them the tests skip,
// unless IMGSIGN_E2E_REQUIRE is set (as `make e2e` and CI do), when a
// missing tool is a failure.
package e2e
