// Package policy evaluates conditions on attestation predicates, written in
// CEL (the Common Expression Language Kubernetes uses) and evaluated by
// github.com/google/cel-go. A policy file is YAML or JSON:
//
//	conditions:
//	  - name: built by our CI
//	    expression: predicate.builder.id == "https://ci.example/builder"
//	  - name: no critical vulnerabilities
//	    expression: '!predicate.scanner.result.exists(r, r.severity == "CRITICAL")'
//
// Each expression sees the variables predicate (the statement's predicate),
// predicateType (a string) and statement (the whole in-toto statement), and
// must evaluate to true. Expressions are compiled once, type-checked, and
// evaluated under a cost limit, so a hostile predicate cannot make a
// condition run for ever.
//
// Memory is bounded too: a statement may be as large as an attestation
// (32 MiB). Only what a condition reads is decoded: the predicate when an
// expression names predicate, the whole statement when one names
// statement, neither when conditions read only predicateType. What is
// decoded is decoded once, for all conditions, and refused with
// ErrTooLarge when its decoded form would take more than MaxDecodedBytes.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/imgsign/imgsign/internal/jsonscan"
	"gopkg.in/yaml.v3"
)

// Limits.
const (
	// MaxPolicyBytes is the largest policy file read.
	MaxPolicyBytes = 1 << 20
	// MaxConditions is the most conditions a policy may have.
	MaxConditions = 256
	// costLimit bounds the work of evaluating one condition.
	costLimit = 1_000_000 // the per-expression limit Kubernetes uses
	// MaxDecodedBytes bounds the memory a statement's decoded form (the
	// predicate, or the whole statement, as conditions read them) may
	// take, as estimated while decoding: JSON of large strings decodes to
	// about its size, JSON of small numbers and objects to 10-40 times it.
	MaxDecodedBytes = 24 << 20
)

// ErrInvalid is wrapped by errors in a policy file.
var ErrInvalid = errors.New("invalid policy")

// ErrFailed is wrapped when a condition does not hold.
var ErrFailed = errors.New("policy condition failed")

// ErrTooLarge is wrapped (with ErrFailed) when what the conditions read of
// a statement would take more than MaxDecodedBytes decoded.
var ErrTooLarge = errors.New("statement too large for the policy's conditions")

// Condition is one named expression.
type Condition struct {
	Name       string `yaml:"name" json:"name"`
	Expression string `yaml:"expression" json:"expression"`
}

// Policy is a compiled set of conditions.
type Policy struct {
	conditions []Condition
	programs   []cel.Program
	// readsPredicate and readsStatement say whether any condition names
	// the variable predicate or statement: only then is it decoded.
	readsPredicate, readsStatement bool
}

type file struct {
	Conditions []Condition `yaml:"conditions"`
}

// Load reads and compiles a policy file.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, path, MaxPolicyBytes)
	}
	return Parse(data)
}

// Parse compiles a policy from YAML or JSON. Unknown fields are errors.
func Parse(data []byte) (*Policy, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(f.Conditions) == 0 {
		return nil, fmt.Errorf("%w: no conditions", ErrInvalid)
	}
	if len(f.Conditions) > MaxConditions {
		return nil, fmt.Errorf("%w: %d conditions (limit %d)", ErrInvalid, len(f.Conditions), MaxConditions)
	}
	env, err := cel.NewEnv(
		cel.Variable("predicate", cel.DynType),
		cel.Variable("predicateType", cel.StringType),
		cel.Variable("statement", cel.DynType),
	)
	if err != nil {
		return nil, err
	}
	p := &Policy{}
	for i, c := range f.Conditions {
		if c.Name == "" {
			c.Name = fmt.Sprintf("condition %d", i+1)
		}
		if c.Expression == "" {
			return nil, fmt.Errorf("%w: %q has no expression", ErrInvalid, c.Name)
		}
		ast, iss := env.Compile(c.Expression)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalid, c.Name, iss.Err())
		}
		if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
			return nil, fmt.Errorf("%w: %q evaluates to %v, not a bool", ErrInvalid, c.Name, ast.OutputType())
		}
		prg, err := env.Program(ast, cel.CostLimit(costLimit))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalid, c.Name, err)
		}
		p.conditions = append(p.conditions, c)
		p.programs = append(p.programs, prg)
		refs := references(ast.NativeRep())
		p.readsPredicate = p.readsPredicate || refs["predicate"]
		p.readsStatement = p.readsStatement || refs["statement"]
	}
	return p, nil
}

