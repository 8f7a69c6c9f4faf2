package trustpolicy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/tlog"
)

// newKey returns a fresh ECDSA P-256 public key and its PEM.
func newKey(t testing.TB) (crypto.PublicKey, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := keys.MarshalPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return priv.Public(), string(pemBytes)
}

func writeFile(t testing.TB, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// indent indents every line of s by n spaces, for a YAML block scalar.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad) + "\n"
}

func keyID(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	id, err := keys.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fixture is a directory with key files and a trusted root.
type fixture struct {
	dir                  string
	a, b, c, rekor, root crypto.PublicKey
	aPEM, cPEM           string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	var bPEM, rekorPEM string
	f.a, f.aPEM = newKey(t)
	f.b, bPEM = newKey(t)
	f.c, f.cPEM = newKey(t)
	f.rekor, rekorPEM = newKey(t)
	writeFile(t, f.dir, "keys/a.pub", f.aPEM)
	writeFile(t, f.dir, "keys/b.pub", bPEM)
	writeFile(t, f.dir, "rekor.pub", rekorPEM)
	writeFile(t, f.dir, "bad.pub", "not a key\n")
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := keys.EncryptPrivateKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.dir, "private.key", string(enc))
	var rootPEM string
	f.root, rootPEM = newKey(t)
	l, err := tlog.NewLog(f.root)
	if err != nil {
		t.Fatal(err)
	}
	_ = rootPEM
	l.BaseURL = "https://rekor.example"
	tr, err := tlog.TrustedRoot([]*tlog.Log{l}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.dir, "trusted_root.json", string(tr))
	return f
}

func (f *fixture) parse(t testing.TB, doc string) (*Policy, error) {
	t.Helper()
	return Parse([]byte(doc), "policy.yaml", f.dir)
}

func (f *fixture) mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := f.parse(t, doc)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func (f *fixture) example() string {
	return `version: 1
default:
  reject: true
scopes:
  - scope: registry.example.com
    keys: [{file: keys/a.pub}]
  - scope: registry.example.com/team-a
    keys:
      - file: keys/a.pub
      - file: keys/b.pub
      - pem: |
` + indent(f.cPEM, 10) + `    threshold: 2
    tlog:
      required: true
      keys: [{file: rekor.pub}]
      trustedRoot: trusted_root.json
    annotations: {env: prod}
    attestations:
      - type: slsaprovenance1
        conditions:
          - name: built by CI
            expression: predicate.builder.id == "https://ci.example/builder"
    identity:
      requireMatch: true
      remap:
        - from: mirror.internal/dockerhub
          to: docker.io
    maxAge: 30d
  - scope: registry.example.com/team-b/*
    unsigned: accept
  - scope: "*.example.org/legacy/app"
    reject: true
`
}

func TestParseExample(t *testing.T) {
	f := newFixture(t)
	p := f.mustParse(t, f.example())
	if p.Default == nil || !p.Default.Reject || p.DefaultLine != 2 {
		t.Fatalf("default = %+v (line %d)", p.Default, p.DefaultLine)
	}
	var order []string
	for _, s := range p.Scopes {
		order = append(order, fmt.Sprintf("%s@%d", s.Pattern, s.Line))
	}
	want := "registry.example.com/team-b/*@33 *.example.org/legacy/app@35 registry.example.com/team-a@7 registry.example.com@5"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("match order\n got %s\nwant %s", got, want)
	}
	m := p.Match("registry.example.com/team-a/app")
	if m.Scope != "registry.example.com/team-a" || m.Line != 7 {
		t.Fatalf("match = %+v", m)
	}
	r := m.Requirement
	if r.Reject || r.AcceptUnsigned || r.Threshold != 2 || len(r.Keys) != 3 {
		t.Fatalf("requirement = %+v", r)
	}
	wantKeys := []struct {
		source string
		pub    crypto.PublicKey
	}{{"keys/a.pub", f.a}, {"keys/b.pub", f.b}, {"inline PEM (line 11)", f.c}}
	for i, k := range r.Keys {
		if k.Source != wantKeys[i].source || k.ID != keyID(t, wantKeys[i].pub) || !k.Public.(*ecdsa.PublicKey).Equal(wantKeys[i].pub) {
			t.Errorf("key %d = %s %s, want %s", i, k.Source, k.ID, wantKeys[i].source)
		}
	}
	if r.Tlog == nil || !r.Tlog.Required || len(r.Tlog.Logs) != 2 {
		t.Fatalf("tlog = %+v", r.Tlog)
	}
	if got := strings.Join(r.Tlog.Sources, ","); got != "rekor.pub,trusted root trusted_root.json" {
		t.Errorf("tlog sources = %s", got)
	}
	if !r.Tlog.Logs[0].Key.(*ecdsa.PublicKey).Equal(f.rekor) || !r.Tlog.Logs[1].Key.(*ecdsa.PublicKey).Equal(f.root) || r.Tlog.Logs[1].BaseURL != "https://rekor.example" {
		t.Errorf("tlog logs are not the configured keys")
	}
	if len(r.Annotations) != 1 || r.Annotations["env"] != "prod" {
		t.Errorf("annotations = %v", r.Annotations)
	}
	if len(r.Attestations) != 1 {
		t.Fatalf("attestations = %+v", r.Attestations)
	}
	a := r.Attestations[0]
	if a.Type != "https://slsa.dev/provenance/v1" || a.Name != "slsaprovenance1" || a.Conditions == nil || len(a.Conditions.Conditions()) != 1 || a.Conditions.Conditions()[0].Name != "built by CI" {
		t.Errorf("attestation = %+v", a)
	}
	// The compiled condition works.
	ok := `{"predicateType":"https://slsa.dev/provenance/v1","predicate":{"builder":{"id":"https://ci.example/builder"}}}`
	if err := a.Conditions.Evaluate([]byte(ok)); err != nil {
		t.Errorf("condition: %v", err)
	}
	if err := a.Conditions.Evaluate([]byte(strings.Replace(ok, "ci.example", "evil.example", 1))); !errors.Is(err, policy.ErrFailed) {
		t.Errorf("condition on another builder: %v", err)
	}
	if r.Identity == nil || !r.Identity.RequireMatch || len(r.Identity.Remap) != 1 || r.Identity.Remap[0] != (Remap{"mirror.internal/dockerhub", "docker.io"}) {
		t.Errorf("identity = %+v", r.Identity)
	}
	if r.MaxAge != 30*24*time.Hour {
		t.Errorf("maxAge = %v", r.MaxAge)
	}
	if m := p.Match("registry.example.com/team-b/app"); !m.Requirement.AcceptUnsigned || m.Line != 33 {
		t.Errorf("team-b: %+v", m)
	}
	if m := p.Match("eu.example.org/legacy/app"); !m.Requirement.Reject || m.Scope != "*.example.org/legacy/app" {
		t.Errorf("legacy: %+v", m)
	}
	if m := p.Match("other.example.net/app"); m.Scope != "default" || !m.Requirement.Reject || m.Line != 2 {
		t.Errorf("other: %+v", m)
	}
}

