// Package dockerfile finds the images a Dockerfile build uses and pins them
// to digests, without building anything and without registry access: the
// frontend image named by a "# syntax=" directive, the base image of every
// build stage, and the images named by COPY --from=<image> and
// RUN --mount=from=<image> (Images); BaseImages reports the base images
// alone.
//
// The parser follows the reference implementation (BuildKit's
// frontend/dockerfile parser, instructions and shell packages) rule for rule
// wherever a rule decides which lines are instructions, which of their
// flags name an image, or what an image reference expands to: parser
// directives (escape=, and syntax= as the frontend's syntax detection reads
// it), comments, line continuations, empty and comment lines inside
// continuations, heredocs on RUN, COPY and ADD (their bodies are not
// instructions), case-insensitive instruction names, builder flags (whose
// escape character is always the backslash), the CSV of --mount values,
// stage names and indexes, ONBUILD triggers that a later stage of the same
// file runs, and shell-style variable expansion. It is a pure function of
// its input: no file system, no network, no environment variables.
//
// It is deliberately stricter than a build in a few places, always failing
// closed (an error, never a guess):
//
//   - a variable used in a FROM reference must have a value: an undeclared
//     global ARG, an ARG with no default that buildArgs does not supply, or
//     an ARG whose default itself uses such a variable, is an error rather
//     than the empty string a build would substitute. ${NAME:-word},
//     ${NAME-word}, ${NAME:+word} and ${NAME+word} may test an unset NAME.
//   - the pattern modifiers ${NAME#…}, ${NAME%…} and ${NAME/…/…} are not
//     supported in FROM references (an error).
//   - a reference that expands to the empty string, or still contains "$",
//     whitespace or a control character, is an error.
//   - COPY --from and RUN --mount from= values are never expanded, as in
//     every builder: BuildKit refuses a variable there ("define a stage
//     instead") and the classic builder takes the text literally. A value
//     that shell processing would change (a variable, and for COPY --from
//     also quotes or escapes) is an error, as is --from or --mount without
//     "=value", a repeated --from, or a --mount with two from= keys.
//   - COPY --from=<name> names a stage only if a stage of that name
//     (compared case-insensitively) starts before the current one, as the
//     classic builder reads it; a later stage's name is reported as an image
//     (BuildKit refuses such a COPY). A number is a stage index, never an
//     image. RUN --mount from= names a stage if any stage of the file has
//     that name (BuildKit's rule; numbers are not indexes there).
//   - the syntax directive is looked for the way any BuildKit version looks
//     for it: in the comment lines at the very top (after a byte order mark
//     and "#!" lines), where a line of the form "# key=value" with any key
//     continues the block; two syntax directives there are an error. The
//     frontend is also reported when buildArgs sets BUILDKIT_SYNTAX, which
//     overrides the directive.
//
// The automatic platform arguments (TARGETPLATFORM, TARGETOS, TARGETARCH,
// TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT and their
// OSVERSION) are set in the global scope, where FROM lines are expanded,
// without any ARG, as BuildKit sets them: ImagesFor resolves a file for one
// target and build platform (see Build); Images, BaseImages and PinImages
// know no platform and refuse a FROM reference that uses one of them (even
// as ${TARGETARCH:-word}: the build would not take the word), unless
// buildArgs gives it.
//
// What the package does not see, and a caller enforcing a policy on the
// images a build uses must handle separately: images substituted with
// --build-context (a named context replaces the stage or image of that
// name), ONBUILD
// triggers stored in a base image's configuration (those of this file's
// own stages are seen), and helper images a builder pulls on its own
// account. The frontend image, once verified, decides how the rest of the
// file is read; this package reads it as the Dockerfile frontend does (a
// frontend older than docker/dockerfile:1.4 does not know heredocs and
// would read their bodies as instructions). Images and BaseImages report
// the images of every stage, not just of the stages the build target
// reaches.
package dockerfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxBytes is the largest Dockerfile accepted.
	MaxBytes = 1 << 20
	// MaxInstructions is the largest number of instructions accepted.
	MaxInstructions = 10000

	// maxExpansion bounds the total number of bytes variable expansion may
	// produce in one call (ARG defaults can refer to each other, which
	// would otherwise allow exponential growth).
	maxExpansion = 1 << 20
	// maxNesting bounds nested ${…} substitutions.
	maxNesting = 64
)

// ErrLimit is wrapped by errors reporting that the input exceeds one of the
// package's bounds.
var ErrLimit = errors.New("input exceeds a limit")

// Base is the base image of one build stage.
type Base struct {
	// Ref is the image reference after ARG substitution, as written
	// otherwise (not normalized: "alpine" stays "alpine").
	Ref string
	// Raw is the reference as written in the Dockerfile (the text of a
	// reference split over continuation lines is joined).
	Raw string
	// Line is the 1-based line on which the FROM instruction starts.
	Line int
	// Stage is the stage name given with AS, as written, or "".
	Stage string
	// Platform is the value of the --platform flag, unexpanded, or "".
	Platform string
}

