// Package trustpolicy reads the trust policy of `imgsign verify --policy`:
// which image repositories need signatures by which keys, and what else
// (transparency-log entries, signed annotations, attestations, the signed
// identity, a maximum age) a deploy gate demands of them. It parses and
// validates the policy file, finds the requirement that applies to a
// repository, and explains a policy in plain words. It neither contacts a
// registry nor checks signatures; a verifier evaluates the Requirement that
// Match returns.
//
// # File format
//
// A policy is YAML (or JSON, which is YAML):
//
//	version: 1                  # required, must be 1
//	default:                    # optional: what applies to an image no scope matches
//	  reject: true              # (without a default such images are rejected)
//	scopes:
//	  - scope: registry.example.com            # a registry and everything in it
//	    keys: [{file: keys/ci.pub}]            # relative to the policy file's directory
//	  - scope: registry.example.com/team-a     # a namespace and everything below it
//	    keys:
//	      - file: keys/team-a.pub
//	      - pem: |
//	          -----BEGIN PUBLIC KEY-----
//	          ...
//	    threshold: 2                           # distinct keys that must have signed (default 1)
//	    tlog:
//	      required: true                       # a verified transparency-log entry is needed
//	      keys: [{file: rekor.pub}]            # trusted log keys, and/or
//	      trustedRoot: trusted_root.json       # a Sigstore trusted root
//	    annotations: {env: prod}               # signed annotations required
//	    attestations:
//	      - type: slsaprovenance1              # cosign's short name or a URI
//	        conditions:                        # optional CEL conditions (package policy)
//	          - name: built by CI
//	            expression: predicate.builder.id == "https://ci.example/builder"
//	    identity:
//	      requireMatch: true                   # the signed docker-reference must name the repository
//	      remap:                               # for mirrors
//	        - from: mirror.internal/dockerhub
//	          to: docker.io
//	    maxAge: 720h                           # Go duration, or whole days ("30d")
//	  - scope: registry.example.com/team-b/*
//	    unsigned: accept                       # explicitly needs no signature
//	  - scope: "*.example.org/legacy/app"
//	    reject: true                           # explicitly refused
//
// Parsing is strict: an unknown or repeated field, a value of the wrong
// type, a YAML alias or a second document is an error naming the line. A
// requirement is exactly one of reject: true, unsigned: accept, or a
// signature requirement (at least one key). Keys, log keys and trusted roots
// are read and parsed when the policy is loaded.
//
// # Scopes
//
// A scope pattern is matched against a repository name as
// go-containerregistry writes it (name.Repository.Name(): the registry, then
// the path, e.g. index.docker.io/library/alpine or 127.0.0.1:5000/team/app),
// one "/"-separated segment at a time. In a segment, *, ? and [...] are
// globs with path.Match's meaning, so * never crosses a "/"; a segment that
// is exactly ** matches any number of segments, none included. A pattern
// matches a repository when it matches the repository's whole name or a
// leading part of it that ends at a "/": a scope names a registry, a
// namespace or a repository together with everything below it.
//
// Scopes and repositories are compared in one normal form (package
// reponame): registry names without regard to case and without the HTTPS
// default port (registry.example.com:443 is registry.example.com), and
// Docker Hub's docker.io as index.docker.io (the repository names this
// package sees always say index.docker.io). Official
// images live in the namespace library, as go-containerregistry and the
// Docker CLI name them: the image `docker pull alpine` fetches is matched by
// docker.io/library/alpine, while docker.io/alpine is the namespace "alpine"
// (alpine/git, ...). Registry names are compared without regard to case;
// repository paths are lowercase.
//
// When several scopes match, the most specific applies: the one with more
// literal segments (no glob characters), then more segments, then fewer
// glob characters, then more characters that are not globs (svc-* before
// *), then the one written first. Two scopes that are the same
// after normalisation are an error.
package trustpolicy

import (
	"crypto"
	"errors"
	"fmt"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/sigstore/sigstore-go/pkg/root"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/reponame"
	"github.com/imgsign/imgsign/pkg/tlog"
)

