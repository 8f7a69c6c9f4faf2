package initgc

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"
)

// gogc reads the collector's current GOGC (-1: off) without changing it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if v := s[0].Value.Uint64(); v <= 1<<31 {
		return int(v)
	}
	return -1
}

// TestResume checks, in a child process started with GOGC=$IMGSIGN_TEST_GOGC
// (the package's init reads GOGC once per process): the collector is off
// during initialisation, at twice GOGC after Resume, and at GOGC once a
// collection has run; and that GOGC=off stays off.
func TestResume(t *testing.T) {
	if env := os.Getenv("IMGSIGN_TEST_GOGC"); env != "" {
		if p := gogc(); p != -1 {
			t.Fatalf("during initialisation GOGC = %d, want off", p)
		}
		want := 100
		if env != "default" {
			want, _ = strconv.Atoi(env)
		}
		Resume()
		if want < 0 {
			if p := gogc(); p != -1 {
				t.Fatalf("GOGC=off: after Resume GOGC = %d, want off", p)
			}
			return
		}
		if p := gogc(); p != 2*want {
			t.Fatalf("after Resume GOGC = %d, want %d until the first collection", p, 2*want)
		}
		runtime.GC()
		for deadline := time.Now().Add(10 * time.Second); gogc() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after a collection GOGC = %d, want %d", gogc(), want)
			}
		}
		return
	}
	for _, v := range []string{"default", "50", "off"} {
		t.Run("GOGC="+v, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestResume$", "-test.v")
			cmd.Env = append(os.Environ(), "IMGSIGN_TEST_GOGC="+map[string]string{"default": "default", "50": "50", "off": "-1"}[v])
			if v != "default" {
				cmd.Env = append(cmd.Env, "GOGC="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}