// references returns the names of the identifiers an expression uses
// (a qualified name counts as its first part). A comprehension variable
// that shadows a variable counts as a use of it: the answer may be too
// many, never too few.
func references(a *celast.AST) map[string]bool {
	names := map[string]bool{}
	add := func(n string) {
		if i := strings.IndexByte(n, '.'); i >= 0 {
			n = n[:i]
		}
		names[n] = true
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.IdentKind {
			add(e.AsIdent())
		}
	}))
	for _, r := range a.ReferenceMap() {
		if r.Name != "" {
			add(r.Name)
		}
	}
	return names
}

// Conditions returns the policy's conditions, in order.
func (p *Policy) Conditions() []Condition { return p.conditions }

// Evaluate checks every condition against a verified statement (its JSON).
// The first condition that does not evaluate to true is named in an error
// wrapping ErrFailed. Only what the conditions read is decoded (see the
// package doc); a statement whose decoded form would exceed
// MaxDecodedBytes is refused with an error wrapping ErrTooLarge.
func (p *Policy) Evaluate(statementJSON []byte) error {
	vars, err := p.variables(statementJSON)
	if err != nil {
		return err
	}
	for i, prg := range p.programs {
		out, _, err := prg.Eval(vars)
		if err != nil {
			return fmt.Errorf("%w: %q could not be evaluated: %v", ErrFailed, p.conditions[i].Name, err)
		}
		if ok, isBool := out.Value().(bool); !isBool || !ok {
			return fmt.Errorf("%w: %q", ErrFailed, p.conditions[i].Name)
		}
	}
	return nil
}

// variables returns the CEL variables of a statement: predicateType
// always, predicate and statement decoded only when a condition reads
// them (a variable not read is null).
func (p *Policy) variables(data []byte) (map[string]any, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: statement is not JSON", ErrFailed)
	}
	s := &jsonscan.Scanner{Data: data}
	s.Space()
	if data[s.I] != '{' {
		return nil, fmt.Errorf("%w: statement is not a JSON object", ErrFailed)
	}
	vars := map[string]any{"predicate": nil, "predicateType": "", "statement": nil}
	if p.readsStatement {
		st, err := decodeBounded(data, "the statement")
		if err != nil {
			return nil, err
		}
		m := st.(map[string]any)
		vars["statement"], vars["predicate"] = m, m["predicate"]
		vars["predicateType"], _ = m["predicateType"].(string)
		return vars, nil
	}
	// The members predicateType and predicate, found in place; a statement
	// has no duplicate keys (pkg/statement refuses them), and of
	// duplicates the last counts, as for encoding/json.
	for s.I++; ; {
		s.Space()
		if data[s.I] == '}' {
			return vars, nil
		}
		if data[s.I] == ',' {
			s.I++
			s.Space()
		}
		key := unquote(s.Str())
		s.Space()
		s.I++ // ':'
		s.Space()
		start := s.I
		s.Skip()
		switch value := data[start:s.I]; {
		case key == "predicateType":
			vars["predicateType"] = ""
			if value[0] == '"' {
				vars["predicateType"] = unquote(value)
			}
		case key == "predicate" && p.readsPredicate:
			v, err := decodeBounded(value, "the predicate")
			if err != nil {
				return nil, err
			}
			vars["predicate"] = v
		}
	}
}