// Limits on a policy file.
const (
	// MaxPolicyBytes is the largest policy file read.
	MaxPolicyBytes = 1 << 20
	// MaxScopes is the most scopes a policy may list.
	MaxScopes = 1000
	// MaxKeys is the most signing keys of one requirement, and the most log
	// keys of one tlog block.
	MaxKeys = 64
	// MaxAnnotations is the most annotations one requirement may demand.
	MaxAnnotations = 64
	// MaxAttestations is the most attestations one requirement may demand.
	MaxAttestations = 64
	// MaxRemaps is the most remap entries of one identity block.
	MaxRemaps = 64
	// MaxConditions is the most CEL conditions in a whole policy (each
	// attestation is further bounded by policy.MaxConditions).
	MaxConditions = 4096
	// maxDays bounds a maxAge written in days, so it fits a time.Duration.
	maxDays = 100 * 366
)

// ErrInvalid is wrapped by every error about a policy file's contents.
var ErrInvalid = errors.New("invalid trust policy")

// Error is an error in a policy file, at a line. It wraps ErrInvalid and,
// when there is one, the underlying error (a key file that cannot be read,
// a CEL condition that does not compile: policy.ErrInvalid, ...).
type Error struct {
	// File is the policy's name (Load: the path given).
	File string
	// Line is the 1-based line, 0 when the error concerns the whole file.
	Line int
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any; its text follows Msg.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": " + e.Msg)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns ErrInvalid and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// Policy is a parsed and validated trust policy. It is read-only after
// Parse and safe for concurrent use.
type Policy struct {
	// Default applies to images no scope matches; nil means they are
	// rejected.
	Default *Requirement
	// DefaultLine is the line of the default block (0 without one).
	DefaultLine int
	// Scopes are the policy's scopes in match order: most specific first
	// (see the package documentation), which is not necessarily the order
	// of the file. Match returns the first that matches.
	Scopes []Scope

	name string
}

// Scope is one entry of scopes: a repository pattern and its requirement.
type Scope struct {
	// Pattern is the scope pattern as written.
	Pattern string
	// Line is the line of the pattern.
	Line int
	Requirement

	pat pattern
}

// Requirement is what an image must show to be accepted. Exactly one of
// Reject, AcceptUnsigned and len(Keys)+len(Identities) > 0 holds.
type Requirement struct {
	// Reject refuses every image: reject: true, or no scope and no default
	// matched.
	Reject bool
	// AcceptUnsigned accepts images without checking anything
	// (unsigned: accept).
	AcceptUnsigned bool
	// Keys are the keys whose signatures count, each a different key.
	Keys []Key
	// Identities are the certificate (keyless) signers whose signatures
	// count: with Keys, at least one of the two is listed.
	Identities []PolicyIdentity
	// TrustedRoot verifies certificate signatures (nil: the default
	// trusted root) and, with its timestamp authorities, the RFC 3161
	// timestamps of key signatures (nil: they are ignored);
	// TrustedRootSource is its file as written.
	TrustedRoot       root.TrustedMaterial
	TrustedRootSource string
	// Threshold is how many distinct keys of Keys must have signed
	// (1 <= Threshold <= len(Keys)).
	Threshold int
	// Tlog, when not nil, says which transparency logs are trusted and
	// whether a verified entry is required.
	Tlog *TlogRequirement
	// Annotations are annotations the signed payload must carry, with
	// exactly these values (nil: none).
	Annotations map[string]string
	// Attestations are attestations the image must have, one of each type
	// (nil: none). Each is held to the requirement as signatures are (see
	// package gate): made by Threshold distinct keys of Keys, within
	// MaxAge, and, when Annotations are required, by keys whose signature
	// of the image carries them (a statement cannot carry them).
	Attestations []Attestation
	// Identity says whether the signed docker-reference must name the
	// repository verified (nil: it is not checked).
	Identity *Identity
	// MaxAge, when positive, refuses signatures older than this, by their
	// verified signing time: the time a trusted transparency log recorded
	// them or a TSA of TrustedRoot timestamped them (it requires
	// Tlog.Required or a TrustedRoot with TSAs; a signature with no
	// verified time is refused).
	MaxAge time.Duration
}

// PolicyIdentity is an identities entry: an identity and its line.
type PolicyIdentity struct {
	keyless.Identity
	Line int
}

// Key is a trusted signing key.
type Key struct {
	// Source says where the key came from: the file as written in the
	// policy ("keys/ci.pub") or "inline PEM (line N)".
	Source string
	// Public is the public key.
	Public crypto.PublicKey
	// ID is the key ID (keys.KeyID: base64 SHA-256 of the PKIX DER).
	ID string
	// NotBefore and NotAfter, when set, bound the key's VERIFIED signing
	// times (a trusted log's integrated time): a signature outside them,
	// or with no verified time, does not count.
	NotBefore, NotAfter time.Time
}

