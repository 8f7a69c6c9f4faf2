package oidctest

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// verify checks a token against the issuer's published discovery and JWKS,
// as a relying party does, and returns its claims.
func verify(t *testing.T, iss *Issuer, token string) map[string]any {
	t.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, iss.URL+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != iss.URL || disc.JWKSURI != iss.URL+"/keys" {
		t.Fatalf("discovery: %+v", disc)
	}
	var jwks struct {
		Keys []struct{ Kty, Kid, N, E, Alg string } `json:"keys"`
	}
	getJSON(t, disc.JWKSURI, &jwks)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	var header struct{ Alg, Kid string }
	decode(t, parts[0], &header)
	if header.Alg != "RS256" || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != header.Kid || jwks.Keys[0].Kty != "RSA" {
		t.Fatalf("header %+v, keys %+v", header, jwks.Keys)
	}
	n, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	decode(t, parts[1], &claims)
	return claims
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func decode(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestEmailTokens(t *testing.T) {
	iss, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	if !strings.HasPrefix(iss.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %s", iss.URL)
	}
	tok, err := iss.EmailToken("dev@example.com")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, iss, tok)
	now := float64(time.Now().Unix())
	if c["iss"] != iss.URL || c["aud"] != "sigstore" || c["sub"] != "dev@example.com" || c["email"] != "dev@example.com" ||
		c["email_verified"] != true || c["exp"].(float64) < now+500 || c["exp"].(float64) > now+700 {
		t.Fatalf("claims %v", c)
	}

	// Expired, another audience, unverified email.
	no := false
	tok, err = iss.Token(Claims{Email: "old@example.com", Audience: "other", EmailVerified: &no, ExpiresIn: -time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c = verify(t, iss, tok)
	if c["aud"] != "other" || c["email_verified"] != false || c["exp"].(float64) > now-3000 {
		t.Fatalf("claims %v", c)
	}
	// Tampered payload: the signature no longer holds.
	parts := strings.Split(tok, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`))
	digest := sha256.Sum256([]byte(parts[0] + "." + forged))
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if rsa.VerifyPKCS1v15(&iss.key.PublicKey, crypto.SHA256, digest[:], sig) == nil {
		t.Fatal("forged payload verified")
	}
	if _, err := iss.Token(Claims{}); err == nil {
		t.Fatal("a token with no subject was minted")
	}
}

func TestGitHubTokensOverHTTP(t *testing.T) {
	iss, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	body := `{"github": {"repository": "acme/web", "ref": "refs/tags/v1.2.0", "event_name": "release"}, "expires_in": -60}`
	resp, err := http.Post(iss.URL+"/token", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	c := verify(t, iss, out.IDToken)
	want := map[string]any{
		"sub": "repo:acme/web:ref:refs/tags/v1.2.0", "repository": "acme/web", "repository_owner": "acme",
		"ref": "refs/tags/v1.2.0", "ref_type": "tag", "event_name": "release",
		"workflow_ref":     "acme/web/.github/workflows/release.yml@refs/tags/v1.2.0",
		"job_workflow_ref": "acme/web/.github/workflows/release.yml@refs/tags/v1.2.0",
	}
	for k, v := range want {
		if c[k] != v {
			t.Fatalf("%s = %v, want %v (claims %v)", k, c[k], v, c)
		}
	}
	// Every claim Fulcio's github-workflow type requires is present.
	for _, k := range []string{"job_workflow_ref", "sha", "event_name", "repository", "workflow", "ref", "job_workflow_sha",
		"runner_environment", "repository_id", "repository_owner", "repository_owner_id", "repository_visibility",
		"workflow_ref", "workflow_sha", "run_id", "run_attempt"} {
		if s, _ := c[k].(string); s == "" {
			t.Fatalf("claim %s missing: %v", k, c)
		}
	}
	if c["exp"].(float64) >= float64(time.Now().Unix()) {
		t.Fatalf("not expired: %v", c["exp"])
	}
	if got := (GitHubWorkflow{Repository: "acme/web", Ref: "refs/tags/v1.2.0"}).Identity(); got != "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v1.2.0" {
		t.Fatalf("identity %s", got)
	}
	resp2, err := http.Post(iss.URL+"/token", "application/json", strings.NewReader(`{`))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad body: %s", resp2.Status)
	}
}
