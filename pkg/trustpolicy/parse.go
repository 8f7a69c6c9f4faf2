package trustpolicy

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imgsign/imgsign/pkg/attest"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/policy"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/imgsign/imgsign/pkg/trustroot"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"gopkg.in/yaml.v3"
)

// parser holds the state of one Parse: where files are, and the files
// already read (a key file named by many scopes is read once).
type parser struct {
	name, baseDir string
	files         map[string]fileResult
	roots         map[string]rootResult
	conditions    int
}

type fileResult struct {
	data []byte
	err  error
}

type rootResult struct {
	logs []*tlog.Log
	err  error
}

// The policy file's shape, decoded by yaml.v3 with KnownFields: an unknown
// or repeated field is a complaint of yaml.v3's, which mapping keeps for the
// error message (where the field is, in words, is known only to the code
// that reads the mapping). Scalars stay yaml.Nodes: their line and type
// make the messages ("threshold must be a whole number, not the string
// "two" (quote it)").
type (
	policyFields struct {
		Version yaml.Node                  `yaml:"version"`
		Default mapping[requirementFields] `yaml:"default"`
		Scopes  list[mapping[scopeFields]] `yaml:"scopes"`
	}
	scopeFields struct {
		Scope       yaml.Node         `yaml:"scope"` // read from the node (see scope)
		Requirement requirementFields `yaml:",inline"`
	}
	requirementFields struct {
		Reject       yaml.Node                        `yaml:"reject"`
		Unsigned     yaml.Node                        `yaml:"unsigned"`
		Keys         list[mapping[keyFields]]         `yaml:"keys"`
		Identities   list[mapping[identityFields]]    `yaml:"identities"`
		TrustedRoot  yaml.Node                        `yaml:"trustedRoot"`
		Threshold    yaml.Node                        `yaml:"threshold"`
		Tlog         mapping[tlogFields]              `yaml:"tlog"`
		Annotations  mapping[map[string]yaml.Node]    `yaml:"annotations"`
		Attestations list[mapping[attestationFields]] `yaml:"attestations"`
		Identity     mapping[identityRuleFields]      `yaml:"identity"`
		MaxAge       yaml.Node                        `yaml:"maxAge"`
	}
	keyFields struct {
		File      yaml.Node `yaml:"file"`
		PEM       yaml.Node `yaml:"pem"`
		KMS       yaml.Node `yaml:"kms"`
		NotBefore yaml.Node `yaml:"notBefore"`
		NotAfter  yaml.Node `yaml:"notAfter"`
	}
	logKeyFields struct {
		File yaml.Node `yaml:"file"`
		PEM  yaml.Node `yaml:"pem"`
		KMS  yaml.Node `yaml:"kms"`
	}
	tlogFields struct {
		Required    yaml.Node                   `yaml:"required"`
		Keys        list[mapping[logKeyFields]] `yaml:"keys"`
		TrustedRoot yaml.Node                   `yaml:"trustedRoot"`
	}
	attestationFields struct {
		Type       yaml.Node                      `yaml:"type"`
		Conditions list[mapping[conditionFields]] `yaml:"conditions"`
	}
	conditionFields struct {
		Name       yaml.Node `yaml:"name"`
		Expression yaml.Node `yaml:"expression"`
	}
	identityRuleFields struct {
		RequireMatch yaml.Node                  `yaml:"requireMatch"`
		Remap        list[mapping[remapFields]] `yaml:"remap"`
	}
	remapFields struct {
		From yaml.Node `yaml:"from"`
		To   yaml.Node `yaml:"to"`
	}
	identityFields struct {
		Issuer                   yaml.Node `yaml:"issuer"`
		IssuerRegExp             yaml.Node `yaml:"issuerRegExp"`
		Subject                  yaml.Node `yaml:"subject"`
		SubjectRegExp            yaml.Node `yaml:"subjectRegExp"`
		GithubWorkflowTrigger    yaml.Node `yaml:"githubWorkflowTrigger"`
		GithubWorkflowSHA        yaml.Node `yaml:"githubWorkflowSHA"`
		GithubWorkflowName       yaml.Node `yaml:"githubWorkflowName"`
		GithubWorkflowRepository yaml.Node `yaml:"githubWorkflowRepository"`
		GithubWorkflowRef        yaml.Node `yaml:"githubWorkflowRef"`
		NotBefore                yaml.Node `yaml:"notBefore"`
		NotAfter                 yaml.Node `yaml:"notAfter"`
	}
)

// mapping is a YAML mapping decoded into T, and yaml.v3's complaints about
// its own fields (unknown, repeated). The reader checks first, with the
// node, that the value is a mapping at all, and says where it is.
//
// It implements yaml.v3's older unmarshaler interface, the one whose
// decoding keeps the decoder's settings (KnownFields) for what it decodes.
type mapping[T any] struct {
	issues []string
	v      T
}

