package idtoken

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testJWT builds an unsigned token shape with the given claims (the signature
// part is opaque here: Fulcio verifies it).
func testJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b) + "." + enc([]byte("signature-bytes-of-the-test"))
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestGetSources(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	valid := testJWT(t, map[string]any{"iss": "https://issuer.test", "sub": "s", "email": "a@b.test", "aud": "sigstore", "exp": now.Add(time.Minute).Unix()})
	other := testJWT(t, map[string]any{"iss": "https://other.test", "sub": "x", "aud": []string{"sigstore", "more"}, "exp": now.Add(time.Minute).Unix()})
	file := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(file, []byte(valid+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	for _, c := range []struct {
		name       string
		o          Options
		wantSource string
		wantRaw    string
	}{
		{"flag token", Options{Flag: valid}, "--identity-token", valid},
		{"flag file", Options{Flag: file}, "--identity-token file " + file, valid},
		{"flag wins over env", Options{Flag: valid, LookupEnv: envOf(map[string]string{EnvToken: other})}, "--identity-token", valid},
		{"env", Options{LookupEnv: envOf(map[string]string{EnvToken: other + "\n"})}, EnvToken, other},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Now = clock
			if c.o.LookupEnv == nil {
				c.o.LookupEnv = envOf(nil)
			}
			tok, err := Get(context.Background(), c.o)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Source != c.wantSource || tok.Raw() != c.wantRaw {
				t.Fatalf("source %q raw ok=%v, want %q", tok.Source, tok.Raw() == c.wantRaw, c.wantSource)
			}
			for _, s := range []string{tok.String(), fmt.Sprintf("%v %+v %#v", tok, tok, tok)} {
				if strings.Contains(s, tok.Raw()) || strings.Contains(s, "signature-bytes") {
					t.Fatalf("the token is printed: %s", s)
				}
			}
		})
	}
}

func TestGetRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	expired := testJWT(t, map[string]any{"iss": "https://issuer.test", "sub": "s", "aud": "sigstore", "exp": now.Add(-90 * time.Second).Unix()})
	noIss := testJWT(t, map[string]any{"sub": "s"})
	for _, c := range []struct {
		name string
		o    Options
		is   error
		want []string
	}{
		{"nothing", Options{}, ErrNoToken, []string{"--identity-token", EnvToken, "id-token: write", "id_tokens"}},
		{"github without permission", Options{LookupEnv: envOf(map[string]string{"GITHUB_ACTIONS": "true"})}, ErrNoToken, []string{"lacks \"permissions: id-token: write\""}},
		{"gitlab without id_tokens", Options{LookupEnv: envOf(map[string]string{"GITLAB_CI": "true"})}, ErrNoToken, []string{"declare it under id_tokens"}},
		{"expired", Options{Flag: expired}, ErrExpired, []string{"expired at", "1m30s ago", "issuer https://issuer.test"}},
		{"no iss", Options{Flag: noIss}, ErrMalformed, []string{"no iss claim"}},
		{"not a jwt", Options{LookupEnv: envOf(map[string]string{EnvToken: "not-a-token"})}, ErrMalformed, []string{"not a JWT"}},
		{"missing file", Options{Flag: "/nonexistent/token"}, ErrMalformed, []string{"neither a token nor a readable file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.o.LookupEnv == nil {
				c.o.LookupEnv = envOf(nil)
			}
			c.o.Now = func() time.Time { return now }
			_, err := Get(context.Background(), c.o)
			if !errors.Is(err, c.is) {
				t.Fatalf("error %v, want %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error lacks %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error(), expired) {
				t.Fatal("the token is in the error")
			}
		})
	}
}

func TestGitHubActions(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := testJWT(t, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref:refs/heads/main", "aud": "sigstore", "exp": now.Add(time.Minute).Unix()})
	const bearer = "request-token-abcdef123456"
	var gotAudience, gotVersion string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+bearer {
			// A server echoing its input must not leak the bearer.
			http.Error(w, "bad credentials: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
			return
		}
		gotAudience, gotVersion = r.URL.Query().Get("audience"), r.URL.Query().Get("api-version")
		fmt.Fprintf(w, `{"value":%q}`, tok)
	}))
	defer srv.Close()
	env := map[string]string{EnvGitHubURL: srv.URL + "/token?api-version=2.0", EnvGitHubToken: bearer}
	got, err := Get(context.Background(), Options{LookupEnv: envOf(env), HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got.Raw() != tok || gotAudience != Audience || gotVersion != "2.0" || !strings.HasPrefix(got.Source, "GitHub Actions") {
		t.Fatalf("token ok=%v source %q, asked audience %q api-version %q", got.Raw() == tok, got.Source, gotAudience, gotVersion)
	}

	env[EnvGitHubToken] = "wrong-request-token-0123456789"
	_, err = Get(context.Background(), Options{LookupEnv: envOf(env), HTTPClient: srv.Client()})
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), env[EnvGitHubToken]) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("refused request: %v", err)
	}
	env[EnvGitHubToken] = ""
	if _, err = Get(context.Background(), Options{LookupEnv: envOf(env)}); !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), EnvGitHubToken+" is empty") {
		t.Fatalf("no request token: %v", err)
	}
}

func TestRedact(t *testing.T) {
	base := errors.New("boom")
	err := Redact(fmt.Errorf("server said Bearer secret-token-value: %w", base), "secret-token-value")
	if strings.Contains(err.Error(), "secret-token-value") || !strings.Contains(err.Error(), "[REDACTED]") || !errors.Is(err, base) {
		t.Fatalf("%v", err)
	}
	if Redact(nil, "x") != nil {
		t.Fatal("nil")
	}
}

// FuzzGet: any --identity-token value is a token, an error, never a panic;
// neither the description nor the error carries the token's signature.
func FuzzGet(f *testing.F) {
	f.Add(testJWT(&testing.T{}, map[string]any{"iss": "https://i", "sub": "s", "exp": 4102444800}))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJ4In0.c2ln")
	f.Add("e30.W10.eA")
	f.Fuzz(func(t *testing.T, v string) {
		if !looksLikeJWT(v) {
			return // a path: not this fuzzer's business
		}
		tok, err := Get(context.Background(), Options{Flag: v, LookupEnv: envOf(nil), Now: func() time.Time { return time.Unix(0, 0) }})
		sig := v[strings.LastIndexByte(v, '.')+1:]
		claims, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.Split(v, ".")[1], "="))
		if len(sig) < 8 || strings.Contains(string(claims), sig) {
			return // a claim may show; the signature part must not
		}
		if err != nil {
			if strings.Contains(err.Error(), sig) {
				t.Fatalf("error carries the token: %v", err)
			}
			return
		}
		if strings.Contains(tok.String(), sig) {
			t.Fatalf("description carries the token: %s", tok)
		}
	})
}
