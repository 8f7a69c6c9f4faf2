package keys

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteKeyPair(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ci")
	privPath, pubPath, err := WriteKeyPair(prefix, []byte("PRIV"), []byte("PUB"), false)
	if err != nil {
		t.Fatal(err)
	}
	if privPath != prefix+".key" || pubPath != prefix+".pub" {
		t.Errorf("paths = %s, %s", privPath, pubPath)
	}
	for path, want := range map[string]fs.FileMode{privPath: 0o600, pubPath: 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", path, st.Mode().Perm(), want)
		}
	}

	// No overwrite without force, and nothing changes.
	if _, _, err := WriteKeyPair(prefix, []byte("NEW"), []byte("NEW"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write err = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(privPath); string(b) != "PRIV" {
		t.Errorf("private key overwritten without force: %q", b)
	}
	// Only the public key existing is also a refusal, and no private key appears.
	other := filepath.Join(dir, "other")
	os.WriteFile(other+".pub", []byte("X"), 0o644)
	if _, _, err := WriteKeyPair(other, []byte("P"), []byte("Q"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(other + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a private key was written although the public key existed")
	}

	if _, _, err := WriteKeyPair(prefix, []byte("NEW"), []byte("NEWPUB"), true); err != nil {
		t.Fatalf("force: %v", err)
	}
	if b, _ := os.ReadFile(pubPath); string(b) != "NEWPUB" {
		t.Errorf("force did not overwrite: %q", b)
	}
}

func TestWriteKeyPairLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	// The public key's name is taken by a directory created after the
	// existence check would pass... simulate by making the .pub a directory
	// and forcing, which cannot replace a directory with a file.
	if err := os.Mkdir(prefix+".pub", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := WriteKeyPair(prefix, []byte("P"), []byte("Q"), false); err == nil {
		t.Fatal("expected an error")
	}
	if _, err := os.Stat(prefix + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Error("private key left behind after a failed key pair write")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "k.pub" {
			t.Errorf("stray file %s left in the directory", e.Name())
		}
	}
	if _, _, err := WriteKeyPair(filepath.Join(dir, "missing", "k"), []byte("P"), []byte("Q"), false); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte(fixedPub), 0o644)
	if b, err := ReadFile(small); err != nil || !bytes.Equal(b, []byte(fixedPub)) {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte{'a'}, MaxKeyFileSize+1), 0o644)
	if _, err := ReadFile(big); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("ReadFile(big) err = %v, want ErrMalformedKey", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) err = %v, want fs.ErrNotExist", err)
	}
}