func (m *mapping[T]) UnmarshalYAML(unmarshal func(any) error) error {
	err := unmarshal(&m.v)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		m.issues = te.Errors
		return nil
	}
	return err
}

// list is a YAML sequence decoded into items. A value that is not a
// sequence leaves it empty: the reader reports that, with the node.
type list[T any] struct {
	items []T
}

func (l *list[T]) UnmarshalYAML(unmarshal func(any) error) error {
	err := unmarshal(&l.items)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// The fields of a requirement; all but reject and unsigned make a
// signature requirement.
var (
	requirementFieldNames = []string{"reject", "unsigned", "keys", "identities", "trustedRoot", "threshold", "tlog", "annotations", "attestations", "identity", "maxAge"}
	signatureFields       = requirementFieldNames[2:]
)

func (p *parser) errorf(line int, format string, args ...any) error {
	return &Error{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) wrap(line int, err error, format string, args ...any) error {
	return &Error{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...), Err: err}
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// yamlError turns a YAML syntax error into an *Error with its line.
func (p *parser) yamlError(err error) error {
	msg := err.Error()
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			return p.errorf(line, "invalid YAML: %s", m[2])
		}
	}
	return p.errorf(0, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// parse reads a policy in two passes over data: the first, into nodes,
// finds syntax errors, a second document and aliases (which the second
// would expand); the second decodes the typed fields strictly. The nodes
// give positions (a key's line, whether a field is present, empty, and in
// which order), the typed fields the values.
func (p *parser) parse(data []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errorf(0, "the policy is empty")
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, p.yamlError(err)
		}
		return nil, p.errorf(extra.Line, "a second YAML document: a policy is one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) != 1 {
			return nil, p.errorf(0, "the policy is empty")
		}
		root = root.Content[0]
	}
	if a := firstAlias(root); a != nil {
		return nil, p.errorf(a.Line, "YAML aliases (*%s) are not allowed in a policy", a.Value)
	}
	var top mapping[policyFields]
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&top); err != nil {
		return nil, p.yamlError(err)
	}
	if err := p.object(root, top.issues, "the policy"); err != nil {
		return nil, err
	}
	f := &top.v
	if f.Version.Kind == 0 {
		return nil, p.errorf(root.Line, "version is missing (write version: 1)")
	}
	if n, err := p.integer(&f.Version, "version"); err != nil {
		return nil, err
	} else if n != 1 {
		return nil, p.errorf(f.Version.Line, "version %d is not supported (only version 1 is)", n)
	}

	pol := &Policy{name: p.name}
	if k, v := field(root, "default"); k != nil {
		if err := p.object(v, f.Default.issues, "the default"); err != nil {
			return nil, err
		}
		var err error
		if pol.Default, err = p.requirement(v, &f.Default.v, "the default"); err != nil {
			return nil, err
		}
		pol.DefaultLine = k.Line
	}
	if _, v := field(root, "scopes"); v != nil {
		items, err := p.list(v, len(f.Scopes.items), "scopes", MaxScopes)
		if err != nil {
			return nil, err
		}
		seen := map[string]*Scope{}
		for i, item := range items {
			sc, err := p.scope(item, &f.Scopes.items[i], i)
			if err != nil {
				return nil, err
			}
			if prev, dup := seen[sc.pat.key()]; dup {
				if prev.Pattern == sc.Pattern {
					return nil, p.errorf(sc.Line, "scope %q is listed twice (also on line %d)", sc.Pattern, prev.Line)
				}
				return nil, p.errorf(sc.Line, "scope %q is the same as scope %q on line %d", sc.Pattern, prev.Pattern, prev.Line)
			}
			seen[sc.pat.key()] = sc
			pol.Scopes = append(pol.Scopes, *sc)
		}
	}
	if len(pol.Scopes) == 0 && pol.Default == nil {
		return nil, p.errorf(root.Line, "the policy has no scopes and no default, so it would reject every image")
	}
	sort.SliceStable(pol.Scopes, func(i, j int) bool {
		return pol.Scopes[i].pat.moreSpecific(pol.Scopes[j].pat)
	})
	return pol, nil
}

// scope reads the i-th entry of scopes.
func (p *parser) scope(n *yaml.Node, m *mapping[scopeFields], i int) (*Scope, error) {
	where := fmt.Sprintf("scopes[%d]", i)
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n.Line, "%s must be a mapping, not %s", where, describe(n))
	}
	// The pattern names the scope in errors, even those that leave the
	// mapping undecoded (a repeated field): it is read from the node.
	_, pv := field(n, "scope")
	var pat string
	if pv != nil {
		var err error
		if pat, err = p.str(pv, where+": scope"); err != nil {
			return nil, err
		}
		where = fmt.Sprintf("scope %q", pat)
	}
	if err := p.object(n, m.issues, where); err != nil {
		return nil, err
	}
	if pv == nil {
		return nil, p.errorf(n.Line, "%s has no scope pattern (write scope: REGISTRY/PATH)", where)
	}
	cp, err := compilePattern(pat)
	if err != nil {
		return nil, p.wrap(pv.Line, err, "scope %q", pat)
	}
	req, err := p.requirement(n, &m.v.Requirement, where)
	if err != nil {
		return nil, err
	}
	return &Scope{Pattern: pat, Line: pv.Line, Requirement: *req, pat: cp}, nil
}

