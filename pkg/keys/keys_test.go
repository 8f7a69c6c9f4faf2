package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// fixedPub is a P-256 public key whose key ID was computed with openssl:
// openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64
const fixedPub = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExwDTiqbQE/uYZVttMK7ooOIiNDGS
SOriL1O+rpC5ORFY+xbPooXGSysSEOX0PYbDVYu9LRBF5blu/tw0P/tppw==
-----END PUBLIC KEY-----
`
const fixedPubID = "RCOi0hcJGbijxEdQD4ASOrVVjrsdUTdWiiemN4HUEgA="

func pw(s string) PasswordFunc { return func() ([]byte, error) { return []byte(s), nil } }

func mustGenerate(t testing.TB, alg Algorithm) crypto.Signer {
	t.Helper()
	k, err := Generate(alg)
	if err != nil {
		t.Fatalf("Generate(%s): %v", alg, err)
	}
	return k
}

func mustEncrypt(t testing.TB, k crypto.Signer, password string) []byte {
	t.Helper()
	data, err := EncryptPrivateKey(k, []byte(password))
	if err != nil {
		t.Fatalf("EncryptPrivateKey: %v", err)
	}
	return data
}

func samePublic(t *testing.T, a, b crypto.PublicKey) {
	t.Helper()
	if err := cryptoutils.EqualKeys(a, b); err != nil {
		t.Fatalf("public keys differ: %v", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, a := range Algorithms() {
		got, err := ParseAlgorithm(strings.ToUpper(string(a)))
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", a, got, err)
		}
	}
	if _, err := ParseAlgorithm("dsa-1024"); !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "ecdsa-p256") {
		t.Errorf("ParseAlgorithm(dsa-1024) error = %v, want ErrUnsupportedKey listing the choices", err)
	}
	if Algorithms()[0] != DefaultAlgorithm || DefaultAlgorithm != ECDSAP256 {
		t.Errorf("default algorithm must be ECDSA P-256 and listed first")
	}
}

func TestGenerateEncryptParseRoundTrip(t *testing.T) {
	want := map[Algorithm]Info{
		ECDSAP256: {Algorithm: "ecdsa", Curve: "P-256", Bits: 256},
		ECDSAP384: {Algorithm: "ecdsa", Curve: "P-384", Bits: 384},
		Ed25519:   {Algorithm: "ed25519", Bits: 256},
		RSA3072:   {Algorithm: "rsa", Bits: 3072},
		RSA4096:   {Algorithm: "rsa", Bits: 4096},
	}
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			k := mustGenerate(t, alg)
			data := mustEncrypt(t, k, "s3cret")
			got, err := ParsePrivateKey(data, pw("s3cret"))
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			samePublic(t, k.Public(), got.Public())

			// sigstore's own parser (what cosign uses) reads our file.
			theirs, err := cryptoutils.UnmarshalPEMToPrivateKey(data, cryptoutils.StaticPasswordFunc([]byte("s3cret")))
			if err != nil {
				t.Fatalf("sigstore cryptoutils cannot read an imgsign key: %v", err)
			}
			samePublic(t, k.Public(), theirs.(crypto.Signer).Public())

			info, err := Inspect(data, pw("s3cret"))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			w := want[alg]
			if info.Algorithm != w.Algorithm || info.Curve != w.Curve || info.Bits != w.Bits || !info.Private || info.Format != FormatSigstoreEncrypted {
				t.Errorf("Inspect = %+v, want %+v private sigstore-encrypted", info, w)
			}
			if _, err := ParsePrivateKey(data, pw("wrong")); !errors.Is(err, ErrIncorrectPassword) {
				t.Errorf("wrong password: err = %v, want ErrIncorrectPassword", err)
			}
		})
	}
}

func TestEncryptedFormatIsCosigns(t *testing.T) {
	data := mustEncrypt(t, mustGenerate(t, ECDSAP256), "")
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("PEM block = %v, want exactly one ENCRYPTED SIGSTORE PRIVATE KEY", block)
	}
	var body struct {
		KDF struct {
			Name   string
			Params map[string]int
			Salt   []byte
		}
		Cipher struct {
			Name  string
			Nonce []byte
		}
		Ciphertext []byte
	}
	if err := json.Unmarshal(block.Bytes, &body); err != nil {
		t.Fatal(err)
	}
	if body.KDF.Name != "scrypt" || body.KDF.Params["N"] != 65536 || body.KDF.Params["r"] != 8 || body.KDF.Params["p"] != 1 || len(body.KDF.Salt) != 32 {
		t.Errorf("kdf = %+v, want scrypt N=65536 r=8 p=1 with a 32-byte salt", body.KDF)
	}
	if body.Cipher.Name != "nacl/secretbox" || len(body.Cipher.Nonce) != 24 || len(body.Ciphertext) == 0 {
		t.Errorf("cipher = %+v, want nacl/secretbox with a 24-byte nonce", body.Cipher)
	}
	// An empty password is allowed (as in cosign) and round-trips.
	if _, err := ParsePrivateKey(data, pw("")); err != nil {
		t.Errorf("empty password key does not parse: %v", err)
	}
}

func TestParsesKeysWrittenBySigstoreLibrary(t *testing.T) {
	// cosign generate-key-pair writes its keys with this sigstore function.
	privPEM, pubPEM, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("pw")))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM, pw("pw"))
	if err != nil {
		t.Fatalf("ParsePrivateKey(sigstore key): %v", err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatalf("ParsePublicKey(sigstore key): %v", err)
	}
	samePublic(t, priv.Public(), pub)

	// The older cosign PEM type holds the same body.
	block, _ := pem.Decode(privPEM)
	legacy := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED COSIGN PRIVATE KEY", Bytes: block.Bytes})
	info, err := Inspect(legacy, pw("pw"))
	if err != nil || info.Format != FormatCosignEncrypted {
		t.Fatalf("legacy cosign key: info %+v, err %v", info, err)
	}
}

func TestUnencryptedFormats(t *testing.T) {
	ec := mustGenerate(t, ECDSAP256).(*ecdsa.PrivateKey)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ed := mustGenerate(t, Ed25519)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		data   []byte
		pub    crypto.PublicKey
		format Format
	}{
		{"pkcs8-ecdsa", pkcs8(ec), ec.Public(), FormatPKCS8},
		{"pkcs8-rsa", pkcs8(rk), rk.Public(), FormatPKCS8},
		{"pkcs8-ed25519", pkcs8(ed), ed.Public(), FormatPKCS8},
		{"pkcs1-rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), rk.Public(), FormatPKCS1},
		{"sec1-ec", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ec.Public(), FormatSEC1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			called := false
			got, err := ParsePrivateKey(c.data, func() ([]byte, error) { called = true; return nil, nil })
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if called {
				t.Error("password asked for an unencrypted key")
			}
			samePublic(t, c.pub, got.Public())
			info, err := Inspect(c.data, nil)
			if err != nil || info.Format != c.format || !info.Private {
				t.Errorf("Inspect = %+v, %v; want format %s", info, err, c.format)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	good := mustEncrypt(t, mustGenerate(t, ECDSAP256), "pw")
	block, _ := pem.Decode(good)
	reencode := func(mutate func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(block.Bytes, &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		b, _ := json.Marshal(m)
		return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: b})
	}
	flipped := bytes.Clone(block.Bytes)
	var body map[string]any
	_ = json.Unmarshal(flipped, &body)
	ct, _ := base64.StdEncoding.DecodeString(body["ciphertext"].(string))
	ct[len(ct)/2] ^= 0x01
	corrupt := reencode(func(m map[string]any) { m["ciphertext"] = base64.StdEncoding.EncodeToString(ct) })

	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	x25519DER, _ := x509.MarshalPKCS8PrivateKey(x25519)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalECPrivateKey(p224)

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformedKey},
		{"not pem", []byte("hello world"), ErrMalformedKey},
		{"truncated", good[:len(good)/2], ErrMalformedKey},
		{"two blocks", append(bytes.Clone(good), good...), ErrMalformedKey},
		{"oversized", bytes.Repeat([]byte("A"), MaxKeyFileSize+1), ErrMalformedKey},
		{"wrong pem type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), ErrUnsupportedKey},
		{"public key", []byte(fixedPub), ErrPublicKeyGiven},
		{"corrupt ciphertext", corrupt, ErrIncorrectPassword},
		{"body not json", pem.EncodeToMemory(&pem.Block{Type: PEMTypeEncrypted, Bytes: []byte("{nope")}), ErrMalformedKey},
		{"absurd scrypt N", reencode(func(m map[string]any) {
			m["kdf"].(map[string]any)["params"] = map[string]int{"N": 1 << 40, "r": 8, "p": 1}
		}), ErrUnsupportedKey},
		{"absurd scrypt r,p", reencode(func(m map[string]any) {
			m["kdf"].(map[string]any)["params"] = map[string]int{"N": 1 << 16, "r": 1 << 20, "p": 1 << 20}
		}), ErrUnsupportedKey},
		{"other kdf", reencode(func(m map[string]any) { m["kdf"].(map[string]any)["name"] = "pbkdf2" }), ErrUnsupportedKey},
		{"other cipher", reencode(func(m map[string]any) { m["cipher"].(map[string]any)["name"] = "aes" }), ErrUnsupportedKey},
		{"short nonce", reencode(func(m map[string]any) { m["cipher"].(map[string]any)["nonce"] = "AAAA" }), ErrMalformedKey},
		{"missing ciphertext", reencode(func(m map[string]any) { delete(m, "ciphertext") }), ErrMalformedKey},
		{"garbage pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), ErrMalformedKey},
		{"rsa 1024", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa1024)}), ErrUnsupportedKey},
		{"x25519 cannot sign", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER}), ErrUnsupportedKey},
		{"p224", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p224DER}), ErrUnsupportedKey},
		{"pkcs8 encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), ErrUnsupportedKey},
		{"legacy pem headers", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), ErrUnsupportedKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePrivateKey(c.data, pw("pw"))
			if !errors.Is(err, c.want) {
				t.Fatalf("ParsePrivateKey err = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "pw\"") {
				t.Errorf("error mentions the password: %v", err)
			}
		})
	}

	if _, err := ParsePrivateKey(good, nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("nil password func: err = %v, want ErrPasswordRequired", err)
	}
	boom := errors.New("no terminal")
	if _, err := ParsePrivateKey(good, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("password func error not returned: %v", err)
	}
}

func TestPublicKeys(t *testing.T) {
	pub, err := ParsePublicKey([]byte(fixedPub))
	if err != nil {
		t.Fatal(err)
	}
	id, err := KeyID(pub)
	if err != nil || id != fixedPubID {
		t.Errorf("KeyID = %q, %v; want %q (computed by openssl)", id, err, fixedPubID)
	}
	info, err := Inspect([]byte(fixedPub), func() ([]byte, error) { t.Error("password asked for a public key"); return nil, nil })
	if err != nil || info.Private || info.Format != FormatPKIX || info.KeyID != fixedPubID || info.Curve != "P-256" {
		t.Errorf("Inspect(public) = %+v, %v", info, err)
	}
	for _, s := range []string{"type       public key", "algorithm  ecdsa P-256", "key ID     " + fixedPubID} {
		if !strings.Contains(info.String(), s) {
			t.Errorf("Info.String() = %q, missing %q", info.String(), s)
		}
	}

	out, err := MarshalPublicKey(pub)
	if err != nil || string(out) != fixedPub {
		t.Errorf("MarshalPublicKey = %q, %v; want the input back", out, err)
	}
	k := mustGenerate(t, Ed25519)
	if _, err := ParsePublicKey(mustEncrypt(t, k, "x")); !errors.Is(err, ErrPrivateKeyGiven) {
		t.Errorf("ParsePublicKey(private) err = %v, want ErrPrivateKeyGiven", err)
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0x01, 0x00}})
	if _, err := ParsePublicKey(bad); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("ParsePublicKey(garbage) err = %v, want ErrMalformedKey", err)
	}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := MarshalPublicKey(rsa1024.Public()); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("MarshalPublicKey(rsa1024) err = %v, want ErrUnsupportedKey", err)
	}
	der, _ := x509.MarshalPKIXPublicKey(rsa1024.Public())
	if _, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("ParsePublicKey(rsa1024) err = %v, want ErrUnsupportedKey", err)
	}
}

func TestKeyIDMatchesDefinition(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP384, Ed25519} {
		k := mustGenerate(t, alg)
		der, _ := x509.MarshalPKIXPublicKey(k.Public())
		sum := sha256.Sum256(der)
		id, err := KeyID(k.Public())
		if err != nil || id != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("%s: KeyID = %q, %v", alg, id, err)
		}
		info, err := Describe(k.Public())
		if err != nil || info.KeyID != id {
			t.Errorf("Describe key ID = %q, want %q (%v)", info.KeyID, id, err)
		}
	}
	if _, err := Describe(ed25519.PublicKey([]byte{1, 2, 3})); err == nil {
		t.Error("Describe accepted a malformed Ed25519 key")
	}
}

func TestFormatEncrypted(t *testing.T) {
	if !FormatSigstoreEncrypted.Encrypted() || !FormatCosignEncrypted.Encrypted() || FormatPKCS8.Encrypted() || FormatPKIX.Encrypted() {
		t.Error("Format.Encrypted is wrong")
	}
}

func TestFormatOf(t *testing.T) {
	enc := mustEncrypt(t, mustGenerate(t, ECDSAP256), "x")
	cases := map[string]Format{string(enc): FormatSigstoreEncrypted, fixedPub: FormatPKIX}
	for data, want := range cases {
		if got, err := FormatOf([]byte(data)); err != nil || got != want {
			t.Errorf("FormatOf = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := FormatOf(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("FormatOf(certificate) err = %v", err)
	}
	if _, err := FormatOf([]byte("junk")); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("FormatOf(junk) err = %v", err)
	}
}

func TestSchemes(t *testing.T) {
	want := map[Algorithm][]crypto.Hash{
		ECDSAP256: {crypto.SHA256},
		ECDSAP384: {crypto.SHA256, crypto.SHA384},
		Ed25519:   {crypto.SHA512, 0},
		RSA3072:   {crypto.SHA256},
	}
	for alg, hashes := range want {
		k := mustGenerate(t, alg)
		schemes, err := Schemes(k.Public())
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		var got []crypto.Hash
		for _, s := range schemes {
			got = append(got, s.Hash)
		}
		if fmt.Sprint(got) != fmt.Sprint(hashes) {
			t.Errorf("%s: scheme hashes %v, want %v", alg, got, hashes)
		}
		// A signature as cosign verifies it by default checks with one scheme.
		sv, _ := signature.LoadSignerVerifier(k, crypto.SHA256)
		sig, _ := sv.SignMessage(bytes.NewReader([]byte("m")))
		ok := false
		for _, s := range schemes {
			ok = ok || s.Verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader([]byte("m"))) == nil
		}
		if !ok {
			t.Errorf("%s: no scheme verifies a default signature", alg)
		}
	}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := Schemes(rsa1024.Public()); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("rsa1024: %v", err)
	}
}