// BaseImages returns the base image of every build stage of the Dockerfile
// in data, in file order. Stages based on "scratch" or on an earlier stage
// (stage names compare case-insensitively) are left out, so the result may
// be empty; a Dockerfile without any FROM instruction is an error.
//
// Global ARGs (those before the first FROM) are substituted into FROM
// references with the same expansion rules as a build ($NAME, ${NAME},
// ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word}, quotes and
// escapes). buildArgs play the role of --build-arg: a value overrides the
// default of a declared global ARG; a key that is not declared is ignored,
// except for the automatic platform arguments (BUILDPLATFORM, TARGETARCH,
// …), which a build defines without a declaration: BaseImages knows no
// platform, so a reference using one without a value in buildArgs is an
// error (ImagesFor resolves a file for a platform). See the package
// documentation for where BaseImages is stricter than a build.
//
// Errors name the line they concern. Input larger than MaxBytes or with
// more than MaxInstructions instructions is an error wrapping ErrLimit.
func BaseImages(data []byte, buildArgs map[string]string) ([]Base, error) {
	images, err := scan(data, Build{Args: buildArgs}, false)
	if err != nil {
		return nil, err
	}
	var bases []Base
	for _, im := range images {
		bases = append(bases, Base{Ref: im.Ref, Raw: im.Raw, Line: im.Line, Stage: im.Stage, Platform: im.Platform})
	}
	return bases, nil
}

// Pin returns data with the image reference of the FROM instruction that
// starts on each line in pins replaced by pins[line], typically the
// reference BaseImages returned with a digest added
// ("alpine:3.20@sha256:…"). Every other byte is kept as it was: flags, the
// AS name, spacing, comments, other lines and line endings (CRLF stays
// CRLF).
//
// It is an error if a line does not start a FROM instruction, if that
// FROM's reference is split over a line continuation (it cannot be
// replaced without rewriting the continuation), if the reference is
// "scratch" or names an earlier stage, or if a pin is not a plausible
// image reference (it must be non-empty and use only the characters of a
// reference: letters, digits and ._-:/@+[]). Pin does not expand
// variables: a FROM $BASE line gets the pin in place of "$BASE". The result
// is parsed again and checked to carry exactly the pinned references.
func Pin(data []byte, pins map[int]string) ([]byte, error) {
	f, err := parse(data)
	if err != nil {
		return nil, err
	}
	type edit struct {
		start, end int
		ref        string
	}
	byLine := make(map[int]*instr)
	stageLine := make(map[string]int) // lower-cased stage name: line of its FROM
	for i := range f.instrs {
		in := &f.instrs[i]
		if in.lcmd != "from" {
			continue
		}
		byLine[in.line] = in
		if fr, err := in.from(); err == nil && fr.stage != "" {
			if _, dup := stageLine[strings.ToLower(fr.stage)]; !dup {
				stageLine[strings.ToLower(fr.stage)] = in.line
			}
		}
	}
	lines := make([]int, 0, len(pins))
	for l := range pins {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	edits := make([]edit, 0, len(lines))
	for _, l := range lines {
		ref := pins[l]
		if err := checkPin(ref); err != nil {
			return nil, fmt.Errorf("dockerfile: pin for line %d: %w", l, err)
		}
		in := byLine[l]
		if in == nil {
			return nil, fmt.Errorf("dockerfile: line %d: not the start of a FROM instruction", l)
		}
		fr, err := in.from()
		if err != nil {
			return nil, err
		}
		lraw := strings.ToLower(fr.raw)
		if sl, ok := stageLine[lraw]; lraw == "scratch" || ok && sl < l {
			return nil, fmt.Errorf("dockerfile: line %d: FROM %s is not an image, cannot pin it", l, fr.raw)
		}
		start, ok := in.origin(fr.off, len(fr.raw))
		if !ok {
			return nil, fmt.Errorf("dockerfile: line %d: the reference %q is split over a line continuation, cannot rewrite it safely", l, fr.raw)
		}
		edits = append(edits, edit{start, start + len(fr.raw), ref})
	}
	// Lines increase with offsets, so edits are already in file order.
	var out bytes.Buffer
	out.Grow(len(data) + 100*len(edits))
	last := 0
	for _, e := range edits {
		out.Write(data[last:e.start])
		out.WriteString(e.ref)
		last = e.end
	}
	out.Write(data[last:])
	res := out.Bytes()

	// Check the result reads as intended: same instructions, pinned
	// references in place.
	g, err := parse(res)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: pinned Dockerfile does not parse: %w", err)
	}
	if !sameInstructions(f, g) {
		return nil, errors.New("dockerfile: pinning changed the instructions")
	}
	for i := range g.instrs {
		b := &g.instrs[i]
		if b.lcmd != "from" {
			continue
		}
		want, pinned := pins[b.line]
		if !pinned {
			continue
		}
		fr, err := b.from()
		if err != nil || fr.raw != want {
			return nil, fmt.Errorf("dockerfile: line %d: pin did not take effect", b.line)
		}
	}
	return res, nil
}