// requirement reads the requirement fields f of the mapping n (a scope or
// the default).
func (p *parser) requirement(n *yaml.Node, f *requirementFields, where string) (*Requirement, error) {
	reject := false
	if f.Reject.Kind != 0 {
		var err error
		if reject, err = p.boolean(&f.Reject, where+": reject"); err != nil {
			return nil, err
		}
	}
	hasUnsigned := f.Unsigned.Kind != 0
	if hasUnsigned {
		s, err := p.str(&f.Unsigned, where+": unsigned")
		if err != nil {
			return nil, err
		}
		if s != "accept" {
			return nil, p.errorf(f.Unsigned.Line, "%s: unsigned: %q is not understood (the only value is accept; to require signatures, list keys)", where, s)
		}
	}
	var sig []*yaml.Node // the keys of signature fields, in order
	for i := 0; i+1 < len(n.Content); i += 2 {
		if slices.Contains(signatureFields, n.Content[i].Value) {
			sig = append(sig, n.Content[i])
		}
	}
	switch {
	case reject && hasUnsigned:
		k, _ := field(n, "unsigned")
		return nil, p.errorf(k.Line, "%s: reject: true and unsigned: accept contradict each other", where)
	case reject && len(sig) > 0:
		return nil, p.errorf(sig[0].Line, "%s: reject: true cannot be combined with %s (a rejected image needs nothing else)", where, sig[0].Value)
	case reject:
		return &Requirement{Reject: true}, nil
	case hasUnsigned && len(sig) > 0:
		return nil, p.errorf(sig[0].Line, "%s: unsigned: accept cannot be combined with %s (an image accepted unsigned is not checked at all)", where, sig[0].Value)
	case hasUnsigned:
		return &Requirement{AcceptUnsigned: true}, nil
	}
	_, keysNode := field(n, "keys")
	_, idsNode := field(n, "identities")
	if keysNode == nil && idsNode == nil {
		if len(sig) > 0 {
			return nil, p.errorf(n.Line, "%s: no keys: a signature requirement needs keys or identities (or write unsigned: accept or reject: true)", where)
		}
		return nil, p.errorf(n.Line, "%s requires nothing: list keys or identities, or write unsigned: accept or reject: true", where)
	}
	req := &Requirement{Threshold: 1}
	var specs []keySpec
	var err error
	if keysNode != nil {
		if specs, err = p.keyList(keysNode, f.Keys.items, where+", keys", MaxKeys, true); err != nil {
			return nil, err
		}
		if len(specs) == 0 {
			return nil, p.errorf(keysNode.Line, "%s: keys is empty: at least one key must be listed", where)
		}
	}
	if idsNode != nil {
		if req.Identities, err = p.identities(idsNode, f.Identities.items, where+", identities"); err != nil {
			return nil, err
		}
	}
	if f.TrustedRoot.Kind != 0 {
		path, err := p.str(&f.TrustedRoot, where+": trustedRoot")
		if err != nil {
			return nil, err
		}
		tr, err := trustroot.LoadFile(p.resolve(path))
		if err != nil {
			return nil, p.wrap(f.TrustedRoot.Line, err, "%s: trustedRoot %s", where, path)
		}
		if idsNode == nil && len(tr.TimestampingAuthorities()) == 0 {
			k, _ := field(n, "trustedRoot")
			return nil, p.errorf(k.Line, "%s: trustedRoot is for identities (certificate signatures) and for the RFC 3161 timestamps of key signatures, and %s lists no timestamp authority; list identities, or put a trusted root for logs under tlog", where, path)
		}
		req.TrustedRoot, req.TrustedRootSource = tr, path
	}
	seen := map[string]keySpec{}
	for _, s := range specs {
		pub, err := keys.ParsePublicKey(s.data)
		if err != nil {
			return nil, p.wrap(s.line, err, "%s: %s", where, s.label("key"))
		}
		id, err := keys.KeyID(pub)
		if err != nil {
			return nil, p.wrap(s.line, err, "%s: %s", where, s.label("key"))
		}
		if prev, dup := seen[id]; dup {
			return nil, p.errorf(s.line, "%s: %s is the same key as %s on line %d", where, s.source, prev.source, prev.line)
		}
		seen[id] = s
		req.Keys = append(req.Keys, Key{Source: s.source, Public: pub, ID: id, NotBefore: s.notBefore, NotAfter: s.notAfter})
	}
	if f.Threshold.Kind != 0 {
		t, err := p.integer(&f.Threshold, where+": threshold")
		if err != nil {
			return nil, err
		}
		line := f.Threshold.Line
		switch n := t; {
		case n < 1:
			return nil, p.errorf(line, "%s: threshold %d: at least 1 key must have signed", where, n)
		case n > int64(len(req.Keys)+len(req.Identities)) && len(req.Identities) == 0:
			return nil, p.errorf(line, "%s: threshold %d is more than the %d keys listed", where, n, len(req.Keys))
		case n > int64(len(req.Keys)+len(req.Identities)):
			return nil, p.errorf(line, "%s: threshold %d is more than the %d keys and identities listed", where, n, len(req.Keys)+len(req.Identities))
		}
		req.Threshold = int(t)
	}
	if _, v := field(n, "tlog"); v != nil {
		if req.Tlog, err = p.tlog(v, &f.Tlog, where+", tlog"); err != nil {
			return nil, err
		}
	}
	if _, v := field(n, "annotations"); v != nil {
		if req.Annotations, err = p.annotations(v, &f.Annotations, where+", annotations"); err != nil {
			return nil, err
		}
	}
	if _, v := field(n, "attestations"); v != nil {
		if req.Attestations, err = p.attestations(v, f.Attestations.items, where+", attestations"); err != nil {
			return nil, err
		}
	}
	if _, v := field(n, "identity"); v != nil {
		if req.Identity, err = p.identity(v, &f.Identity, where+", identity"); err != nil {
			return nil, err
		}
	}
	if f.MaxAge.Kind != 0 {
		if req.MaxAge, err = p.duration(&f.MaxAge, where+": maxAge"); err != nil {
			return nil, err
		}
		tsas := req.TrustedRoot != nil && len(req.TrustedRoot.TimestampingAuthorities()) > 0
		if (req.Tlog == nil || !req.Tlog.Required) && !tsas {
			k, _ := field(n, "maxAge")
			return nil, p.errorf(k.Line, "%s: maxAge needs tlog.required: true or a trustedRoot with a timestamp authority (a signature's age is known only from the time a trusted log recorded it or a trusted TSA timestamped it)", where)
		}
	}
	return req, nil
}

