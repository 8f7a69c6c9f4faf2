package keys

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// PKCS11URI is a parsed RFC 7512 pkcs11: URI naming a key on a token.
// Pin is the secret: it is never part of an error or a message.
type PKCS11URI struct {
	ModulePath string // module-path: the PKCS#11 module (.so) to load
	Token      string // token: the token label
	SlotID     *int   // slot-id: the slot number
	Object     string // object: the key's label (CKA_LABEL)
	ID         []byte // id: the key's CKA_ID
	Pin        string // from pin-value, pin-source (a file) or IMGSIGN_PKCS11_PIN
}

// EnvPKCS11Pin is read for the token PIN when the URI carries none.
const EnvPKCS11Pin = "IMGSIGN_PKCS11_PIN"

// ParsePKCS11URI parses a pkcs11: URI: path attributes (token, slot-id,
// object, id) separated by ";", query attributes (module-path, pin-value,
// pin-source) after "?" separated by "&", values percent-encoded. Unknown
// attributes are refused, so that a typo does not select another key.
func ParsePKCS11URI(ref string) (*PKCS11URI, error) {
	bad := func(format string, args ...any) error {
		return &URIError{Ref: ref, Err: fmt.Errorf(format, args...)}
	}
	if !strings.HasPrefix(ref, SchemePKCS11) {
		return nil, bad("not a pkcs11: URI")
	}
	rest := ref[len(SchemePKCS11):]
	path, query, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{}
	var pinSource string
	seen := map[string]bool{}
	parse := func(part string, allowed map[string]bool) error {
		if part == "" {
			return nil
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return bad("attribute %q has no value", k)
		}
		k = strings.ToLower(k)
		if !allowed[k] {
			return bad("unknown attribute %q here", k)
		}
		if seen[k] {
			return bad("attribute %q given twice", k)
		}
		seen[k] = true
		val, err := url.PathUnescape(v)
		if err != nil {
			return bad("attribute %q: bad percent-encoding", k)
		}
		switch k {
		case "token":
			u.Token = val
		case "object":
			u.Object = val
		case "id":
			u.ID = []byte(val)
		case "slot-id":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return bad("slot-id %q is not a slot number", val)
			}
			u.SlotID = &n
		case "module-path":
			u.ModulePath = val
		case "pin-value":
			u.Pin = val
		case "pin-source":
			pinSource = val
		}
		return nil
	}
	pathAttrs := map[string]bool{"token": true, "object": true, "id": true, "slot-id": true,
		"manufacturer": false, "model": false, "serial": false, "type": false}
	queryAttrs := map[string]bool{"module-path": true, "pin-value": true, "pin-source": true}
	for _, part := range strings.Split(path, ";") {
		if err := parse(part, pathAttrs); err != nil {
			return nil, err
		}
	}
	if query != "" {
		for _, part := range strings.Split(query, "&") {
			if err := parse(part, queryAttrs); err != nil {
				return nil, err
			}
		}
	}
	if u.ModulePath == "" {
		return nil, bad("module-path is required (the PKCS#11 module, e.g. ?module-path=/usr/lib/softhsm/libsofthsm2.so)")
	}
	if u.Token == "" && u.SlotID == nil {
		return nil, bad("name the token with token= or slot-id=")
	}
	if u.Object == "" && u.ID == nil {
		return nil, bad("name the key with object= or id=")
	}
	if u.Pin != "" && pinSource != "" {
		return nil, bad("give pin-value or pin-source, not both")
	}
	if pinSource != "" {
		p := strings.TrimPrefix(pinSource, "file:")
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, bad("pin-source: %v", err)
		}
		u.Pin = strings.TrimRight(string(data), "\r\n")
	}
	if u.Pin == "" {
		u.Pin = os.Getenv(EnvPKCS11Pin)
	}
	return u, nil
}

// PKCS11Token is a token a PKCS#11 module offers.
type PKCS11Token struct {
	SlotID       uint
	Label        string
	Manufacturer string
	Model        string
	Serial       string
}

// PKCS11Key is a key on a token, with the URI that names it.
type PKCS11Key struct {
	Label string
	ID    []byte
	Type  string
	URI   string
}

// PKCS11Lister lists tokens and keys of a PKCS#11 module; the pkcs11 build
// sets it, and it is nil in the default build.
var PKCS11Lister interface {
	Tokens(modulePath string) ([]PKCS11Token, error)
	Keys(modulePath string, slotID uint, pin string) ([]PKCS11Key, error)
}

// PKCS11KeyURI writes the pkcs11: URI of a key on a token (no PIN).
func PKCS11KeyURI(modulePath, token string, label string, id []byte) string {
	var b strings.Builder
	b.WriteString(SchemePKCS11)
	b.WriteString("token=" + url.PathEscape(token))
	if label != "" {
		b.WriteString(";object=" + url.PathEscape(label))
	}
	if len(id) > 0 {
		var hex strings.Builder
		for _, c := range id {
			fmt.Fprintf(&hex, "%%%02x", c)
		}
		b.WriteString(";id=" + hex.String())
	}
	b.WriteString("?module-path=" + strings.ReplaceAll(url.PathEscape(modulePath), "%2F", "/"))
	return b.String()
}
