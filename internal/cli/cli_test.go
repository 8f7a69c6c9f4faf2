package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/keys"
)

// run executes the CLI in-process with the given environment and an
// optional scripted terminal (answers to successive password prompts).
type run struct {
	env      map[string]string
	terminal []string
	stdin    string
}

type result struct {
	code           int
	stdout, stderr string
	prompts        []string
}

func (r run) do(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	res := result{}
	app := &App{
		Stdin:  strings.NewReader(r.stdin),
		Stdout: &out,
		Stderr: &errb,
		LookupEnv: func(k string) (string, bool) {
			v, ok := r.env[k]
			return v, ok
		},
	}
	if r.terminal != nil {
		answers := r.terminal
		app.ReadPassword = func(prompt string) ([]byte, error) {
			res.prompts = append(res.prompts, prompt)
			if len(answers) == 0 {
				t.Fatalf("unexpected prompt %q", prompt)
			}
			a := answers[0]
			answers = answers[1:]
			return []byte(a), nil
		}
	}
	res.code = app.Run(context.Background(), args)
	res.stdout, res.stderr = out.String(), errb.String()
	return res
}

func env(pw string) run { return run{env: map[string]string{"IMGSIGN_PASSWORD": pw}} }

func (r result) expect(t *testing.T, code int, stderrHas string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, stderrHas) {
		t.Fatalf("stderr = %q, want it to contain %q", r.stderr, stderrHas)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Fatalf("stack trace on stderr: %s", r.stderr)
	}
}

func TestGenerateKeyPairAndInspect(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ci")
	r := env("hunter2").do(t, "generate-key-pair", "--output-key-prefix", prefix, "--algorithm", "ed25519")
	r.expect(t, ExitOK, "Private key written to "+prefix+".key")

	info := env("hunter2").do(t, "key", "info", "-o", "json", prefix+".key")
	info.expect(t, ExitOK, "")
	var got keys.Info
	if err := json.Unmarshal([]byte(info.stdout), &got); err != nil {
		t.Fatalf("key info json: %v (%s)", err, info.stdout)
	}
	if got.Algorithm != "ed25519" || !got.Private || got.Format != keys.FormatSigstoreEncrypted {
		t.Errorf("key info = %+v", got)
	}
	pubInfo := run{}.do(t, "key", "info", prefix+".pub")
	pubInfo.expect(t, ExitOK, "")
	if !strings.Contains(pubInfo.stdout, "key ID     "+got.KeyID) || !strings.Contains(pubInfo.stdout, "public key") {
		t.Errorf("public key info = %q, want key ID %s", pubInfo.stdout, got.KeyID)
	}
	if !strings.Contains(r.stderr, "Key ID: "+got.KeyID) {
		t.Errorf("generate-key-pair did not report the key ID: %s", r.stderr)
	}

	// public-key reproduces the .pub file.
	pk := env("hunter2").do(t, "public-key", "--key", prefix+".key")
	pk.expect(t, ExitOK, "")
	pub, _ := os.ReadFile(prefix + ".pub")
	if pk.stdout != string(pub) {
		t.Errorf("public-key output differs from the .pub file")
	}
	// Existing files are not overwritten.
	before, _ := os.ReadFile(prefix + ".key")
	env("x").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitExist, "already exists")
	after, _ := os.ReadFile(prefix + ".key")
	if !bytes.Equal(before, after) {
		t.Fatal("key overwritten without --force")
	}
	env("x").do(t, "generate-key-pair", "--output-key-prefix", prefix, "--force").expect(t, ExitOK, "")
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	// Terminal: asked twice on creation.
	r := run{terminal: []string{"tty-pw", "tty-pw"}}.do(t, "generate-key-pair", "--output-key-prefix", prefix)
	r.expect(t, ExitOK, "")
	if len(r.prompts) != 2 {
		t.Errorf("prompts = %q, want two", r.prompts)
	}
	// Mismatch on the terminal writes nothing.
	other := filepath.Join(dir, "other")
	run{terminal: []string{"a", "b"}}.do(t, "generate-key-pair", "--output-key-prefix", other).expect(t, ExitKey, "do not match")
	if _, err := os.Stat(other + ".key"); err == nil {
		t.Error("key written after a password mismatch")
	}
	// COSIGN_PASSWORD is a fallback; IMGSIGN_PASSWORD wins over it.
	run{env: map[string]string{"COSIGN_PASSWORD": "tty-pw"}}.do(t, "public-key", "--key", prefix+".key").expect(t, ExitOK, "")
	run{env: map[string]string{"COSIGN_PASSWORD": "tty-pw", "IMGSIGN_PASSWORD": "wrong"}}.do(t, "public-key", "--key", prefix+".key").
		expect(t, ExitKey, "incorrect password or corrupt key")
	// --password-file, with a trailing newline, and from standard input.
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("tty-pw\n"), 0o600)
	run{}.do(t, "public-key", "--key", prefix+".key", "--password-file", pwFile).expect(t, ExitOK, "")
	run{stdin: "tty-pw\n"}.do(t, "public-key", "--key", prefix+".key", "--password-file", "-").expect(t, ExitOK, "")
	// No source at all: a clear error, not a hang.
	run{}.do(t, "public-key", "--key", prefix+".key").expect(t, ExitKey, "IMGSIGN_PASSWORD")
	// The password never appears in output.
	r = env("sup3r-secret-pw").do(t, "public-key", "--key", prefix+".key")
	if strings.Contains(r.stderr+r.stdout, "sup3r-secret-pw") {
		t.Error("password printed")
	}
}