// keySpec is one entry of a keys list: a key file's or inline PEM's bytes.
type keySpec struct {
	source string // as Key.Source
	file   bool
	line   int
	data   []byte
	// notBefore and notAfter bound a signing key's verified signing times.
	notBefore, notAfter time.Time
}

// label names the key in errors: `key file "a.pub"`, `key in inline PEM
// (line 6)`.
func (s keySpec) label(kind string) string {
	if s.file {
		return fmt.Sprintf("%s file %q", kind, s.source)
	}
	return kind + " in " + s.source
}

// keyList reads a list of {file: PATH}, {pem: TEXT} or {kms: URI} entries;
// with windows, each may carry notBefore and notAfter.
func (p *parser) keyList(n *yaml.Node, entries []mapping[keyFields], where string, max int, windows bool) ([]keySpec, error) {
	items, err := p.list(n, len(entries), where, max)
	if err != nil {
		return nil, err
	}
	var out []keySpec
	for i, item := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		if item.Kind == yaml.ScalarNode {
			return nil, p.errorf(item.Line, "%s must be {file: PATH}, {pem: TEXT} or {kms: URI}, not %s", w, describe(item))
		}
		if err := p.object(item, entries[i].issues, w); err != nil {
			return nil, err
		}
		f := &entries[i].v
		var nb, na time.Time
		if windows {
			for _, t := range []struct {
				name string
				n    *yaml.Node
				dst  *time.Time
			}{{"notBefore", &f.NotBefore, &nb}, {"notAfter", &f.NotAfter, &na}} {
				if t.n.Kind == 0 {
					continue
				}
				if *t.dst, err = p.rfc3339(t.name, t.n, w); err != nil {
					return nil, err
				}
			}
		}
		if !nb.IsZero() && !na.IsZero() && !nb.Before(na) {
			return nil, p.errorf(item.Line, "%s: notBefore is not before notAfter", w)
		}
		given := 0
		for _, v := range []*yaml.Node{&f.File, &f.PEM, &f.KMS} {
			if v.Kind != 0 {
				given++
			}
		}
		switch {
		case given > 1:
			return nil, p.errorf(item.Line, "%s: give one of file, pem or kms", w)
		case f.KMS.Kind != 0:
			uri, err := p.str(&f.KMS, w+": kms")
			if err != nil {
				return nil, err
			}
			if !keys.IsRemoteRef(uri) {
				return nil, p.errorf(f.KMS.Line, "%s: kms %q is not a key URI (awskms://, gcpkms://, azurekms://, hashivault:// or pkcs11:)", w, uri)
			}
			data, err := p.readRemoteKey(uri)
			if err != nil {
				return nil, p.wrap(f.KMS.Line, err, "%s: kms key %s", w, uri)
			}
			out = append(out, keySpec{source: uri, line: f.KMS.Line, data: data, notBefore: nb, notAfter: na})
		case f.File.Kind != 0:
			path, err := p.str(&f.File, w+": file")
			if err != nil {
				return nil, err
			}
			if path == "" {
				return nil, p.errorf(f.File.Line, "%s: file is empty", w)
			}
			data, err := p.readKeyFile(path)
			if err != nil {
				return nil, p.wrap(f.File.Line, err, "%s: key file %q", w, path)
			}
			out = append(out, keySpec{source: path, file: true, line: f.File.Line, data: data, notBefore: nb, notAfter: na})
		case f.PEM.Kind != 0:
			text, err := p.str(&f.PEM, w+": pem")
			if err != nil {
				return nil, err
			}
			line := f.PEM.Line
			out = append(out, keySpec{source: fmt.Sprintf("inline PEM (line %d)", line), line: line, data: []byte(text), notBefore: nb, notAfter: na})
		default:
			return nil, p.errorf(item.Line, "%s: give file: PATH, pem: TEXT or kms: URI", w)
		}
	}
	return out, nil
}

