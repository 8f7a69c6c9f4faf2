// Package version reports imgsign's version. Release builds set Version,
// Commit and Date with -ldflags -X; other builds fall back to what the Go
// toolchain recorded in the binary (module version and VCS stamping).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version, Commit and Date are set by the release build (see .goreleaser.yaml):
//
//	-ldflags "-X github.com/imgsign/imgsign/internal/version.Version=v1.2.3
//	          -X github.com/imgsign/imgsign/internal/version.Commit=<full commit hash>
//	          -X github.com/imgsign/imgsign/internal/version.Date=<commit date, RFC 3339>"
//
// They are empty in other builds; use [Get], which falls back, rather than
// reading them directly.
var (
	Version string
	Commit  string
	Date    string
)

// Info describes the running binary. Its JSON form is what
// `imgsign version -o json` prints.
type Info struct {
	Version   string `json:"version"`   // "v1.2.3", a pseudo-version, or "devel"; never empty
	Commit    string `json:"commit"`    // VCS revision, "-dirty" appended for a modified tree; "" if unknown
	Date      string `json:"date"`      // commit time; "" if unknown
	GoVersion string `json:"goVersion"` // runtime.Version(), e.g. "go1.26.8"
	Platform  string `json:"platform"`  // GOOS/GOARCH, e.g. "linux/amd64"
}

// Get returns the running binary's version information. Each of Version,
// Commit and Date is the value set at link time if not empty, else:
//
//   - Version: the main module's version from [debug.ReadBuildInfo] (set by
//     `go install module@version`), unless it is empty or "(devel)"; else
//     "devel". Version is never empty.
//   - Commit: the vcs.revision build setting, with "-dirty" appended when
//     vcs.modified is "true"; else "".
//   - Date: the vcs.time build setting; else "".
//
// The VCS settings exist only when the binary was built inside a checkout
// with VCS stamping on (not with -buildvcs=false). GoVersion and Platform
// always describe the running binary.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return get(nil)
	}
	return get(bi)
}

// get is Get with the build information given (nil if unavailable).
func get(bi *debug.BuildInfo) Info {
	i := Info{
		Version:   Version,
		Commit:    Commit,
		Date:      Date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		var revision, modified, vcsTime string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			case "vcs.time":
				vcsTime = s.Value
			}
		}
		if i.Commit == "" && revision != "" {
			i.Commit = revision
			if modified == "true" {
				i.Commit += "-dirty"
			}
		}
		if i.Date == "" {
			i.Date = vcsTime
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// String renders the Info as aligned, newline-terminated lines for people,
// showing empty fields as "unknown":
//
//	imgsign  v1.2.3
//	commit   0123abcd...
//	built    2026-11-24T09:00:00Z
//	go       go1.26.8
//	platform linux/amd64
func (i Info) String() string {
	or := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("imgsign  %s\ncommit   %s\nbuilt    %s\ngo       %s\nplatform %s\n",
		or(i.Version), or(i.Commit), or(i.Date), or(i.GoVersion), or(i.Platform))
}
