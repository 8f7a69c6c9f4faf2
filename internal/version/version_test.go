package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestGetUsesLinkTimeValues(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, Date = v, c, d }(Version, Commit, Date)
	Version, Commit, Date = "v1.2.3", "abc123", "2026-11-24T00:00:00Z"
	i := Get()
	if i.Version != "v1.2.3" || i.Commit != "abc123" || i.Date != "2026-11-24T00:00:00Z" {
		t.Fatalf("Get = %+v", i)
	}
	if i.GoVersion != runtime.Version() || i.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("Go/platform = %s %s", i.GoVersion, i.Platform)
	}
	for _, s := range []string{"imgsign  v1.2.3", "commit   abc123", "go       " + runtime.Version()} {
		if !strings.Contains(i.String(), s) {
			t.Errorf("String() lacks %q:\n%s", s, i.String())
		}
	}
}

func TestGetFallsBack(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, Date = v, c, d }(Version, Commit, Date)
	Version, Commit, Date = "", "", ""
	i := Get()
	if i.Version == "" {
		t.Fatal("no fallback version")
	}
	if !strings.Contains(Info{}.String(), "commit   unknown") {
		t.Error("empty fields must print as unknown")
	}
}