// resolve returns path relative to the policy's directory.
func (p *parser) resolve(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(p.baseDir, path)
}

// RemoteKeyTimeout bounds the fetch of the public key of each kms: key a
// policy names.
var RemoteKeyTimeout = 30 * time.Second

// readRemoteKey fetches the public key of a key URI (once per Parse) as
// PEM.
func (p *parser) readRemoteKey(uri string) ([]byte, error) {
	r, ok := p.files["kms:"+uri]
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), RemoteKeyTimeout)
		defer cancel()
		var pub crypto.PublicKey
		if pub, r.err = keys.RemotePublicKey(ctx, uri); r.err == nil {
			r.data, r.err = keys.MarshalPublicKey(pub)
		}
		p.files["kms:"+uri] = r
	}
	return r.data, r.err
}

func (p *parser) readKeyFile(path string) ([]byte, error) {
	full := p.resolve(path)
	r, ok := p.files[full]
	if !ok {
		r.data, r.err = keys.ReadFile(full)
		p.files[full] = r
	}
	return r.data, r.err
}

func (p *parser) tlog(n *yaml.Node, m *mapping[tlogFields], where string) (*TlogRequirement, error) {
	if err := p.object(n, m.issues, where); err != nil {
		return nil, err
	}
	f := &m.v
	t := &TlogRequirement{}
	var err error
	if f.Required.Kind != 0 {
		if t.Required, err = p.boolean(&f.Required, where+": required"); err != nil {
			return nil, err
		}
	}
	if _, v := field(n, "keys"); v != nil {
		entries := make([]mapping[keyFields], len(f.Keys.items))
		for i, e := range f.Keys.items {
			entries[i] = mapping[keyFields]{issues: e.issues, v: keyFields{File: e.v.File, PEM: e.v.PEM, KMS: e.v.KMS}}
		}
		specs, err := p.keyList(v, entries, where+", keys", MaxKeys, false)
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(s.data)
			if err != nil {
				return nil, p.wrap(s.line, err, "%s: %s: not a PEM public key", where, s.label("log key"))
			}
			l, err := tlog.NewLog(pub)
			if err != nil {
				return nil, p.wrap(s.line, err, "%s: %s", where, s.label("key"))
			}
			t.Logs = append(t.Logs, l)
			t.Sources = append(t.Sources, s.source)
		}
	}
	if f.TrustedRoot.Kind != 0 {
		path, err := p.str(&f.TrustedRoot, where+": trustedRoot")
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, p.errorf(f.TrustedRoot.Line, "%s: trustedRoot is empty", where)
		}
		full := p.resolve(path)
		r, ok := p.roots[full]
		if !ok {
			r.logs, r.err = tlog.LoadTrustedRoot(full)
			p.roots[full] = r
		}
		if r.err != nil {
			return nil, p.wrap(f.TrustedRoot.Line, r.err, "%s: trustedRoot %q", where, path)
		}
		t.Logs = append(t.Logs, r.logs...)
		t.Sources = append(t.Sources, "trusted root "+path)
	}
	if t.Required && len(t.Logs) == 0 {
		return nil, p.errorf(n.Line, "%s: required is true but no log is trusted (give keys or trustedRoot)", where)
	}
	return t, nil
}

func (p *parser) annotations(n *yaml.Node, m *mapping[map[string]yaml.Node], where string) (map[string]string, error) {
	if err := p.object(n, m.issues, where); err != nil {
		return nil, err
	}
	count := len(n.Content) / 2
	if count == 0 {
		return nil, p.errorf(n.Line, "%s is empty (leave it out to require none)", where)
	}
	if count > MaxAnnotations {
		return nil, p.errorf(n.Line, "%s: %d annotations (limit %d)", where, count, MaxAnnotations)
	}
	out := make(map[string]string, count)
	for i := 0; i+1 < len(n.Content); i += 2 { // in the order written, for the first error
		k := n.Content[i]
		if k.Value == "" {
			return nil, p.errorf(k.Line, "%s: an empty annotation name", where)
		}
		val := m.v[k.Value]
		v, err := p.str(&val, fmt.Sprintf("%s: %s", where, k.Value))
		if err != nil {
			return nil, err
		}
		out[k.Value] = v
	}
	return out, nil
}

