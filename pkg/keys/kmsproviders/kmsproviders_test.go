package kmsproviders

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/keys"
)

// TestURIForms checks each provider's URI forms through the real provider
// modules: good forms get past parsing (and fail later, on credentials or
// the network, never as a malformed URI); bad forms are malformed-key
// errors naming the URI.
func TestURIForms(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "x")
	good := []string{
		"awskms:///alias/release",
		"awskms:///1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms://kms.eu-west-2.amazonaws.com/alias/release",
		"awskms:///arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms:///arn:aws:kms:eu-west-2:111122223333:alias/release",
		"hashivault://release",
	}
	bad := []string{
		"awskms:///not-a-key-id",
		"gcpkms://projects/p/locations/l/keyRings/r",
		"azurekms://vault-only",
		"hashivault://",
	}
	// gcpkms and azurekms validators run without credentials.
	for _, ref := range []string{
		"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k",
		"gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2",
	} {
		if err := validators[keys.SchemeGCP](ref); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
	if err := validators[keys.SchemeAzure]("azurekms://myvault.vault.azure.net/release"); err != nil {
		t.Errorf("azurekms: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20e9)
	defer cancel()
	for _, ref := range good {
		_, err := keys.OpenRemote(ctx, ref)
		if err == nil {
			t.Errorf("%s: opened with nothing listening", ref)
			continue
		}
		if errors.Is(err, keys.ErrMalformedKey) || errors.Is(err, keys.ErrNoProvider) {
			t.Errorf("%s: %v", ref, err)
		}
		var re *keys.RemoteError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), ref) {
			t.Errorf("%s: error does not name provider and key: %v", ref, err)
		}
	}
	for _, ref := range bad {
		_, err := keys.OpenRemote(ctx, ref)
		if !errors.Is(err, keys.ErrMalformedKey) {
			t.Errorf("%s: %v (want a malformed key URI)", ref, err)
		}
	}
}
