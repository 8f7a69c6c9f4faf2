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
	"github.com/sigstore/sigstore-go/pkg/root"
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

// The fields of a requirement; all but reject and unsigned make a
// signature requirement.
var (
	requirementFields = []string{"reject", "unsigned", "keys", "identities", "trustedRoot", "threshold", "tlog", "annotations", "attestations", "identity", "maxAge"}
	signatureFields   = requirementFields[2:]
	scopeFields       = append([]string{"scope"}, requirementFields...)
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
	top, err := p.mapping(root, "the policy")
	if err != nil {
		return nil, err
	}
	if err := p.known(top, "the policy", "version", "default", "scopes"); err != nil {
		return nil, err
	}
	v, ok := top.by["version"]
	if !ok {
		return nil, p.errorf(top.line, "version is missing (write version: 1)")
	}
	if n, err := p.integer(v.val, "version"); err != nil {
		return nil, err
	} else if n != 1 {
		return nil, p.errorf(v.val.Line, "version %d is not supported (only version 1 is)", n)
	}

	pol := &Policy{name: p.name}
	if d, ok := top.by["default"]; ok {
		f, err := p.mapping(d.val, "the default")
		if err != nil {
			return nil, err
		}
		if err := p.known(f, "the default", requirementFields...); err != nil {
			return nil, err
		}
		if pol.Default, err = p.requirement(f, "the default"); err != nil {
			return nil, err
		}
		pol.DefaultLine = d.key.Line
	}
	if s, ok := top.by["scopes"]; ok {
		items, err := p.list(s.val, "scopes", MaxScopes)
		if err != nil {
			return nil, err
		}
		seen := map[string]*Scope{}
		for i, item := range items {
			sc, err := p.scope(item, i)
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
		return nil, p.errorf(top.line, "the policy has no scopes and no default, so it would reject every image")
	}
	sort.SliceStable(pol.Scopes, func(i, j int) bool {
		return pol.Scopes[i].pat.moreSpecific(pol.Scopes[j].pat)
	})
	return pol, nil
}

// scope parses the i-th entry of scopes.
func (p *parser) scope(n *yaml.Node, i int) (*Scope, error) {
	where := fmt.Sprintf("scopes[%d]", i)
	f, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	pf, ok := f.by["scope"]
	var pat string
	if ok {
		if pat, err = p.str(pf.val, where+": scope"); err != nil {
			return nil, err
		}
		where = fmt.Sprintf("scope %q", pat)
	}
	if err := p.known(f, where, scopeFields...); err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.errorf(f.line, "%s has no scope pattern (write scope: REGISTRY/PATH)", where)
	}
	cp, err := compilePattern(pat)
	if err != nil {
		return nil, p.wrap(pf.val.Line, err, "scope %q", pat)
	}
	req, err := p.requirement(f, where)
	if err != nil {
		return nil, err
	}
	return &Scope{Pattern: pat, Line: pf.val.Line, Requirement: *req, pat: cp}, nil
}