func (p *parser) attestations(n *yaml.Node, entries []mapping[attestationFields], where string) ([]Attestation, error) {
	items, err := p.list(n, len(entries), where, MaxAttestations)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.errorf(n.Line, "%s is empty (leave it out to require none)", where)
	}
	var out []Attestation
	lines := map[string]int{}
	for i, item := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		if err := p.object(item, entries[i].issues, w); err != nil {
			return nil, err
		}
		f := &entries[i].v
		if f.Type.Kind == 0 {
			return nil, p.errorf(item.Line, "%s has no type", w)
		}
		typ, err := p.str(&f.Type, w+": type")
		if err != nil {
			return nil, err
		}
		uri, err := attest.PredicateType(typ)
		if err != nil {
			return nil, p.wrap(f.Type.Line, err, "%s", w)
		}
		if prev, dup := lines[uri]; dup {
			return nil, p.errorf(f.Type.Line, "%s: type %s is already required on line %d (put all its conditions in one entry)", w, uri, prev)
		}
		lines[uri] = f.Type.Line
		a := Attestation{Type: uri, Name: typ}
		if _, v := field(item, "conditions"); v != nil {
			if a.Conditions, err = p.conditionList(v, f.Conditions.items, w+", conditions"); err != nil {
				return nil, err
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// conditionList reads and compiles CEL conditions (package policy).
func (p *parser) conditionList(n *yaml.Node, entries []mapping[conditionFields], where string) (*policy.Policy, error) {
	items, err := p.list(n, len(entries), where, policy.MaxConditions)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.errorf(n.Line, "%s is empty (leave it out to require none)", where)
	}
	p.conditions += len(items)
	if p.conditions > MaxConditions {
		return nil, p.errorf(n.Line, "%s: more than %d conditions in the policy", where, MaxConditions)
	}
	conds := make([]policy.Condition, 0, len(items))
	lines := make([]int, 0, len(items))
	for i, item := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		if err := p.object(item, entries[i].issues, w); err != nil {
			return nil, err
		}
		f := &entries[i].v
		c := policy.Condition{Name: fmt.Sprintf("condition %d", i+1)}
		if f.Name.Kind != 0 {
			if c.Name, err = p.str(&f.Name, w+": name"); err != nil {
				return nil, err
			}
			if c.Name == "" {
				return nil, p.errorf(f.Name.Line, "%s: name is empty", w)
			}
		}
		if f.Expression.Kind == 0 {
			return nil, p.errorf(item.Line, "%s has no expression", w)
		}
		if c.Expression, err = p.str(&f.Expression, w+": expression"); err != nil {
			return nil, err
		}
		if strings.TrimSpace(c.Expression) == "" {
			return nil, p.errorf(f.Expression.Line, "%s: expression is empty", w)
		}
		conds = append(conds, c)
		lines = append(lines, f.Expression.Line)
	}
	pol, err := compileConditions(conds)
	if err == nil {
		return pol, nil
	}
	// Name the condition at fault.
	for i, c := range conds {
		if _, err := compileConditions([]policy.Condition{c}); err != nil {
			return nil, p.wrap(lines[i], err, "%s[%d]", where, i)
		}
	}
	return nil, p.wrap(n.Line, err, "%s", where)
}

