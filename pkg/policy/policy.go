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
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/cel-go/cel"
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
)

// ErrInvalid is wrapped by errors in a policy file.
var ErrInvalid = errors.New("invalid policy")

// ErrFailed is wrapped when a condition does not hold.
var ErrFailed = errors.New("policy condition failed")

// Condition is one named expression.
type Condition struct {
	Name       string `yaml:"name" json:"name"`
	Expression string `yaml:"expression" json:"expression"`
}

// Policy is a compiled set of conditions.
type Policy struct {
	conditions []Condition
	programs   []cel.Program
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
	}
	return p, nil
}

// Conditions returns the policy's conditions, in order.
func (p *Policy) Conditions() []Condition { return p.conditions }

// Evaluate checks every condition against a verified statement (its JSON).
// The first condition that does not evaluate to true is named in an error
// wrapping ErrFailed.
func (p *Policy) Evaluate(statementJSON []byte) error {
	var st map[string]any
	if err := json.Unmarshal(statementJSON, &st); err != nil {
		return fmt.Errorf("%w: statement is not JSON: %v", ErrFailed, err)
	}
	pt, _ := st["predicateType"].(string)
	vars := map[string]any{"predicate": st["predicate"], "predicateType": pt, "statement": st}
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
