//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	p11Bin  string
	p11Once sync.Once
	p11Err  error
)

// imgsignPKCS11 builds the pkcs11 build of imgsign (cgo, -tags pkcs11) once
// per test process.
func imgsignPKCS11(t testing.TB) string {
	t.Helper()
	p11Once.Do(func() {
		dir, err := os.MkdirTemp("", "imgsign-e2e-p11")
		if err != nil {
			p11Err = err
			return
		}
		p11Bin = filepath.Join(dir, "imgsign")
		cmd := exec.Command("go", "build", "-tags", "pkcs11", "-o", p11Bin, "../../cmd/imgsign")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			p11Err = fmt.Errorf("go build -tags pkcs11: %v\n%s", err, out)
		}
	})
	if p11Err != nil {
		t.Fatal(p11Err)
	}
	return p11Bin
}

// softHSM is a SoftHSM2 token initialised for one test, with its own
// SOFTHSM2_CONF and token directory.
type softHSM struct {
	module, conf string
}

func (s softHSM) env() []string { return []string{"SOFTHSM2_CONF=" + s.conf} }

func softhsmModule(t testing.TB) string {
	for _, p := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return need(t, "SoftHSM2 (Debian softhsm2)", "/usr/lib/softhsm/libsofthsm2.so")
}

// newSoftHSM initialises token label with user PIN 1234 and makes an ECDSA
// P-256 key pair labelled "sig" with ID 01 on it.
func newSoftHSM(t testing.TB, label string) softHSM {
	t.Helper()
	s := softHSM{module: softhsmModule(t)}
	need(t, "softhsm2-util", "/usr/bin/softhsm2-util")
	need(t, "pkcs11-tool (Debian opensc)", "/usr/bin/pkcs11-tool")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	s.conf = filepath.Join(dir, "softhsm2.conf")
	os.WriteFile(s.conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600)
	run(t, s.env(), "/usr/bin/softhsm2-util", "--init-token", "--free", "--label", label, "--pin", "1234", "--so-pin", "5678").must(t, 0, "")
	run(t, s.env(), "/usr/bin/pkcs11-tool", "--module", s.module, "--login", "--pin", "1234", "--keypairgen", "--key-type", "EC:prime256v1", "--label", "sig", "--id", "01").must(t, 0, "")
	return s
}

// TestPKCS11SignVerifyList: with the pkcs11 build, a key on a SoftHSM2
// token is listed with its URI, signs images and blobs, and verifies by URI
// and by exported public key; wrong PIN, missing object and missing module
// each fail saying so, and the PIN is never printed.
func TestPKCS11SignVerifyList(t *testing.T) {
	bin := imgsignPKCS11(t)
	hsm := newSoftHSM(t, "imgsign-ci")
	reg := startRegistry(t, true, true)
	dir := t.TempDir()

	out := run(t, hsm.env(), bin, "pkcs11", "tokens", "--module-path", hsm.module).must(t, 0, "token=imgsign-ci")
	var slot string
	for _, line := range strings.Split(out.stdout, "\n") {
		if strings.Contains(line, "token=imgsign-ci") {
			slot = strings.TrimPrefix(strings.Fields(line)[0], "slot-id=")
		}
	}
	out = run(t, hsm.env(), bin, "pkcs11", "keys", "--module-path", hsm.module, "--slot-id", slot).must(t, 0, "pkcs11:token=imgsign-ci;object=sig;id=%01?module-path="+hsm.module)
	listed := strings.Fields(strings.TrimSpace(out.stdout))[2]

	const pin = "1234"
	uri := listed + "&pin-value=" + pin
	pinFile := filepath.Join(dir, "pin")
	os.WriteFile(pinFile, []byte(pin+"\n"), 0o600)
	uriPinFile := listed + "&pin-source=" + pinFile

	pubOut := run(t, hsm.env(), bin, "public-key", "--key", uri).must(t, 0, "BEGIN PUBLIC KEY")
	os.WriteFile(filepath.Join(dir, "hsm.pub"), []byte(pubOut.stdout), 0o644)

	d := reg.pushImage(t, "hsm/app:v1")
	run(t, hsm.env(), bin, args("sign", "--key", uriPinFile, reg.flags(), d.String())...).must(t, 0, "Signed "+d.String())
	run(t, hsm.env(), bin, args("verify", "--key", uri, reg.flags(), d.String())...).must(t, 0, "Verified")
	run(t, nil, bin, args("verify", "--key", filepath.Join(dir, "hsm.pub"), reg.flags(), d.String())...).must(t, 0, "Verified")
	blobFile := filepath.Join(dir, "blob")
	os.WriteFile(blobFile, []byte("signed on a token"), 0o644)
	run(t, append(hsm.env(), "IMGSIGN_PKCS11_PIN="+pin), bin, "sign-blob", "--key", listed, "--bundle", blobFile+".bundle", blobFile).must(t, 0, "")
	run(t, nil, bin, "verify-blob", "--key", filepath.Join(dir, "hsm.pub"), "--bundle", blobFile+".bundle", blobFile).must(t, 0, "Verified")

	// Failures, each saying what is wrong, none printing the PIN.
	d2 := reg.pushImage(t, "hsm/app:v2")
	for _, tc := range []struct {
		name, uri string
		code      int
		has       string
	}{
		{"wrong PIN", listed + "&pin-value=9999", 3, "wrong PIN"},
		{"missing object", strings.Replace(uri, "object=sig;id=%01", "object=nope", 1), 3, "no such object"},
		{"missing module", strings.Replace(uri, hsm.module, "/nonexistent/libpkcs11.so", 1), 1, "PKCS#11 module /nonexistent/libpkcs11.so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, hsm.env(), bin, args("sign", "--key", tc.uri, reg.flags(), d2.String())...).must(t, tc.code, tc.has)
			if strings.Contains(r.stdout+r.stderr, "pin-value=9999") || strings.Contains(r.stdout+r.stderr, "pin-value=1234") {
				t.Fatalf("the PIN was printed:\n%s", r.stderr)
			}
		})
	}
	// Nothing was written for the image the failures tried to sign.
	run(t, nil, bin, args("verify", "--key", filepath.Join(dir, "hsm.pub"), reg.flags(), d2.String())...).must(t, 10, "no signatures found")
}