func (p *parser) identity(n *yaml.Node, m *mapping[identityRuleFields], where string) (*Identity, error) {
	if err := p.object(n, m.issues, where); err != nil {
		return nil, err
	}
	if len(n.Content) == 0 {
		return nil, p.errorf(n.Line, "%s is empty (write requireMatch: true, or leave it out)", where)
	}
	f := &m.v
	id := &Identity{}
	var err error
	if f.RequireMatch.Kind != 0 {
		if id.RequireMatch, err = p.boolean(&f.RequireMatch, where+": requireMatch"); err != nil {
			return nil, err
		}
	}
	rk, rv := field(n, "remap")
	if rk == nil {
		return id, nil
	}
	if !id.RequireMatch {
		return nil, p.errorf(rk.Line, "%s: remap has no effect without requireMatch: true", where)
	}
	items, err := p.list(rv, len(f.Remap.items), where+", remap", MaxRemaps)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.errorf(rv.Line, "%s: remap is empty", where)
	}
	lines := map[string]int{}
	for i, item := range items {
		w := fmt.Sprintf("%s, remap[%d]", where, i)
		if err := p.object(item, f.Remap.items[i].issues, w); err != nil {
			return nil, err
		}
		rf := &f.Remap.items[i].v
		var r Remap
		for _, side := range []struct {
			name string
			n    *yaml.Node
			dst  *string
		}{{"from", &rf.From, &r.From}, {"to", &rf.To, &r.To}} {
			if side.n.Kind == 0 {
				return nil, p.errorf(item.Line, "%s has no %s", w, side.name)
			}
			if *side.dst, err = p.str(side.n, w+": "+side.name); err != nil {
				return nil, err
			}
			if *side.dst == "" {
				return nil, p.errorf(side.n.Line, "%s: %s is empty", w, side.name)
			}
			cp, err := compilePattern(*side.dst)
			if err != nil {
				return nil, p.wrap(side.n.Line, err, "%s: %s %q", w, side.name, *side.dst)
			}
			if cp.literal != len(cp.segs) {
				return nil, p.errorf(side.n.Line, "%s: %s %q: a repository prefix, without glob characters", w, side.name, *side.dst)
			}
		}
		key := normaliseRepository(r.From)
		if prev, dup := lines[key]; dup {
			return nil, p.errorf(rf.From.Line, "%s: from %q is already remapped on line %d", w, r.From, prev)
		}
		lines[key] = rf.From.Line
		id.Remap = append(id.Remap, r)
	}
	return id, nil
}

// identities reads an identities list: who may sign with a certificate.
func (p *parser) identities(n *yaml.Node, entries []mapping[identityFields], where string) ([]PolicyIdentity, error) {
	items, err := p.list(n, len(entries), where, MaxKeys)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.errorf(n.Line, "%s is empty: at least one identity must be listed", where)
	}
	out := make([]PolicyIdentity, 0, len(items))
	for i, it := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		if err := p.object(it, entries[i].issues, w); err != nil {
			return nil, err
		}
		f := &entries[i].v
		var id keyless.Identity
		for _, s := range []struct {
			name string
			n    *yaml.Node
			dst  *string
		}{
			{"issuer", &f.Issuer, &id.Issuer},
			{"issuerRegExp", &f.IssuerRegExp, &id.IssuerRegexp},
			{"subject", &f.Subject, &id.Subject},
			{"subjectRegExp", &f.SubjectRegExp, &id.SubjectRegexp},
			{"githubWorkflowTrigger", &f.GithubWorkflowTrigger, &id.GithubWorkflowTrigger},
			{"githubWorkflowSHA", &f.GithubWorkflowSHA, &id.GithubWorkflowSHA},
			{"githubWorkflowName", &f.GithubWorkflowName, &id.GithubWorkflowName},
			{"githubWorkflowRepository", &f.GithubWorkflowRepository, &id.GithubWorkflowRepository},
			{"githubWorkflowRef", &f.GithubWorkflowRef, &id.GithubWorkflowRef},
		} {
			if s.n.Kind == 0 {
				continue
			}
			if *s.dst, err = p.str(s.n, w+": "+s.name); err != nil {
				return nil, err
			}
		}
		for _, t := range []struct {
			name string
			n    *yaml.Node
			dst  *time.Time
		}{{"notBefore", &f.NotBefore, &id.NotBefore}, {"notAfter", &f.NotAfter, &id.NotAfter}} {
			if t.n.Kind == 0 {
				continue
			}
			if *t.dst, err = p.rfc3339(t.name, t.n, w); err != nil {
				return nil, err
			}
		}
		if id.Subject != "" && id.SubjectRegexp != "" {
			return nil, p.errorf(it.Line, "%s: subject and subjectRegExp: give one", w)
		}
		if id.Issuer != "" && id.IssuerRegexp != "" {
			return nil, p.errorf(it.Line, "%s: issuer and issuerRegExp: give one", w)
		}
		if err := id.Validate(); err != nil {
			return nil, p.wrap(it.Line, err, "%s", w)
		}
		if !id.NotBefore.IsZero() && !id.NotAfter.IsZero() && !id.NotBefore.Before(id.NotAfter) {
			return nil, p.errorf(it.Line, "%s: notBefore is not before notAfter", w)
		}
		out = append(out, PolicyIdentity{Identity: id, Line: it.Line})
	}
	return out, nil
}

// object checks that n, read as m's fields, is a mapping whose field names
// are strings, and reports the first of yaml.v3's complaints about its
// fields: a repeated field, then an unknown one.
func (p *parser) object(n *yaml.Node, issues []string, what string) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n.Line, "%s must be a mapping, not %s", what, describe(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return p.errorf(k.Line, "%s: a field name must be a string, not %s", what, describe(k))
		}
	}
	for _, s := range issues {
		if m := repeatedIssue().FindStringSubmatch(s); m != nil {
			line, _ := strconv.Atoi(m[1])
			name := m[2]
			if m[3] != "" {
				name, _ = strconv.Unquote(m[3])
			}
			first := line
			if k, _ := field(n, name); k != nil {
				first = k.Line
			}
			return p.errorf(line, "field %q is repeated in %s (also on line %d)", name, what, first)
		}
	}
	for _, s := range issues {
		if m := unknownIssue().FindStringSubmatch(s); m != nil {
			line, _ := strconv.Atoi(m[1])
			return p.errorf(line, "unknown field %q in %s", m[2], what)
		}
	}
	if len(issues) > 0 {
		return p.errorf(n.Line, "%s: %s", what, issues[0])
	}
	return nil
}

