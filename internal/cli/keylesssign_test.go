package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testToken is an identity token's shape (Fulcio would check its signature).
func testToken(t *testing.T, exp time.Time) string {
	t.Helper()
	claims, err := json.Marshal(map[string]any{"iss": "https://issuer.imgsign.test", "sub": "ci@imgsign.test", "email": "ci@imgsign.test",
		"email_verified": true, "aud": "sigstore", "exp": exp.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + "." + enc([]byte("secret-signature-part-of-the-token"))
}

func TestKeylessSignCommandLine(t *testing.T) {
	dir := t.TempDir()
	blob := filepath.Join(dir, "f")
	os.WriteFile(blob, []byte("x"), 0o644)
	pred := filepath.Join(dir, "p.json")
	os.WriteFile(pred, []byte(`{}`), 0o644)
	expired := testToken(t, time.Now().Add(-time.Hour))
	img := "127.0.0.1:1/app@sha256:" + strings.Repeat("a", 64)
	none := run{env: map[string]string{}}
	inGitHub := run{env: map[string]string{"GITHUB_ACTIONS": "true"}}
	withExpired := run{env: map[string]string{"SIGSTORE_ID_TOKEN": expired}}

	none.do(t, "sign", img).expect(t, ExitKeyless, "no OIDC identity token for keyless signing")
	inGitHub.do(t, "sign", img).expect(t, ExitKeyless, `lacks "permissions: id-token: write"`)
	none.do(t, "attest", "--type", "custom", "--predicate", pred, img).expect(t, ExitKeyless, "SIGSTORE_ID_TOKEN")
	none.do(t, "sign-blob", "--bundle", filepath.Join(dir, "b.json"), blob).expect(t, ExitKeyless, "--identity-token")
	none.do(t, "sign-blob", blob).expect(t, ExitUsage, "keyless sign-blob needs --bundle, or --output-certificate")
	r := withExpired.do(t, "sign", "--verbose", img)
	r.expect(t, ExitKeyless, "the OIDC identity token has expired")
	if strings.Contains(r.stderr+r.stdout, expired) {
		t.Fatal("the token is printed")
	}
	if _, err := os.Stat(filepath.Join(dir, "b.json")); err == nil {
		t.Fatal("a bundle was written although signing failed")
	}

	none.do(t, "sign", "--key", "k.key", "--identity-token", "t", img).expect(t, ExitUsage, "keyless flags")
	none.do(t, "sign", "--password-file", "pw", img).expect(t, ExitUsage, "--password-file needs --key")
	none.do(t, "sign", "--key", "k.key", "--output-certificate", "c.pem", img).expect(t, ExitUsage, "--output-certificate is for keyless")
	none.do(t, "sign-blob", "--key", "k.key", "--output-certificate", "c.pem", blob).expect(t, ExitUsage, "keyless flags")
	none.do(t, "attest", "--key", "k.key", "--fulcio-url", "https://f", "--type", "custom", "--predicate", pred, img).expect(t, ExitUsage, "keyless flags")
	tok := testToken(t, time.Now().Add(time.Minute))
	none.do(t, "sign", "--identity-token", tok, "--signing-config", filepath.Join(dir, "missing.json"), img).expect(t, ExitUsage, "--signing-config")
	none.do(t, "sign", "--identity-token", tok, "--fulcio-url", "https://fulcio.test", "--timestamp-server-url", "https://tsa.test", "--format", "legacy", "--rekor-url", "https://r", "--rekor-version", "9", img).
		expect(t, ExitUsage, "--rekor-version")
}

// TestKeylessFulcioRefusalCLI: Fulcio refusing (and echoing the token)
// exits 16 with the reason, never the token, even with --verbose.
func TestKeylessFulcioRefusalCLI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "There was an error processing the identity token "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	defer srv.Close()
	tok := testToken(t, time.Now().Add(time.Minute))
	r := run{env: map[string]string{"SIGSTORE_ID_TOKEN": tok}}.do(t, "sign", "--verbose", "--fulcio-url", srv.URL,
		"--timestamp-server-url", "http://127.0.0.1:1/ts", "127.0.0.1:1/app@sha256:"+strings.Repeat("b", 64))
	r.expect(t, ExitKeyless, "Fulcio "+srv.URL+" did not issue a certificate")
	r.expect(t, ExitKeyless, "identity token from SIGSTORE_ID_TOKEN (issuer https://issuer.imgsign.test")
	if strings.Contains(r.stderr+r.stdout, tok) || strings.Contains(r.stderr, "secret-signature") {
		t.Fatalf("the token is printed:\n%s", r.stderr)
	}
}
