// Package oidctest is an OpenID Connect issuer for tests, standard library
// only: OIDC discovery, a JWKS at /keys and RS256 ID tokens minted on demand
// (in process with Token, or over HTTP with POST /token), for any subject,
// audience and expiry, including expired tokens and tokens shaped like
// GitHub Actions' (the claims Fulcio's github-workflow issuer type turns into
// certificate extensions). Fulcio needs only discovery and the JWKS.
//
// It binds 127.0.0.1 only and is not an authorization server: anyone who can
// reach it gets any token. Never use it outside tests.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

// DefaultAudience is the audience Sigstore clients ask for.
const DefaultAudience = "sigstore"

// DefaultLifetime is how long minted tokens are valid unless Claims say.
const DefaultLifetime = 10 * time.Minute

// Issuer is a running test OIDC issuer.
type Issuer struct {
	// URL is the issuer URL: the iss claim, and where discovery is served.
	URL string
	// Audience is the default aud claim (DefaultAudience unless changed).
	Audience string

	key    *rsa.PrivateKey
	keyID  string
	server *httptest.Server
}

// Start starts an issuer on a free 127.0.0.1 port. Close stops it.
func Start() (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der := key.PublicKey.N.Bytes()
	sum := sha256.Sum256(der)
	i := &Issuer{Audience: DefaultAudience, key: key, keyID: base64.RawURLEncoding.EncodeToString(sum[:12])}
	i.server = httptest.NewServer(i.handler()) // 127.0.0.1
	i.URL = i.server.URL
	return i, nil
}

// Close stops the issuer.
func (i *Issuer) Close() { i.server.Close() }

// Claims are the claims of a token to mint. Zero fields take defaults:
// iss is the issuer's URL, aud its Audience, iat now, exp iat+DefaultLifetime.
type Claims struct {
	Subject  string `json:"sub"`
	Email    string `json:"email,omitempty"`
	Audience string `json:"aud,omitempty"`
	// EmailVerified defaults to true when Email is set.
	EmailVerified *bool `json:"email_verified,omitempty"`
	// ExpiresIn sets exp relative to now; negative mints an expired token.
	ExpiresIn time.Duration `json:"-"`
	// Extra claims, added as they are (they do not override the above).
	Extra map[string]any `json:"extra,omitempty"`
}

