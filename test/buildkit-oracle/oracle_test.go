package oracle

import (
	"bytes"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/dockerfile"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// envList is the global scope of a BuildKit build: ordered, last value
// wins.
type envList struct {
	keys []string
	vals map[string]string
}

func (e *envList) set(k, v string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *envList) Keys() []string              { return e.keys }

// buildkitFroms returns the base images of every stage as BuildKit's
// frontend resolves them for a build with target platform tp on build
// platform bp: the automatic arguments, then the global ARGs in order
// (a build argument wins, else the expanded default), then each FROM
// expanded in that scope; scratch and earlier stages left out. It follows
// dockerfile2llb (defaultArgs, buildMetaArgs, buildDispatchStates).
func buildkitFroms(data []byte, args map[string]string, tp, bp dockerfile.Platform) ([]string, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, linter.New(&linter.Config{}))
	if err != nil {
		return nil, err
	}
	env := &envList{}
	for _, kv := range [][2]string{
		{"BUILDPLATFORM", bp.String()}, {"BUILDOS", bp.OS}, {"BUILDOSVERSION", ""}, {"BUILDARCH", bp.Architecture}, {"BUILDVARIANT", bp.Variant},
		{"TARGETPLATFORM", tp.String()}, {"TARGETOS", tp.OS}, {"TARGETOSVERSION", ""}, {"TARGETARCH", tp.Architecture}, {"TARGETVARIANT", tp.Variant},
	} {
		v := kv[1]
		if o, ok := args[kv[0]]; ok {
			v = o
		}
		env.set(kv[0], v)
	}
	lex := shell.NewLex(res.EscapeToken)
	for _, cmd := range metaArgs {
		for _, kp := range cmd.Args {
			if v, ok := args[kp.Key]; ok {
				env.set(kp.Key, v)
				continue
			}
			if kp.Value != nil {
				r, err := lex.ProcessWordWithMatches(*kp.Value, env)
				if err != nil {
					return nil, err
				}
				env.set(kp.Key, r.Result)
			}
		}
	}
	var out []string
	earlier := map[string]bool{}
	for _, st := range stages {
		r, err := lex.ProcessWordWithMatches(st.BaseName, env)
		if err != nil {
			return nil, err
		}
		base := strings.ToLower(r.Result)
		if base != "scratch" && !earlier[base] {
			out = append(out, r.Result)
		}
		if st.Name != "" {
			earlier[strings.ToLower(st.Name)] = true
		}
	}
	return out, nil
}

// ourFroms returns the FROM images package dockerfile reports.
func ourFroms(data []byte, args map[string]string, tp, bp dockerfile.Platform) ([]string, error) {
	images, err := dockerfile.ImagesFor(data, dockerfile.Build{Args: args, Target: &tp, Host: &bp})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range images {
		if im.Kind == dockerfile.KindFrom {
			out = append(out, im.Ref)
		}
	}
	return out, nil
}

var platforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64"}

// compare checks one file on several target and build platforms: whenever
// both readers resolve it, they must name the same base images. Package
// dockerfile may refuse what BuildKit reads (it fails closed on unset
// variables, for one) and may read what BuildKit refuses (an unknown
// instruction, say: that build fails, pulling nothing).
func compare(t *testing.T, data []byte, args map[string]string) {
	t.Helper()
	for i, tps := range platforms {
		tp, _ := dockerfile.ParsePlatform(tps)
		bp, _ := dockerfile.ParsePlatform(platforms[(i+1)%len(platforms)])
		ours, oerr := ourFroms(data, args, tp, bp)
		theirs, terr := buildkitFroms(data, args, tp, bp)
		if oerr != nil || terr != nil {
			continue
		}
		if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
			t.Fatalf("%s: imgsign resolved %q, BuildKit %q\n%s", tps, ours, theirs, data)
		}
	}
}

