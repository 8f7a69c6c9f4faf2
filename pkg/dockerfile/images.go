package dockerfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// Kind says where a Dockerfile names an image.
type Kind string

const (
	// KindSyntax is the frontend image named by a "# syntax=" parser
	// directive, or by the BUILDKIT_SYNTAX build argument. The frontend
	// runs during the build and decides how the file is read.
	KindSyntax Kind = "syntax"
	// KindFrom is the base image of a build stage (FROM).
	KindFrom Kind = "from"
	// KindCopyFrom is an image COPY --from=<image> copies from.
	KindCopyFrom Kind = "copy-from"
	// KindMountFrom is an image RUN --mount=…,from=<image>,… mounts.
	KindMountFrom Kind = "mount-from"
)

// Image is an image a build of the Dockerfile uses.
type Image struct {
	Kind Kind
	// Ref is the image reference, after ARG substitution for KindFrom, as
	// written otherwise (not normalized: "alpine" stays "alpine").
	Ref string
	// Raw is the reference as written: before ARG substitution for
	// KindFrom (the text of a reference split over continuation lines is
	// joined), the flag value with the parser's quotes and escapes removed
	// for KindCopyFrom and KindMountFrom, the value of the directive or of
	// the build argument for KindSyntax.
	Raw string
	// Line is the 1-based line on which the instruction (or the syntax
	// directive) starts; for an ONBUILD trigger, the line of the ONBUILD
	// instruction. It is 0 for a frontend named by the BUILDKIT_SYNTAX build
	// argument, which is not in the file.
	Line int
	// Start and End are the byte offsets of the reference in the input
	// (data[Start:End] == Raw): the bytes PinImages replaces. They are -1
	// when the reference cannot be rewritten in place: it is not in the
	// file (BUILDKIT_SYNTAX), it is split over a line continuation, or it is
	// written with quotes or escapes.
	Start, End int
	// OnBuild is set for an image named by an ONBUILD trigger of a stage
	// that a later stage of the file is based on (so the build runs it).
	OnBuild bool
	// Stage and Platform are, for KindFrom, the stage name given with AS
	// and the unexpanded value of --platform, as written, or "".
	Stage    string
	Platform string
}

// syntaxBuildArg is the build argument that names the frontend, overriding
// the syntax directive.
const syntaxBuildArg = "BUILDKIT_SYNTAX"