func checkPin(ref string) error {
	if ref == "" {
		return errors.New("empty reference")
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("._-:/@+[]", c) >= 0:
		default:
			return fmt.Errorf("character %q not allowed in %q", c, ref)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Global ARGs and expansion.

type argValue struct {
	value string
	// unset, if not empty, says why the value is not known (it was computed
	// from a variable without a value); such a value is not used in a
	// reference.
	unset string
}

type env struct {
	buildArgs map[string]string
	vars      map[string]argValue
}

// newEnv returns the global scope of a build before any ARG: the
// automatic platform arguments (see Build).
func newEnv(b Build) *env {
	return &env{buildArgs: b.Args, vars: b.automatic()}
}

func (e *env) lookup(name string) (argValue, bool) {
	v, ok := e.vars[name]
	return v, ok
}

// declare processes a global ARG instruction the way a build does: each
// NAME[=default] is set, in order, from buildArgs if given there, else
// from the expanded default; a NAME without either keeps its value.
func (e *env) declare(in *instr, escape rune, budget *int) error {
	words := parseWords(in.args, escape)
	if len(words) == 0 {
		return fmt.Errorf("dockerfile: line %d: ARG requires at least one argument", in.line)
	}
	for _, w := range words {
		key, val, hasVal := strings.Cut(w, "=")
		if hasVal && key == "" {
			return fmt.Errorf("dockerfile: line %d: ARG names can not be blank", in.line)
		}
		if v, ok := e.buildArgs[key]; ok {
			e.vars[key] = argValue{value: v}
			continue
		}
		if !hasVal {
			continue
		}
		var problem string
		sh := &shell{src: val, esc: escape, env: e, budget: budget, eval: true,
			fail: func(p string) error {
				if problem == "" {
					problem = "ARG " + key + ": " + p
				}
				return nil
			}}
		res, err := sh.word()
		if err != nil {
			return fmt.Errorf("dockerfile: line %d: ARG %s: %w", in.line, key, err)
		}
		e.vars[key] = argValue{value: res, unset: problem}
	}
	return nil
}

// expandRef expands a FROM reference and checks the result is usable.
func expandRef(raw string, escape rune, e *env, budget *int) (string, error) {
	sh := &shell{src: raw, esc: escape, env: e, budget: budget, eval: true,
		fail: func(problem string) error { return errors.New(problem) }}
	ref, err := sh.word()
	if err != nil {
		return "", err
	}
	if ref == "" {
		return "", errors.New("reference is empty after substitution")
	}
	if strings.Contains(ref, "$") {
		return "", fmt.Errorf("reference %q still contains $ after substitution", ref)
	}
	for _, r := range ref {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", fmt.Errorf("reference %q contains whitespace or a control character", ref)
		}
	}
	return ref, nil
}

// ---------------------------------------------------------------------------
// Lexing: physical lines to instructions.

// segment maps part of an instruction's logical text (continuation lines
// joined) to the bytes of the input it was copied from.
type segment struct{ log, orig, n int }

type instr struct {
	line, endLine int // 1-based, first and last physical line (heredocs excluded)
	text          string
	segs          []segment
	cmd, lcmd     string // instruction as written, lower-cased
	flags         []string
	flagSpans     []span // where each flag is in text
	args          string // after the flags, trimmed
	argsOff       int    // offset of args in text
}

type file struct {
	escape rune
	instrs []instr
}

var (
	reHeredoc   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d*)<<(-?)\s*([^<]*)$`) })
	reDirective = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`) })
)

// directives mirrors the parser-directive rules: directives are comment
// lines at the very top of the file; the first line that is not one ends
// them; each may appear once.
type directives struct {
	done bool
	seen map[string]bool
}

func (d *directives) line(b []byte, f *file, lineNo int) error {
	if d.done {
		return nil
	}
	rest, ok := bytes.CutPrefix(b, []byte("#"))
	if !ok {
		d.done = true
		return nil
	}
	m := reDirective().FindSubmatch(bytes.TrimLeftFunc(rest, unicode.IsSpace))
	if m == nil {
		d.done = true
		return nil
	}
	k := strings.ToLower(string(m[1]))
	switch k {
	case "syntax", "escape", "check":
	default:
		d.done = true
		return nil
	}
	if d.seen[k] {
		return fmt.Errorf("dockerfile: line %d: only one %s parser directive can be used", lineNo, k)
	}
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	d.seen[k] = true
	if k == "escape" {
		switch v := string(m[2]); v {
		case "`", `\`:
			f.escape = rune(v[0])
		default:
			return fmt.Errorf("dockerfile: line %d: invalid escape token %q does not match ` or \\", lineNo, v)
		}
	}
	return nil
}

func isComment(b []byte) bool {
	b = bytes.TrimLeftFunc(b, unicode.IsSpace)
	return len(b) > 0 && b[0] == '#'
}

// continuation reports whether b (a line without its line ending) ends in
// the escape token followed only by blanks, not itself escaped, and
// returns the length of b without them.
func continuation(b []byte, esc rune) (int, bool) {
	n := len(bytes.TrimRight(b, " \t"))
	if n == 0 || rune(b[n-1]) != esc {
		return len(b), false
	}
	if n >= 2 && rune(b[n-2]) == esc {
		return len(b), false
	}
	return n - 1, true
}