func TestParseJSON(t *testing.T) {
	f := newFixture(t)
	doc := `{"version": 1, "scopes": [{"scope": "registry.example.com", "keys": [{"file": "keys/a.pub"}],
  "annotations": {"env": "prod"}}]}`
	p := f.mustParse(t, doc)
	if len(p.Scopes) != 1 || p.Scopes[0].Keys[0].ID != keyID(t, f.a) || p.Scopes[0].Annotations["env"] != "prod" {
		t.Fatalf("%+v", p.Scopes)
	}
	if m := p.Match("elsewhere.io/x"); m.Scope != "" || !m.Requirement.Reject {
		t.Fatalf("no default: %+v", m)
	}
}

func TestValidationErrors(t *testing.T) {
	f := newFixture(t)
	const head = "version: 1\nscopes:\n" // scopes start on line 3
	manyScopes := head
	for i := 0; i <= MaxScopes; i++ {
		manyScopes += fmt.Sprintf("  - {scope: r.io/s%d, reject: true}\n", i)
	}
	var manyKeys strings.Builder
	manyKeys.WriteString(head + "  - scope: r.io\n    keys:\n")
	for i := 0; i <= MaxKeys; i++ {
		manyKeys.WriteString("      - file: keys/a.pub\n")
	}
	tests := []struct {
		name string
		doc  string
		line int
		want string
		is   error
	}{
		{"empty", "", 0, "the policy is empty", nil},
		{"only a comment", "# nothing\n", 0, "the policy is empty", nil},
		{"not a mapping", "- a\n- b\n", 1, "the policy must be a mapping, not a list", nil},
		{"syntax error", "version: 1\nscopes:\n  - scope: a\n bad: [\n", 3, "invalid YAML", nil},
		{"second document", "version: 1\ndefault: {reject: true}\n---\nversion: 1\n", 3, "a second YAML document", nil},
		{"version missing", "scopes:\n  - {scope: r.io, reject: true}\n", 1, "version is missing", nil},
		{"version 2", "version: 2\ndefault: {reject: true}\n", 1, "version 2 is not supported", nil},
		{"version string", "version: \"1\"\ndefault: {reject: true}\n", 1, `version must be a whole number, not the string "1"`, nil},
		{"unknown top-level field", "version: 1\ndefaults: {reject: true}\n", 2, `unknown field "defaults" in the policy`, nil},
		{"no scopes no default", "version: 1\n", 1, "no scopes and no default", nil},
		{"unknown field in scope", head + "  - scope: registry.example.com/team/*\n    keys: [{file: keys/a.pub}]\n    treshold: 1\n", 5,
			`unknown field "treshold" in scope "registry.example.com/team/*"`, nil},
		{"unknown field before scope", head + "  - treshold: 1\n    scope: r.io\n", 3, `unknown field "treshold" in scope "r.io"`, nil},
		{"unknown field in default", "version: 1\ndefault:\n  reject: true\n  rejet: true\n", 4, `unknown field "rejet" in the default`, nil},
		{"unknown field in tlog", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {requird: true}\n", 5, `unknown field "requird" in scope "r.io", tlog`, nil},
		{"unknown field in key", head + "  - scope: r.io\n    keys: [{path: keys/a.pub}]\n", 4, `unknown field "path" in scope "r.io", keys[0]`, nil},
		{"unknown field in attestation", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        condition: []\n", 7, `unknown field "condition" in scope "r.io", attestations[0]`, nil},
		{"unknown field in condition", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions:\n          - expr: 'true'\n", 8, `unknown field "expr" in scope "r.io", attestations[0], conditions[0]`, nil},
		{"unknown field in identity", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity: {requireMatch: true, strict: true}\n", 5, `unknown field "strict" in scope "r.io", identity`, nil},
		{"unknown field in remap", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap: [{from: a.io, to: b.io, too: c.io}]\n", 7, `unknown field "too" in scope "r.io", identity, remap[0]`, nil},
		{"repeated field", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    keys: [{file: keys/b.pub}]\n", 5, `field "keys" is repeated in scope "r.io" (also on line 4)`, nil},
		{"scope without pattern", head + "  - keys: [{file: keys/a.pub}]\n", 3, "scopes[0] has no scope pattern", nil},
		{"empty scope pattern", head + "  - scope: ''\n    reject: true\n", 3, "the scope pattern is empty", nil},
		{"invalid glob", head + "  - scope: r.io/[a\n    reject: true\n", 3, "invalid glob", nil},
		{"empty segment", head + "  - scope: r.io//a\n    reject: true\n", 3, "empty path segment", nil},
		{"trailing slash", head + "  - scope: r.io/a/\n    reject: true\n", 3, "empty path segment", nil},
		{"partial **", head + "  - scope: r.io/a**\n    reject: true\n", 3, "** must be a whole path segment", nil},
		{"uppercase path", head + "  - scope: r.io/Team\n    reject: true\n", 3, "lowercase", nil},
		{"tag in scope", head + "  - scope: r.io/app:latest\n    reject: true\n", 3, "not a tag or digest", nil},
		{"URL scope", head + "  - scope: https://r.io/app\n    reject: true\n", 3, "without a URL scheme", nil},
		{"scope not a string", head + "  - scope: 5\n    reject: true\n", 3, "scope must be a string, not the number 5 (quote it)", nil},
		{"duplicate scope", head + "  - {scope: r.io/a, reject: true}\n  - {scope: r.io/b, reject: true}\n  - {scope: r.io/a, unsigned: accept}\n", 5, `scope "r.io/a" is listed twice (also on line 3)`, nil},
		{"duplicate after normalisation", head + "  - {scope: docker.io/team, reject: true}\n  - {scope: INDEX.docker.io/team, reject: true}\n", 4, `scope "INDEX.docker.io/team" is the same as scope "docker.io/team" on line 3`, nil},
		{"duplicate with the default port", head + "  - {scope: r.io/team, reject: true}\n  - {scope: 'R.io:443/team', reject: true}\n", 4, `scope "R.io:443/team" is the same as scope "r.io/team" on line 3`, nil},
		{"duplicate Docker Hub with the default port", head + "  - {scope: 'docker.io:443/team', reject: true}\n  - {scope: index.docker.io/team, reject: true}\n", 4, `scope "index.docker.io/team" is the same as scope "docker.io:443/team" on line 3`, nil},
		{"too many scopes", manyScopes, 3, "scopes: 1001 entries (limit 1000)", nil},
		{"scopes not a list", "version: 1\nscopes: {scope: r.io}\n", 2, "scopes must be a list, not a mapping", nil},
		{"requires nothing", head + "  - scope: r.io\n", 3, `scope "r.io" requires nothing`, nil},
		{"reject false alone", head + "  - scope: r.io\n    reject: false\n", 3, `scope "r.io" requires nothing`, nil},
		{"reject with keys", head + "  - scope: r.io\n    reject: true\n    keys: [{file: keys/a.pub}]\n", 5, "reject: true cannot be combined with keys", nil},
		{"reject with maxAge", "version: 1\ndefault:\n  maxAge: 1h\n  reject: true\n", 3, "reject: true cannot be combined with maxAge", nil},
		{"reject and unsigned", head + "  - scope: r.io\n    reject: true\n    unsigned: accept\n", 5, "contradict", nil},
		{"unsigned with keys", head + "  - scope: r.io\n    unsigned: accept\n    keys: [{file: keys/a.pub}]\n", 5, "unsigned: accept cannot be combined with keys", nil},
		{"unsigned with annotations", head + "  - scope: r.io\n    annotations: {a: b}\n    unsigned: accept\n", 4, "unsigned: accept cannot be combined with annotations", nil},
		{"unsigned reject", head + "  - scope: r.io\n    unsigned: reject\n", 4, `unsigned: "reject" is not understood`, nil},
		{"reject not a bool", head + "  - scope: r.io\n    reject: yes\n", 4, `reject must be true or false, not the string "yes"`, nil},
		{"signature fields without keys", head + "  - scope: r.io\n    threshold: 1\n", 3, "no keys", nil},
		{"keys empty", head + "  - scope: r.io\n    keys: []\n", 4, "at least one key", nil},
		{"keys not a list", head + "  - scope: r.io\n    keys: {file: keys/a.pub}\n", 4, "keys must be a list, not a mapping", nil},
		{"key as bare string", head + "  - scope: r.io\n    keys: [keys/a.pub]\n", 4, "must be {file: PATH}, {pem: TEXT} or {kms: URI}", nil},
		{"key file and pem", head + "  - scope: r.io\n    keys:\n      - file: keys/a.pub\n        pem: x\n", 5, "give one of file, pem or kms", nil},
		{"kms not a URI", head + "  - scope: r.io\n    keys:\n      - kms: keys/a.pub\n", 5, `kms "keys/a.pub" is not a key URI`, nil},
		{"kms and file", head + "  - scope: r.io\n    keys:\n      - kms: awskms:///alias/x\n        file: keys/a.pub\n", 5, "give one of file, pem or kms", nil},
		{"kms provider missing", head + "  - scope: r.io\n    keys:\n      - kms: pkcs11:token=t;object=o?module-path=/m.so\n", 5, "pkcs11 build", keys.ErrNoProvider},
		{"key entry empty", head + "  - scope: r.io\n    keys: [{}]\n", 4, "give file: PATH, pem: TEXT or kms: URI", nil},
		{"key file missing", head + "  - scope: r.io\n    keys:\n      - file: keys/missing.pub\n", 5, `key file "keys/missing.pub"`, fs.ErrNotExist},
		{"key file bad", head + "  - scope: r.io\n    keys:\n      - file: bad.pub\n", 5, `key file "bad.pub"`, keys.ErrMalformedKey},
		{"private key given", head + "  - scope: r.io\n    keys:\n      - file: private.key\n", 5, `key file "private.key"`, keys.ErrPrivateKeyGiven},
		{"inline PEM bad", head + "  - scope: r.io\n    keys:\n      - file: keys/a.pub\n      - pem: |\n          -----BEGIN PUBLIC KEY-----\n          AAAA\n          -----END PUBLIC KEY-----\n", 6, "inline PEM (line 6)", keys.ErrMalformedKey},
		{"same key twice", head + "  - scope: r.io\n    keys:\n      - file: keys/a.pub\n      - file: ./keys/../keys/a.pub\n", 6, "./keys/../keys/a.pub is the same key as keys/a.pub on line 5", nil},
		{"same key file and inline", head + "  - scope: r.io\n    keys:\n      - file: keys/a.pub\n      - pem: |\n" + indent(f.aPEM, 10), 6, "inline PEM (line 6) is the same key as keys/a.pub on line 5", nil},
		{"too many keys", manyKeys.String(), 5, "65 entries (limit 64)", nil},
		{"threshold above keys", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}, {file: keys/b.pub}]\n    threshold: 3\n", 5, "threshold 3 is more than the 2 keys listed", nil},
		{"threshold zero", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    threshold: 0\n", 5, "threshold 0: at least 1 key", nil},
		{"threshold negative", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    threshold: -1\n", 5, "threshold -1", nil},
		{"threshold string", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    threshold: two\n", 5, "threshold must be a whole number", nil},
		{"tlog required without logs", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog:\n      required: true\n", 6, "required is true but no log is trusted", nil},
		{"tlog bad log key", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog:\n      keys: [{file: bad.pub}]\n", 6, `log key file "bad.pub": not a PEM public key`, nil},
		{"tlog trusted root missing", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog:\n      required: true\n      trustedRoot: nope.json\n", 7, `trustedRoot "nope.json"`, fs.ErrNotExist},
		{"tlog trusted root not a root", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog:\n      trustedRoot: keys/a.pub\n", 6, `trustedRoot "keys/a.pub"`, nil},
		{"maxAge zero", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {required: true, keys: [{file: rekor.pub}]}\n    maxAge: 0s\n", 6, `maxAge: "0s" must be more than zero`, nil},
		{"maxAge negative", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {required: true, keys: [{file: rekor.pub}]}\n    maxAge: -5h\n", 6, "must be more than zero", nil},
		{"maxAge zero days", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {required: true, keys: [{file: rekor.pub}]}\n    maxAge: 0d\n", 6, "must be more than zero", nil},
		{"maxAge garbage", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {required: true, keys: [{file: rekor.pub}]}\n    maxAge: a month\n", 6, "is not a duration", nil},
		{"maxAge huge days", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {required: true, keys: [{file: rekor.pub}]}\n    maxAge: 99999999999999d\n", 6, "too long", nil},
		{"maxAge without unit", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {required: true, keys: [{file: rekor.pub}]}\n    maxAge: 720\n", 6, "needs a unit", nil},
		{"maxAge without tlog", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    maxAge: 24h\n", 5, "maxAge needs tlog.required: true", nil},
		{"maxAge with optional tlog", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog: {keys: [{file: rekor.pub}]}\n    maxAge: 24h\n", 6, "maxAge needs tlog.required: true", nil},
		{"annotations empty", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    annotations: {}\n", 5, "annotations is empty", nil},
		{"annotation not a string", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    annotations:\n      build: 42\n", 6, "annotations: build must be a string, not the number 42 (quote it)", nil},
		{"annotation empty name", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    annotations: {'': x}\n", 5, "empty annotation name", nil},
		{"attestation type unknown", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: slsa\n", 6, `predicate type "slsa"`, nil},
		{"attestation without type", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - conditions: [{expression: 'true'}]\n", 6, "attestations[0] has no type", nil},
		{"attestation type twice", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: slsaprovenance1\n      - type: https://slsa.dev/provenance/v1\n", 7, "already required on line 6", nil},
		{"attestations empty", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations: []\n", 5, "attestations is empty", nil},
		{"conditions empty", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions: []\n", 7, "conditions is empty", nil},
		{"condition does not compile", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions:\n          - name: fine\n            expression: 'true'\n          - name: broken\n            expression: predicate.x ==\n", 11, `"broken"`, policy.ErrInvalid},
		{"condition not a bool", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions:\n          - expression: '1 + 2'\n", 8, "not a bool", policy.ErrInvalid},
		{"condition undeclared variable", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions:\n          - expression: image.name == 'x'\n", 8, "undeclared reference", policy.ErrInvalid},
		{"condition without expression", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions:\n          - name: x\n", 8, "has no expression", nil},
		{"condition empty expression", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    attestations:\n      - type: spdx\n        conditions:\n          - expression: '  '\n", 8, "expression is empty", nil},
		{"identity empty", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity: {}\n", 5, "identity is empty", nil},
		{"remap without requireMatch", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      remap: [{from: a.io, to: b.io}]\n", 6, "remap has no effect without requireMatch: true", nil},
		{"remap empty list", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap: []\n", 7, "remap is empty", nil},
		{"remap empty from", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap:\n        - from: ''\n          to: docker.io\n", 8, "from is empty", nil},
		{"remap empty to", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap:\n        - from: mirror.io\n          to: ''\n", 9, "to is empty", nil},
		{"remap missing to", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap:\n        - from: mirror.io\n", 8, "has no to", nil},
		{"remap glob", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap:\n        - from: mirror.io/*\n          to: docker.io\n", 8, "without glob characters", nil},
		{"remap from twice", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    identity:\n      requireMatch: true\n      remap:\n        - {from: mirror.io/hub, to: docker.io}\n        - {from: mirror.io/hub, to: quay.io}\n", 9, "already remapped on line 8", nil},
		{"alias", "version: 1\nx: &k [{file: keys/a.pub}]\n", 2, `unknown field "x"`, nil},
		{"alias used", head + "  - scope: r.io\n    keys: &k [{file: keys/a.pub}]\n  - scope: q.io\n    keys: *k\n", 6, "YAML aliases (*k) are not allowed", nil},
		{"merge key", head + "  - &base {scope: r.io, keys: [{file: keys/a.pub}]}\n  - <<: *base\n    scope: q.io\n", 4, "YAML aliases", nil},
		{"default empty", "version: 1\ndefault:\n", 2, "the default must be a mapping, not empty", nil},
		{"non-string key", "version: 1\n1: x\n", 2, "a field name must be a string", nil},
		// Reported from yaml.v3's strict decoding, in the same words.
		{"repeated annotation", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    annotations:\n      a: x\n      a: y\n", 7, `field "a" is repeated in scope "r.io", annotations (also on line 6)`, nil},
		{"repeated field in the default", "version: 1\ndefault:\n  reject: true\n  reject: true\n", 4, `field "reject" is repeated in the default (also on line 3)`, nil},
		{"repeated field in tlog", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog:\n      required: false\n      required: true\n", 7, `field "required" is repeated in scope "r.io", tlog (also on line 6)`, nil},
		{"unknown field in identities", head + "  - scope: r.io\n    identities: [{issuer: 'https://i.example', subject: s, sub: x}]\n", 4, `unknown field "sub" in scope "r.io", identities[0]`, nil},
		{"window on a log key", head + "  - scope: r.io\n    keys: [{file: keys/a.pub}]\n    tlog:\n      keys: [{file: rekor.pub, notBefore: '2026-01-01T00:00:00Z'}]\n", 6, `unknown field "notBefore" in scope "r.io", tlog, keys[0]`, nil},
		{"non-string key in a scope", head + "  - scope: r.io\n    [a]: x\n", 4, `scope "r.io": a field name must be a string, not a list`, nil},
		{"alias after an error", head + "  - scope: r.io\n    treshold: 1\n  - &x {scope: q.io, reject: true}\n  - *x\n", 6, "YAML aliases (*x) are not allowed", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.parse(t, tc.doc)
			if err == nil {
				t.Fatalf("no error for\n%s", tc.doc)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if pe.Line != tc.line {
				t.Errorf("line %d, want %d: %v", pe.Line, tc.line, err)
			}
			prefix := "policy.yaml: "
			if tc.line > 0 {
				prefix = fmt.Sprintf("policy.yaml:%d: ", tc.line)
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

// TestUnknownFieldMessage pins the exact wording of the most common mistake.
func TestUnknownFieldMessage(t *testing.T) {
	f := newFixture(t)
	doc := "version: 1\nscopes:\n  - scope: registry.example.com/team/*\n    keys: [{file: keys/a.pub}]\n    treshold: 2\n"
	_, err := f.parse(t, doc)
	want := `policy.yaml:5: unknown field "treshold" in scope "registry.example.com/team/*"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestMatch(t *testing.T) {
	f := newFixture(t)
	scopes := []string{
		"reg.example.com",              // 4
		"reg.example.com/team-a",       // 5
		"reg.example.com/team-a/app",   // 6
		"reg.example.com/team-b/*",     // 7
		"reg.example.com/**/legacy",    // 8
		"*.example.org/legacy/app",     // 9
		"docker.io/library/alpine",     // 10
		"docker.io/myorg",              // 11
		"127.0.0.1:5000/team",          // 12
		"reg.example.com/team-c/*",     // 13
		"reg.example.com/team-c/svc-*", // 14
		"reg.example.com/team-d/a*/x",  // 15
		"reg.example.com/team-d/*b/x",  // 16
		"reg.example.com/team-e/**",    // 17
		"**/deep/*",                    // 18
		"quay.io/org/app?",             // 19
		"quay.io/org/app[0-9]",         // 20
	}
	withDefault := "version: 1\ndefault: {unsigned: accept}\nscopes:\n"
	noDefault := "version: 1\nscopes:\n  - {scope: x.invalid, reject: true}\n" // the same lines
	for _, s := range scopes {
		withDefault += fmt.Sprintf("  - {scope: %q, reject: true}\n", s)
		noDefault += fmt.Sprintf("  - {scope: %q, reject: true}\n", s)
	}
	p := f.mustParse(t, withDefault)
	q := f.mustParse(t, noDefault)
	tests := []struct {
		repo, scope string
		line        int
	}{
		{"reg.example.com/app", "reg.example.com", 4},
		{"reg.example.com/team-a", "reg.example.com/team-a", 5},
		{"reg.example.com/team-a/other", "reg.example.com/team-a", 5},
		{"reg.example.com/team-a/app", "reg.example.com/team-a/app", 6},
		{"reg.example.com/team-a/app/sub", "reg.example.com/team-a/app", 6},
		{"reg.example.com/team-ab/app", "reg.example.com", 4}, // a path boundary, not a string prefix
		{"reg.example.com/team-a-app", "reg.example.com", 4},  // idem
		{"reg.example.com/team-b", "reg.example.com", 4},      // * needs a segment
		{"reg.example.com/team-b/x", "reg.example.com/team-b/*", 7},
		{"reg.example.com/team-b/x/y", "reg.example.com/team-b/*", 7}, // and below
		{"reg.example.com/legacy", "reg.example.com/**/legacy", 8},    // ** matches no segment
		{"reg.example.com/a/b/c/legacy", "reg.example.com/**/legacy", 8},
		{"reg.example.com/team-a/legacy", "reg.example.com/**/legacy", 8},      // 3 segments beat 2
		{"reg.example.com/team-a/app/legacy", "reg.example.com/team-a/app", 6}, // 3 literal segments beat 2
		{"eu.example.org/legacy/app", "*.example.org/legacy/app", 9},
		{"a.b.example.org/legacy/app/x", "*.example.org/legacy/app", 9},
		{"example.org/legacy/app", "default", 2},
		{"eu.example.org/legacy/other", "default", 2},
		{"index.docker.io/library/alpine", "docker.io/library/alpine", 10},
		{"docker.io/library/alpine", "docker.io/library/alpine", 10}, // written the short way
		{"index.docker.io/library/alpine-extra", "default", 2},
		{"index.docker.io/myorg/app", "docker.io/myorg", 11},
		{"index.docker.io/library/myorg", "default", 2}, // docker.io/myorg is the namespace, not library/myorg
		{"registry-1.docker.io/myorg/app", "default", 2},
		{"127.0.0.1:5000/team/app", "127.0.0.1:5000/team", 12},
		{"127.0.0.1:5001/team/app", "default", 2},
		{"REG.Example.COM/app", "reg.example.com", 4}, // registries ignore case
		{"reg.example.com/team-c/svc-api", "reg.example.com/team-c/svc-*", 14},
		{"reg.example.com/team-c/web", "reg.example.com/team-c/*", 13},
		{"reg.example.com/team-d/ab/x", "reg.example.com/team-d/a*/x", 15}, // a tie: the first written
		{"reg.example.com/team-d/cb/x", "reg.example.com/team-d/*b/x", 16},
		{"reg.example.com/team-e/x/y/z", "reg.example.com/team-e/**", 17},
		{"reg.example.com/team-e", "reg.example.com/team-e/**", 17}, // ** matches no segment
		{"other.io/deep/x", "**/deep/*", 18},
		{"other.io/a/b/deep/x/y", "**/deep/*", 18},
		{"other.io/deep", "default", 2},
		{"quay.io/org/app1", "quay.io/org/app?", 19}, // a tie with app[0-9]: the first written
		{"quay.io/org/appx", "quay.io/org/app?", 19},
		{"quay.io/org/app", "default", 2},
		{"quay.io/org/app12", "default", 2},
		{"elsewhere.io/x", "default", 2},
	}
	for _, tc := range tests {
		m := p.Match(tc.repo)
		if m.Scope != tc.scope || m.Line != tc.line {
			t.Errorf("Match(%q) = %q (line %d), want %q (line %d)", tc.repo, m.Scope, m.Line, tc.scope, tc.line)
		}
		if m.Scope == "default" && !m.Requirement.AcceptUnsigned || m.Scope != "default" && !m.Requirement.Reject {
			t.Errorf("Match(%q): requirement %+v", tc.repo, m.Requirement)
		}
		// Without a default, what matched no scope is rejected.
		m = q.Match(tc.repo)
		if tc.scope == "default" {
			if m.Scope != "" || m.Line != 0 || m.Requirement == nil || !m.Requirement.Reject {
				t.Errorf("no default: Match(%q) = %+v, want the implicit reject", tc.repo, m)
			}
		} else if m.Scope != tc.scope || m.Line != tc.line {
			t.Errorf("no default: Match(%q) = %q (line %d), want %q", tc.repo, m.Scope, m.Line, tc.scope)
		}
	}
	// What is not a repository name is rejected, whatever the default.
	for _, repo := range []string{"", "alpine", "reg.example.com/", "/app", "reg.example.com//app", "reg.example.com/app:latest", "reg.example.com/app@sha256:00", "reg.example.com/a b"} {
		if m := p.Match(repo); m.Scope != "" || !m.Requirement.Reject {
			t.Errorf("Match(%q) = %+v, want the implicit reject", repo, m)
		}
	}
	// The implicit reject is a fresh value: changing it changes nothing.
	m := q.Match("elsewhere.io/x")
	m.Requirement.Reject = false
	if m := q.Match("elsewhere.io/x"); !m.Requirement.Reject {
		t.Fatal("the implicit reject is shared")
	}
}

// TestSpecificity checks each ranking rule on its own, whatever the order of
// the file.
func TestSpecificity(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name          string
		winner, loser string
		repo          string
	}{
		{"literal segments first", "r.io/team/app", "r.io/*/app/**", "r.io/team/app"},
		{"literal segments beat length", "r.io/team/app", "r.io/*/*/*", "r.io/team/app/x"},
		{"then more segments", "r.io/team/*", "r.io/team", "r.io/team/app"},
		{"then fewer wildcards", "r.io/team/app*", "r.io/team/*p*", "r.io/team/app1"},
		{"then more literal characters", "r.io/team/svc-*", "r.io/team/*", "r.io/team/svc-a"},
		{"registry vs namespace", "r.io/team", "r.io", "r.io/team/app"},
		{"namespace vs glob registry", "*.io/team/app", "r.io/team", "r.io/team/app"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][2]string{{tc.winner, tc.loser}, {tc.loser, tc.winner}} {
				doc := fmt.Sprintf("version: 1\nscopes:\n  - {scope: %q, reject: true}\n  - {scope: %q, unsigned: accept}\n", order[0], order[1])
				p := f.mustParse(t, doc)
				if m := p.Match(tc.repo); m.Scope != tc.winner {
					t.Errorf("order %v: Match(%q) = %q, want %q", order, tc.repo, m.Scope, tc.winner)
				}
			}
		})
	}
}

func TestExpected(t *testing.T) {
	id := &Identity{RequireMatch: true, Remap: []Remap{
		{From: "mirror.internal/dockerhub", To: "docker.io"},
		{From: "mirror.internal/dockerhub/library/nginx", To: "quay.io/nginx/nginx"},
		{From: "mirror.internal/ghcr", To: "ghcr.io"},
		{From: "docker.io/myorg", To: "reg.example.com/myorg"},
	}}
	tests := []struct{ repo, want string }{
		{"mirror.internal/dockerhub/library/alpine", "index.docker.io/library/alpine"},
		{"mirror.internal/dockerhub/alpine", "index.docker.io/library/alpine"}, // as go-containerregistry names it
		{"mirror.internal/dockerhub/library/nginx", "quay.io/nginx/nginx"},     // the longest prefix wins
		{"mirror.internal/dockerhub/library/nginx/sub", "quay.io/nginx/nginx/sub"},
		{"mirror.internal/dockerhub/library/nginx-unprivileged", "index.docker.io/library/nginx-unprivileged"},
		{"mirror.internal/dockerhubx/app", "mirror.internal/dockerhubx/app"}, // a path boundary
		{"mirror.internal/ghcr/org/app", "ghcr.io/org/app"},
		{"index.docker.io/myorg/app", "reg.example.com/myorg/app"}, // from docker.io matches index.docker.io
		{"reg.example.com/team/app", "reg.example.com/team/app"},
		{"docker.io/library/alpine", "index.docker.io/library/alpine"},
	}
	// The longest matching prefix wins, whatever the order of the entries.
	reversed := &Identity{RequireMatch: true}
	for i := len(id.Remap) - 1; i >= 0; i-- {
		reversed.Remap = append(reversed.Remap, id.Remap[i])
	}
	for _, tc := range tests {
		for _, id := range []*Identity{id, reversed} {
			if got := id.Expected(tc.repo); got != tc.want {
				t.Errorf("Expected(%q) = %q, want %q", tc.repo, got, tc.want)
			}
		}
	}
	var none *Identity
	if got := none.Expected("reg.example.com/app"); got != "reg.example.com/app" {
		t.Errorf("nil identity: %q", got)
	}
	// Remap from the parsed policy.
	f := newFixture(t)
	p := f.mustParse(t, f.example())
	r := p.Match("registry.example.com/team-a/x").Requirement
	if got := r.Identity.Expected("mirror.internal/dockerhub/library/redis"); got != "index.docker.io/library/redis" {
		t.Errorf("policy remap: %q", got)
	}
}

func TestExplain(t *testing.T) {
	f := newFixture(t)
	p := f.mustParse(t, f.example())
	var b bytes.Buffer
	p.Explain(&b)
	out := b.String()
	idA, idB, idC := keyID(t, f.a), keyID(t, f.b), keyID(t, f.c)
	for _, want := range []string{
		"Trust policy policy.yaml has 4 scopes, listed in the order they are tried",
		"* matches within one path segment and ** any number of segments",
		"Images matching *.example.org/legacy/app (and below) are rejected. [line 35]",
		"Images matching registry.example.com/team-b/* (and below) are accepted without any signature check. [line 33]",
		"Images in registry.example.com/team-a (and below) need signatures by 2 of these 3 keys: " +
			"keys/a.pub (ecdsa P-256, ID " + idA + "), keys/b.pub (ecdsa P-256, ID " + idB + "), inline PEM (line 11) (ecdsa P-256, ID " + idC + ")",
		"a verified transparency-log entry from one of 2 trusted logs (rekor.pub; trusted root trusted_root.json)",
		"the signed annotation env=prod",
		"an attestation of type https://slsa.dev/provenance/v1 meeting 1 condition (built by CI)",
		"the signed identity must name the repository (mirror.internal/dockerhub is checked as docker.io)",
		"signatures no older than 30 days",
		"Images in registry.example.com (and below) need a signature by the key keys/a.pub (ecdsa P-256, ID " + idA + "). " +
			"Not required: a transparency-log entry; a signed identity naming the repository",
		"Any other image is rejected. [default, line 2]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	// Paragraphs come in match order.
	order := regexp.MustCompile(`(?m)^Images (?:in|matching) (\S+)`).FindAllStringSubmatch(out, -1)
	var got []string
	for _, m := range order {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != "registry.example.com/team-b/* *.example.org/legacy/app registry.example.com/team-a registry.example.com" {
		t.Errorf("paragraph order %v", got)
	}

	// Thresholds, several annotations, a default requirement, no default.
	doc := `version: 1
default:
  keys: [{file: keys/a.pub}, {file: keys/b.pub}]
  identity: {requireMatch: true}
scopes:
  - scope: r.io/all
    keys: [{file: keys/a.pub}, {file: keys/b.pub}]
    threshold: 2
    annotations: {env: prod, team: "a b"}
    tlog: {keys: [{file: rekor.pub}]}
    attestations:
      - type: spdxjson
      - type: vuln
        conditions:
          - {name: no criticals, expression: 'true'}
          - {expression: 'true'}
    tlog: {required: true, trustedRoot: trusted_root.json}
    maxAge: 36h
`
	_, err := f.parse(t, doc)
	if err == nil || !strings.Contains(err.Error(), `field "tlog" is repeated`) {
		t.Fatalf("repeated tlog: %v", err)
	}
	doc = strings.Replace(doc, "    tlog: {keys: [{file: rekor.pub}]}\n", "", 1)
	p = f.mustParse(t, doc)
	b.Reset()
	p.Explain(&b)
	out = b.String()
	for _, want := range []string{
		"Trust policy policy.yaml has 1 scope. A scope covers the repository it names and every repository below it.\n",
		"Images in r.io/all (and below) need signatures by all 2 of these keys",
		"a verified transparency-log entry from the trusted log (trusted root trusted_root.json)",
		`signed annotations env=prod, team="a b"`,
		"an attestation of type https://spdx.dev/Document; an attestation of type https://cosign.sigstore.dev/attestation/vuln/v1 meeting 2 conditions (no criticals; condition 2)",
		"signatures no older than 36 hours",
		"Any other image needs a signature by any one of these 2 keys",
		"the signed identity must name the repository. Not required: a transparency-log entry. [default, line 2]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "** any number") {
		t.Errorf("Explain explains globs the policy does not use:\n%s", out)
	}

	p = f.mustParse(t, "version: 1\nscopes:\n  - {scope: r.io, unsigned: accept}\n  - {scope: q.io, keys: [{file: keys/a.pub}], tlog: {keys: [{file: rekor.pub}]}}\n")
	b.Reset()
	p.Explain(&b)
	out = b.String()
	for _, want := range []string{
		"Images in r.io (and below) are accepted without any signature check. [line 3]",
		"Not required: a transparency-log entry (1 trusted log is configured: rekor.pub)",
		"Any other image is rejected: the policy has no default.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
}

func TestLoad(t *testing.T) {
	f := newFixture(t)
	path := writeFile(t, f.dir, "policy.yaml", f.example())
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Scopes) != 4 {
		t.Fatalf("%d scopes", len(p.Scopes))
	}
	// Key files are relative to the policy's directory, not the current one.
	sub := writeFile(t, f.dir, "sub/policy.yaml", "version: 1\ndefault:\n  keys: [{file: ../keys/a.pub}]\n")
	p, err = Load(sub)
	if err != nil {
		t.Fatal(err)
	}
	if p.Default.Keys[0].ID != keyID(t, f.a) || p.Default.Keys[0].Source != "../keys/a.pub" {
		t.Fatalf("default keys %+v", p.Default.Keys)
	}
	// Absolute paths are used as they are.
	abs := writeFile(t, t.TempDir(), "policy.yaml", fmt.Sprintf("version: 1\ndefault:\n  keys: [{file: %q}]\n", filepath.Join(f.dir, "keys/b.pub")))
	if p, err = Load(abs); err != nil || p.Default.Keys[0].ID != keyID(t, f.b) {
		t.Fatalf("absolute key path: %v", err)
	}
	// Errors are named after the path given.
	bad := writeFile(t, f.dir, "bad.yaml", "version: 1\ndefault:\n  keys: [{file: nope.pub}]\n")
	_, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":3: ") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(filepath.Join(f.dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing policy: %v", err)
	}
	big := writeFile(t, f.dir, "big.yaml", "version: 1\n#"+strings.Repeat("x", MaxPolicyBytes)+"\n")
	if _, err := Load(big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big policy: %v", err)
	}
	if _, err := Parse(make([]byte, MaxPolicyBytes+1), "x", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("big data: %v", err)
	}
}

// A key file named by many scopes is read once, and each scope has its
// own key values.
func TestKeyFileSharedAcrossScopes(t *testing.T) {
	f := newFixture(t)
	var doc strings.Builder
	doc.WriteString("version: 1\nscopes:\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&doc, "  - {scope: r.io/team-%d, keys: [{file: keys/a.pub}], tlog: {required: true, trustedRoot: trusted_root.json}}\n", i)
	}
	p := f.mustParse(t, doc.String())
	for _, s := range p.Scopes {
		if s.Keys[0].ID != keyID(t, f.a) || len(s.Tlog.Logs) != 1 {
			t.Fatalf("scope %s: %+v", s.Pattern, s.Requirement)
		}
	}
}

func TestMaxAgeForms(t *testing.T) {
	f := newFixture(t)
	for in, want := range map[string]time.Duration{
		"720h":   720 * time.Hour,
		"1d":     24 * time.Hour,
		"30d":    30 * 24 * time.Hour,
		"90m":    90 * time.Minute,
		"1h30m":  90 * time.Minute,
		"36500d": 36500 * 24 * time.Hour,
	} {
		doc := fmt.Sprintf("version: 1\ndefault:\n  keys: [{file: keys/a.pub}]\n  tlog: {required: true, keys: [{file: rekor.pub}]}\n  maxAge: %q\n", in)
		p := f.mustParse(t, doc)
		if p.Default.MaxAge != want {
			t.Errorf("maxAge %s = %v, want %v", in, p.Default.MaxAge, want)
		}
	}
}

// A scope applies to the image it names however either is spelled: the
// registry's case, the default port 443, docker.io or index.docker.io,
// library/ implicit in an image reference (go-containerregistry's
// normalisation), compared in one normal form.
func TestScopeSpellings(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		scopes []string // equivalent spellings of one scope
		images []string // image references it must apply to
		not    []string // and must not
	}{
		{
			scopes: []string{"registry.example.com/team", "registry.example.com:443/team", "Registry.Example.COM:443/team", "registry.example.com:0443/team"},
			images: []string{"registry.example.com/team/app:1", "registry.example.com:443/team/app:1", "REGISTRY.example.com:443/team/app@sha256:" + strings.Repeat("0", 64)},
			not:    []string{"registry.example.com:5000/team/app", "registry.example.com:4430/team/app", "registry.example.com/teams/app"},
		},
		{
			scopes: []string{"docker.io/library/alpine", "index.docker.io/library/alpine", "docker.io:443/library/alpine", "index.docker.io:443/library/alpine"},
			images: []string{"alpine", "alpine:3", "docker.io/alpine", "docker.io/library/alpine:3", "index.docker.io/library/alpine", "docker.io:443/library/alpine"},
			// index.docker.io:443/alpine is repository "alpine" to every
			// client (only a bare docker.io gets library/ added).
			not: []string{"alpine/git", "docker.io/alpine/git", "registry-1.docker.io/library/alpine", "index.docker.io:443/alpine"},
		},
		{
			scopes: []string{"docker.io/myorg", "index.docker.io:443/myorg"},
			images: []string{"myorg/app", "docker.io/myorg/app:1", "index.docker.io:443/myorg/app"},
			not:    []string{"myorg", "docker.io/library/myorg"}, // a namespace scope, not library/myorg
		},
		{
			scopes: []string{"*.example.org/app", "*.example.org:443/app"},
			images: []string{"eu.example.org/app", "eu.example.org:443/app", "EU.example.org/app"},
			not:    []string{"eu.example.org:8443/app"},
		},
		{
			scopes: []string{"registry.example.com:*/team"},
			images: []string{"registry.example.com/team/app", "registry.example.com:443/team/app", "registry.example.com:5000/team/app"},
			not:    []string{"registry.example.com.evil/team/app", "other.example.com/team/app"},
		},
		{
			scopes: []string{"127.0.0.1:5000/team"},
			images: []string{"127.0.0.1:5000/team/app"},
			not:    []string{"127.0.0.1/team/app", "127.0.0.1:443/team/app"},
		},
	} {
		for _, scope := range tc.scopes {
			p := f.mustParse(t, fmt.Sprintf("version: 1\ndefault: {unsigned: accept}\nscopes:\n  - {scope: %q, reject: true}\n", scope))
			for _, img := range append(tc.images, tc.not...) {
				ref, err := name.ParseReference(img)
				if err != nil {
					t.Fatalf("%s: %v", img, err)
				}
				m := p.Match(ref.Context().Name())
				want := slices.Contains(tc.images, img)
				if (m.Scope == scope) != want {
					t.Errorf("scope %q, image %s (%s): matched %q, want a match: %v", scope, img, ref.Context().Name(), m.Scope, want)
				}
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	f.Add([]byte(fx.example()))
	f.Add([]byte("version: 1\ndefault: {reject: true}\n"))
	f.Add([]byte(`{"version":1,"scopes":[{"scope":"r.io/**/x","unsigned":"accept"}]}`))
	f.Add([]byte("version: 1\nscopes:\n  - scope: r.io\n    keys: [{file: keys/a.pub}, {file: keys/b.pub}]\n    threshold: 2\n    identity: {requireMatch: true, remap: [{from: a.io/x, to: docker.io}]}\n"))
	f.Add([]byte("version: 1\nscopes:\n  - &a {scope: r.io, reject: true}\n  - *a\n"))
	f.Add([]byte("version: 1\nscopes:\n  - {scope: 'r.io:443/x', reject: true}\n  - {scope: 'docker.io:443/library', unsigned: accept}\n"))
	f.Add([]byte("version: 1\ndefault:\n  keys: [{file: keys/a.pub}]\n  attestations: [{type: spdx, conditions: [{expression: 'predicate.x == 1'}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml", fx.dir)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			return
		}
		for _, repo := range []string{"r.io/x", "index.docker.io/library/alpine", "a.io/x/y/z", "alpine"} {
			m := p.Match(repo)
			r := m.Requirement
			if r == nil {
				t.Fatalf("Match(%q) has no requirement", repo)
			}
			kinds := 0
			if r.Reject {
				kinds++
			}
			if r.AcceptUnsigned {
				kinds++
			}
			if len(r.Keys) > 0 {
				kinds++
				if r.Threshold < 1 || r.Threshold > len(r.Keys) {
					t.Fatalf("threshold %d of %d keys", r.Threshold, len(r.Keys))
				}
			}
			if kinds != 1 {
				t.Fatalf("Match(%q): requirement %+v is not exactly one kind", repo, r)
			}
			r.Identity.Expected(repo)
		}
		// Spellings of one repository meet one requirement.
		for _, same := range [][]string{
			{"r.io/x", "R.IO:443/x", "r.io:0443/x"},
			{"index.docker.io/library/alpine", "docker.io/library/alpine", "docker.io:443/library/alpine"},
		} {
			want := p.Match(same[0])
			for _, repo := range same[1:] {
				if got := p.Match(repo); got.Scope != want.Scope || got.Line != want.Line || (want.Scope != "" && got.Requirement != want.Requirement) {
					t.Fatalf("Match(%q) = %q line %d, Match(%q) = %q line %d", same[0], want.Scope, want.Line, repo, got.Scope, got.Line)
				}
			}
		}
		var b bytes.Buffer
		p.Explain(&b)
	})
}
