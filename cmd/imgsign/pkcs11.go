//go:build pkcs11 && cgo

package main

// pkcs11: key URIs, in the pkcs11 build only (cgo).
import _ "github.com/imgsign/imgsign/pkg/keys/pkcs11"
