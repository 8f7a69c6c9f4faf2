package dockerfile

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestBaseImages(t *testing.T) {
	tests := []struct {
		name string
		in   string
		args map[string]string
		want []Base
	}{
		{
			name: "single",
			in:   "FROM alpine:3.20\nRUN true\n",
			want: []Base{{Ref: "alpine:3.20", Raw: "alpine:3.20", Line: 1}},
		},
		{
			name: "lowercase and mixed-case instructions",
			in:   "from alpine\nrun true\nFrOm busybox aS b\n",
			want: []Base{{Ref: "alpine", Raw: "alpine", Line: 1}, {Ref: "busybox", Raw: "busybox", Line: 3, Stage: "b"}},
		},
		{
			name: "multi-stage, stage references skipped case-insensitively",
			in: `FROM golang:1.22 AS Build
RUN go build
FROM build AS test
FROM BUILD
FROM gcr.io/distroless/static AS final
COPY --from=build /app /app
FROM final
`,
			want: []Base{
				{Ref: "golang:1.22", Raw: "golang:1.22", Line: 1, Stage: "Build"},
				{Ref: "gcr.io/distroless/static", Raw: "gcr.io/distroless/static", Line: 5, Stage: "final"},
			},
		},
		{
			name: "a stage name used before it is defined is an image",
			in:   "FROM tools\nFROM alpine AS tools\n",
			want: []Base{{Ref: "tools", Raw: "tools", Line: 1}, {Ref: "alpine", Raw: "alpine", Line: 2, Stage: "tools"}},
		},
		{
			name: "scratch skipped",
			in:   "FROM scratch\nCOPY x /\nFROM Scratch AS s2\n",
			want: nil,
		},
		{
			name: "platform",
			in:   "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM --platform=linux/arm64 alpine\n",
			want: []Base{
				{Ref: "golang:1.22", Raw: "golang:1.22", Line: 1, Stage: "build", Platform: "$BUILDPLATFORM"},
				{Ref: "alpine", Raw: "alpine", Line: 2, Platform: "linux/arm64"},
			},
		},
		{
			name: "arg forms",
			in: `ARG REG=registry.example
ARG IMG="team/app"
ARG TAG
ARG SUFFIX
ARG EMPTY=""
ARG A=1 B=${A}.2
FROM $REG/$IMG:${TAG:-latest}
FROM ${REG}/x:${A}${SUFFIX:+-$SUFFIX}
FROM ${REG}/y:${B}${EMPTY:-z}
FROM ${REG}/w${EMPTY-z}
FROM ${REG}/v${EMPTY:+q}
FROM "${REG}/quoted":'1'
`,
			want: []Base{
				{Ref: "registry.example/team/app:latest", Raw: "$REG/$IMG:${TAG:-latest}", Line: 7},
				{Ref: "registry.example/x:1", Raw: "${REG}/x:${A}${SUFFIX:+-$SUFFIX}", Line: 8},
				{Ref: "registry.example/y:1.2z", Raw: "${REG}/y:${B}${EMPTY:-z}", Line: 9},
				{Ref: "registry.example/w", Raw: "${REG}/w${EMPTY-z}", Line: 10},
				{Ref: "registry.example/v", Raw: "${REG}/v${EMPTY:+q}", Line: 11},
				{Ref: "registry.example/quoted:1", Raw: `"${REG}/quoted":'1'`, Line: 12},
			},
		},
		{
			name: "build args override declared args only",
			in: `ARG TAG=1
ARG SUFFIX
ARG VARIANT=${TAG}-slim
FROM app:${TAG}${SUFFIX:+-$SUFFIX}
FROM py:$VARIANT
FROM --platform=$TARGETPLATFORM base-${TARGETARCH}
`,
			args: map[string]string{"TAG": "2", "SUFFIX": "rc", "UNDECLARED": "x", "TARGETARCH": "arm64"},
			want: []Base{
				{Ref: "app:2-rc", Raw: "app:${TAG}${SUFFIX:+-$SUFFIX}", Line: 4},
				{Ref: "py:2-slim", Raw: "py:$VARIANT", Line: 5},
				{Ref: "base-arm64", Raw: "base-${TARGETARCH}", Line: 6, Platform: "$TARGETPLATFORM"},
			},
		},
		{
			name: "build arg set to empty counts as set",
			in:   "ARG V\nFROM python:3.12${V}\n",
			args: map[string]string{"V": ""},
			want: []Base{{Ref: "python:3.12", Raw: "python:3.12${V}", Line: 2}},
		},
		{
			name: "ARG after FROM is not global",
			in:   "ARG T=1\nFROM a:$T\nARG T=2\nFROM b:$T\n",
			want: []Base{{Ref: "a:1", Raw: "a:$T", Line: 2}, {Ref: "b:1", Raw: "b:$T", Line: 4}},
		},
		{
			name: "stage reference through an ARG",
			in:   "ARG BASE=builder\nFROM alpine AS builder\nFROM $BASE\n",
			want: []Base{{Ref: "alpine", Raw: "alpine", Line: 2, Stage: "builder"}},
		},
		{
			name: "continuation lines, comments and blank lines inside",
			in: `# comment
FROM \
    --platform=linux/amd64 \
# a comment inside the instruction
    alpine:3.20 \

    AS base
RUN echo \
  FROM not-an-instruction
   FROM indented
`,
			want: []Base{
				{Ref: "alpine:3.20", Raw: "alpine:3.20", Line: 2, Stage: "base", Platform: "linux/amd64"},
				{Ref: "indented", Raw: "indented", Line: 10},
			},
		},
		{
			name: "escape directive",
			in: "# escape=`\n" +
				"ARG V=1\n" +
				"FROM mcr.microsoft.com/windows/servercore:${V} `\n" +
				"  AS win\n" +
				"RUN dir c:\\ \n" +
				"FROM alpine\n",
			want: []Base{
				{Ref: "mcr.microsoft.com/windows/servercore:1", Raw: "mcr.microsoft.com/windows/servercore:${V}", Line: 3, Stage: "win"},
				{Ref: "alpine", Raw: "alpine", Line: 6},
			},
		},
		{
			name: "escape directive after a comment is only a comment",
			in:   "# hello\n# escape=`\nFROM a\nRUN x `\nFROM b\n",
			want: []Base{{Ref: "a", Raw: "a", Line: 3}, {Ref: "b", Raw: "b", Line: 5}},
		},
		{
			name: "heredoc bodies are not instructions",
			in: `# syntax=docker/dockerfile:1
FROM alpine
RUN <<EOF
FROM evil
EOF
COPY <<-"END" /etc/conf
	FROM also-not
	END
RUN cat <<A <<B
FROM a
A
FROM b
B
RUN ["sh", "-c", "<<X"]
FROM next
`,
			want: []Base{{Ref: "alpine", Raw: "alpine", Line: 2}, {Ref: "next", Raw: "next", Line: 15}},
		},
		{
			name: "CRLF and BOM",
			in:   "\xEF\xBB\xBFARG T=1\r\nFROM alpine:$T AS a\r\nRUN x \\\r\n  y\r\nFROM b\r\n",
			want: []Base{{Ref: "alpine:1", Raw: "alpine:$T", Line: 2, Stage: "a"}, {Ref: "b", Raw: "b", Line: 5}},
		},
		{
			name: "reference split over a continuation",
			in:   "FROM alp\\\nine:3\n",
			want: []Base{{Ref: "alpine:3", Raw: "alpine:3", Line: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BaseImages([]byte(tt.in), tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("BaseImages =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestBaseImagesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		args map[string]string
		want []string
	}{
		{"no FROM", "# just a comment\nARG A=1\n", nil, []string{"no FROM"}},
		{"empty", "", nil, []string{"no FROM"}},
		{"instruction before FROM", "RUN x\nFROM a\n", nil, []string{"line 1", "RUN before the first FROM"}},
		{"unset variable", "ARG TAG\nFROM app:$TAG\n", nil, []string{"line 2", "TAG is not set"}},
		{"undeclared variable", "FROM app:${NOPE}\n", nil, []string{"line 1", "NOPE is not set"}},
		{"undeclared even if a build arg", "FROM app:$X\n", map[string]string{"X": "1"}, []string{"X is not set"}},
		{"default from unset variable", "ARG A\nARG B=$A-x\nFROM app:$B\n", nil, []string{"line 3", "ARG B", "A is not set"}},
		{"empty after substitution", "ARG E=\nFROM ${E}\n", nil, []string{"line 2", "empty"}},
		{"still contains $", "FROM app:\\$x\n", nil, []string{"line 1", "still contains $"}},
		{"whitespace", "ARG A=\"a b\"\nFROM $A\n", nil, []string{"whitespace"}},
		{"pattern substitution", "ARG V=v1\nFROM app:${V#v}\n", nil, []string{"not supported"}},
		{"required variable", "FROM app:${V?required}\n", nil, []string{"V: required"}},
		{"bad substitution", "FROM app:${}\n", nil, []string{"line 1", "bad substitution"}},
		{"unterminated quote", "FROM \"app\n", nil, []string{"line 1", "double-quote"}},
		{"too many FROM arguments", "FROM a b\n", nil, []string{"line 1", "one or three arguments"}},
		{"FROM without image", "FROM\n", nil, []string{"one or three arguments"}},
		{"bad stage name", "FROM a AS 1x\n", nil, []string{"invalid name for build stage"}},
		{"unknown FROM flag", "FROM --pull a\n", nil, []string{"unknown flag"}},
		{"flag without value", "FROM --platform a\n", nil, []string{"missing a value"}},
		{"unterminated heredoc", "FROM a\nRUN <<EOF\nFROM b\n", nil, []string{"line 2", "unterminated heredoc"}},
		{"bad escape directive", "# escape=x\nFROM a\n", nil, []string{"line 1", "invalid escape"}},
		{"duplicate directive", "# escape=`\n# escape=\\\nFROM a\n", nil, []string{"line 2", "only one escape"}},
		{"ARG without name", "ARG =1\nFROM a\n", nil, []string{"line 1", "blank"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BaseImages([]byte(tt.in), tt.args)
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

func TestLimits(t *testing.T) {
	big := append([]byte("FROM a\n"), bytes.Repeat([]byte("# pad\n"), MaxBytes/6)...)
	if _, err := BaseImages(big, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("size: err = %v, want ErrLimit", err)
	}
	if _, err := BaseImages(big[:MaxBytes], nil); err != nil {
		t.Errorf("MaxBytes input: %v", err)
	}
	many := bytes.Repeat([]byte("FROM a\n"), MaxInstructions+1)
	if _, err := BaseImages(many, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("instructions: err = %v, want ErrLimit", err)
	}
	if got, err := BaseImages(many[:7*MaxInstructions], nil); err != nil || len(got) != MaxInstructions {
		t.Errorf("MaxInstructions: %d, %v", len(got), err)
	}
	// ARG defaults doubling in size: 2^40 bytes if not bounded.
	var b strings.Builder
	b.WriteString("ARG A0=xxxxxxxxxxxxxxxx\n")
	for i := 1; i <= 40; i++ {
		b.WriteString("ARG A" + itoa(i) + "=$A" + itoa(i-1) + "$A" + itoa(i-1) + "\n")
	}
	b.WriteString("FROM a:$A40\n")
	if _, err := BaseImages([]byte(b.String()), nil); !errors.Is(err, ErrLimit) {
		t.Errorf("expansion: err = %v, want ErrLimit", err)
	}
	deep := "FROM a:" + strings.Repeat("${X:-", 10000) + "1" + strings.Repeat("}", 10000) + "\n"
	if _, err := BaseImages([]byte(deep), nil); !errors.Is(err, ErrLimit) {
		t.Errorf("nesting: err = %v, want ErrLimit", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + itoa(i%10)
}

const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestPinRoundTrip(t *testing.T) {
	in := "# syntax=docker/dockerfile:1\r\n" +
		"ARG TAG=3.20\r\n" +
		"FROM  --platform=$BUILDPLATFORM   golang:1.22   AS   build\r\n" +
		"RUN go build\r\n" +
		"# FROM commented:out\r\n" +
		"FROM alpine:${TAG} \\\r\n" +
		"  AS final\r\n" +
		"COPY --from=build /app /app\r\n" +
		"FROM build AS again\r\n" +
		"from\tbusybox\n"
	bases, err := BaseImages([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bases) != 3 {
		t.Fatalf("bases = %+v", bases)
	}
	pins := map[int]string{}
	for _, b := range bases {
		pins[b.Line] = b.Ref + digest
	}
	out, err := Pin([]byte(in), pins)
	if err != nil {
		t.Fatal(err)
	}
	want := "# syntax=docker/dockerfile:1\r\n" +
		"ARG TAG=3.20\r\n" +
		"FROM  --platform=$BUILDPLATFORM   golang:1.22" + digest + "   AS   build\r\n" +
		"RUN go build\r\n" +
		"# FROM commented:out\r\n" +
		"FROM alpine:3.20" + digest + " \\\r\n" +
		"  AS final\r\n" +
		"COPY --from=build /app /app\r\n" +
		"FROM build AS again\r\n" +
		"from\tbusybox" + digest + "\n"
	if string(out) != want {
		t.Fatalf("Pin =\n%q\nwant\n%q", out, want)
	}
	again, err := BaseImages(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range again {
		if b.Ref != pins[b.Line] || b.Raw != pins[b.Line] || b.Line != bases[i].Line || b.Stage != bases[i].Stage || b.Platform != bases[i].Platform {
			t.Errorf("after Pin: %+v, want ref %q and the rest of %+v", b, pins[b.Line], bases[i])
		}
	}

	// Pinning a subset leaves the other lines alone; no pins is identity.
	out, err = Pin([]byte(in), map[int]string{10: "busybox" + digest})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, []byte(strings.Replace(in, "from\tbusybox\n", "from\tbusybox"+digest+"\n", 1))) {
		t.Errorf("partial Pin = %q", out)
	}
	out, err = Pin([]byte(in), nil)
	if err != nil || !bytes.Equal(out, []byte(in)) {
		t.Errorf("Pin(nil) = %q, %v", out, err)
	}
}

func TestPinEscapeDirective(t *testing.T) {
	in := "# escape=`\nFROM mcr.microsoft.com/windows/nanoserver:ltsc2022 `\n  AS base\nRUN dir c:\\\n"
	out, err := Pin([]byte(in), map[int]string{2: "mcr.microsoft.com/windows/nanoserver:ltsc2022" + digest})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(in, "ltsc2022 `", "ltsc2022"+digest+" `", 1)
	if string(out) != want {
		t.Errorf("Pin = %q\nwant %q", out, want)
	}
}

func TestPinErrors(t *testing.T) {
	in := "FROM golang AS build\nRUN x\nFROM scratch\nFROM build\nFROM alp\\\nine\n"
	tests := []struct {
		name string
		pins map[int]string
		want string
	}{
		{"not a FROM", map[int]string{2: "a" + digest}, "line 2: not the start of a FROM"},
		{"no such line", map[int]string{99: "a" + digest}, "line 99: not the start of a FROM"},
		{"continuation line of a FROM", map[int]string{6: "a" + digest}, "line 6: not the start"},
		{"scratch", map[int]string{3: "a" + digest}, "not an image"},
		{"stage", map[int]string{4: "a" + digest}, "not an image"},
		{"split reference", map[int]string{5: "alpine" + digest}, "continuation"},
		{"empty pin", map[int]string{1: ""}, "empty"},
		{"pin with space", map[int]string{1: "a b"}, "not allowed"},
		{"pin with variable", map[int]string{1: "a:$X"}, "not allowed"},
		{"pin with newline", map[int]string{1: "a\nRUN evil"}, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Pin([]byte(in), tt.pins)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Pin = %q, %v; want error containing %q", out, err, tt.want)
			}
		})
	}
	if _, err := Pin([]byte("FROM a b c d\n"), map[int]string{1: "x"}); err == nil {
		t.Error("Pin of a malformed FROM: no error")
	}
}

func FuzzBaseImages(f *testing.F) {
	for _, s := range []string{
		"FROM alpine\n",
		"ARG A=1\nFROM a:${A:-x} AS b\nFROM b\n",
		"# escape=`\nFROM a `\n  AS b\nRUN <<EOF\nFROM c\nEOF\n",
		"ARG X=\"q\" Y=${X:+z}\r\nfrom --platform=$P r/${Y}:1\r\nONBUILD RUN <<-E\n\tE\n",
		"FROM \\\n# c\n\n  x\\\ny AS z\nCOPY <<'A' <<B /\nA\nB\n",
	} {
		f.Add([]byte(s), "A", "v")
	}
	f.Fuzz(func(t *testing.T, data []byte, k, v string) {
		bases, err := BaseImages(data, map[string]string{k: v})
		if err != nil {
			return
		}
		pins := map[int]string{}
		for _, b := range bases {
			if b.Ref == "" || strings.Contains(b.Ref, "$") || b.Line < 1 {
				t.Fatalf("bad base %+v", b)
			}
			pins[b.Line] = "pinned.example/x" + digest
		}
		out, err := Pin(data, pins)
		if err != nil {
			return
		}
		again, err := BaseImages(out, map[string]string{k: v})
		if err != nil {
			t.Fatalf("pinned Dockerfile: %v\n%q", err, out)
		}
		if len(again) != len(bases) {
			t.Fatalf("pinned Dockerfile has %d bases, want %d\n%q", len(again), len(bases), out)
		}
		for i, b := range again {
			if b.Line != bases[i].Line || b.Ref != pins[b.Line] {
				t.Fatalf("pinned base %+v, want line %d ref %q", b, bases[i].Line, pins[b.Line])
			}
		}
	})
}
