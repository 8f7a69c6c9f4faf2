package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const stmt = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],
"predicateType":"https://slsa.dev/provenance/v1",
"predicate":{"builder":{"id":"https://ci.example/builder"},"vulns":[{"id":"CVE-1","severity":"LOW"}]}}`

func TestEvaluate(t *testing.T) {
	p, err := Parse([]byte(`
conditions:
  - name: built by our CI
    expression: predicate.builder.id == "https://ci.example/builder"
  - name: no critical vulnerabilities
    expression: '!predicate.vulns.exists(v, v.severity == "CRITICAL")'
  - name: provenance
    expression: predicateType.startsWith("https://slsa.dev/provenance/")
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Conditions()) != 3 {
		t.Fatalf("%d conditions", len(p.Conditions()))
	}
	if err := p.Evaluate([]byte(stmt)); err != nil {
		t.Fatalf("policy should hold: %v", err)
	}
	critical := strings.Replace(stmt, `"LOW"`, `"CRITICAL"`, 1)
	err = p.Evaluate([]byte(critical))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "no critical vulnerabilities") {
		t.Fatalf("err = %v, want the failed condition named", err)
	}
	// A predicate without the field: an evaluation error names the condition.
	err = p.Evaluate([]byte(`{"predicateType":"x","predicate":{}}`))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "built by our CI") {
		t.Fatalf("missing field: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         ``,
		"no conditions": `conditions: []`,
		"unknown field": "conditions:\n  - name: x\n    expression: 'true'\n    severity: high\n",
		"syntax":        "conditions:\n  - name: broken\n    expression: 'predicate.('\n",
		"not bool":      "conditions:\n  - name: number\n    expression: '1 + 2'\n",
		"unknown var":   "conditions:\n  - name: v\n    expression: 'secret == 1'\n",
		"no expression": "conditions:\n  - name: v\n",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCostLimit(t *testing.T) {
	// Nested comprehensions over a large list would run long; the cost
	// limit stops them.
	p, err := Parse([]byte("conditions:\n  - name: expensive\n    expression: 'predicate.xs.all(a, predicate.xs.all(b, predicate.xs.all(c, a + b + c >= 0)))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	xs := strings.TrimSuffix(strings.Repeat("1,", 400), ",")
	err = p.Evaluate([]byte(`{"predicateType":"x","predicate":{"xs":[` + xs + `]}}`))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "could not be evaluated") {
		t.Fatalf("err = %v, want the cost limit to stop evaluation", err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(path, []byte(`{"conditions":[{"name":"always","expression":"true"}]}`), 0o644)
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Evaluate([]byte(stmt)); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(big, make([]byte, MaxPolicyBytes+1), 0o644)
	if _, err := Load(big); !errors.Is(err, ErrInvalid) {
		t.Fatalf("big policy: %v", err)
	}
}

// largeStatement is a statement whose predicate is n bytes of small
// objects, the costliest JSON to decode per byte.
func largeStatement(n int) []byte {
	const item = `{"id":"CVE-1","severity":"LOW"},`
	items := strings.Repeat(item, n/len(item))
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"https://example.com/scan","predicate":{"vulns":[` + items + `{"id":"CVE-2","severity":"HIGH"}]}}`)
}

// Only what a condition names is decoded: conditions on predicateType
// alone hold on a statement whose predicate is too large to decode, and
// one that reads the predicate (or the statement) is refused for its size.
func TestEvaluateDecodesWhatIsRead(t *testing.T) {
	big := largeStatement(32 << 20)
	for _, c := range []struct {
		expr    string
		tooBig  bool
		readsP  bool
		readsSt bool
	}{
		{`predicateType == "https://example.com/scan"`, false, false, false},
		{`predicate.vulns.size() > 0`, true, true, false},
		{`has(predicate.vulns)`, true, true, false},
		{`statement.predicateType == "https://example.com/scan"`, true, false, true},
		{`[1].exists(predicate, predicate == 1)`, true, true, false}, // a shadowing name counts as a read
	} {
		p, err := Parse([]byte("conditions:\n  - name: c\n    expression: '" + c.expr + "'\n"))
		if err != nil {
			t.Fatal(err)
		}
		if p.readsPredicate != c.readsP || p.readsStatement != c.readsSt {
			t.Errorf("%s: reads predicate %v, statement %v; want %v, %v", c.expr, p.readsPredicate, p.readsStatement, c.readsP, c.readsSt)
		}
		err = p.Evaluate(big)
		if c.tooBig {
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFailed) {
				t.Errorf("%s: err = %v, want ErrTooLarge", c.expr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
		}
	}
	// Within the limit, the predicate is decoded once for all conditions
	// and read as before.
	p, err := Parse([]byte("conditions:\n  - name: high\n    expression: 'predicate.vulns.exists(v, v.severity == \"HIGH\")'\n  - name: whole\n    expression: 'statement.predicate.vulns.size() > 1'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Evaluate(largeStatement(64 << 10)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkEvaluateLarge(b *testing.B) {
	big := largeStatement(31 << 20)
	for name, expr := range map[string]string{
		"predicateType": `predicateType == "https://example.com/scan"`,
		"predicate":     `predicate.vulns.size() > 0`,
	} {
		p, err := Parse([]byte("conditions:\n  - name: c\n    expression: '" + expr + "'\n"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Evaluate(big)
			}
		})
	}
}
