package main

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// sizeBudget is the release binary's budget (internal/release holds the
// same figure as a test).
const sizeBudget = 40_000_000

// releaseBuild is the part of .goreleaser.yaml's default build that decides
// what goes into the binary.
type releaseBuild struct {
	ID      string   `yaml:"id"`
	Main    string   `yaml:"main"`
	Env     []string `yaml:"env"`
	Tags    []string `yaml:"tags"`
	Flags   []string `yaml:"flags"`
	Ldflags []string `yaml:"ldflags"`
}

// buildRelease builds imgsign into dir as .goreleaser.yaml's first (default)
// build does, for the host platform: its env, tags, flags and ldflags, with
// the templates ({{ .Version }}, ...) replaced by fixed values. strip=false
// drops -s -w (symbols for `go tool nm`); extraLd is appended to the
// ldflags. It returns the binary's path and the linker's stderr.
func buildRelease(config, dir string, strip bool, extraLd string) (string, []byte, error) {
	raw, err := os.ReadFile(config)
	if err != nil {
		return "", nil, err
	}
	var c struct {
		Builds []releaseBuild `yaml:"builds"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return "", nil, fmt.Errorf("%s: %w", config, err)
	}
	if len(c.Builds) == 0 {
		return "", nil, fmt.Errorf("%s: no builds", config)
	}
	b := c.Builds[0]
	ld := regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`).ReplaceAllString(strings.Join(b.Ldflags, " "), "bench-$1")
	if !strip {
		ld = strings.ReplaceAll(ld, "-s -w", "")
	}
	ld = strings.TrimSpace(ld + " " + extraLd)
	name := "imgsign"
	if !strip {
		name += ".sym"
	}
	bin := filepath.Join(dir, name)
	args := append([]string{"build", "-tags", strings.Join(b.Tags, ",")}, b.Flags...)
	args = append(args, "-ldflags", ld, "-o", bin, b.Main)
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(config)
	cmd.Env = append(os.Environ(), b.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tail := stderr.Bytes()
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return "", nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail)
	}
	return bin, stderr.Bytes(), nil
}