// parse splits data into instructions.
func parse(data []byte) (*file, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("dockerfile: %w: Dockerfile larger than %d bytes", ErrLimit, MaxBytes)
	}
	f := &file{escape: '\\'}
	var dirs directives
	pos, lineNo := 0, 0
	// nextLine returns the next physical line without its line ending
	// (trailing CR and LF bytes), and its offset.
	nextLine := func() ([]byte, int) {
		start := pos
		end := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		pos = end
		lineNo++
		return bytes.TrimRight(data[start:end], "\r\n"), start
	}
	for pos < len(data) {
		b, off := nextLine()
		if lineNo == 1 && bytes.HasPrefix(b, []byte("\xEF\xBB\xBF")) {
			b, off = b[3:], off+3
		}
		trimmed := bytes.TrimLeftFunc(b, unicode.IsSpace)
		off += len(b) - len(trimmed)
		b = trimmed
		if err := dirs.line(b, f, lineNo); err != nil {
			return nil, err
		}
		if isComment(b) {
			continue
		}
		n, cont := continuation(b, f.escape)
		if !cont && n == 0 {
			continue
		}
		in := instr{line: lineNo}
		var text bytes.Buffer
		text.Write(b[:n])
		in.segs = append(in.segs, segment{0, off, n})
		for cont && pos < len(data) {
			b, off := nextLine()
			if err := dirs.line(b, f, lineNo); err != nil {
				return nil, err
			}
			if isComment(b) || len(bytes.TrimLeftFunc(b, unicode.IsSpace)) == 0 {
				continue
			}
			n, cont = continuation(b, f.escape)
			in.segs = append(in.segs, segment{text.Len(), off, n})
			text.Write(b[:n])
		}
		in.endLine = lineNo
		in.text = text.String()
		if len(f.instrs) == MaxInstructions {
			return nil, fmt.Errorf("dockerfile: %w: more than %d instructions", ErrLimit, MaxInstructions)
		}
		in.split()

		heredoc, err := in.mayHaveHeredoc()
		if err != nil {
			return nil, err
		}
		if heredoc && strings.Contains(in.text, "<<") {
			docs, err := heredocs(in.text)
			if err != nil {
				return nil, fmt.Errorf("dockerfile: line %d: %w", in.line, err)
			}
			for _, h := range docs {
				terminated := false
				for pos < len(data) {
					b, _ := nextLine()
					if h.chomp {
						b = bytes.TrimLeft(b, "\t")
					}
					if string(b) == h.name {
						terminated = true
						break
					}
				}
				if !terminated {
					return nil, fmt.Errorf("dockerfile: line %d: unterminated heredoc %s", in.line, h.name)
				}
			}
		}
		f.instrs = append(f.instrs, in)
	}
	return f, nil
}

// isSplitSpace is the whitespace that separates an instruction from its
// arguments and FROM's arguments from each other.
func isSplitSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\v', '\f', '\r':
		return true
	}
	return false
}

// split separates the instruction name, builder flags and arguments.
func (in *instr) split() {
	c := splitCommand(in.text)
	in.cmd, in.lcmd, in.args, in.argsOff, in.flags, in.flagSpans = c.cmd, strings.ToLower(c.cmd), c.args, c.argsOff, c.flags, c.flagSpans
}

// span is a range of bytes [start, end).
type span struct{ start, end int }

// command is an instruction line split into its parts; offsets are in the
// text given to splitCommand.
type command struct {
	cmd, args string
	argsOff   int
	flags     []string // quotes and escapes removed
	flagSpans []span   // where each flag was written
}

func splitCommand(text string) command {
	var c command
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	off := len(text) - len(t)
	t = strings.TrimRightFunc(t, unicode.IsSpace)
	i := 0
	for i < len(t) && !isSplitSpace(t[i]) {
		i++
	}
	c.cmd = t[:i]
	for i < len(t) && isSplitSpace(t[i]) {
		i++
	}
	if i == len(t) {
		c.argsOff = off + i
		return c
	}
	rest := t[i:]
	k, flags, spans := extractFlags(rest)
	for j := range spans {
		spans[j].start += off + i
		spans[j].end += off + i
	}
	a := rest[k:]
	lead := len(a) - len(strings.TrimLeftFunc(a, unicode.IsSpace))
	c.args, c.argsOff, c.flags, c.flagSpans = strings.TrimSpace(a), off+i+k+lead, flags, spans
	return c
}

