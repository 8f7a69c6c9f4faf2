package oci

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/imgsign/imgsign/internal/atomicfile"
)

// ErrUnauthorized is wrapped when a registry refuses credentials.
var ErrUnauthorized = errors.New("the registry refused the credentials")

// CheckLogin authenticates to registry with the user name and password and
// reports whether the registry accepts them (a token exchange where the
// registry uses tokens, an authenticated GET /v2/ in any case).
func (c *Client) CheckLogin(ctx context.Context, registry, username, password string) error {
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return err
	}
	rt, err := transport.NewWithContext(ctx, reg, &authn.Basic{Username: username, Password: password}, c.base, []string{})
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%s: %w", registry, ErrUnauthorized)
		}
		return fmt.Errorf("%s: %w", registry, err)
	}
	// As go-containerregistry does: HTTPS first, plain HTTP only where
	// the registry's scheme allows it (loopback, or an insecure reference).
	schemes := []string{"https"}
	if reg.Scheme() == "http" {
		schemes = append(schemes, "http")
	}
	var firstErr error
	for _, scheme := range schemes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := (httpClient(rt)).Do(req)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w (%s)", registry, ErrUnauthorized, resp.Status)
		case firstErr == nil:
			return fmt.Errorf("%s: unexpected answer %s", registry, resp.Status)
		}
	}
	return fmt.Errorf("%s: %w", registry, firstErr)
}

// DockerConfigDir returns the directory of the Docker config file:
// $DOCKER_CONFIG, else ~/.docker.
func DockerConfigDir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".docker"), nil
}

// SaveCredentials stores a user name and password for registry in the
// config.json of dir, the file Docker, cosign and imgsign read, keeping
// everything else in it. The file is written atomically with mode 0600. It
// returns a warning when a credential helper configured in the file would
// take precedence over the stored credentials.
func SaveCredentials(dir, registry, username, password string) (warning string, err error) {
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "config.json")
	cfg := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	default:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return "", fmt.Errorf("%s is not valid JSON: %w", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := cfg["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return "", fmt.Errorf("%s: \"auths\" is not an object: %w", path, err)
		}
	}
	entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(username + ":" + password))})
	auths[reg.RegistryStr()] = entry
	if cfg["auths"], err = json.Marshal(auths); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, append(out, '\n'), 0o600, true); err != nil {
		return "", err
	}
	var helpers struct {
		CredsStore  string            `json:"credsStore"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	_ = json.Unmarshal(data, &helpers)
	if h := helpers.CredHelpers[reg.RegistryStr()]; h != "" {
		return fmt.Sprintf("credential helper %q is configured for %s and takes precedence over the stored password", h, reg.RegistryStr()), nil
	}
	if helpers.CredsStore != "" {
		return fmt.Sprintf("credential store %q is configured and takes precedence over the stored password", helpers.CredsStore), nil
	}
	return "", nil
}
