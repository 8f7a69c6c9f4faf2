//go:build !imgsign_noazurekms

package kmsproviders

import (
	"github.com/imgsign/imgsign/pkg/keys"
	provider "github.com/sigstore/sigstore/pkg/signature/kms/azure"
)

func init() { register(keys.SchemeAzure, provider.ValidReference) }