// runRelease reports what the release build costs users who only run it:
// the binary's size against the budget (and cosign's), the packages and
// modules that take the most of it, whether the linker could drop unused
// methods, and the start-up time of `imgsign version` against `cosign
// version`, run alternately, runs times each.
func runRelease(config, cosign string, runs int) error {
	dir, err := os.MkdirTemp("", "imgsign-bench-release")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, _, err := buildRelease(config, dir, true, "")
	if err != nil {
		return err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	fmt.Printf("\nRelease build (%s, first build, host platform):\n", filepath.Base(config))
	verdict := "within"
	if fi.Size() > sizeBudget {
		verdict = "OVER"
	}
	fmt.Printf("  imgsign binary          %6.1f MB  (%s the %.0f MB budget)\n", mb(fi.Size()), verdict, mb(sizeBudget))
	if cosign != "" {
		if ci, err := os.Stat(cosign); err == nil {
			fmt.Printf("  cosign binary           %6.1f MB  (%s)\n", mb(ci.Size()), filepath.Base(cosign))
		}
	}

	// The unstripped twin: symbols per package, and the linker's
	// dependency dump, which marks every reachable function that calls
	// reflect.Value.Method or MethodByName with a non-constant name (such
	// a call makes the linker keep every exported method of every
	// reachable type).
	sym, dump, err := buildRelease(config, dir, false, "-dumpdep")
	if err != nil {
		return err
	}
	var reflecting []string
	for _, line := range strings.Split(string(dump), "\n") {
		if a, _, ok := strings.Cut(line, " <ReflectMethod> ->"); ok && !slices.Contains(reflecting, a) {
			reflecting = append(reflecting, a)
		}
	}
	if len(reflecting) == 0 {
		fmt.Printf("  dead-method elimination on (no reachable reflect Method/MethodByName call)\n")
	} else {
		fmt.Printf("  dead-method elimination OFF, because of: %s\n", strings.Join(reflecting, ", "))
	}
	if err := reportSymbols(config, sym); err != nil {
		return err
	}
	if runs > 0 {
		return runStartup(bin, cosign, runs)
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// symbolPackage is the package a Go symbol belongs to: "type:*a/b.T.M"
// and "a/b.(*T).M" are in a/b.
func symbolPackage(s string) string {
	for _, p := range []string{"type:", "go:itab.", "go:string.", "go:"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimLeft(s, "*[]")
	slash := strings.LastIndexByte(s, '/')
	if dot := strings.IndexByte(s[slash+1:], '.'); dot >= 0 {
		return s[:slash+1+dot]
	}
	return s
}

// reportSymbols sums `go tool nm -size` per package and per module and
// prints the largest. It counts what the file holds (not zero-filled
// data); the function table and other runtime metadata (go:func.*) grow
// with each package's code but are not attributed to it.
func reportSymbols(config, bin string) error {
	out, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
	if err != nil {
		return fmt.Errorf("go tool nm: %w", err)
	}
	// Zero-filled sections take no room in the file.
	var bss [][2]uint64
	if f, err := elf.Open(bin); err == nil {
		for _, sec := range f.Sections {
			if sec.Type == elf.SHT_NOBITS {
				bss = append(bss, [2]uint64{sec.Addr, sec.Addr + sec.Size})
			}
		}
		f.Close()
	}
	inBSS := func(addr uint64) bool {
		for _, r := range bss {
			if addr >= r[0] && addr < r[1] {
				return true
			}
		}
		return false
	}
	list := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{else}}std{{end}}", "./cmd/imgsign")
	list.Dir = filepath.Dir(config)
	mods, err := list.Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	module := map[string]string{}
	for _, l := range strings.Split(string(mods), "\n") {
		if p, m, ok := strings.Cut(l, " "); ok {
			module[p] = m
		}
	}
	perPkg, perMod := map[string]int64{}, map[string]int64{}
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		if addr, err := strconv.ParseUint(f[0], 16, 64); err != nil || inBSS(addr) {
			continue
		}
		// The last element of a package path spells its dots %2e.
		p := strings.ReplaceAll(symbolPackage(strings.Join(f[3:], " ")), "%2e", ".")
		perPkg[p] += n
		m, ok := module[p]
		if !ok {
			m = "(runtime metadata and other)"
		}
		perMod[m] += n
		total += n
	}
	top := func(title string, sums map[string]int64, n int) {
		keys := make([]string, 0, len(sums))
		for k := range sums {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(sums[b], sums[a]) })
		fmt.Printf("  %s (of %.1f MB of symbols):\n", title, mb(total))
		for _, k := range keys[:min(n, len(keys))] {
			fmt.Printf("    %6.2f MB  %s\n", mb(sums[k]), k)
		}
	}
	top("largest modules", perMod, 15)
	top("largest packages", perPkg, 15)
	return nil
}

// runStartup runs `imgsign version` and `cosign version` alternately, runs
// times each, and reports median wall time, minor page faults and the
// ratio; then the package initialisation cost of imgsign from
// GODEBUG=inittrace=1 (median over runs/2 runs).
func runStartup(imgsign, cosign string, runs int) error {
	bins := []string{imgsign}
	if cosign != "" {
		if _, err := os.Stat(cosign); err == nil {
			bins = append(bins, cosign)
		}
	}
	wall := make([][]time.Duration, len(bins))
	faults := make([][]int64, len(bins))
	for i := 0; i < runs; i++ {
		for j, b := range bins {
			cmd := exec.Command(b, "version")
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s version: %w", b, err)
			}
			wall[j] = append(wall[j], time.Since(start))
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				faults[j] = append(faults[j], ru.Minflt)
			}
		}
	}
	fmt.Printf("\nStart-up, `version`, %d runs each, alternating:\n", runs)
	fmt.Printf("  %-28s %10s %8s %8s %12s\n", "binary", "median ms", "p10 ms", "p90 ms", "page faults")
	med := make([]time.Duration, len(bins))
	for j, b := range bins {
		slices.Sort(wall[j])
		slices.Sort(faults[j])
		med[j] = wall[j][runs/2]
		fmt.Printf("  %-28s %10.2f %8.2f %8.2f %12d\n", filepath.Base(b), ms1(med[j]), ms1(wall[j][runs/10]), ms1(wall[j][runs*9/10]), faults[j][runs/2])
	}
	if len(bins) == 2 {
		fmt.Printf("  imgsign / cosign: %.2fx (goal: at most 0.30x)\n", float64(med[0])/float64(med[1]))
	}

	// Package initialisation, from the runtime's own trace.
	type pkgInit struct {
		ms    []float64
		bytes int64
	}
	pkgs := map[string]*pkgInit{}
	var totals, allocs []float64
	n := max(runs/2, 5)
	for i := 0; i < n; i++ {
		cmd := exec.Command(imgsign, "version")
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return err
		}
		var total, alloc float64
		for _, l := range strings.Split(stderr.String(), "\n") {
			// init PKG @T ms, D ms clock, B bytes, A allocs
			f := strings.Fields(l)
			if len(f) < 9 || f[0] != "init" {
				continue
			}
			d, _ := strconv.ParseFloat(f[4], 64)
			b, _ := strconv.ParseInt(f[7], 10, 64)
			p := pkgs[f[1]]
			if p == nil {
				p = &pkgInit{}
				pkgs[f[1]] = p
			}
			p.ms = append(p.ms, d)
			p.bytes = b
			total += d
			alloc += float64(b)
		}
		totals = append(totals, total)
		allocs = append(allocs, alloc)
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	fmt.Printf("  imgsign package initialisation: %.2f ms, %.1f MB allocated, %d packages (median of %d runs, GODEBUG=inittrace=1)\n",
		median(totals), median(allocs)/1e6, len(pkgs), n)
	names := make([]string, 0, len(pkgs))
	meds := map[string]float64{}
	for k, p := range pkgs {
		names = append(names, k)
		meds[k] = median(p.ms)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(meds[b], meds[a]) })
	for _, k := range names[:min(12, len(names))] {
		fmt.Printf("    %6.3f ms %8d B  %s\n", meds[k], pkgs[k].bytes, k)
	}
	return nil
}