// extractFlags returns the offset in line where the arguments start after
// any leading --flag words, the flags with quotes and escapes removed, and
// where each was written. Like the reference parser it works byte by byte,
// and its escape character is the backslash whatever the escape directive
// says.
func extractFlags(line string) (int, []string, []span) {
	const (
		inSpaces = iota
		inWord
		inQuote
	)
	const esc = '\\'
	var (
		words []string
		spans []span
	)
	phase := inSpaces
	var word strings.Builder
	var quote rune
	blankOK := false
	wordStart := 0
	for pos := 0; pos <= len(line); pos++ {
		var ch rune
		if pos != len(line) {
			ch = rune(line[pos])
		}
		if phase == inSpaces {
			if pos == len(line) {
				break
			}
			if unicode.IsSpace(ch) {
				continue
			}
			if ch != '-' || pos+1 == len(line) || line[pos+1] != '-' {
				return pos, words, spans
			}
			phase = inWord
			wordStart = pos
		}
		if pos == len(line) {
			if w := word.String(); w != "--" && (blankOK || len(w) > 0) {
				words = append(words, w)
				spans = append(spans, span{wordStart, pos})
			}
			break
		}
		switch phase {
		case inWord:
			if unicode.IsSpace(ch) {
				w := word.String()
				phase = inSpaces
				if w == "--" {
					return pos, words, spans
				}
				if blankOK || len(w) > 0 {
					words = append(words, w)
					spans = append(spans, span{wordStart, pos})
				}
				word.Reset()
				blankOK = false
				continue
			}
			if ch == '\'' || ch == '"' {
				quote = ch
				blankOK = true
				phase = inQuote
				continue
			}
			if ch == esc {
				if pos+1 == len(line) {
					continue
				}
				pos++
				ch = rune(line[pos])
			}
			word.WriteRune(ch)
		case inQuote:
			if ch == quote {
				phase = inWord
				continue
			}
			if ch == esc {
				if pos+1 == len(line) {
					phase = inWord
					continue
				}
				pos++
				ch = rune(line[pos])
			}
			word.WriteRune(ch)
		}
	}
	return len(line), words, spans
}

// parseWords splits ARG arguments on whitespace outside quotes, keeping
// quotes and escapes for the expansion step.
func parseWords(rest string, esc rune) []string {
	const (
		inSpaces = iota
		inWord
		inQuote
	)
	var words []string
	phase := inSpaces
	var quote rune
	blankOK := false
	var ch rune
	var width int
	var sb strings.Builder
	for pos := 0; pos <= len(rest); pos += width {
		if pos != len(rest) {
			ch, width = utf8.DecodeRuneInString(rest[pos:])
		}
		if phase == inSpaces {
			if pos == len(rest) {
				break
			}
			if unicode.IsSpace(ch) {
				continue
			}
			phase = inWord
		}
		if pos == len(rest) {
			if blankOK || sb.Len() > 0 {
				words = append(words, sb.String())
			}
			break
		}
		if phase == inWord {
			if unicode.IsSpace(ch) {
				phase = inSpaces
				if blankOK || sb.Len() > 0 {
					words = append(words, sb.String())
				}
				sb.Reset()
				blankOK = false
				continue
			}
			if ch == '\'' || ch == '"' {
				quote = ch
				blankOK = true
				phase = inQuote
			}
			if ch == esc {
				if pos+width == len(rest) {
					continue
				}
				sb.WriteRune(ch)
				pos += width
				ch, width = utf8.DecodeRuneInString(rest[pos:])
			}
			sb.WriteRune(ch)
			continue
		}
		// inQuote
		if ch == quote {
			phase = inWord
		}
		if ch == esc && quote != '\'' {
			if pos+width == len(rest) {
				phase = inWord
				continue
			}
			pos += width
			sb.WriteRune(ch)
			ch, width = utf8.DecodeRuneInString(rest[pos:])
		}
		sb.WriteRune(ch)
	}
	return words
}

type fromArgs struct {
	raw      string
	off      int // offset of raw in the instruction text
	stage    string
	platform string
}