// Token mints a signed RS256 ID token.
func (i *Issuer) Token(c Claims) (string, error) {
	now := time.Now()
	payload := map[string]any{}
	for k, v := range c.Extra {
		payload[k] = v
	}
	if c.Subject == "" {
		c.Subject = c.Email
	}
	if c.Subject == "" {
		return "", errors.New("oidctest: a token needs a subject or an email")
	}
	aud := c.Audience
	if aud == "" {
		aud = i.Audience
	}
	life := c.ExpiresIn
	if life == 0 {
		life = DefaultLifetime
	}
	payload["iss"] = i.URL
	payload["sub"] = c.Subject
	payload["aud"] = aud
	payload["iat"] = now.Unix()
	payload["nbf"] = now.Add(-time.Minute).Unix()
	payload["exp"] = now.Add(life).Unix()
	if c.Email != "" {
		payload["email"] = c.Email
		verified := true
		if c.EmailVerified != nil {
			verified = *c.EmailVerified
		}
		payload["email_verified"] = verified
	}
	header := map[string]any{"alg": "RS256", "typ": "JWT", "kid": i.keyID}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// EmailToken mints a valid token for a verified email address.
func (i *Issuer) EmailToken(email string) (string, error) {
	return i.Token(Claims{Email: email})
}

// GitHubWorkflow describes a GitHub Actions run, as the claims of its ID
// token (the JSON names are the claim names). Zero fields take the defaults
// of DefaultGitHubWorkflow.
type GitHubWorkflow struct {
	Repository        string `json:"repository,omitempty"` // owner/name
	RepositoryOwner   string `json:"repository_owner,omitempty"`
	RepositoryID      string `json:"repository_id,omitempty"`
	RepositoryOwnerID string `json:"repository_owner_id,omitempty"`
	Visibility        string `json:"repository_visibility,omitempty"` // repository_visibility
	Workflow          string `json:"workflow,omitempty"`              // the workflow's name
	WorkflowRef       string `json:"workflow_ref,omitempty"`          // owner/name/.github/workflows/FILE@REF (top-level workflow)
	WorkflowSHA       string `json:"workflow_sha,omitempty"`
	JobWorkflowRef    string `json:"job_workflow_ref,omitempty"` // the (reusable) workflow that runs the job; Fulcio's SAN is https://github.com/ + this
	JobWorkflowSHA    string `json:"job_workflow_sha,omitempty"`
	Ref               string `json:"ref,omitempty"`                // refs/heads/main, refs/tags/v1.2.3
	SHA               string `json:"sha,omitempty"`                // the commit built
	EventName         string `json:"event_name,omitempty"`         // push, pull_request, workflow_dispatch, ...
	RunnerEnvironment string `json:"runner_environment,omitempty"` // github-hosted or self-hosted
	RunID             string `json:"run_id,omitempty"`
	RunAttempt        string `json:"run_attempt,omitempty"`
}

// DefaultGitHubWorkflow is a push to main of example/app built by its own
// release workflow.
var DefaultGitHubWorkflow = GitHubWorkflow{
	Repository:        "example/app",
	RepositoryOwner:   "example",
	RepositoryID:      "123456789",
	RepositoryOwnerID: "987654",
	Visibility:        "public",
	Workflow:          "release",
	WorkflowRef:       "example/app/.github/workflows/release.yml@refs/heads/main",
	WorkflowSHA:       "4f2bd1c6ab0e9f3e4b5a6c7d8e9f00112233445f",
	JobWorkflowRef:    "example/app/.github/workflows/release.yml@refs/heads/main",
	JobWorkflowSHA:    "4f2bd1c6ab0e9f3e4b5a6c7d8e9f00112233445f",
	Ref:               "refs/heads/main",
	SHA:               "4f2bd1c6ab0e9f3e4b5a6c7d8e9f00112233445f",
	EventName:         "push",
	RunnerEnvironment: "github-hosted",
	RunID:             "1234567890",
	RunAttempt:        "1",
}

// Identity is the certificate identity Fulcio issues for this workflow: the
// job workflow's URL.
func (w GitHubWorkflow) Identity() string {
	return "https://github.com/" + w.withDefaults().JobWorkflowRef
}

func (w GitHubWorkflow) withDefaults() GitHubWorkflow {
	d := DefaultGitHubWorkflow
	pick := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	pick(&w.Repository, d.Repository)
	pick(&w.RepositoryOwner, strings.SplitN(w.Repository, "/", 2)[0])
	pick(&w.RepositoryID, d.RepositoryID)
	pick(&w.RepositoryOwnerID, d.RepositoryOwnerID)
	pick(&w.Visibility, d.Visibility)
	pick(&w.Workflow, d.Workflow)
	pick(&w.Ref, d.Ref)
	pick(&w.WorkflowRef, w.Repository+"/.github/workflows/release.yml@"+w.Ref)
	pick(&w.JobWorkflowRef, w.WorkflowRef)
	pick(&w.SHA, d.SHA)
	pick(&w.WorkflowSHA, w.SHA)
	pick(&w.JobWorkflowSHA, w.WorkflowSHA)
	pick(&w.EventName, d.EventName)
	pick(&w.RunnerEnvironment, d.RunnerEnvironment)
	pick(&w.RunID, d.RunID)
	pick(&w.RunAttempt, d.RunAttempt)
	return w
}

// Claims returns the token claims of the workflow run, as GitHub sets them
// (sub is repo:OWNER/NAME:ref:REF).
func (w GitHubWorkflow) Claims() Claims {
	w = w.withDefaults()
	return Claims{
		Subject: "repo:" + w.Repository + ":ref:" + w.Ref,
		Extra: map[string]any{
			"repository":            w.Repository,
			"repository_owner":      w.RepositoryOwner,
			"repository_id":         w.RepositoryID,
			"repository_owner_id":   w.RepositoryOwnerID,
			"repository_visibility": w.Visibility,
			"workflow":              w.Workflow,
			"workflow_ref":          w.WorkflowRef,
			"workflow_sha":          w.WorkflowSHA,
			"job_workflow_ref":      w.JobWorkflowRef,
			"job_workflow_sha":      w.JobWorkflowSHA,
			"ref":                   w.Ref,
			"ref_type":              refType(w.Ref),
			"sha":                   w.SHA,
			"event_name":            w.EventName,
			"runner_environment":    w.RunnerEnvironment,
			"run_id":                w.RunID,
			"run_attempt":           w.RunAttempt,
			"actor":                 w.RepositoryOwner,
		},
	}
}

func refType(ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return "tag"
	}
	return "branch"
}

// GitHubToken mints a valid token for a GitHub Actions workflow run.
func (i *Issuer) GitHubToken(w GitHubWorkflow) (string, error) {
	return i.Token(w.Claims())
}

// maxTokenRequest bounds a POST /token body.
const maxTokenRequest = 64 << 10

func (i *Issuer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + "/keys",
			"authorization_endpoint":                i.URL + "/auth",
			"token_endpoint":                        i.URL + "/token",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "email", "email_verified"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": i.keyID,
			"n": base64.RawURLEncoding.EncodeToString(i.key.PublicKey.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(i.key.PublicKey.E)).Bytes()),
		}}})
	})
	// POST /token with a JSON body of Claims (sub, email, aud,
	// email_verified, extra), expires_in in seconds (negative: expired), and
	// optionally {"github": GitHubWorkflow fields} for a GitHub Actions
	// token: answers {"id_token": "..."}.
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Claims
			ExpiresIn int64           `json:"expires_in"`
			GitHub    *GitHubWorkflow `json:"github"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, maxTokenRequest))
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		c := req.Claims
		c.ExpiresIn = time.Duration(req.ExpiresIn) * time.Second
		if req.GitHub != nil {
			gc := req.GitHub.Claims()
			gc.Audience, gc.ExpiresIn = c.Audience, c.ExpiresIn
			c = gc
		}
		tok, err := i.Token(c)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]string{"id_token": tok, "token_type": "Bearer"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, fmt.Sprint(err), http.StatusInternalServerError)
	}
}
