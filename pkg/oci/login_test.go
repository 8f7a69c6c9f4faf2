package oci_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/oci"
)

func TestSaveCredentialsKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"auths":{"other.example":{"auth":"eDp5"}},"psFormat":"table","credHelpers":{"reg.example":"ecr-login"}}`), 0o644)
	warning, err := oci.SaveCredentials(dir, "reg.example", "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warning, "ecr-login") {
		t.Errorf("no warning about the credential helper: %q", warning)
	}
	data, _ := os.ReadFile(cfg)
	var got struct {
		Auths    map[string]map[string]string `json:"auths"`
		PSFormat string                       `json:"psFormat"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.PSFormat != "table" || got.Auths["other.example"]["auth"] != "eDp5" {
		t.Errorf("other settings lost: %s", data)
	}
	if got.Auths["reg.example"]["auth"] != base64.StdEncoding.EncodeToString([]byte("u:p")) {
		t.Errorf("credentials not stored: %s", data)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	os.WriteFile(cfg, []byte(`not json`), 0o600)
	if _, err := oci.SaveCredentials(dir, "reg.example", "u", "p"); err == nil {
		t.Error("a corrupt config file was overwritten")
	}
	if b, _ := os.ReadFile(cfg); string(b) != "not json" {
		t.Error("corrupt config file changed")
	}
}

func TestCheckLogin(t *testing.T) {
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "good" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	c := client(t, oci.Options{})
	if err := c.CheckLogin(context.Background(), reg.Host, "u", "good"); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	if err := c.CheckLogin(context.Background(), reg.Host, "u", "bad"); !errors.Is(err, oci.ErrUnauthorized) {
		t.Fatalf("bad credentials: %v", err)
	}
}
