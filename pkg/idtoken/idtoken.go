// Package idtoken finds the OIDC identity token that keyless signing
// exchanges for a short-lived Fulcio certificate: given on the command line
// (the token or a file holding it), in SIGSTORE_ID_TOKEN (GitLab CI's
// id_tokens, or any CI that sets it), or fetched from GitHub Actions' token
// endpoint (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, audience "sigstore").
//
// A Token never prints its value: String, errors and logs name only where
// it came from and its unverified claims (issuer, subject, audience,
// expiry). Its signature is not checked here; Fulcio verifies it.
package idtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Environment variables read.
const (
	// EnvToken holds the token itself (GitLab CI: id_tokens: SIGSTORE_ID_TOKEN).
	EnvToken = "SIGSTORE_ID_TOKEN"
	// EnvGitHubURL and EnvGitHubToken are set by GitHub Actions in jobs with
	// `permissions: id-token: write`.
	EnvGitHubURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvGitHubToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	envGitHubCI    = "GITHUB_ACTIONS"
	envGitLabCI    = "GITLAB_CI"
)

// Audience is the audience asked of CI token endpoints (Sigstore's).
const Audience = "sigstore"

// MaxTokenBytes bounds a token (in a file, the environment or a response).
const MaxTokenBytes = 64 << 10

// Errors, for errors.Is.
var (
	// ErrNoToken: no token was given and none can be fetched here.
	ErrNoToken = errors.New("no OIDC identity token for keyless signing")
	// ErrExpired: the token's exp claim is past.
	ErrExpired = errors.New("the OIDC identity token has expired")
	// ErrMalformed: the value is not a JWT with readable claims.
	ErrMalformed = errors.New("the OIDC identity token is malformed")
	// ErrFetch: the CI token endpoint did not give a token.
	ErrFetch = errors.New("could not fetch an OIDC identity token")
)

// howTo says how to get a token; it ends every ErrNoToken.
const howTo = `keyless signing needs one: pass --identity-token (the token, or a file holding it) or set SIGSTORE_ID_TOKEN.
  GitHub Actions: give the job "permissions: id-token: write" (imgsign then fetches it).
  GitLab CI: declare "id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore" in the job.
  Elsewhere: get a token for audience "sigstore" from your OIDC provider, or sign with --key`

// Claims are a token's claims, read without verifying its signature.
type Claims struct {
	Issuer   string
	Subject  string
	Email    string
	Audience []string
	Expiry   time.Time // zero without exp
}

// Token is an identity token and where it came from.
type Token struct {
	raw    string
	Source string // "--identity-token", "SIGSTORE_ID_TOKEN", "GitHub Actions", ...
	Claims Claims
}

// Raw returns the token itself, for Fulcio only: never print it.
func (t *Token) Raw() string { return t.raw }

// String describes the token without its value.
func (t *Token) String() string {
	who := t.Claims.Subject
	if t.Claims.Email != "" {
		who = t.Claims.Email
	}
	return fmt.Sprintf("identity token from %s (issuer %s, subject %s, audience %s)", t.Source, t.Claims.Issuer, who, strings.Join(t.Claims.Audience, ","))
}

// GoString keeps %#v from printing the token.
func (t *Token) GoString() string { return t.String() }

// Options say where to look.
type Options struct {
	// Flag is --identity-token: a token, or the path of a file holding one.
	Flag string
	// LookupEnv reads the environment (os.LookupEnv when nil).
	LookupEnv func(string) (string, bool)
	// HTTPClient fetches from CI token endpoints (a 30 s client when nil).
	HTTPClient *http.Client
	// Now is the clock for the expiry check (time.Now when nil).
	Now func() time.Time
}