// reVariable is how the reference implementation recognises a variable in a
// RUN --mount from= value, which it refuses.
var reVariable = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$.`) })

// Images returns every image a build of the Dockerfile in data uses, as
// far as the file and buildArgs tell: the frontend named by a "# syntax="
// directive or the BUILDKIT_SYNTAX build argument (KindSyntax), the base
// image of every build stage (KindFrom, exactly the images BaseImages
// returns), and the images named by COPY --from (KindCopyFrom) and by the
// from= key of RUN --mount flags (KindMountFrom), including those of ONBUILD
// triggers of a stage that a later stage is based on. Stage names, stage
// indexes of COPY --from, and scratch are left out. Images are in file
// order (a BUILDKIT_SYNTAX frontend first); an image used twice is
// reported twice.
//
// buildArgs play the role of --build-arg as for BaseImages. See the package
// documentation for the rules and for where Images is stricter than a
// build. A Dockerfile without any FROM instruction is an error.
func Images(data []byte, buildArgs map[string]string) ([]Image, error) {
	return scan(data, Build{Args: buildArgs}, true)
}

// ImagesFor is Images for a build for one target platform: the automatic
// platform arguments (TARGETARCH, BUILDPLATFORM, ...) have the values the
// build sets (see Build), so that each FROM reference is the one that build
// pulls. A build for several platforms resolves its FROM lines once per
// platform: call ImagesFor for each.
func ImagesFor(data []byte, b Build) ([]Image, error) {
	return scan(data, b, true)
}

// trigger is an ONBUILD instruction whose trigger is COPY or RUN.
type trigger struct {
	in   *instr
	cmd  command // the trigger, offsets in in.text
	done bool
}

type scanner struct {
	f   *file
	out []Image
	// first and last map the lower-cased name of each stage started so far
	// to the index of the first and of the last stage of that name.
	first, last map[string]int
	// named holds the lower-cased name of every stage of the file.
	named map[string]bool
	// triggers holds the COPY and RUN ONBUILD triggers of each stage.
	triggers map[int][]*trigger
}

// scan finds the base images, and with all every other image too.
func scan(data []byte, b Build, all bool) ([]Image, error) {
	buildArgs := b.Args
	f, err := parse(data)
	if err != nil {
		return nil, err
	}
	s := &scanner{f: f, first: map[string]int{}, last: map[string]int{}, named: map[string]bool{}, triggers: map[int][]*trigger{}}
	if all {
		if s.out, err = syntaxImages(data, buildArgs); err != nil {
			return nil, err
		}
		for i := range f.instrs {
			if in := &f.instrs[i]; in.lcmd == "from" {
				if fr, err := in.from(); err == nil && fr.stage != "" {
					s.named[strings.ToLower(fr.stage)] = true
				}
			}
		}
	}
	env := newEnv(b)
	budget := maxExpansion
	stage := -1 // index of the current stage
	for i := range f.instrs {
		in := &f.instrs[i]
		if stage < 0 && in.lcmd != "arg" && in.lcmd != "from" {
			return nil, fmt.Errorf("dockerfile: line %d: %s before the first FROM (only ARG may precede it)", in.line, in.cmd)
		}
		switch in.lcmd {
		case "arg":
			if stage < 0 {
				if err := env.declare(in, f.escape, &budget); err != nil {
					return nil, err
				}
			}
		case "from":
			fr, err := in.from()
			if err != nil {
				return nil, err
			}
			ref, err := expandRef(fr.raw, f.escape, env, &budget)
			if err != nil {
				return nil, fmt.Errorf("dockerfile: line %d: FROM %s: %w", in.line, fr.raw, err)
			}
			stage++
			lref := strings.ToLower(ref)
			base, isStage := s.last[lref]
			if lref != "scratch" && !isStage {
				start, end := in.place(fr.off, fr.raw)
				s.out = append(s.out, Image{Kind: KindFrom, Ref: ref, Raw: fr.raw, Line: in.line, Start: start, End: end, Stage: fr.stage, Platform: fr.platform})
			}
			if all && isStage {
				// The base stage's ONBUILD triggers run here. The first
				// stage to run a trigger knows the fewest stages, so it
				// sees every image the trigger can name.
				for _, t := range s.triggers[base] {
					if t.done {
						continue
					}
					t.done = true
					if err := s.flagImages(t.in, t.cmd, stage, true); err != nil {
						return nil, err
					}
				}
			}
			if fr.stage != "" {
				name := strings.ToLower(fr.stage)
				if _, ok := s.first[name]; !ok {
					s.first[name] = stage
				}
				s.last[name] = stage
			}
		case "copy", "run":
			if all {
				c := command{cmd: in.cmd, args: in.args, argsOff: in.argsOff, flags: in.flags, flagSpans: in.flagSpans}
				if err := s.flagImages(in, c, stage, false); err != nil {
					return nil, err
				}
			}
		case "onbuild":
			if all && in.args != "" {
				c := splitCommand(in.args)
				switch strings.ToLower(c.cmd) {
				case "copy", "run":
					c.argsOff += in.argsOff
					for j := range c.flagSpans {
						c.flagSpans[j].start += in.argsOff
						c.flagSpans[j].end += in.argsOff
					}
					s.triggers[stage] = append(s.triggers[stage], &trigger{in: in, cmd: c})
				}
			}
		}
	}
	if stage < 0 {
		return nil, errors.New("dockerfile: no FROM instruction")
	}
	// Triggers are reported where they are written.
	sort.SliceStable(s.out, func(i, j int) bool { return s.out[i].Line < s.out[j].Line })
	return s.out, nil
}

// place returns where the n bytes of the instruction text at off are in
// the input, if they were copied from one place and are raw; else -1, -1.
func (in *instr) place(off int, raw string) (int, int) {
	if off < 0 || off+len(raw) > len(in.text) || in.text[off:off+len(raw)] != raw {
		return -1, -1
	}
	start, ok := in.origin(off, len(raw))
	if !ok {
		return -1, -1
	}
	return start, start + len(raw)
}

// flagImages reports the images named by the flags of a COPY (--from) or
// RUN (--mount from=) instruction c, which is in, or the ONBUILD trigger of
// in, run in the given stage.
func (s *scanner) flagImages(in *instr, c command, stage int, onbuild bool) error {
	lcmd := strings.ToLower(c.cmd)
	what := strings.ToUpper(lcmd)
	if onbuild {
		what = "ONBUILD " + what
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("dockerfile: line %d: %s: %s", in.line, what, fmt.Sprintf(format, a...))
	}
	seenFrom := false
	for j, fl := range c.flags {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(fl, "--"), "=")
		sp := c.flagSpans[j]
		literal := in.text[sp.start:sp.end] == fl
		switch {
		case lcmd == "copy" && name == "from":
			if !hasValue {
				return fail("missing a value on flag --from")
			}
			if seenFrom {
				return fail("duplicate flag --from")
			}
			seenFrom = true
			sh := &shell{src: value, esc: s.f.escape}
			if res, err := sh.word(); err != nil || res != value {
				return fail("--from=%s: variable expansion, quotes and escapes are not supported in --from (BuildKit refuses them; name the image in a FROM stage instead)", value)
			}
			lv := strings.ToLower(value)
			if value == "" || lv == "scratch" {
				continue
			}
			if _, err := strconv.Atoi(value); err == nil {
				continue // a stage index
			}
			if first, ok := s.first[lv]; ok && first < stage {
				continue // an earlier stage
			}
			if err := checkRef(value); err != nil {
				return fail("--from=%s: %v", value, err)
			}
			start, end := -1, -1
			if literal {
				start, end = in.place(sp.start+len("--from="), value)
			}
			s.out = append(s.out, Image{Kind: KindCopyFrom, Ref: value, Raw: value, Line: in.line, Start: start, End: end, OnBuild: onbuild})
		case lcmd == "run" && name == "mount":
			if !hasValue {
				return fail("missing a value on flag --mount")
			}
			r := csv.NewReader(strings.NewReader(value))
			fields, err := r.Read()
			if err != nil {
				return fail("--mount=%s: failed to parse csv mounts: %v", value, err)
			}
			from, field := -1, ""
			for k, fd := range fields {
				key, _, ok := strings.Cut(fd, "=")
				if !ok || strings.ToLower(key) != "from" {
					continue
				}
				if from >= 0 {
					return fail("--mount=%s: more than one from= key", value)
				}
				from, field = k, fd
			}
			if from < 0 {
				continue
			}
			key, ref, _ := strings.Cut(field, "=")
			if reVariable().MatchString(ref) {
				return fail("--mount=%s: from= does not support variable expansion (BuildKit refuses it; name the image in a FROM stage instead)", value)
			}
			lr := strings.ToLower(ref)
			if ref == "" || lr == "scratch" || s.named[lr] {
				continue
			}
			if err := checkRef(ref); err != nil {
				return fail("--mount from=%s: %v", ref, err)
			}
			start, end := -1, -1
			if _, col := r.FieldPos(from); literal && col >= 1 {
				// An unquoted CSV field is the text itself.
				fs := col - 1
				if fs+len(field) <= len(value) && value[fs:fs+len(field)] == field {
					start, end = in.place(sp.start+len("--mount=")+fs+len(key)+1, ref)
				}
			}
			s.out = append(s.out, Image{Kind: KindMountFrom, Ref: ref, Raw: ref, Line: in.line, Start: start, End: end, OnBuild: onbuild})
		}
	}
	return nil
}

// checkRef checks an image reference taken literally from the file.
func checkRef(ref string) error {
	if ref == "" {
		return errors.New("empty reference")
	}
	if strings.Contains(ref, "$") {
		return fmt.Errorf("reference %q contains $", ref)
	}
	for _, r := range ref {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("reference %q contains whitespace or a control character", ref)
		}
	}
	return nil
}

// syntaxImages returns the frontend the build runs: the BUILDKIT_SYNTAX
// build argument, and the syntax directive.
//
// Frontends find the directive with their own reader, not the parser's
// directive rules, and BuildKit versions differ: all look at the lines at
// the very top, unindented, starting with "#"; the current one skips a
// byte order mark and a first "#!" line and stops at a key other than
// syntax, escape or check, and takes the first syntax directive; older ones
// skip "#!" lines anywhere or none, continue past any key and take the last.
// This reader takes the widest block (byte order mark and every "#!" line
// skipped, any key) and refuses two syntax directives in it, so that the
// directive any version would run is reported. A "//" comment or a JSON
// object, which the current reader also accepts, is not a Dockerfile
// instruction and fails the parse.
func syntaxImages(data []byte, buildArgs map[string]string) ([]Image, error) {
	var out []Image
	if v, ok := buildArgs[syntaxBuildArg]; ok {
		ref, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if err := checkRef(ref); err != nil {
			return nil, fmt.Errorf("dockerfile: build argument %s: %w", syntaxBuildArg, err)
		}
		out = append(out, Image{Kind: KindSyntax, Ref: ref, Raw: v, Start: -1, End: -1})
	}
	pos := 0
	if bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
		pos = 3
	}
	var found *Image
	for lineNo := 1; pos < len(data); lineNo++ {
		start := pos
		end := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			end = pos + i
			pos = end + 1
		} else {
			pos = end
		}
		line := bytes.TrimRight(data[start:end], "\r")
		if bytes.HasPrefix(line, []byte("#!")) {
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("#"))
		if !ok {
			break
		}
		lead := len(rest) - len(bytes.TrimLeftFunc(rest, unicode.IsSpace))
		m := reDirective().FindSubmatchIndex(rest[lead:])
		if m == nil {
			break
		}
		if !strings.EqualFold(string(rest[lead+m[2]:lead+m[3]]), "syntax") {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("dockerfile: line %d: a second syntax directive (line %d has one); BuildKit versions differ on which one applies", lineNo, found.Line)
		}
		vStart := start + 1 + lead + m[4]
		value := string(data[vStart : start+1+lead+m[5]])
		ref, _, _ := strings.Cut(value, " ")
		if err := checkRef(ref); err != nil {
			return nil, fmt.Errorf("dockerfile: line %d: syntax directive: %w", lineNo, err)
		}
		found = &Image{Kind: KindSyntax, Ref: ref, Raw: ref, Line: lineNo, Start: vStart, End: vStart + len(ref)}
	}
	if found != nil {
		out = append(out, *found)
	}
	return out, nil
}

// PinImages returns data with the image references Images(data, buildArgs)
// reports replaced: pins maps the Start offset of an image to its new
// reference, typically the reference with a digest added
// ("alpine:3.20@sha256:…"). Only the bytes data[Start:End] of each pinned
// image change; every other byte is kept as it was (flags, comments, other
// lines, line endings). "# syntax=docker/dockerfile:1" becomes
// "# syntax=docker/dockerfile:1@sha256:…", which BuildKit accepts.
//
// It is an error if an offset is not the Start of an image Images reports,
// if that image cannot be rewritten in place (Start is -1), or if a pin is
// not a plausible image reference (it must be non-empty and use only the
// characters of a reference: letters, digits and ._-:/@+[]). PinImages does
// not expand variables: a FROM $BASE line gets the pin in place of "$BASE".
// The result is read again with the same buildArgs and checked to have the
// same instructions and images, the pinned ones with exactly the pins.
func PinImages(data []byte, buildArgs map[string]string, pins map[int]string) ([]byte, error) {
	images, err := Images(data, buildArgs)
	if err != nil {
		return nil, err
	}
	byStart := make(map[int]int, len(images))
	for i, im := range images {
		if im.Start >= 0 {
			byStart[im.Start] = i
		}
	}
	starts := make([]int, 0, len(pins))
	for s := range pins {
		starts = append(starts, s)
	}
	sort.Ints(starts)
	var out bytes.Buffer
	out.Grow(len(data) + 100*len(starts))
	last := 0
	for _, s := range starts {
		ref := pins[s]
		i, ok := byStart[s]
		if !ok {
			return nil, fmt.Errorf("dockerfile: offset %d: not the start of an image reference that can be pinned", s)
		}
		im := images[i]
		if err := checkPin(ref); err != nil {
			return nil, fmt.Errorf("dockerfile: pin for line %d %s %s: %w", im.Line, im.Kind, im.Raw, err)
		}
		// Distinct references never overlap.
		out.Write(data[last:im.Start])
		out.WriteString(ref)
		last = im.End
	}
	out.Write(data[last:])
	res := out.Bytes()

	// Check the result reads as intended: same instructions, same images,
	// pinned references in place.
	f, err := parse(data)
	if err != nil {
		return nil, err
	}
	g, err := parse(res)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: pinned Dockerfile does not parse: %w", err)
	}
	if !sameInstructions(f, g) {
		return nil, errors.New("dockerfile: pinning changed the instructions")
	}
	again, err := Images(res, buildArgs)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: pinned Dockerfile: %w", err)
	}
	if len(again) != len(images) {
		return nil, errors.New("dockerfile: pinning changed the images")
	}
	for i, b := range again {
		a := images[i]
		want, pinned := a.Ref, false
		if a.Start >= 0 {
			if p, ok := pins[a.Start]; ok {
				want, pinned = p, true
			}
		}
		if b.Kind != a.Kind || b.Line != a.Line || b.OnBuild != a.OnBuild || b.Ref != want || pinned && b.Raw != want {
			return nil, fmt.Errorf("dockerfile: line %d: pin of %s %s did not take effect as intended", a.Line, a.Kind, a.Raw)
		}
	}
	return res, nil
}

// sameInstructions reports whether two parses have the same instructions
// on the same lines.
func sameInstructions(f, g *file) bool {
	if len(g.instrs) != len(f.instrs) {
		return false
	}
	for i := range g.instrs {
		a, b := &f.instrs[i], &g.instrs[i]
		if a.line != b.line || a.endLine != b.endLine || a.lcmd != b.lcmd {
			return false
		}
	}
	return true
}