// requirement parses the requirement fields of a scope or the default.
func (p *parser) requirement(f fields, where string) (*Requirement, error) {
	reject := false
	if fd, ok := f.by["reject"]; ok {
		var err error
		if reject, err = p.boolean(fd.val, where+": reject"); err != nil {
			return nil, err
		}
	}
	unsigned, hasUnsigned := f.by["unsigned"]
	if hasUnsigned {
		s, err := p.str(unsigned.val, where+": unsigned")
		if err != nil {
			return nil, err
		}
		if s != "accept" {
			return nil, p.errorf(unsigned.val.Line, "%s: unsigned: %q is not understood (the only value is accept; to require signatures, list keys)", where, s)
		}
	}
	var sig []field
	for _, fd := range f.list {
		for _, name := range signatureFields {
			if fd.key.Value == name {
				sig = append(sig, fd)
			}
		}
	}
	switch {
	case reject && hasUnsigned:
		return nil, p.errorf(unsigned.key.Line, "%s: reject: true and unsigned: accept contradict each other", where)
	case reject && len(sig) > 0:
		return nil, p.errorf(sig[0].key.Line, "%s: reject: true cannot be combined with %s (a rejected image needs nothing else)", where, sig[0].key.Value)
	case reject:
		return &Requirement{Reject: true}, nil
	case hasUnsigned && len(sig) > 0:
		return nil, p.errorf(sig[0].key.Line, "%s: unsigned: accept cannot be combined with %s (an image accepted unsigned is not checked at all)", where, sig[0].key.Value)
	case hasUnsigned:
		return &Requirement{AcceptUnsigned: true}, nil
	}
	kf, ok := f.by["keys"]
	idf, hasIDs := f.by["identities"]
	if !ok && !hasIDs {
		if len(sig) > 0 {
			return nil, p.errorf(f.line, "%s: no keys: a signature requirement needs keys or identities (or write unsigned: accept or reject: true)", where)
		}
		return nil, p.errorf(f.line, "%s requires nothing: list keys or identities, or write unsigned: accept or reject: true", where)
	}
	req := &Requirement{Threshold: 1}
	var specs []keySpec
	var err error
	if ok {
		if specs, err = p.keyList(kf.val, where+", keys", MaxKeys, true); err != nil {
			return nil, err
		}
		if len(specs) == 0 {
			return nil, p.errorf(kf.val.Line, "%s: keys is empty: at least one key must be listed", where)
		}
	}
	if hasIDs {
		if req.Identities, err = p.identities(idf.val, where+", identities"); err != nil {
			return nil, err
		}
	}
	if fd, ok := f.by["trustedRoot"]; ok {
		if !hasIDs {
			return nil, p.errorf(fd.key.Line, "%s: trustedRoot is for identities (certificate signatures); list identities, or put a trusted root for logs under tlog", where)
		}
		path, err := p.str(fd.val, where+": trustedRoot")
		if err != nil {
			return nil, err
		}
		tr, err := root.NewTrustedRootFromPath(p.resolve(path))
		if err != nil {
			return nil, p.wrap(fd.val.Line, err, "%s: trustedRoot %s", where, path)
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
	if fd, ok := f.by["threshold"]; ok {
		n, err := p.integer(fd.val, where+": threshold")
		if err != nil {
			return nil, err
		}
		switch {
		case n < 1:
			return nil, p.errorf(fd.val.Line, "%s: threshold %d: at least 1 key must have signed", where, n)
		case n > int64(len(req.Keys)+len(req.Identities)) && len(req.Identities) == 0:
			return nil, p.errorf(fd.val.Line, "%s: threshold %d is more than the %d keys listed", where, n, len(req.Keys))
		case n > int64(len(req.Keys)+len(req.Identities)):
			return nil, p.errorf(fd.val.Line, "%s: threshold %d is more than the %d keys and identities listed", where, n, len(req.Keys)+len(req.Identities))
		}
		req.Threshold = int(n)
	}
	if fd, ok := f.by["tlog"]; ok {
		if req.Tlog, err = p.tlog(fd.val, where+", tlog"); err != nil {
			return nil, err
		}
	}
	if fd, ok := f.by["annotations"]; ok {
		if req.Annotations, err = p.annotations(fd.val, where+", annotations"); err != nil {
			return nil, err
		}
	}
	if fd, ok := f.by["attestations"]; ok {
		if req.Attestations, err = p.attestations(fd.val, where+", attestations"); err != nil {
			return nil, err
		}
	}
	if fd, ok := f.by["identity"]; ok {
		if req.Identity, err = p.identity(fd.val, where+", identity"); err != nil {
			return nil, err
		}
	}
	if fd, ok := f.by["maxAge"]; ok {
		if req.MaxAge, err = p.duration(fd.val, where+": maxAge"); err != nil {
			return nil, err
		}
		if req.Tlog == nil || !req.Tlog.Required {
			return nil, p.errorf(fd.key.Line, "%s: maxAge needs tlog.required: true (a signature's age is known only from the time a trusted log recorded it)", where)
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

// keyList reads a list of {file: PATH} or {pem: TEXT} entries; with
// windows, each may carry notBefore and notAfter.
func (p *parser) keyList(n *yaml.Node, where string, max int, windows ...bool) ([]keySpec, error) {
	allowed := []string{"file", "pem", "kms"}
	if len(windows) > 0 && windows[0] {
		allowed = append(allowed, "notBefore", "notAfter")
	}
	items, err := p.list(n, where, max)
	if err != nil {
		return nil, err
	}
	var out []keySpec
	for i, item := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		if item.Kind == yaml.ScalarNode {
			return nil, p.errorf(item.Line, "%s must be {file: PATH}, {pem: TEXT} or {kms: URI}, not %s", w, describe(item))
		}
		f, err := p.mapping(item, w)
		if err != nil {
			return nil, err
		}
		if err := p.known(f, w, allowed...); err != nil {
			return nil, err
		}
		var nb, na time.Time
		for _, fd := range f.list {
			if fd.key.Value != "notBefore" && fd.key.Value != "notAfter" {
				continue
			}
			t, err := p.rfc3339(fd, w)
			if err != nil {
				return nil, err
			}
			if fd.key.Value == "notBefore" {
				nb = t
			} else {
				na = t
			}
		}
		if !nb.IsZero() && !na.IsZero() && !nb.Before(na) {
			return nil, p.errorf(item.Line, "%s: notBefore is not before notAfter", w)
		}
		file, hasFile := f.by["file"]
		inline, hasPEM := f.by["pem"]
		remote, hasKMS := f.by["kms"]
		n := 0
		for _, has := range []bool{hasFile, hasPEM, hasKMS} {
			if has {
				n++
			}
		}
		switch {
		case n > 1:
			return nil, p.errorf(item.Line, "%s: give one of file, pem or kms", w)
		case hasKMS:
			uri, err := p.str(remote.val, w+": kms")
			if err != nil {
				return nil, err
			}
			if !keys.IsRemoteRef(uri) {
				return nil, p.errorf(remote.val.Line, "%s: kms %q is not a key URI (awskms://, gcpkms://, azurekms://, hashivault:// or pkcs11:)", w, uri)
			}
			data, err := p.readRemoteKey(uri)
			if err != nil {
				return nil, p.wrap(remote.val.Line, err, "%s: kms key %s", w, uri)
			}
			out = append(out, keySpec{source: uri, line: remote.val.Line, data: data, notBefore: nb, notAfter: na})
		case hasFile:
			path, err := p.str(file.val, w+": file")
			if err != nil {
				return nil, err
			}
			if path == "" {
				return nil, p.errorf(file.val.Line, "%s: file is empty", w)
			}
			data, err := p.readKeyFile(path)
			if err != nil {
				return nil, p.wrap(file.val.Line, err, "%s: key file %q", w, path)
			}
			out = append(out, keySpec{source: path, file: true, line: file.val.Line, data: data, notBefore: nb, notAfter: na})
		case hasPEM:
			text, err := p.str(inline.val, w+": pem")
			if err != nil {
				return nil, err
			}
			line := inline.val.Line
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

func (p *parser) tlog(n *yaml.Node, where string) (*TlogRequirement, error) {
	f, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	if err := p.known(f, where, "required", "keys", "trustedRoot"); err != nil {
		return nil, err
	}
	t := &TlogRequirement{}
	if fd, ok := f.by["required"]; ok {
		if t.Required, err = p.boolean(fd.val, where+": required"); err != nil {
			return nil, err
		}
	}
	if fd, ok := f.by["keys"]; ok {
		specs, err := p.keyList(fd.val, where+", keys", MaxKeys)
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
	if fd, ok := f.by["trustedRoot"]; ok {
		path, err := p.str(fd.val, where+": trustedRoot")
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, p.errorf(fd.val.Line, "%s: trustedRoot is empty", where)
		}
		full := p.resolve(path)
		r, ok := p.roots[full]
		if !ok {
			r.logs, r.err = tlog.LoadTrustedRoot(full)
			p.roots[full] = r
		}
		if r.err != nil {
			return nil, p.wrap(fd.val.Line, r.err, "%s: trustedRoot %q", where, path)
		}
		t.Logs = append(t.Logs, r.logs...)
		t.Sources = append(t.Sources, "trusted root "+path)
	}
	if t.Required && len(t.Logs) == 0 {
		return nil, p.errorf(f.line, "%s: required is true but no log is trusted (give keys or trustedRoot)", where)
	}
	return t, nil
}

func (p *parser) annotations(n *yaml.Node, where string) (map[string]string, error) {
	f, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	if err := p.repeated(f, where); err != nil {
		return nil, err
	}
	if len(f.list) == 0 {
		return nil, p.errorf(n.Line, "%s is empty (leave it out to require none)", where)
	}
	if len(f.list) > MaxAnnotations {
		return nil, p.errorf(n.Line, "%s: %d annotations (limit %d)", where, len(f.list), MaxAnnotations)
	}
	out := make(map[string]string, len(f.list))
	for _, fd := range f.list {
		if fd.key.Value == "" {
			return nil, p.errorf(fd.key.Line, "%s: an empty annotation name", where)
		}
		v, err := p.str(fd.val, fmt.Sprintf("%s: %s", where, fd.key.Value))
		if err != nil {
			return nil, err
		}
		out[fd.key.Value] = v
	}
	return out, nil
}

func (p *parser) attestations(n *yaml.Node, where string) ([]Attestation, error) {
	items, err := p.list(n, where, MaxAttestations)
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
		f, err := p.mapping(item, w)
		if err != nil {
			return nil, err
		}
		if err := p.known(f, w, "type", "conditions"); err != nil {
			return nil, err
		}
		tf, ok := f.by["type"]
		if !ok {
			return nil, p.errorf(f.line, "%s has no type", w)
		}
		typ, err := p.str(tf.val, w+": type")
		if err != nil {
			return nil, err
		}
		uri, err := attest.PredicateType(typ)
		if err != nil {
			return nil, p.wrap(tf.val.Line, err, "%s", w)
		}
		if prev, dup := lines[uri]; dup {
			return nil, p.errorf(tf.val.Line, "%s: type %s is already required on line %d (put all its conditions in one entry)", w, uri, prev)
		}
		lines[uri] = tf.val.Line
		a := Attestation{Type: uri, Name: typ}
		if cf, ok := f.by["conditions"]; ok {
			if a.Conditions, err = p.conditionList(cf.val, w+", conditions"); err != nil {
				return nil, err
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// conditionList reads and compiles CEL conditions (package policy).
func (p *parser) conditionList(n *yaml.Node, where string) (*policy.Policy, error) {
	items, err := p.list(n, where, policy.MaxConditions)
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
		f, err := p.mapping(item, w)
		if err != nil {
			return nil, err
		}
		if err := p.known(f, w, "name", "expression"); err != nil {
			return nil, err
		}
		c := policy.Condition{Name: fmt.Sprintf("condition %d", i+1)}
		if fd, ok := f.by["name"]; ok {
			if c.Name, err = p.str(fd.val, w+": name"); err != nil {
				return nil, err
			}
			if c.Name == "" {
				return nil, p.errorf(fd.val.Line, "%s: name is empty", w)
			}
		}
		ef, ok := f.by["expression"]
		if !ok {
			return nil, p.errorf(f.line, "%s has no expression", w)
		}
		if c.Expression, err = p.str(ef.val, w+": expression"); err != nil {
			return nil, err
		}
		if strings.TrimSpace(c.Expression) == "" {
			return nil, p.errorf(ef.val.Line, "%s: expression is empty", w)
		}
		conds = append(conds, c)
		lines = append(lines, ef.val.Line)
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

func (p *parser) identity(n *yaml.Node, where string) (*Identity, error) {
	f, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	if err := p.known(f, where, "requireMatch", "remap"); err != nil {
		return nil, err
	}
	if len(f.list) == 0 {
		return nil, p.errorf(n.Line, "%s is empty (write requireMatch: true, or leave it out)", where)
	}
	id := &Identity{}
	if fd, ok := f.by["requireMatch"]; ok {
		if id.RequireMatch, err = p.boolean(fd.val, where+": requireMatch"); err != nil {
			return nil, err
		}
	}
	rf, ok := f.by["remap"]
	if !ok {
		return id, nil
	}
	if !id.RequireMatch {
		return nil, p.errorf(rf.key.Line, "%s: remap has no effect without requireMatch: true", where)
	}
	items, err := p.list(rf.val, where+", remap", MaxRemaps)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.errorf(rf.val.Line, "%s: remap is empty", where)
	}
	lines := map[string]int{}
	for i, item := range items {
		w := fmt.Sprintf("%s, remap[%d]", where, i)
		f, err := p.mapping(item, w)
		if err != nil {
			return nil, err
		}
		if err := p.known(f, w, "from", "to"); err != nil {
			return nil, err
		}
		var r Remap
		for _, side := range []struct {
			name string
			dst  *string
		}{{"from", &r.From}, {"to", &r.To}} {
			fd, ok := f.by[side.name]
			if !ok {
				return nil, p.errorf(f.line, "%s has no %s", w, side.name)
			}
			if *side.dst, err = p.str(fd.val, w+": "+side.name); err != nil {
				return nil, err
			}
			if *side.dst == "" {
				return nil, p.errorf(fd.val.Line, "%s: %s is empty", w, side.name)
			}
			cp, err := compilePattern(*side.dst)
			if err != nil {
				return nil, p.wrap(fd.val.Line, err, "%s: %s %q", w, side.name, *side.dst)
			}
			if cp.literal != len(cp.segs) {
				return nil, p.errorf(fd.val.Line, "%s: %s %q: a repository prefix, without glob characters", w, side.name, *side.dst)
			}
		}
		key := normaliseRepository(r.From)
		if prev, dup := lines[key]; dup {
			return nil, p.errorf(f.by["from"].val.Line, "%s: from %q is already remapped on line %d", w, r.From, prev)
		}
		lines[key] = f.by["from"].val.Line
		id.Remap = append(id.Remap, r)
	}
	return id, nil
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

// field is one key: value of a mapping.
type field struct {
	key, val *yaml.Node
}

// fields are a mapping's entries, in order and by key.
type fields struct {
	list []field
	by   map[string]field
	line int
	// dup is the first field repeated, dupOf the line of its first use.
	dup   *field
	dupOf int
}

// mapping reads a mapping with string keys, none repeated.
func (p *parser) mapping(n *yaml.Node, what string) (fields, error) {
	if err := p.noAlias(n); err != nil {
		return fields{}, err
	}
	if n.Kind != yaml.MappingNode {
		return fields{}, p.errorf(n.Line, "%s must be a mapping, not %s", what, describe(n))
	}
	f := fields{by: map[string]field{}, line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := p.noAlias(k); err != nil {
			return fields{}, err
		}
		if err := p.noAlias(v); err != nil {
			return fields{}, err
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return fields{}, p.errorf(k.Line, "%s: a field name must be a string, not %s", what, describe(k))
		}
		fd := field{key: k, val: v}
		if prev, dup := f.by[k.Value]; dup {
			// Reported by known or repeated, which know where the mapping is.
			if f.dup == nil {
				f.dup, f.dupOf = &fd, prev.key.Line
			}
			continue
		}
		f.list = append(f.list, fd)
		f.by[k.Value] = fd
	}
	return f, nil
}

// repeated reports a field given twice.
func (p *parser) repeated(f fields, where string) error {
	if f.dup != nil {
		return p.errorf(f.dup.key.Line, "field %q is repeated in %s (also on line %d)", f.dup.key.Value, where, f.dupOf)
	}
	return nil
}

// known reports a repeated field, or the first field not in allowed.
func (p *parser) known(f fields, where string, allowed ...string) error {
	if err := p.repeated(f, where); err != nil {
		return err
	}
	for _, fd := range f.list {
		ok := false
		for _, a := range allowed {
			ok = ok || fd.key.Value == a
		}
		if !ok {
			return p.errorf(fd.key.Line, "unknown field %q in %s", fd.key.Value, where)
		}
	}
	return nil
}

// list reads a sequence of at most max items.
func (p *parser) list(n *yaml.Node, what string, max int) ([]*yaml.Node, error) {
	if err := p.noAlias(n); err != nil {
		return nil, err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n.Line, "%s must be a list, not %s", what, describe(n))
	}
	if len(n.Content) > max {
		return nil, p.errorf(n.Line, "%s: %d entries (limit %d)", what, len(n.Content), max)
	}
	for _, item := range n.Content {
		if err := p.noAlias(item); err != nil {
			return nil, err
		}
	}
	return n.Content, nil
}

func (p *parser) scalar(n *yaml.Node, what, tag, want string) error {
	if err := p.noAlias(n); err != nil {
		return err
	}
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

// noAlias refuses YAML aliases: a policy is read as written, and aliases
// are how a small YAML file expands into a huge one.
func (p *parser) noAlias(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return p.errorf(n.Line, "YAML aliases (*%s) are not allowed in a policy", n.Value)
	}
	return nil
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

// identityFields are the fields of an identities entry, as written.
var identityFields = []string{"issuer", "issuerRegExp", "subject", "subjectRegExp", "githubWorkflowTrigger", "githubWorkflowSHA", "githubWorkflowName", "githubWorkflowRepository", "githubWorkflowRef", "notBefore", "notAfter"}

// identities reads an identities list: who may sign with a certificate.
func (p *parser) identities(n *yaml.Node, where string) ([]PolicyIdentity, error) {
	items, err := p.list(n, where, MaxKeys)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, p.errorf(n.Line, "%s is empty: at least one identity must be listed", where)
	}
	out := make([]PolicyIdentity, 0, len(items))
	for i, it := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		f, err := p.mapping(it, w)
		if err != nil {
			return nil, err
		}
		if err := p.known(f, w, identityFields...); err != nil {
			return nil, err
		}
		var id keyless.Identity
		for _, fd := range f.list {
			if fd.key.Value == "notBefore" || fd.key.Value == "notAfter" {
				t, err := p.rfc3339(fd, w)
				if err != nil {
					return nil, err
				}
				if fd.key.Value == "notBefore" {
					id.NotBefore = t
				} else {
					id.NotAfter = t
				}
				continue
			}
			v, err := p.str(fd.val, w+": "+fd.key.Value)
			if err != nil {
				return nil, err
			}
			switch fd.key.Value {
			case "issuer":
				id.Issuer = v
			case "issuerRegExp":
				id.IssuerRegexp = v
			case "subject":
				id.Subject = v
			case "subjectRegExp":
				id.SubjectRegexp = v
			case "githubWorkflowTrigger":
				id.GithubWorkflowTrigger = v
			case "githubWorkflowSHA":
				id.GithubWorkflowSHA = v
			case "githubWorkflowName":
				id.GithubWorkflowName = v
			case "githubWorkflowRepository":
				id.GithubWorkflowRepository = v
			case "githubWorkflowRef":
				id.GithubWorkflowRef = v
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

// rfc3339 reads a notBefore or notAfter time, quoted or not.
func (p *parser) rfc3339(fd field, w string) (time.Time, error) {
	var v string
	if fd.val.Kind == yaml.ScalarNode && fd.val.ShortTag() == "!!timestamp" {
		v = fd.val.Value // an unquoted RFC 3339 time
	} else {
		var err error
		if v, err = p.str(fd.val, w+": "+fd.key.Value); err != nil {
			return time.Time{}, err
		}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, p.errorf(fd.val.Line, "%s: %s %q is not an RFC 3339 time (2026-01-31T00:00:00Z)", w, fd.key.Value, v)
	}
	return t, nil
}
