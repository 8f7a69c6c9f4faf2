// Package kmsproviders registers sigstore's cloud KMS modules (AWS KMS, GCP
// KMS, Azure Key Vault, HashiCorp Vault) with pkg/keys. Import it for its
// side effect from a main package that wants key URIs; each provider's file
// can be left out of a build with a tag (imgsign_noawskms, imgsign_nogcpkms,
// imgsign_noazurekms, imgsign_nohashivault) to save its size and start-up
// cost.
package kmsproviders

import (
	"context"
	"crypto"

	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/sigstore/sigstore/pkg/signature/kms"
)

// validators are the URI checks of the registered providers, by scheme.
var validators = map[string]func(string) error{}

// register makes pkg/keys open URIs of scheme through sigstore's KMS
// registry, which the provider module's init filled. validate checks the
// URI's form first, so that a malformed URI is a usage error before any
// credential lookup.
func register(scheme string, validate func(string) error) {
	validators[scheme] = validate
	keys.RegisterProvider(scheme, func(ctx context.Context, ref string) (keys.RemoteBackend, error) {
		if err := validate(ref); err != nil {
			return nil, &keys.URIError{Ref: ref, Err: err}
		}
		return kms.Get(ctx, ref, crypto.SHA256)
	})
}