var seeds = []string{
	"FROM reg/app:${TARGETARCH:-v1}\n",
	"FROM reg/app:${TARGETVARIANT:-none}-${TARGETVARIANT-unset}\n",
	"ARG TARGETARCH\nFROM reg/app:$TARGETARCH\n",
	"ARG TARGETARCH=fixed\nFROM reg/app:$TARGETARCH\n",
	"ARG TAG=${TARGETOS}-${TARGETARCH}\nFROM reg/app:${TAG}\n",
	"ARG BASE=alpine\nARG TAG=3.20\nFROM ${BASE}:${TAG} AS build\nFROM build\nFROM scratch\n",
	"FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nFROM reg/${BUILDARCH}/x:${TARGETARCH}\nCOPY --from=b / /\n",
	"# escape=`\nARG V=1\nFROM reg/`\napp:v${V}\n",
	"ARG V=1\nFROM reg/\\\n# comment\n\napp:v${V}-\\x\n",
	"ARG A=x\nARG B=${A:+y}${A:-z}\nFROM reg/${B}:1\n",
	"FROM reg/app:\"${TARGETARCH}\"'x'\n",
	"ARG V\nFROM reg/app:${V:-d}\n",
	"FROM reg/app AS One\nFROM one\nFROM ONE AS two\n",
	"FROM reg/app:${TARGETPLATFORM}\n",
}

// TestOracleSeeds: the seeds resolve identically (and do resolve).
func TestOracleSeeds(t *testing.T) {
	amd64, _ := dockerfile.ParsePlatform("linux/amd64")
	for _, s := range seeds {
		// Both read every seed: the comparison is not vacuous.
		if _, err := ourFroms([]byte(s), nil, amd64, amd64); err != nil {
			t.Errorf("imgsign: %v\n%s", err, s)
		}
		if _, err := buildkitFroms([]byte(s), nil, amd64, amd64); err != nil {
			t.Errorf("BuildKit: %v\n%s", err, s)
		}
		compare(t, []byte(s), nil)
		compare(t, []byte(s), map[string]string{"TARGETARCH": "riscv64", "V": "7", "BASE": "busybox"})
	}
	// The example of issue 17: BuildKit pulls :amd64 for linux/amd64.
	got, err := buildkitFroms([]byte(seeds[0]), nil, amd64, amd64)
	if err != nil || len(got) != 1 || got[0] != "reg/app:amd64" {
		t.Fatalf("BuildKit resolves %q, %v", got, err)
	}
	ours, err := ourFroms([]byte(seeds[0]), nil, amd64, amd64)
	if err != nil || len(ours) != 1 || ours[0] != "reg/app:amd64" {
		t.Fatalf("imgsign resolves %q, %v", ours, err)
	}
}

// FuzzFromResolution: for any Dockerfile both read, the base images
// package dockerfile resolves are those BuildKit's parser and lexer
// resolve, for every target platform.
func FuzzFromResolution(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "TARGETARCH=s390x")
	}
	// Package dockerfile's own fuzz seeds: directives, continuations,
	// escapes, heredocs.
	for _, s := range []string{
		"#!x\n# a=b\n# syntax = r/f:1 o\nARG A=1\nFROM a:${A:-x} AS b\nCOPY --from=c:1 / /\nFROM b\n",
		"# escape=`\nFROM a `\n  AS b\nRUN --mount='from=x,target=/y' `\n  --mount=from=z <<EOF\nCOPY --from=c / /\nEOF\n",
		"FROM \\\n# c\n\n  x\\\ny AS z\nCOPY --from=q\\\nr <<'A' <<B /\nA\nB\n",
	} {
		f.Add([]byte(s), "A=v")
	}
	f.Fuzz(func(t *testing.T, data []byte, arg string) {
		if len(data) > 4096 {
			return
		}
		var args map[string]string
		if k, v, ok := strings.Cut(arg, "="); ok && k != "" {
			args = map[string]string{k: v}
		}
		compare(t, data, args)
	})
}
