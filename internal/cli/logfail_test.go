package cli

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/internal/tlogtest"
)

// TestKeySigningLogFails: with --key, a transparency log (--rekor-url)
// that refuses the signature or cannot be reached is a signing service's
// failure, exit 16 as for keyless signing, and nothing is written: not to
// the registry (sign, attest), not to the bundle file (sign-blob).
func TestKeySigningLogFails(t *testing.T) {
	reg := testreg.Start(t, nil)
	img := reg.PushImage(t, reg.Ref("k/app:v1")).String()
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	pred := filepath.Join(dir, "p.json")
	if err := os.WriteFile(pred, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bundleOut := filepath.Join(dir, "out.sigstore.json")

	refusing := tlogtest.NewV1(t)
	refusing.Fail(http.StatusServiceUnavailable)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	for _, c := range []struct{ name, url, why string }{
		{"refuses", refusing.URL, "503"},
		{"unreachable", closed, ln.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			env("pw").do(t, "sign", "--key", k+".key", "--rekor-url", c.url, "--rekor-version", "1", img).
				expect(t, ExitKeyless, "record the signature in the transparency log (nothing was written to the registry)")
			env("pw").do(t, "attest", "--key", k+".key", "--rekor-url", c.url, "--rekor-version", "1", "--type", "custom", "--predicate", pred, img).
				expect(t, ExitKeyless, c.why)
			env("pw").do(t, "sign-blob", "--key", k+".key", "--rekor-url", c.url, "--rekor-version", "1", "--bundle", bundleOut, pred).
				expect(t, ExitKeyless, c.why)
			if _, err := os.Stat(bundleOut); err == nil {
				t.Fatalf("sign-blob wrote %s although the log failed", bundleOut)
			}
		})
	}
	env("").do(t, "verify", "--key", k+".pub", img).expect(t, ExitNoSignatures, "no signatures")
	env("").do(t, "verify-attestation", "--key", k+".pub", "--type", "custom", img).expect(t, ExitNoSignatures, "")
}