func TestChangePassword(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	env("old").do(t, "generate-key-pair", "--output-key-prefix", prefix).expect(t, ExitOK, "")
	pubBefore := env("old").do(t, "public-key", "--key", prefix+".key").stdout

	wrong := run{env: map[string]string{"IMGSIGN_PASSWORD": "nope", "IMGSIGN_NEW_PASSWORD": "new"}}
	before, _ := os.ReadFile(prefix + ".key")
	wrong.do(t, "key", "change-password", "--key", prefix+".key").expect(t, ExitKey, "incorrect password")
	if after, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(before, after) {
		t.Fatal("key file changed after a wrong password")
	}

	ok := run{env: map[string]string{"IMGSIGN_PASSWORD": "old", "IMGSIGN_NEW_PASSWORD": "new"}}
	ok.do(t, "key", "change-password", "--key", prefix+".key").expect(t, ExitOK, "changed")
	env("old").do(t, "public-key", "--key", prefix+".key").expect(t, ExitKey, "incorrect password")
	if got := env("new").do(t, "public-key", "--key", prefix+".key").stdout; got != pubBefore {
		t.Error("the key changed, not just its password")
	}
	st, _ := os.Stat(prefix + ".key")
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode after change = %v", st.Mode().Perm())
	}
	// A public key or an unencrypted key cannot have its password changed.
	ok.do(t, "key", "change-password", "--key", prefix+".pub").expect(t, ExitKey, "not an encrypted private key")
	// Terminal: current once, new twice.
	r := run{terminal: []string{"new", "newer", "newer"}}.do(t, "key", "change-password", "--key", prefix+".key")
	r.expect(t, ExitOK, "")
	if len(r.prompts) != 3 {
		t.Errorf("prompts = %q, want 3", r.prompts)
	}
}

func TestImportKeyPair(t *testing.T) {
	dir := t.TempDir()
	// A PKCS#8 Ed25519 key as openssl writes it.
	k, _ := keys.Generate(keys.Ed25519)
	enc, _ := keys.EncryptPrivateKey(k, []byte("pw"))
	plain := filepath.Join(dir, "plain.pem")
	writePKCS8(t, plain, k)
	env("pw").do(t, "import-key-pair", "--key", plain, "--output-key-prefix", filepath.Join(dir, "imp")).expect(t, ExitOK, "Public key written")
	want, _ := keys.KeyID(k.Public())
	info := run{}.do(t, "key", "info", filepath.Join(dir, "imp.pub"))
	if !strings.Contains(info.stdout, want) {
		t.Errorf("imported key ID differs: %s", info.stdout)
	}
	// Encrypted input with the same password.
	encPath := filepath.Join(dir, "enc.key")
	os.WriteFile(encPath, enc, 0o600)
	env("pw").do(t, "import-key-pair", "--key", encPath, "--output-key-prefix", filepath.Join(dir, "imp2")).expect(t, ExitOK, "")
	env("other").do(t, "import-key-pair", "--key", encPath, "--output-key-prefix", filepath.Join(dir, "imp3")).expect(t, ExitKey, "incorrect password")
	if _, err := os.Stat(filepath.Join(dir, "imp3.key")); err == nil {
		t.Error("key written after a failed import")
	}
	env("pw").do(t, "import-key-pair", "--key", filepath.Join(dir, "imp.pub")).expect(t, ExitKey, "public key was given")
	env("pw").do(t, "import-key-pair").expect(t, ExitUsage, "--key is required")
}

func TestBadInputExitCodes(t *testing.T) {
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc.key")
	os.WriteFile(trunc, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYi"), 0o600)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"public-key", "--key", trunc}, ExitKey, "malformed key"},
		{[]string{"public-key", "--key", filepath.Join(dir, "missing.key")}, ExitError, "no such file"},
		{[]string{"generate-key-pair", "--algorithm", "dsa"}, ExitUsage, "unsupported key"},
		{[]string{"generate-key-pair", "extra"}, ExitUsage, "expected no arguments"},
		{[]string{"no-such-command"}, ExitUsage, "unknown command"},
		{[]string{"key", "info"}, ExitUsage, "expected one key file"},
		{[]string{"key", "info", "--bogus", "x"}, ExitUsage, "unknown flag"},
		{[]string{"version", "-o", "yaml"}, ExitUsage, "--output must be"},
	}
	for _, c := range cases {
		r := env("pw").do(t, c.args...)
		r.expect(t, c.code, c.msg)
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; c.code != ExitUsage && lines != 1 {
			t.Errorf("%v: stderr has %d lines, want one: %q", c.args, lines, r.stderr)
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	r := run{}.do(t, "--help")
	r.expect(t, ExitOK, "")
	for _, s := range []string{"generate-key-pair", "Exit codes:", "IMGSIGN_PASSWORD"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("root help lacks %q", s)
		}
	}
	v := run{}.do(t, "version", "-o", "json")
	v.expect(t, ExitOK, "")
	var info map[string]string
	if err := json.Unmarshal([]byte(v.stdout), &info); err != nil || info["goVersion"] == "" && info["GoVersion"] == "" {
		t.Errorf("version json = %q (%v)", v.stdout, err)
	}
}
