package dockerfile

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// marked removes the markers ⟦ and ⟧ from s and returns where the marked
// texts are in the result.
func marked(t *testing.T, s string) (string, []span) {
	t.Helper()
	var (
		b     strings.Builder
		spans []span
		open  = -1
	)
	for _, r := range s {
		switch r {
		case '⟦':
			if open >= 0 {
				t.Fatalf("nested marker in %q", s)
			}
			open = b.Len()
		case '⟧':
			if open < 0 {
				t.Fatalf("unbalanced marker in %q", s)
			}
			spans = append(spans, span{open, b.Len()})
			open = -1
		default:
			b.WriteRune(r)
		}
	}
	if open >= 0 {
		t.Fatalf("unbalanced marker in %q", s)
	}
	return b.String(), spans
}

// img is an expected image: where is true when its reference is marked in
// the input (and so can be rewritten in place); raw defaults to ref.
type img struct {
	kind            Kind
	ref, raw        string
	line            int
	where           bool
	onbuild         bool
	stage, platform string
}

// expect turns the expected images into Images' result for input with
// markers, whose marked references are, in order, those with where set.
func expect(t *testing.T, in string, want []img) (string, []Image) {
	t.Helper()
	data, spans := marked(t, in)
	var out []Image
	for _, w := range want {
		im := Image{Kind: w.kind, Ref: w.ref, Raw: w.raw, Line: w.line, Start: -1, End: -1, OnBuild: w.onbuild, Stage: w.stage, Platform: w.platform}
		if im.Raw == "" {
			im.Raw = w.ref
		}
		if w.where {
			if len(spans) == 0 {
				t.Fatalf("fewer markers than placed images in %q", in)
			}
			im.Start, im.End = spans[0].start, spans[0].end
			if got := data[im.Start:im.End]; got != im.Raw {
				t.Fatalf("marker encloses %q, want %q", got, im.Raw)
			}
			spans = spans[1:]
		}
		out = append(out, im)
	}
	if len(spans) != 0 {
		t.Fatalf("more markers than placed images in %q", in)
	}
	return data, out
}

