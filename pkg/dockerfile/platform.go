package dockerfile

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Platform is a platform a build targets or runs on, as BuildKit's
// automatic platform arguments describe it.
type Platform struct {
	OS, Architecture, Variant string
}

// String writes the platform as TARGETPLATFORM does: os/arch[/variant].
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform parses os/arch[/variant], as `docker build --platform`
// takes it, normalised as BuildKit normalises it (containerd's platforms
// package): lower case, macos is darwin, x86_64 and x86-64 are amd64 (a v1
// variant dropped), aarch64 is arm64 (a v8 variant dropped), i386 is 386,
// armhf is arm/v7, armel arm/v6, and arm without a variant is arm/v7.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" || strings.Trim(strings.ToLower(p), "abcdefghijklmnopqrstuvwxyz0123456789_.-") != "" {
			return Platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
		}
	}
	p := Platform{OS: strings.ToLower(parts[0]), Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	p.Architecture, p.Variant = normalizeArch(p.Architecture, p.Variant)
	return p, nil
}

// normalizeArch normalises an architecture and its variant as containerd's
// platforms package does.
func normalizeArch(arch, variant string) (string, string) {
	arch, variant = strings.ToLower(arch), strings.ToLower(variant)
	switch arch {
	case "i386":
		return "386", ""
	case "x86_64", "x86-64", "amd64":
		if variant == "v1" {
			variant = ""
		}
		return "amd64", variant
	case "aarch64", "arm64":
		if variant == "8" || variant == "v8" {
			variant = ""
		}
		return "arm64", variant
	case "armhf":
		return "arm", "v7"
	case "armel":
		return "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	return arch, variant
}

// HostPlatform returns the platform of this machine, the one `docker
// build` targets and builds on when no --platform is given.
func HostPlatform() Platform {
	variant := ""
	if runtime.GOARCH == "arm" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" {
					variant, _, _ = strings.Cut(s.Value, ",")
				}
			}
		}
	}
	arch, variant := normalizeArch(runtime.GOARCH, variant)
	return Platform{OS: runtime.GOOS, Architecture: arch, Variant: variant}
}

// Build is what a build is given besides the Dockerfile.
type Build struct {
	// Args play the role of --build-arg: a value overrides the default of a
	// declared global ARG, or the value of an automatic platform argument.
	Args map[string]string
	// Target is the platform built for (TARGETPLATFORM, TARGETOS,
	// TARGETARCH, TARGETVARIANT, TARGETOSVERSION) and Host the platform
	// the build runs on (BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT,
	// BUILDOSVERSION). A build sets these arguments in the global scope
	// (where FROM lines are expanded) without any ARG declaring them; a
	// global ARG with a default overrides one, a build argument overrides
	// both. When Target (or Host) is nil the platform is not known: a FROM
	// reference that uses one of its arguments, even in ${NAME:-word}, is
	// an error unless Args gives it. TARGETSTAGE (the target stage's name)
	// is known only from Args.
	Target, Host *Platform
}

// automatic returns the value of each automatic argument the build sets,
// and for those it does not know, why.
func (b Build) automatic() map[string]argValue {
	out := map[string]argValue{}
	set := func(p *Platform, prefix string) {
		names := []string{"PLATFORM", "OS", "OSVERSION", "ARCH", "VARIANT"}
		for i, n := range names {
			if p == nil {
				out[prefix+n] = argValue{unset: prefix + n + " is set by the build from its " + strings.ToLower(prefix) + " platform, which is not given"}
				continue
			}
			out[prefix+n] = argValue{value: [...]string{p.String(), p.OS, "", p.Architecture, p.Variant}[i]}
		}
	}
	set(b.Target, "TARGET")
	set(b.Host, "BUILD")
	out["TARGETSTAGE"] = argValue{unset: "TARGETSTAGE is set by the build from its target stage, which is not given (pass it as a build argument)"}
	for k := range out {
		if v, ok := b.Args[k]; ok {
			out[k] = argValue{value: v}
		}
	}
	return out
}