// TlogRequirement is a requirement's tlog block.
type TlogRequirement struct {
	// Required demands a transparency-log entry verified against Logs for
	// the signatures counted; with Required false no entry is needed.
	Required bool
	// Logs are the trusted logs, from every source together.
	Logs []*tlog.Log
	// Sources name where the logs came from, one per source as written
	// ("rekor.pub", "inline PEM (line N)", "trusted root trusted_root.json");
	// a trusted root may hold several logs, so Sources does not parallel
	// Logs.
	Sources []string
}

// Attestation is an attestation a requirement demands.
type Attestation struct {
	// Type is the predicate type URI.
	Type string
	// Name is the type as written (a cosign short name or the URI).
	Name string
	// Conditions must all hold on the attestation's statement; nil if the
	// attestation is only required to exist (and verify).
	Conditions *policy.Policy
}

// Identity is a requirement's identity block.
type Identity struct {
	// RequireMatch demands that the signed identity (the simple-signing
	// payload's critical.identity.docker-reference) name the repository
	// verified, after Remap (see Expected).
	RequireMatch bool
	// Remap rewrites the repository verified before it is compared, for
	// mirrors: the repository prefix From is replaced by To.
	Remap []Remap
}

// Remap is one remap entry, as written.
type Remap struct {
	From, To string
}

// Match is the requirement that applies to a repository.
type Match struct {
	// Scope is the pattern of the scope that matched, "default" for the
	// policy's default, or "" when nothing matched and the image is
	// rejected.
	Scope string
	// Line is the line of the scope or default (0 for the implicit reject).
	Line int
	// Requirement is what the image must satisfy. It is shared with the
	// Policy and must not be modified.
	Requirement *Requirement
}

// Load reads and parses a policy file; key files and trusted roots it names
// are resolved relative to the file's directory.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxPolicyBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxPolicyBytes)}
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse parses a policy. name is used in error messages; relative key file
// and trusted root paths are resolved against baseDir ("" for the current
// directory). Every error about the contents is an *Error.
func Parse(data []byte, name, baseDir string) (*Policy, error) {
	if name == "" {
		name = "policy"
	}
	if len(data) > MaxPolicyBytes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes", MaxPolicyBytes)}
	}
	p := &parser{
		name:    name,
		baseDir: baseDir,
		files:   map[string]fileResult{},
		roots:   map[string]rootResult{},
	}
	return p.parse(data)
}

// Match returns the requirement for repository, a repository name as
// name.Repository.Name() writes it (a leading docker.io is read as
// index.docker.io). A name that is not one (empty, one segment, an empty
// segment, a tag or digest) is rejected, whatever the default.
func (p *Policy) Match(repository string) Match {
	segs, ok := splitRepository(repository)
	if ok {
		for i := range p.Scopes {
			s := &p.Scopes[i]
			if s.pat.match(segs) {
				return Match{Scope: s.Pattern, Line: s.Line, Requirement: &s.Requirement}
			}
		}
		if p.Default != nil {
			return Match{Scope: "default", Line: p.DefaultLine, Requirement: p.Default}
		}
	}
	return Match{Requirement: &Requirement{Reject: true}}
}

// Expected returns the repository the signed identity must name when
// repository is verified: repository with the longest matching Remap From
// prefix (at a "/" boundary) replaced by its To, as name.Repository.Name()
// writes it (docker.io/alpine becomes index.docker.io/library/alpine). With
// no matching remap (or a nil Identity) it is repository itself, so
// normalised.
func (id *Identity) Expected(repository string) string {
	repo := normaliseRepository(repository)
	out := repo
	if id != nil {
		best := -1
		for i, r := range id.Remap {
			from := normaliseRepository(r.From)
			if from == "" || (repo != from && !strings.HasPrefix(repo, from+"/")) {
				continue
			}
			if best < 0 || len(from) > len(normaliseRepository(id.Remap[best].From)) {
				best = i
			}
		}
		if best >= 0 {
			r := id.Remap[best]
			out = normaliseRepository(r.To) + repo[len(normaliseRepository(r.From)):]
		}
	}
	if r, err := name.NewRepository(out); err == nil {
		return r.Name()
	}
	return out
}

// normaliseRepository and normaliseRegistry write names in the one normal
// form scopes, remaps and repositories are compared in (package reponame).
func normaliseRepository(s string) string { return reponame.Repository(s) }

func normaliseRegistry(reg string) string { return reponame.Registry(reg) }
