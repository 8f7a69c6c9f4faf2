package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdmissionUsage: the admission commands refuse bad command lines with
// ExitUsage and say what is wrong, before listening on anything.
func TestAdmissionUsage(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("version: 1\ndefault:\n  unsigned: accept\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nscopes:\n  - scope: a.example\n    keys: [{file: nope.pub}]\n"), 0o644)
	notCA := filepath.Join(dir, "ca.pem")
	os.WriteFile(notCA, []byte("not a certificate"), 0o644)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"admission", "serve", "--tls-cert", "c", "--tls-key", "k"}, "--policy is required"},
		{[]string{"admission", "serve", "--policy", policy}, "--tls-cert and --tls-key are required"},
		{[]string{"admission", "serve", "--policy", policy, "--tls-cert", "c", "--tls-key", "k", "--jobs", "0"}, "--jobs must be at least 1"},
		{[]string{"admission", "serve", "--policy", policy, "--tls-cert", "c", "--tls-key", "k", "--log-format", "xml"}, "--log-format must be json or text"},
		{[]string{"admission", "serve", "--policy", policy, "--tls-cert", "c", "--tls-key", "k", "--kubeconfig", "kc"}, "--kubeconfig is only used with --pull-secrets"},
		{[]string{"admission", "serve", "--policy", bad, "--tls-cert", "c", "--tls-key", "k"}, "nope.pub"},
		{[]string{"admission", "serve", "--policy", policy, "--tls-cert", "c", "--tls-key", "k", "--pull-secrets", "--kubeconfig", filepath.Join(dir, "missing")}, "--pull-secrets: the Kubernetes API"},
		{[]string{"admission", "config", "--url", "https://x"}, "--ca-file is required"},
		{[]string{"admission", "config", "--ca-file", notCA}, "exactly one of a URL and a service"},
		{[]string{"admission", "config", "--url", "https://x", "--ca-file", notCA}, "CA bundle: text that is not PEM"},
		{[]string{"admission", "config", "--url", "https://x", "--ca-file", notCA, "--webhooks", "all"}, "--webhooks must be both, validate or mutate"},
	} {
		r := run{}.do(t, c.args...)
		r.expect(t, ExitUsage, c.msg)
		if strings.Contains(r.stderr, "serving") {
			t.Errorf("%v: started serving", c.args)
		}
	}
}