// Get returns the token, from the first of: Flag, SIGSTORE_ID_TOKEN, the
// GitHub Actions endpoint. An expired or malformed token is an error;
// without any, the ErrNoToken error says how to get one.
func Get(ctx context.Context, o Options) (*Token, error) {
	env := o.LookupEnv
	if env == nil {
		env = os.LookupEnv
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	var (
		raw, source string
		err         error
	)
	switch {
	case o.Flag != "":
		raw, source, err = fromFlag(o.Flag)
	case nonEmpty(env, EnvToken):
		raw, source = strings.TrimSpace(value(env, EnvToken)), EnvToken
	case nonEmpty(env, EnvGitHubURL):
		raw, err = fromGitHub(ctx, o.HTTPClient, value(env, EnvGitHubURL), value(env, EnvGitHubToken))
		source = "GitHub Actions (" + EnvGitHubURL + ")"
	default:
		hint := ""
		if value(env, envGitHubCI) == "true" {
			hint = " (this GitHub Actions job has no " + EnvGitHubURL + ": it lacks \"permissions: id-token: write\")"
		} else if value(env, envGitLabCI) == "true" {
			hint = " (this GitLab CI job sets no " + EnvToken + ": declare it under id_tokens)"
		}
		return nil, fmt.Errorf("%w%s; %s", ErrNoToken, hint, howTo)
	}
	if err != nil {
		return nil, err
	}
	t := &Token{raw: raw, Source: source}
	if t.Claims, err = parseClaims(raw); err != nil {
		return nil, fmt.Errorf("%w (from %s): %v", ErrMalformed, source, err)
	}
	if exp := t.Claims.Expiry; !exp.IsZero() && !now().Before(exp) {
		return nil, fmt.Errorf("%w: the %s expired at %s (%s ago); fetch a fresh token (CI tokens live minutes) and sign again",
			ErrExpired, t, exp.UTC().Format(time.RFC3339), now().Sub(exp).Round(time.Second))
	}
	return t, nil
}

func value(env func(string) (string, bool), k string) string {
	v, _ := env(k)
	return v
}

func nonEmpty(env func(string) (string, bool), k string) bool {
	return strings.TrimSpace(value(env, k)) != ""
}

// fromFlag reads --identity-token: a file if one exists at that path (as
// cosign), else the token itself.
func fromFlag(v string) (string, string, error) {
	if looksLikeJWT(v) {
		if _, err := os.Stat(v); err != nil {
			return v, "--identity-token", nil
		}
	}
	f, err := os.Open(v)
	if err != nil {
		if looksLikeJWT(v) {
			return v, "--identity-token", nil
		}
		return "", "", fmt.Errorf("%w: --identity-token is neither a token nor a readable file: %v", ErrMalformed, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTokenBytes+1))
	if err != nil {
		return "", "", fmt.Errorf("--identity-token file %s: %w", v, err)
	}
	if len(data) > MaxTokenBytes {
		return "", "", fmt.Errorf("%w: --identity-token file %s is larger than %d bytes", ErrMalformed, v, MaxTokenBytes)
	}
	return strings.TrimSpace(string(data)), "--identity-token file " + v, nil
}

// looksLikeJWT reports whether v has a JWT's shape: three base64url parts.
func looksLikeJWT(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		if strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=") != "" {
			return false
		}
	}
	return true
}

// signatureAlgorithms are the JWS algorithms a token may name: those OIDC
// providers sign ID tokens with. The signature itself is Fulcio's to check.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// parseClaims reads the claims of a JWT (go-jose) without verifying it.
func parseClaims(raw string) (Claims, error) {
	if len(raw) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("larger than %d bytes", MaxTokenBytes)
	}
	if !looksLikeJWT(raw) {
		return Claims{}, errors.New("not a JWT (three base64url parts separated by dots)")
	}
	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return Claims{}, fmt.Errorf("not a signed JWT: %v", err)
	}
	var (
		std   jwt.Claims
		extra struct {
			Email string `json:"email"`
		}
	)
	if err := tok.UnsafeClaimsWithoutVerification(&std, &extra); err != nil {
		return Claims{}, fmt.Errorf("its claims are unreadable: %v", err)
	}
	out := Claims{Issuer: std.Issuer, Subject: std.Subject, Email: extra.Email, Audience: []string(std.Audience)}
	if std.Expiry != nil {
		out.Expiry = std.Expiry.Time()
	}
	if out.Issuer == "" {
		return Claims{}, errors.New("it has no iss claim")
	}
	return out, nil
}

// fromGitHub asks GitHub Actions' token endpoint for a token of audience
// "sigstore", authenticated by the job's request token.
func fromGitHub(ctx context.Context, hc *http.Client, endpoint, bearer string) (string, error) {
	if strings.TrimSpace(bearer) == "" {
		return "", fmt.Errorf("%w: %s is set but %s is empty", ErrFetch, EnvGitHubURL, EnvGitHubToken)
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%w: %s is not an http(s) URL", ErrFetch, EnvGitHubURL)
	}
	q := u.Query()
	q.Set("audience", Audience)
	u.RawQuery = q.Encode()
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrFetch, err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w from GitHub Actions (%s): %v", ErrFetch, u.Host, Redact(err, bearer))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w from GitHub Actions (%s): %v", ErrFetch, u.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w from GitHub Actions (%s): HTTP %d: %s", ErrFetch, u.Host, resp.StatusCode, Redact(errors.New(snippet(body)), bearer))
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Value == "" {
		return "", fmt.Errorf("%w from GitHub Actions (%s): the answer has no token (\"value\")", ErrFetch, u.Host)
	}
	return v.Value, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Redact returns err with every occurrence of the secrets replaced, so
// that a server echoing a token cannot leak it into logs. nil stays nil.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(msg, s) {
			msg, changed = strings.ReplaceAll(msg, s, "[REDACTED]"), true
		}
	}
	if !changed {
		return err
	}
	return redacted{msg: msg, err: err}
}

// redacted keeps errors.Is working on the original chain while printing
// the redacted text.
type redacted struct {
	msg string
	err error
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }
