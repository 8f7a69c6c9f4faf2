//go:build !imgsign_nohashivault

package kmsproviders

import (
	"github.com/imgsign/imgsign/pkg/keys"
	provider "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)

func init() { register(keys.SchemeHashiVault, provider.ValidReference) }
