package version

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// setVars sets the link-time variables for the rest of the test.
func setVars(t *testing.T, v, c, d string) {
	t.Helper()
	oldV, oldC, oldD := Version, Commit, Date
	t.Cleanup(func() { Version, Commit, Date = oldV, oldC, oldD })
	Version, Commit, Date = v, c, d
}

func buildInfo(mainVersion string, settings ...string) *debug.BuildInfo {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/imgsign/imgsign", Version: mainVersion}}
	for i := 0; i+1 < len(settings); i += 2 {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
	}
	return bi
}

func checkRuntime(t *testing.T, i Info) {
	t.Helper()
	if i.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", i.GoVersion, runtime.Version())
	}
	if want := runtime.GOOS + "/" + runtime.GOARCH; i.Platform != want {
		t.Errorf("Platform = %q, want %q", i.Platform, want)
	}
}

func TestGetUsesLinkTimeValues(t *testing.T) {
	setVars(t, "v1.2.3", "abc123", "2026-11-24T00:00:00Z")
	want := Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-11-24T00:00:00Z",
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if got := Get(); got != want {
		t.Errorf("Get() = %+v, want %+v", got, want)
	}
	// Link-time values win over whatever the toolchain recorded.
	bi := buildInfo("v0.0.1", "vcs.revision", "fff", "vcs.modified", "true", "vcs.time", "2000-01-01T00:00:00Z")
	if got := get(bi); got != want {
		t.Errorf("get(build info) = %+v, want the link-time values %+v", got, want)
	}
}

func TestGetFallsBackToTheRunningBinary(t *testing.T) {
	setVars(t, "", "", "")
	i := Get()
	if i.Version == "" {
		t.Error("Version is empty; want the module version or devel")
	}
	checkRuntime(t, i)
}

func TestGetFallsBackToBuildInfo(t *testing.T) {
	setVars(t, "", "", "")
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want Info
	}{
		{"no build info", nil, Info{Version: "devel"}},
		{"devel, no vcs", buildInfo("(devel)"), Info{Version: "devel"}},
		{"empty version", buildInfo(""), Info{Version: "devel"}},
		{"go install module@version", buildInfo("v1.4.0"), Info{Version: "v1.4.0"}},
		{"clean checkout",
			buildInfo("(devel)", "vcs", "git", "vcs.revision", "0123abcd", "vcs.time", "2026-11-24T09:00:00Z", "vcs.modified", "false"),
			Info{Version: "devel", Commit: "0123abcd", Date: "2026-11-24T09:00:00Z"}},
		{"modified checkout",
			buildInfo("v1.5.0-0.20261124090000-0123abcd+dirty", "vcs.modified", "true", "vcs.revision", "0123abcd", "vcs.time", "2026-11-24T09:00:00Z"),
			Info{Version: "v1.5.0-0.20261124090000-0123abcd+dirty", Commit: "0123abcd-dirty", Date: "2026-11-24T09:00:00Z"}},
		{"modified without a revision", buildInfo("(devel)", "vcs.modified", "true"), Info{Version: "devel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := get(tc.bi)
			checkRuntime(t, got)
			got.GoVersion, got.Platform = "", ""
			if got != tc.want {
				t.Errorf("get = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGetPartialLinkTimeValues(t *testing.T) {
	// Only Version set (e.g. a hand-made build): Commit and Date still fall
	// back, and a link-time Commit is never marked dirty.
	setVars(t, "v2.0.0", "", "")
	bi := buildInfo("(devel)", "vcs.revision", "0123abcd", "vcs.modified", "true", "vcs.time", "2026-11-24T09:00:00Z")
	if got, want := get(bi), (Info{Version: "v2.0.0", Commit: "0123abcd-dirty", Date: "2026-11-24T09:00:00Z"}); got.Version != want.Version || got.Commit != want.Commit || got.Date != want.Date {
		t.Errorf("get = %+v, want %+v", got, want)
	}
	setVars(t, "", "cafe", "")
	if got := get(bi); got.Commit != "cafe" || got.Version != "devel" || got.Date != "2026-11-24T09:00:00Z" {
		t.Errorf("get = %+v, want commit cafe (not dirty), version devel, vcs date", got)
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-11-24T00:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	want := "imgsign  v1.2.3\n" +
		"commit   abc123\n" +
		"built    2026-11-24T00:00:00Z\n" +
		"go       go1.26.8\n" +
		"platform linux/amd64\n"
	if got := i.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}

	empty := Info{}.String()
	for _, label := range []string{"imgsign", "commit", "built", "go", "platform"} {
		line := label + strings.Repeat(" ", len("platform ")-len(label)) + "unknown\n"
		if !strings.Contains(empty, line) {
			t.Errorf("String() of an empty Info lacks %q:\n%s", line, empty)
		}
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Info{Version: "v", Commit: "c", Date: "d", GoVersion: "g", Platform: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"version":"v","commit":"c","date":"d","goVersion":"g","platform":"p"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}
