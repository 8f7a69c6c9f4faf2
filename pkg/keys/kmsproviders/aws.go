//go:build !imgsign_noawskms

package kmsproviders

import (
	"github.com/imgsign/imgsign/pkg/keys"
	provider "github.com/sigstore/sigstore/pkg/signature/kms/aws"
)

func init() { register(keys.SchemeAWS, provider.ValidReference) }
