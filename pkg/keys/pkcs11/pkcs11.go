//go:build pkcs11 && cgo

// Package pkcs11 gives pkg/keys keys on PKCS#11 tokens (pkcs11: URIs,
// RFC 7512) through github.com/ThalesGroup/crypto11, and lists what a
// module offers. It needs cgo, so it is only in builds with the tag
// pkcs11; import it for its side effect.
package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ThalesGroup/crypto11"
	"github.com/imgsign/imgsign/pkg/keys"
	mp "github.com/miekg/pkcs11"
	"github.com/sigstore/sigstore/pkg/signature"
)

func init() {
	keys.RegisterProvider(keys.SchemePKCS11, open)
	keys.PKCS11Lister = lister{}
}

// backend is one key on a token; crypto11 keeps a session pool, so it is
// safe for concurrent use.
type backend struct {
	ctx    *crypto11.Context
	signer crypto11.Signer
}

func open(_ context.Context, ref string) (keys.RemoteBackend, error) {
	u, err := keys.ParsePKCS11URI(ref)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(u.ModulePath); err != nil {
		return nil, fmt.Errorf("PKCS#11 module %s: %w", u.ModulePath, err)
	}
	cfg := &crypto11.Config{Path: u.ModulePath, TokenLabel: u.Token, Pin: u.Pin}
	if u.Token == "" {
		cfg.SlotNumber = u.SlotID
	}
	if u.Pin == "" {
		return nil, fmt.Errorf("%w (no PIN: give pin-value= or pin-source= in the URI, or set %s)", keys.ErrKeyRefused, keys.EnvPKCS11Pin)
	}
	c, err := crypto11.Configure(cfg)
	if err != nil {
		if strings.Contains(err.Error(), "could not find PKCS#11 token") {
			return nil, fmt.Errorf("%w (no token %q in module %s)", keys.ErrKeyRefused, u.Token, u.ModulePath)
		}
		return nil, fmt.Errorf("open the token: %w", err)
	}
	var label []byte
	if u.Object != "" {
		label = []byte(u.Object)
	}
	s, err := c.FindKeyPair(u.ID, label)
	if err != nil && !strings.Contains(err.Error(), "not found") {
		c.Close()
		return nil, fmt.Errorf("find the key: %w", err)
	}
	if s == nil {
		c.Close()
		return nil, fmt.Errorf("%w (no such object: no key pair with object=%q id=%x on the token)", keys.ErrKeyRefused, u.Object, u.ID)
	}
	return &backend{ctx: c, signer: s}, nil
}

func (b *backend) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return b.signer.Public(), nil
}

// SignMessage signs the digest given with options.WithDigest (pkg/keys
// always gives one for the keys tokens hold).
func (b *backend) SignMessage(msg io.Reader, opts ...signature.SignOption) ([]byte, error) {
	var (
		digest []byte
		so     crypto.SignerOpts = crypto.SHA256
	)
	for _, o := range opts {
		o.ApplyDigest(&digest)
		o.ApplyCryptoSignerOpts(&so)
	}
	if digest == nil {
		return nil, fmt.Errorf("%w: PKCS#11 keys sign digests only", keys.ErrUnsupportedKey)
	}
	return b.signer.Sign(rand.Reader, digest, so)
}

type lister struct{}

func withModule(path string, f func(*mp.Ctx) error) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("PKCS#11 module %s: %w", path, err)
	}
	m := mp.New(path)
	if m == nil {
		return fmt.Errorf("PKCS#11 module %s: cannot be loaded", path)
	}
	defer m.Destroy()
	if err := m.Initialize(); err != nil {
		return fmt.Errorf("PKCS#11 module %s: initialise: %w", path, err)
	}
	defer m.Finalize()
	return f(m)
}

func (lister) Tokens(path string) ([]keys.PKCS11Token, error) {
	var out []keys.PKCS11Token
	err := withModule(path, func(m *mp.Ctx) error {
		slots, err := m.GetSlotList(true)
		if err != nil {
			return err
		}
		for _, s := range slots {
			ti, err := m.GetTokenInfo(s)
			if err != nil {
				return err
			}
			out = append(out, keys.PKCS11Token{SlotID: s, Label: ti.Label, Manufacturer: ti.ManufacturerID, Model: ti.Model, Serial: ti.SerialNumber})
		}
		return nil
	})
	return out, err
}

func (lister) Keys(path string, slot uint, pin string) ([]keys.PKCS11Key, error) {
	var out []keys.PKCS11Key
	err := withModule(path, func(m *mp.Ctx) error {
		ti, err := m.GetTokenInfo(slot)
		if err != nil {
			return fmt.Errorf("slot %d: %w", slot, err)
		}
		sh, err := m.OpenSession(slot, mp.CKF_SERIAL_SESSION)
		if err != nil {
			return fmt.Errorf("slot %d: open a session: %w", slot, err)
		}
		defer m.CloseSession(sh)
		class := uint(mp.CKO_PUBLIC_KEY)
		if pin != "" {
			if err := m.Login(sh, mp.CKU_USER, pin); err != nil {
				return fmt.Errorf("%w: log in: %w", keys.ErrKeyRefused, err)
			}
			defer m.Logout(sh)
			class = mp.CKO_PRIVATE_KEY
		}
		if err := m.FindObjectsInit(sh, []*mp.Attribute{mp.NewAttribute(mp.CKA_CLASS, class)}); err != nil {
			return err
		}
		objs, _, err := m.FindObjects(sh, 1000)
		m.FindObjectsFinal(sh)
		if err != nil {
			return err
		}
		for _, o := range objs {
			attrs, err := m.GetAttributeValue(sh, o, []*mp.Attribute{mp.NewAttribute(mp.CKA_LABEL, nil), mp.NewAttribute(mp.CKA_ID, nil), mp.NewAttribute(mp.CKA_KEY_TYPE, nil)})
			if err != nil {
				continue
			}
			k := keys.PKCS11Key{Label: string(attrs[0].Value), ID: attrs[1].Value, Type: keyType(attrs[2].Value)}
			k.URI = keys.PKCS11KeyURI(path, ti.Label, k.Label, k.ID)
			out = append(out, k)
		}
		return nil
	})
	return out, err
}

func keyType(v []byte) string {
	var n uint
	for i := len(v) - 1; i >= 0; i-- {
		n = n<<8 | uint(v[i])
	}
	switch n {
	case mp.CKK_EC:
		return "EC"
	case mp.CKK_RSA:
		return "RSA"
	}
	return fmt.Sprintf("0x%x", n)
}
