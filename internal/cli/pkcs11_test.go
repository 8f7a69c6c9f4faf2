//go:build !pkcs11

package cli

import (
	"os"
	"strings"
	"testing"
)

// TestPKCS11NeedsItsBuild: the default build refuses PKCS#11 with a message
// naming the build that has it, exit 3, and never prints a PIN.
func TestPKCS11NeedsItsBuild(t *testing.T) {
	dir := t.TempDir()
	run{}.do(t, "pkcs11", "tokens", "--module-path", "/usr/lib/softhsm/libsofthsm2.so").expect(t, ExitKey, "pkcs11 build")
	run{}.do(t, "pkcs11", "keys", "--module-path", "/usr/lib/softhsm/libsofthsm2.so", "--slot-id", "0").expect(t, ExitKey, "pkcs11 build")
	uri := "pkcs11:token=ci;object=sig?pin-value=s3cret-pin-9876"
	for _, args := range [][]string{
		{"public-key", "--key", uri},
		{"sign-blob", "--key", uri, "--output-signature", dir + "/s", "cli_test.go"},
		{"verify-blob", "--key", uri, "--signature", dir + "/s", "cli_test.go"},
	} {
		r := run{}.do(t, args...)
		r.expect(t, ExitKey, "pkcs11 build")
		if strings.Contains(r.stdout+r.stderr, "s3cret-pin-9876") {
			t.Fatalf("%v printed the PIN:\n%s%s", args, r.stdout, r.stderr)
		}
	}
	// A KMS URI whose provider is not linked in (internal/cli alone) is a
	// key error naming the URI.
	run{}.do(t, "public-key", "--key", "awskms:///not-a-key").expect(t, ExitKey, "awskms:///not-a-key")
}

// TestGenerateKeyPairKMSRefusesOtherURIs: --kms takes KMS URIs only, and a
// KMS whose provider is missing writes nothing.
func TestGenerateKeyPairKMSRefusesOtherURIs(t *testing.T) {
	dir := t.TempDir()
	run{}.do(t, "generate-key-pair", "--kms", "imgsign.key", "--output-key-prefix", dir+"/k").expect(t, ExitUsage, "not a KMS key URI")
	run{}.do(t, "generate-key-pair", "--kms", "pkcs11:token=t;object=o?module-path=/m.so", "--output-key-prefix", dir+"/k").expect(t, ExitUsage, "token's own tools")
	run{}.do(t, "generate-key-pair", "--kms", "hashivault://release", "--output-key-prefix", dir+"/k").expect(t, ExitKey, "HashiCorp Vault key hashivault://release")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}
