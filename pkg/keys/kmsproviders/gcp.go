//go:build !imgsign_nogcpkms

package kmsproviders

import (
	"github.com/imgsign/imgsign/pkg/keys"
	provider "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
)

func init() { register(keys.SchemeGCP, provider.ValidReference) }