var validStageName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-_.]*$`) })

// from interprets a FROM instruction: FROM [--platform=…] image [AS name].
func (in *instr) from() (fromArgs, error) {
	var fr fromArgs
	seen := false
	for _, fl := range in.flags {
		name, value, hasValue := strings.Cut(fl, "=")
		if name != "--platform" {
			return fr, fmt.Errorf("dockerfile: line %d: FROM: unknown flag %s", in.line, name)
		}
		if seen {
			return fr, fmt.Errorf("dockerfile: line %d: FROM: duplicate flag %s", in.line, name)
		}
		if !hasValue {
			return fr, fmt.Errorf("dockerfile: line %d: FROM: missing a value on flag %s", in.line, name)
		}
		seen = true
		fr.platform = value
	}
	type tok struct {
		s   string
		off int
	}
	var toks []tok
	for i := 0; i < len(in.args); {
		j := i
		for j < len(in.args) && !isSplitSpace(in.args[j]) {
			j++
		}
		toks = append(toks, tok{in.args[i:j], in.argsOff + i})
		for j < len(in.args) && isSplitSpace(in.args[j]) {
			j++
		}
		i = j
	}
	switch {
	case len(toks) == 3 && strings.EqualFold(toks[1].s, "as"):
		if !validStageName().MatchString(strings.ToLower(toks[2].s)) {
			return fr, fmt.Errorf("dockerfile: line %d: invalid name for build stage: %q, name can't start with a number or contain symbols", in.line, toks[2].s)
		}
		fr.stage = toks[2].s
	case len(toks) != 1:
		return fr, fmt.Errorf("dockerfile: line %d: FROM requires either one or three arguments", in.line)
	}
	fr.raw, fr.off = toks[0].s, toks[0].off
	return fr, nil
}

// origin maps n bytes of the instruction text at off to the input, if they
// were copied from one place.
func (in *instr) origin(off, n int) (int, bool) {
	for _, s := range in.segs {
		if s.log <= off && off+n <= s.log+s.n {
			return s.orig + off - s.log, true
		}
	}
	return 0, false
}

// mayHaveHeredoc reports whether the instruction is one whose heredocs the
// parser reads: RUN, COPY or ADD (also as an ONBUILD trigger) not in JSON
// form.
func (in *instr) mayHaveHeredoc() (bool, error) {
	lcmd, args := in.lcmd, in.args
	if lcmd == "onbuild" {
		if args == "" {
			return false, nil
		}
		c := splitCommand(args)
		lcmd, args = strings.ToLower(c.cmd), c.args
	}
	switch lcmd {
	case "run", "copy", "add":
	default:
		return false, nil
	}
	isJSON, err := jsonArray(args)
	if err != nil {
		return false, fmt.Errorf("dockerfile: line %d: %w", in.line, err)
	}
	return !isJSON, nil
}

// jsonArray reports whether s is the JSON (exec) form of an instruction.
func jsonArray(s string) (bool, error) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if !strings.HasPrefix(s, "[") {
		return false, nil
	}
	var a []any
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return false, nil
	}
	for _, v := range a {
		if _, ok := v.(string); !ok {
			return false, errors.New("JSON arguments must be a list of strings")
		}
	}
	return true, nil
}

type heredoc struct {
	name  string
	chomp bool
}

// heredocs lists the heredocs an instruction line opens, the way the
// reference parser finds them.
func heredocs(line string) ([]heredoc, error) {
	budget := maxExpansion
	sh := &shell{src: line, esc: '\\', rawQuotes: true, rawEscapes: true, skipUnset: true, budget: &budget}
	_, words, err := sh.process()
	if err != nil {
		if errors.Is(err, ErrLimit) {
			return nil, err
		}
		// The reference parser ignores lexing errors here: no heredocs.
		words = nil
	}
	var docs []heredoc
	for _, w := range words {
		m := reHeredoc().FindStringSubmatch(w)
		if m == nil || m[3] == "" {
			continue
		}
		sh := &shell{src: m[3], esc: '\\', skipUnset: true, budget: &budget}
		names, err := sh.words()
		if err != nil {
			return nil, err
		}
		if len(names) != 1 {
			continue
		}
		sh = &shell{src: m[3], esc: '\\', skipUnset: true, rawQuotes: true, budget: &budget}
		raw, err := sh.words()
		if err != nil {
			return nil, err
		}
		if len(raw) != 1 {
			return nil, fmt.Errorf("inconsistent heredoc word %s", m[3])
		}
		docs = append(docs, heredoc{name: names[0], chomp: m[2] == "-"})
	}
	return docs, nil
}

// ---------------------------------------------------------------------------
// Shell-style word processing, as the reference implementation's shell
// lexer does it (quotes, escapes, $ substitutions, and its word splitting,
// which the heredoc detection depends on).

const eof = -1

type shell struct {
	src string
	pos int
	esc rune

	rawQuotes  bool // keep quote characters in the result
	rawEscapes bool // keep escape characters in the result
	skipUnset  bool // leave references to unset variables as written

	env *env // nil: no variable is set
	// eval is false while processing text whose value is discarded (the
	// word of ${NAME:-word} when NAME is set, …).
	eval bool
	// fail is told, for used text, about a variable without a value or a
	// substitution that is not supported; a non-nil error stops
	// processing.
	fail func(problem string) error

	budget *int // bytes substitutions may still produce; nil: unbounded
	depth  int

	// wordsBuf is shared by nested substitutions, as in the reference
	// lexer (whose word splitting has this quirk).
	wordsBuf strings.Builder
}

func (s *shell) peek() rune {
	if s.pos >= len(s.src) {
		return eof
	}
	r, _ := utf8.DecodeRuneInString(s.src[s.pos:])
	return r
}

func (s *shell) next() rune {
	if s.pos >= len(s.src) {
		return eof
	}
	r, n := utf8.DecodeRuneInString(s.src[s.pos:])
	s.pos += n
	return r
}

func (s *shell) process() (string, []string, error) {
	// The reference lexer reads words with text/scanner, which drops a
	// leading byte order mark.
	if s.pos == 0 && strings.HasPrefix(s.src, "\uFEFF") {
		s.pos = len("\uFEFF")
	}
	return s.processStopOn(eof, s.rawEscapes, false)
}

func (s *shell) word() (string, error) {
	r, _, err := s.process()
	return r, err
}

func (s *shell) words() ([]string, error) {
	_, w, err := s.process()
	return w, err
}

type wordSplitter struct {
	buf    *strings.Builder
	words  []string
	inWord bool
}

func (w *wordSplitter) addChar(ch rune) {
	if unicode.IsSpace(ch) && w.inWord {
		if w.buf.Len() != 0 {
			w.words = append(w.words, w.buf.String())
			w.buf.Reset()
			w.inWord = false
		}
	} else if !unicode.IsSpace(ch) {
		w.addRawChar(ch)
	}
}

func (w *wordSplitter) addRawChar(ch rune) {
	w.buf.WriteRune(ch)
	w.inWord = true
}

func (w *wordSplitter) addString(str string) {
	for _, ch := range str {
		w.addChar(ch)
	}
}

func (w *wordSplitter) addRawString(str string) {
	w.buf.WriteString(str)
	w.inWord = true
}

func (w *wordSplitter) get() []string {
	if w.buf.Len() > 0 {
		w.words = append(w.words, w.buf.String())
		w.buf.Reset()
		w.inWord = false
	}
	return w.words
}

func (s *shell) spend(n int) error {
	if s.budget == nil {
		return nil
	}
	*s.budget -= n
	if *s.budget < 0 {
		return fmt.Errorf("%w: variable substitution produces more than %d bytes", ErrLimit, maxExpansion)
	}
	return nil
}

func (s *shell) processStopOn(stop rune, rawEscapes, preservePatternEscapes bool) (string, []string, error) {
	var result strings.Builder
	s.wordsBuf.Reset()
	w := wordSplitter{buf: &s.wordsBuf}
	if rawEscapes != s.rawEscapes {
		s.rawEscapes = rawEscapes
		defer func() { s.rawEscapes = !rawEscapes }()
	}
	for s.peek() != eof {
		ch := s.peek()
		if stop != eof && ch == stop {
			s.next()
			return result.String(), w.get(), nil
		}
		var (
			tmp string
			err error
		)
		switch ch {
		case '$':
			tmp, err = s.dollar()
			if err == nil {
				err = s.spend(len(tmp))
			}
			if err != nil {
				return "", nil, err
			}
			result.WriteString(tmp)
			w.addString(tmp)
			continue
		case '<':
			tmp = s.possibleHeredoc()
		case '\'':
			tmp, err = s.singleQuote(preservePatternEscapes)
		case '"':
			tmp, err = s.doubleQuote(preservePatternEscapes)
		default:
			ch = s.next()
			if ch == s.esc {
				if s.rawEscapes {
					w.addRawChar(ch)
					result.WriteRune(ch)
				}
				ch = s.next()
				if ch == eof {
					return s.finish(stop, &result, &w)
				}
				w.addRawChar(ch)
			} else {
				w.addChar(ch)
			}
			result.WriteRune(ch)
			continue
		}
		if err != nil {
			return "", nil, err
		}
		result.WriteString(tmp)
		w.addRawString(tmp)
	}
	return s.finish(stop, &result, &w)
}

func (s *shell) finish(stop rune, result *strings.Builder, w *wordSplitter) (string, []string, error) {
	if stop != eof {
		return "", nil, fmt.Errorf("unexpected end of statement while looking for matching %c", stop)
	}
	return result.String(), w.get(), nil
}

func (s *shell) singleQuote(preservePatternEscapes bool) (string, error) {
	var result strings.Builder
	ch := s.next()
	if s.rawQuotes {
		result.WriteRune(ch)
	}
	for {
		ch = s.next()
		switch ch {
		case eof:
			return "", errors.New("unexpected end of statement while looking for matching single-quote")
		case '\'':
			if s.rawQuotes {
				result.WriteRune(ch)
			}
			return result.String(), nil
		}
		if preservePatternEscapes && ch == s.esc {
			result.WriteRune(ch)
		}
		result.WriteRune(ch)
	}
}

func (s *shell) doubleQuote(preservePatternEscapes bool) (string, error) {
	var result strings.Builder
	ch := s.next()
	if s.rawQuotes {
		result.WriteRune(ch)
	}
	for {
		switch s.peek() {
		case eof:
			return "", errors.New("unexpected end of statement while looking for matching double-quote")
		case '"':
			ch := s.next()
			if s.rawQuotes {
				result.WriteRune(ch)
			}
			return result.String(), nil
		case '$':
			value, err := s.dollar()
			if err == nil {
				err = s.spend(len(value))
			}
			if err != nil {
				return "", err
			}
			result.WriteString(value)
		default:
			ch := s.next()
			if ch == s.esc {
				switch s.peek() {
				case eof:
					continue
				case '"', '$', s.esc:
					if s.rawEscapes {
						result.WriteRune(ch)
					}
					ch = s.next()
				default:
					if s.rawEscapes && (!s.rawQuotes || preservePatternEscapes) {
						result.WriteRune(ch)
					}
				}
			}
			result.WriteRune(ch)
		}
	}
}

func (s *shell) possibleHeredoc() string {
	s.next()
	if s.peek() != '<' {
		return "<"
	}
	s.next()
	var b strings.Builder
	b.WriteString("<<")
	for {
		switch ch := s.peek(); ch {
		case '\t', '\r', ' ':
			b.WriteRune(s.next())
			continue
		}
		return b.String()
	}
}

func (s *shell) name() string {
	var b strings.Builder
	for s.peek() != eof {
		ch := s.peek()
		if b.Len() == 0 && unicode.IsDigit(ch) {
			for s.peek() != eof && unicode.IsDigit(s.peek()) {
				b.WriteRune(s.next())
			}
			return b.String()
		}
		if b.Len() == 0 && strings.ContainsRune("@*#?-$!0", ch) {
			return string(s.next())
		}
		if !unicode.IsLetter(ch) && !unicode.IsDigit(ch) && ch != '_' {
			break
		}
		b.WriteRune(s.next())
	}
	return b.String()
}

// get returns the value of a variable. When the text is used, a variable
// without a value is reported to fail, unless testsUnset (the operator
// handles an unset variable), and so is a variable whose own value was
// computed from a variable without one.
func (s *shell) get(name string, testsUnset bool) (string, bool, error) {
	var (
		v  argValue
		ok bool
	)
	if s.env != nil {
		v, ok = s.env.lookup(name)
	}
	if s.eval && s.fail != nil {
		var problem string
		switch {
		case ok && v.unset != "":
			problem = v.unset
		case !ok && !testsUnset:
			problem = "variable " + name + " is not set (declare it with a default or pass it in buildArgs)"
		}
		if problem != "" {
			if err := s.fail(problem); err != nil {
				return "", false, err
			}
		}
	}
	return v.value, ok, nil
}

func (s *shell) dollar() (string, error) {
	s.next()
	if s.peek() != '{' {
		name := s.name()
		if name == "" {
			return "$", nil
		}
		if s.skipUnset {
			return "$" + name, nil // nothing is set in this mode
		}
		v, _, err := s.get(name, false)
		return v, err
	}
	s.next()
	switch s.peek() {
	case eof:
		return "", errors.New("syntax error: missing '}'")
	case '{', '}', ':':
		return "", errors.New("syntax error: bad substitution")
	}
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxNesting {
		return "", fmt.Errorf("%w: substitutions nested more than %d deep", ErrLimit, maxNesting)
	}
	name := s.name()
	ch := s.next()
	chs := string(ch)
	nullIsUnset := false
	switch ch {
	case '}':
		if s.skipUnset {
			return "${" + name + "}", nil
		}
		v, _, err := s.get(name, false)
		return v, err
	case ':':
		nullIsUnset = true
		ch = s.next()
		chs += string(ch)
		fallthrough
	case '+', '-', '?', '#', '%':
		rawEscapes := ch == '#' || ch == '%'
		if nullIsUnset && rawEscapes {
			return "", fmt.Errorf("unsupported modifier (%s) in substitution", chs)
		}
		var (
			value string
			set   bool
			used  bool
		)
		if !s.skipUnset {
			var err error
			value, set, err = s.get(name, ch == '-' || ch == '+' || ch == '?')
			if err != nil {
				return "", err
			}
			empty := !set || (nullIsUnset && value == "")
			switch ch {
			case '-':
				used = empty
			case '+':
				used = !empty
			}
		}
		eval := s.eval
		s.eval = eval && used
		word, _, err := s.processStopOn('}', rawEscapes, rawEscapes)
		s.eval = eval
		if err != nil {
			if s.peek() == eof {
				return "", errors.New("syntax error: missing '}'")
			}
			return "", err
		}
		if s.skipUnset {
			return "${" + name + chs + word + "}", nil
		}
		switch ch {
		case '-':
			if !set || (nullIsUnset && value == "") {
				return word, nil
			}
			return value, nil
		case '+':
			if !set || (nullIsUnset && value == "") {
				return "", nil
			}
			return word, nil
		case '?':
			if !set {
				msg := "is not allowed to be unset"
				if word != "" {
					msg = word
				}
				return "", fmt.Errorf("%s: %s", name, msg)
			}
			if nullIsUnset && value == "" {
				msg := "is not allowed to be empty"
				if word != "" {
					msg = word
				}
				return "", fmt.Errorf("%s: %s", name, msg)
			}
			return value, nil
		case '#', '%':
			return "", s.unsupported("${" + name + chs + word + "}")
		default:
			return "", fmt.Errorf("unsupported modifier (%s) in substitution", chs)
		}
	case '/':
		if s.peek() == '/' {
			s.next()
		}
		pattern, _, err := s.processStopOn('/', true, true)
		if err != nil {
			if s.peek() == eof {
				return "", errors.New("syntax error: missing '/' in ${}")
			}
			return "", err
		}
		replacement, _, err := s.processStopOn('}', true, false)
		if err != nil {
			if s.peek() == eof {
				return "", errors.New("syntax error: missing '}'")
			}
			return "", err
		}
		if s.skipUnset {
			return "${" + name + "/" + pattern + "/" + replacement + "}", nil
		}
		return "", s.unsupported("${" + name + "/" + pattern + "/" + replacement + "}")
	default:
		return "", fmt.Errorf("unsupported modifier (%s) in substitution", chs)
	}
}

// unsupported reports a pattern substitution, which this package does not
// evaluate, if its value is used.
func (s *shell) unsupported(expr string) error {
	if s.eval && s.fail != nil {
		return s.fail("the substitution " + expr + " is not supported")
	}
	return nil
}