// yaml.v3's complaints (TypeError) about a mapping's fields, compiled on
// first use.
var (
	repeatedIssue = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^line (\d+): (?:field (.+) already set in type \S+|mapping key (".*") already defined at line \d+)$`)
	})
	unknownIssue = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)
	})
)

// list checks that n is a sequence of at most max entries, decoded as
// decoded items, and returns the entries' nodes.
func (p *parser) list(n *yaml.Node, decoded int, what string, max int) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n.Line, "%s must be a list, not %s", what, describe(n))
	}
	if len(n.Content) > max {
		return nil, p.errorf(n.Line, "%s: %d entries (limit %d)", what, len(n.Content), max)
	}
	if decoded != len(n.Content) {
		return nil, p.errorf(n.Line, "%s: %d of %d entries could be read", what, decoded, len(n.Content))
	}
	return n.Content, nil
}

// field returns the key and value nodes of the first field name of the
// mapping n, or nils.
func field(n *yaml.Node, name string) (key, val *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// firstAlias returns the first alias in n, or nil. A policy is read as
// written, and aliases are how a small YAML file expands into a huge one.
func firstAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := firstAlias(c); a != nil {
			return a
		}
	}
	return nil
}

// compileConditions compiles conditions with package policy, which reads
// them in its own file format.
func compileConditions(conds []policy.Condition) (*policy.Policy, error) {
	data, err := yaml.Marshal(struct {
		Conditions []policy.Condition `yaml:"conditions"`
	}{conds})
	if err != nil {
		return nil, err
	}
	return policy.Parse(data)
}

// duration reads a Go duration ("720h") or a whole number of days ("30d").
func (p *parser) duration(n *yaml.Node, what string) (time.Duration, error) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		return 0, p.errorf(n.Line, "%s: %s needs a unit, e.g. 720h or 30d", what, n.Value)
	}
	s, err := p.str(n, what)
	if err != nil {
		return 0, err
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && strings.Trim(days, "0123456789") == "" {
		n64, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n64 > maxDays {
			return 0, p.errorf(n.Line, "%s: %q is too long", what, s)
		}
		d = time.Duration(n64) * 24 * time.Hour
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, p.errorf(n.Line, "%s: %q is not a duration (e.g. 720h, 90m or 30d)", what, s)
	}
	if d <= 0 {
		return 0, p.errorf(n.Line, "%s: %q must be more than zero", what, s)
	}
	return d, nil
}

func (p *parser) scalar(n *yaml.Node, what, tag, want string) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		hint := ""
		if tag == "!!str" && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = " (quote it)"
		}
		return p.errorf(n.Line, "%s must be %s, not %s%s", what, want, describe(n), hint)
	}
	return nil
}

func (p *parser) str(n *yaml.Node, what string) (string, error) {
	if err := p.scalar(n, what, "!!str", "a string"); err != nil {
		return "", err
	}
	return n.Value, nil
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, error) {
	if err := p.scalar(n, what, "!!bool", "true or false"); err != nil {
		return false, err
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, p.errorf(n.Line, "%s: %v", what, err)
	}
	return b, nil
}

func (p *parser) integer(n *yaml.Node, what string) (int64, error) {
	if err := p.scalar(n, what, "!!int", "a whole number"); err != nil {
		return 0, err
	}
	var i int64
	if err := n.Decode(&i); err != nil {
		return 0, p.errorf(n.Line, "%s: %q is not a number imgsign can use", what, n.Value)
	}
	return i, nil
}

// describe names the kind of a node's value for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			v := n.Value
			if len(v) > 40 {
				v = v[:40] + "..."
			}
			return fmt.Sprintf("the string %q", v)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		case "!!null":
			return "empty"
		}
		return fmt.Sprintf("a %s value", n.ShortTag())
	}
	return "nothing"
}

// rfc3339 reads a notBefore or notAfter time, quoted or not.
func (p *parser) rfc3339(name string, n *yaml.Node, w string) (time.Time, error) {
	var v string
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		v = n.Value // an unquoted RFC 3339 time
	} else {
		var err error
		if v, err = p.str(n, w+": "+name); err != nil {
			return time.Time{}, err
		}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, p.errorf(n.Line, "%s: %s %q is not an RFC 3339 time (2026-01-31T00:00:00Z)", w, name, v)
	}
	return t, nil
}