func TestImages(t *testing.T) {
	tests := []struct {
		name string
		in   string
		args map[string]string
		want []img
	}{
		// The syntax directive.
		{
			name: "syntax directive",
			in:   "# syntax=⟦docker/dockerfile:1⟧\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindSyntax, ref: "docker/dockerfile:1", line: 1, where: true}, {kind: KindFrom, ref: "alpine", line: 2, where: true}},
		},
		{
			name: "syntax directive with spaces, upper-case key, frontend options, CRLF",
			in:   "#   SYNTAX =  ⟦reg.example/front:1.7⟧ opt=1 x  \r\nFROM ⟦alpine⟧\r\n",
			want: []img{{kind: KindSyntax, ref: "reg.example/front:1.7", line: 1, where: true}, {kind: KindFrom, ref: "alpine", line: 2, where: true}},
		},
		{
			name: "no syntax directive",
			in:   "# a comment\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindFrom, ref: "alpine", line: 2, where: true}},
		},
		{
			name: "syntax after a comment line is a comment",
			in:   "# hello\n# syntax=docker/dockerfile:1\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindFrom, ref: "alpine", line: 3, where: true}},
		},
		{
			name: "syntax after an empty line is a comment",
			in:   "\n# syntax=docker/dockerfile:1\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindFrom, ref: "alpine", line: 3, where: true}},
		},
		{
			name: "indented syntax is read by no frontend",
			in:   "  # syntax=docker/dockerfile:1\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindFrom, ref: "alpine", line: 2, where: true}},
		},
		{
			name: "syntax after an instruction is a comment",
			in:   "FROM ⟦alpine⟧\n# syntax=docker/dockerfile:1\n",
			want: []img{{kind: KindFrom, ref: "alpine", line: 1, where: true}},
		},
		{
			name: "syntax after the escape and check directives",
			in:   "# escape=`\n# check=skip=all\n# syntax=⟦docker/dockerfile:1⟧\nFROM ⟦alpine⟧ `\n  AS a\n",
			want: []img{{kind: KindSyntax, ref: "docker/dockerfile:1", line: 3, where: true}, {kind: KindFrom, ref: "alpine", line: 4, where: true, stage: "a"}},
		},
		{
			name: "syntax after a byte order mark and a #! line",
			in:   "\xEF\xBB\xBF#!/usr/bin/env buildctl-run\n# syntax=⟦docker/dockerfile:1⟧\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindSyntax, ref: "docker/dockerfile:1", line: 2, where: true}, {kind: KindFrom, ref: "alpine", line: 3, where: true}},
		},
		{
			name: "syntax after another key=value comment (older BuildKit reads on)",
			in:   "# maintainer=team\n# syntax=⟦docker/dockerfile:1⟧\nFROM ⟦alpine⟧\n",
			want: []img{{kind: KindSyntax, ref: "docker/dockerfile:1", line: 2, where: true}, {kind: KindFrom, ref: "alpine", line: 3, where: true}},
		},
		{
			name: "BUILDKIT_SYNTAX build argument overrides, both reported",
			in:   "# syntax=⟦docker/dockerfile:1⟧\nFROM ⟦alpine⟧\n",
			args: map[string]string{"BUILDKIT_SYNTAX": " reg.example/front:2 opt"},
			want: []img{
				{kind: KindSyntax, ref: "reg.example/front:2", raw: " reg.example/front:2 opt"},
				{kind: KindSyntax, ref: "docker/dockerfile:1", line: 1, where: true},
				{kind: KindFrom, ref: "alpine", line: 2, where: true},
			},
		},

		// COPY --from.
		{
			name: "COPY --from: stage names, indexes, scratch, images",
			in: `FROM ⟦golang:1.22⟧ AS Build
COPY --from=⟦alpine:3.20⟧ /a /b
FROM ⟦debian⟧
COPY --from=build /app /app
COPY --from=BUILD /app /app
COPY --from=0 /app /app
COPY --from=1 /x /y
COPY --from=007 /x /y
COPY --from=scratch /x /y
COPY --from= /x /y
copy --chown=1:1 --from=⟦reg.example/tools:1⟧ --link /x /y
COPY --from=⟦later⟧ /x /y
FROM ⟦busybox⟧ AS later
COPY --from=⟦later⟧ /x /y
ADD --from=not-a-flag-of-add /x /y
`,
			want: []img{
				{kind: KindFrom, ref: "golang:1.22", line: 1, where: true, stage: "Build"},
				{kind: KindCopyFrom, ref: "alpine:3.20", line: 2, where: true},
				{kind: KindFrom, ref: "debian", line: 3, where: true},
				{kind: KindCopyFrom, ref: "reg.example/tools:1", line: 11, where: true},
				{kind: KindCopyFrom, ref: "later", line: 12, where: true},
				{kind: KindFrom, ref: "busybox", line: 13, where: true, stage: "later"},
				{kind: KindCopyFrom, ref: "later", line: 14, where: true},
			},
		},
		{
			name: "COPY --from with JSON arguments and with a heredoc",
			in:   "FROM ⟦a⟧\nCOPY --from=⟦img:1⟧ [\"/a\", \"/b\"]\nCOPY --from=⟦img:2⟧ <<EOF /x\nCOPY --from=evil / /\nEOF\n",
			want: []img{
				{kind: KindFrom, ref: "a", line: 1, where: true},
				{kind: KindCopyFrom, ref: "img:1", line: 2, where: true},
				{kind: KindCopyFrom, ref: "img:2", line: 3, where: true},
			},
		},
		{
			name: "COPY --from written with quotes or split: reported, not rewritable",
			in:   "FROM ⟦a⟧\nCOPY --from=\"img:1\" /a /b\nCOPY --'from=img:2' /a /b\nCOPY --from=img:\\\n3 /a /b\nCOPY '--from=not-a-flag' /a\n",
			want: []img{
				{kind: KindFrom, ref: "a", line: 1, where: true},
				{kind: KindCopyFrom, ref: "img:1", line: 2},
				{kind: KindCopyFrom, ref: "img:2", line: 3},
				{kind: KindCopyFrom, ref: "img:3", line: 4},
			},
		},
		{
			name: "COPY --from on a continuation line, CRLF",
			in:   "FROM ⟦a⟧\r\nCOPY \\\r\n  --chmod=644 \\\r\n# comment\r\n  --from=⟦img:1⟧ \\\r\n  /a /b\r\n",
			want: []img{{kind: KindFrom, ref: "a", line: 1, where: true}, {kind: KindCopyFrom, ref: "img:1", line: 2, where: true}},
		},
		{
			name: "flags escape with a backslash whatever the escape directive",
			in:   "# escape=`\nFROM ⟦a⟧\nCOPY --chown=a` --from=⟦evil⟧ / /\nCOPY --chown=a\\ --from=not-a-flag / /\n",
			want: []img{{kind: KindFrom, ref: "a", line: 2, where: true}, {kind: KindCopyFrom, ref: "evil", line: 3, where: true}},
		},
		{
			name: "flags end at --",
			in:   "FROM ⟦a⟧\nCOPY -- --from=x /a /b\n",
			want: []img{{kind: KindFrom, ref: "a", line: 1, where: true}},
		},

		// RUN --mount.
		{
			name: "RUN with several --mount flags",
			in: `FROM ⟦a⟧ AS build
RUN --mount=type=bind,from=⟦alpine:3⟧,source=/x,target=/y \
    --mount=type=cache,target=/c,from=build \
    --mount=type=secret,id=s \
    --network=none \
    --mount=type=cache,FROM=⟦reg.example/cache:1⟧,target=/d make
`,
			want: []img{
				{kind: KindFrom, ref: "a", line: 1, where: true, stage: "build"},
				{kind: KindMountFrom, ref: "alpine:3", line: 2, where: true},
				{kind: KindMountFrom, ref: "reg.example/cache:1", line: 2, where: true},
			},
		},
		{
			name: "RUN --mount with quoted CSV or a quoted flag: reported, not rewritable",
			in:   "FROM ⟦a⟧\nRUN --mount='type=bind,\"from=img:1\",target=/y' --mount=\"from=img:2,target=/z\" true\n",
			want: []img{
				{kind: KindFrom, ref: "a", line: 1, where: true},
				{kind: KindMountFrom, ref: "img:1", line: 2},
				{kind: KindMountFrom, ref: "img:2", line: 2},
			},
		},
		{
			name: "RUN --mount from= any stage, scratch, empty; a number is an image",
			in:   "FROM ⟦a⟧\nRUN --mount=from=tools,target=/t --mount=type=cache,from=scratch,target=/c --mount=from=,target=/e --mount=from=⟦0⟧,target=/n true\nFROM ⟦b⟧ AS Tools\n",
			want: []img{
				{kind: KindFrom, ref: "a", line: 1, where: true},
				{kind: KindMountFrom, ref: "0", line: 2, where: true},
				{kind: KindFrom, ref: "b", line: 3, where: true, stage: "Tools"},
			},
		},
		{
			name: "RUN --mount in JSON form",
			in:   "FROM ⟦a⟧\nRUN --mount=type=bind,target=/y,from=⟦img:1⟧ [\"true\"]\n",
			want: []img{{kind: KindFrom, ref: "a", line: 1, where: true}, {kind: KindMountFrom, ref: "img:1", line: 2, where: true}},
		},

		// Heredoc bodies are not instructions.
		{
			name: "heredoc bodies with COPY --from and RUN --mount lines",
			in: `FROM ⟦a⟧
RUN <<EOF
COPY --from=evil1 / /
RUN --mount=from=evil2,target=/x true
EOF
COPY <<-"X" /etc/x
	COPY --from=evil3 / /
	X
RUN cat <<A <<B
COPY --from=evil4 / /
A
RUN --mount=from=evil5 true
B
COPY --from=⟦after⟧ / /
`,
			want: []img{{kind: KindFrom, ref: "a", line: 1, where: true}, {kind: KindCopyFrom, ref: "after", line: 14, where: true}},
		},

		// ONBUILD triggers.
		{
			name: "ONBUILD triggers of a base stage run in the stages based on it",
			in: `FROM ⟦a⟧ AS base
ONBUILD COPY --from=⟦img:1⟧ /x /y
ONBUILD RUN --mount=from=⟦img:2⟧,target=/z true
ONBUILD COPY --from=base /x /y
ONBUILD ADD --from=x /x /y
FROM base AS child
FROM base AS child2
`,
			want: []img{
				{kind: KindFrom, ref: "a", line: 1, where: true, stage: "base"},
				{kind: KindCopyFrom, ref: "img:1", line: 2, where: true, onbuild: true},
				{kind: KindMountFrom, ref: "img:2", line: 3, where: true, onbuild: true},
			},
		},
		{
			name: "ONBUILD triggers no stage runs are not read",
			in:   "FROM ⟦a⟧ AS lib\nONBUILD COPY --from=builder / /\nONBUILD COPY --from=$X / /\nFROM ⟦b⟧\n",
			want: []img{{kind: KindFrom, ref: "a", line: 1, where: true, stage: "lib"}, {kind: KindFrom, ref: "b", line: 4, where: true}},
		},

		// FROM, as BaseImages.
		{
			name: "FROM with ARG, platform, continuation",
			in:   "ARG REG=reg.example\nFROM --platform=$BUILDPLATFORM ⟦${REG}/app:1⟧ AS b\nFROM alp\\\nine\n",
			want: []img{
				{kind: KindFrom, ref: "reg.example/app:1", raw: "${REG}/app:1", line: 2, where: true, stage: "b", platform: "$BUILDPLATFORM"},
				{kind: KindFrom, ref: "alpine", line: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, want := expect(t, tt.in, tt.want)
			got, err := Images([]byte(data), tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Images =\n%+v\nwant\n%+v", got, want)
			}
			// BaseImages reports the KindFrom images.
			bases, err := BaseImages([]byte(data), tt.args)
			if err != nil {
				t.Fatal(err)
			}
			var from []Base
			for _, im := range got {
				if im.Kind == KindFrom {
					from = append(from, Base{Ref: im.Ref, Raw: im.Raw, Line: im.Line, Stage: im.Stage, Platform: im.Platform})
				}
			}
			if !reflect.DeepEqual(bases, from) {
				t.Errorf("BaseImages =\n%+v\nwant\n%+v", bases, from)
			}
		})
	}
}

func TestImagesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		args map[string]string
		want []string
	}{
		{"COPY --from with a variable", "ARG T=alpine\nFROM a\nCOPY --from=$T / /\n", nil, []string{"line 3", "COPY", "--from=$T", "variable expansion"}},
		{"COPY --from with a default", "FROM a\nCOPY --from=${T:-alpine} / /\n", nil, []string{"line 2", "variable expansion"}},
		{"COPY --from with an escaped quote", "FROM a\nCOPY --from=a\\'b / /\n", nil, []string{"line 2", "quotes and escapes"}},
		{"COPY --from without a value", "FROM a\nCOPY --from /a /b\n", nil, []string{"line 2", "missing a value on flag --from"}},
		{"COPY --from twice", "FROM a\nCOPY --from=x --from=y /a /b\n", nil, []string{"line 2", "duplicate flag --from"}},
		{"COPY --from with whitespace", "FROM a\nCOPY --from=\"a b\" /x /y\n", nil, []string{"line 2", "whitespace"}},
		{"COPY --from ending in $", "FROM a\nCOPY --from=a$ /x /y\n", nil, []string{"line 2", "contains $"}},
		{"RUN --mount from= with a variable", "ARG I=alpine\nFROM a\nRUN --mount=type=bind,from=$I,target=/x true\n", nil, []string{"line 3", "RUN", "from= does not support variable expansion"}},
		{"RUN --mount from= with braces", "FROM a\nRUN --mount=from=${I},target=/x true\n", nil, []string{"variable expansion"}},
		{"RUN --mount without a value", "FROM a\nRUN --mount type=bind,from=alpine true\n", nil, []string{"line 2", "missing a value on flag --mount"}},
		{"RUN --mount bad CSV", "FROM a\nRUN --mount='type=bind,\"from=x' true\n", nil, []string{"line 2", "failed to parse csv mounts"}},
		{"RUN --mount empty", "FROM a\nRUN --mount= true\n", nil, []string{"line 2", "failed to parse csv mounts"}},
		{"RUN --mount two from= keys", "FROM a\nRUN --mount=from=x,target=/t,from=y true\n", nil, []string{"line 2", "more than one from="}},
		{"RUN --mount from= with whitespace", "FROM a\nRUN --mount='from=a b,target=/t' true\n", nil, []string{"line 2", "whitespace"}},
		{"ONBUILD trigger with a variable, run", "FROM a AS s\nONBUILD COPY --from=$X / /\nFROM s\n", nil, []string{"line 2", "ONBUILD COPY", "variable expansion"}},
		{"two syntax directives", "# syntax=a/b\n# note=x\n# syntax=c/d\nFROM a\n", nil, []string{"line 3", "second syntax directive", "line 1"}},
		{"duplicated syntax directive", "# syntax=a/b\n# syntax=c/d\nFROM a\n", nil, []string{"line 2", "only one syntax parser directive"}},
		{"syntax with a variable", "# syntax=$FRONT\nFROM a\n", nil, []string{"line 1", "syntax directive", "contains $"}},
		{"syntax with a tab", "# syntax=a/b\tc\nFROM a\n", nil, []string{"line 1", "whitespace"}},
		{"// syntax directive", "// syntax=evil/frontend\nFROM a\n", nil, []string{"line 1", "before the first FROM"}},
		{"JSON syntax", "{\"syntax\": \"evil/frontend\"}\n", nil, []string{"line 1", "before the first FROM"}},
		{"empty BUILDKIT_SYNTAX", "FROM a\n", map[string]string{"BUILDKIT_SYNTAX": " "}, []string{"BUILDKIT_SYNTAX", "empty"}},
		{"COPY before FROM", "COPY --from=x / /\nFROM a\n", nil, []string{"line 1", "before the first FROM"}},
		{"no FROM", "# syntax=docker/dockerfile:1\n", nil, []string{"no FROM"}},
		{"FROM errors as BaseImages", "ARG T\nFROM app:$T\n", nil, []string{"line 2", "T is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Images([]byte(tt.in), tt.args)
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestBaseImagesIgnoresOtherImages: existing callers of BaseImages are not
// affected by what only Images checks.
func TestBaseImagesIgnoresOtherImages(t *testing.T) {
	in := "# syntax=a/b\n# syntax2=x\n# syntax=c/d\nFROM alpine\nCOPY --from=$X / /\nRUN --mount= true\n"
	got, err := BaseImages([]byte(in), map[string]string{"BUILDKIT_SYNTAX": ""})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Base{{Ref: "alpine", Raw: "alpine", Line: 4}}; !reflect.DeepEqual(got, want) {
		t.Errorf("BaseImages = %+v, want %+v", got, want)
	}
	if _, err := Images([]byte(in), nil); err == nil {
		t.Error("Images: no error")
	}
}

func TestImagesLimits(t *testing.T) {
	big := append([]byte("FROM a\n"), bytes.Repeat([]byte("# pad\n"), MaxBytes/6)...)
	if _, err := Images(big, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("size: err = %v, want ErrLimit", err)
	}
	deep := "FROM a\nCOPY --from=" + strings.Repeat("${X:-", 10000) + "1" + strings.Repeat("}", 10000) + " / /\n"
	if _, err := Images([]byte(deep), nil); err == nil {
		t.Error("deeply nested --from: no error")
	}
}

func TestPinImages(t *testing.T) {
	in := "#!/usr/bin/env buildctl-run\r\n" +
		"# syntax = ⟦docker/dockerfile:1⟧ opt\r\n" +
		"ARG BASE=golang:1.22\r\n" +
		"FROM  --platform=$BUILDPLATFORM   ⟦${BASE}⟧   AS   build\r\n" +
		"ONBUILD COPY --from=⟦reg.example/trigger:1⟧ /t /t\r\n" +
		"COPY --chown=0:0 --from=⟦alpine:3.20⟧ /etc/ssl /etc/ssl\r\n" +
		"RUN --mount=type=bind,from=⟦reg.example/src:2⟧,target=/src \\\r\n" +
		"    --mount=type=cache,target=/root/.cache,from=build \\\r\n" +
		"    --mount=type=cache,FROM=⟦reg.example/cache:3⟧,target=/c go build\r\n" +
		"RUN <<EOF\r\n" +
		"COPY --from=heredoc:1 / /\r\n" +
		"EOF\r\n" +
		"# COPY --from=commented:out / /\r\n" +
		"FROM build AS test\r\n" +
		"COPY --from=\"quoted:1\" / /\r\n" +
		"from\t⟦busybox⟧\n"
	data, spans := marked(t, in)
	images, err := Images([]byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds := []Kind{KindSyntax, KindFrom, KindCopyFrom, KindCopyFrom, KindMountFrom, KindMountFrom, KindCopyFrom, KindFrom}
	if len(images) != len(wantKinds) {
		t.Fatalf("images = %+v", images)
	}
	pins := map[int]string{}
	var want strings.Builder
	last, k := 0, 0
	for i, im := range images {
		if im.Kind != wantKinds[i] {
			t.Fatalf("image %d = %+v, want kind %s", i, im, wantKinds[i])
		}
		if im.Start < 0 {
			if im.Ref != "quoted:1" {
				t.Fatalf("image %+v cannot be pinned", im)
			}
			continue
		}
		if im.Start != spans[k].start || im.End != spans[k].end {
			t.Fatalf("image %+v, want it at %v", im, spans[k])
		}
		k++
		pin := strings.SplitN(im.Ref, "@", 2)[0] + digest
		pins[im.Start] = pin
		want.WriteString(data[last:im.Start])
		want.WriteString(pin)
		last = im.End
	}
	want.WriteString(data[last:])
	if k != len(spans) {
		t.Fatalf("%d images placed, %d marked", k, len(spans))
	}
	out, err := PinImages([]byte(data), nil, pins)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want.String() {
		t.Fatalf("PinImages =\n%q\nwant\n%q", out, want.String())
	}
	if !strings.Contains(string(out), "FROM  --platform=$BUILDPLATFORM   golang:1.22"+digest+"   AS   build\r\n") ||
		!strings.Contains(string(out), "# syntax = docker/dockerfile:1"+digest+" opt\r\n") {
		t.Fatalf("PinImages =\n%s", out)
	}
	again, err := Images(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range again {
		if p, ok := pins[images[i].Start]; ok && images[i].Start >= 0 {
			if im.Ref != p || im.Raw != p || string(out[im.Start:im.End]) != p {
				t.Errorf("after PinImages: %+v, want %q", im, p)
			}
		} else if im.Ref != images[i].Ref {
			t.Errorf("after PinImages: %+v, want %+v", im, images[i])
		}
	}

	// A subset: only those bytes change; no pins is the identity.
	one := map[int]string{images[3].Start: "alpine:3.20" + digest}
	out, err = PinImages([]byte(data), nil, one)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != strings.Replace(data, "--from=alpine:3.20 ", "--from=alpine:3.20"+digest+" ", 1) {
		t.Errorf("partial PinImages = %q", out)
	}
	out, err = PinImages([]byte(data), nil, nil)
	if err != nil || !bytes.Equal(out, []byte(data)) {
		t.Errorf("PinImages(nil) = %q, %v", out, err)
	}
}

func TestPinImagesErrors(t *testing.T) {
	data := "FROM golang AS build\nFROM debian\nCOPY --from=build / /\nCOPY --from=alpine / /\nCOPY --from=\"quoted\" / /\nRUN --mount=from=img,target=/x true\n"
	stage := strings.Index(data, "--from=build") + len("--from=")
	image := strings.Index(data, "--from=alpine") + len("--from=")
	quoted := strings.Index(data, "\"quoted\"")
	tests := []struct {
		name string
		pins map[int]string
		want string
	}{
		{"a stage name", map[int]string{stage: "a" + digest}, "not the start of an image reference"},
		{"inside a reference", map[int]string{image + 1: "a" + digest}, "not the start of an image reference"},
		{"a quoted reference", map[int]string{quoted: "a" + digest}, "not the start of an image reference"},
		{"a negative offset", map[int]string{-1: "a" + digest}, "not the start of an image reference"},
		{"empty pin", map[int]string{image: ""}, "empty"},
		{"pin with space", map[int]string{image: "a b"}, "not allowed"},
		{"pin with a comma", map[int]string{strings.Index(data, "from=img") + len("from="): "img,target=/etc"}, "not allowed"},
		{"pin with newline", map[int]string{image: "a\nRUN evil"}, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := PinImages([]byte(data), nil, tt.pins)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PinImages = %q, %v; want error containing %q", out, err, tt.want)
			}
		})
	}
	// A pin that names a stage is caught when the result is read again.
	in := "FROM golang AS build\nFROM alpine\nCOPY --from=img / /\n"
	if out, err := PinImages([]byte(in), nil, map[int]string{strings.Index(in, "img"): "build"}); err == nil {
		t.Errorf("pin to a stage name: %q", out)
	}
	// So is a pin that turns a base image into a stage, whose ONBUILD
	// trigger then runs: as many images, not the same ones.
	in = "FROM a AS base\nONBUILD COPY --from=trig / /\nFROM img\n"
	out, err := PinImages([]byte(in), nil, map[int]string{strings.Index(in, "img"): "base"})
	if err == nil || !strings.Contains(err.Error(), "line 3: pin of from img did not take effect") {
		t.Errorf("pin to a stage with a trigger: %q, %v", out, err)
	}
}

func FuzzImages(f *testing.F) {
	for _, s := range []string{
		"# syntax=docker/dockerfile:1\nFROM alpine\n",
		"#!x\n# a=b\n# syntax = r/f:1 o\nARG A=1\nFROM a:${A:-x} AS b\nCOPY --from=c:1 / /\nFROM b\n",
		"FROM a AS s\nONBUILD RUN --mount=type=bind,from=i:1,target=/t true\nFROM s\nCOPY --from=0 / /\n",
		"# escape=`\nFROM a `\n  AS b\nRUN --mount='from=x,target=/y' `\n  --mount=from=z <<EOF\nCOPY --from=c / /\nEOF\n",
		"FROM \\\n# c\n\n  x\\\ny AS z\nCOPY --from=q\\\nr <<'A' <<B /\nA\nB\n",
	} {
		f.Add([]byte(s), "A", "v")
	}
	f.Fuzz(func(t *testing.T, data []byte, k, v string) {
		args := map[string]string{k: v}
		images, err := Images(data, args)
		if err != nil {
			return
		}
		pins := map[int]string{}
		for _, im := range images {
			if im.Ref == "" || strings.Contains(im.Ref, "$") || im.Line < 0 || (im.Line == 0) != (k == syntaxBuildArg && im.Kind == KindSyntax && im.Start < 0) {
				t.Fatalf("bad image %+v", im)
			}
			if im.Start >= 0 {
				if im.End < im.Start || im.End > len(data) || string(data[im.Start:im.End]) != im.Raw {
					t.Fatalf("image %+v not at its offsets in %q", im, data)
				}
				pins[im.Start] = "pinned.example/x" + digest
			} else if im.End != -1 {
				t.Fatalf("image %+v: End without Start", im)
			}
		}
		out, err := PinImages(data, args, pins)
		if err != nil {
			return
		}
		again, err := Images(out, args)
		if err != nil {
			t.Fatalf("pinned Dockerfile: %v\n%q", err, out)
		}
		if len(again) != len(images) {
			t.Fatalf("pinned Dockerfile has %d images, want %d\n%q", len(again), len(images), out)
		}
		for i, im := range again {
			if im.Kind != images[i].Kind || im.Line != images[i].Line {
				t.Fatalf("pinned image %+v, want %+v", im, images[i])
			}
			if images[i].Start >= 0 && im.Ref != pins[images[i].Start] {
				t.Fatalf("pinned image %+v, want ref %q", im, pins[images[i].Start])
			}
		}
	})
}
