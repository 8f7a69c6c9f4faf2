// Package version reports imgsign's version. Release builds set Version,
// Commit and Date with -ldflags -X; other builds fall back to what the Go
// toolchain recorded in the binary.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the release build:
//
//	-X github.com/imgsign/imgsign/internal/version.Version=v1.2.3
var (
	Version string
	Commit  string
	Date    string
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the version information: the values set at link time, else
// the module version and VCS data recorded by the Go toolchain, else
// "devel" for the version and "" for what is unknown.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && Commit == "" && i.Commit != "" {
			i.Commit += "-dirty"
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// String renders the Info as aligned lines, "unknown" for empty fields.
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
