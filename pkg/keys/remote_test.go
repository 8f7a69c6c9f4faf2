package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// fakeKMS is an in-memory provider that records what it is sent.
type fakeKMS struct {
	key       *ecdsa.PrivateKey
	signCalls atomic.Int32
	pubCalls  atomic.Int32
	// throttle fails this many sign calls with a throttling error first.
	throttle atomic.Int32
	failWith error
	mu       sync.Mutex
	sawMsg   bool
}

func (f *fakeKMS) SignMessage(msg io.Reader, opts ...signature.SignOption) ([]byte, error) {
	f.signCalls.Add(1)
	if f.throttle.Add(-1) >= 0 {
		return nil, fmt.Errorf("operation error KMS: Sign, ThrottlingException: Rate exceeded")
	}
	if f.failWith != nil {
		return nil, f.failWith
	}
	var d []byte
	for _, o := range opts {
		o.ApplyDigest(&d)
	}
	if msg != nil {
		f.mu.Lock()
		f.sawMsg = true
		f.mu.Unlock()
	}
	if len(d) != sha256.Size {
		return nil, fmt.Errorf("digest of %d bytes", len(d))
	}
	return ecdsa.SignASN1(rand.Reader, f.key, d)
}

func (f *fakeKMS) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	f.pubCalls.Add(1)
	return f.key.Public(), nil
}

func withFake(t *testing.T, scheme string) *fakeKMS {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &fakeKMS{key: k}
	openersMu.Lock()
	prev := openers[scheme]
	openers[scheme] = func(context.Context, string) (RemoteBackend, error) { return f, nil }
	openersMu.Unlock()
	t.Cleanup(func() {
		openersMu.Lock()
		openers[scheme] = prev
		openersMu.Unlock()
	})
	return f
}

func TestRemoteSignerSendsDigestOnceAndVerifies(t *testing.T) {
	f := withFake(t, SchemeHashiVault)
	s, err := OpenRemote(context.Background(), "hashivault://release")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the payload")
	var wg sync.WaitGroup
	const n = 32
	sigs := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sigs[i], errs[i] = s.SignMessage(bytes.NewReader(msg))
			_ = s.Public()
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if err := s.VerifySignature(bytes.NewReader(sigs[i]), bytes.NewReader(msg)); err != nil {
			t.Fatalf("signature %d does not verify: %v", i, err)
		}
	}
	if got := f.signCalls.Load(); got != n {
		t.Errorf("%d sign calls for %d signatures", got, n)
	}
	if got := f.pubCalls.Load(); got != 1 {
		t.Errorf("public key fetched %d times (want once)", got)
	}
	if f.sawMsg {
		t.Error("the message was sent to the provider, not only its digest")
	}
	// crypto.Signer path and AsSigner leave it as is.
	d := sha256.Sum256(msg)
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatalf("Sign over a digest: %v", err)
	}
	if as, _ := AsSigner(s, ""); as != s {
		t.Error("AsSigner wrapped a remote signer")
	}
}

func TestRemoteSignerRetriesThrottling(t *testing.T) {
	f := withFake(t, SchemeGCP)
	s, err := OpenRemote(context.Background(), "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k")
	if err != nil {
		t.Fatal(err)
	}
	f.throttle.Store(2)
	if _, err := s.SignMessage(strings.NewReader("x")); err != nil {
		t.Fatalf("throttled twice, then: %v", err)
	}
	if got := f.signCalls.Load(); got != 3 {
		t.Errorf("%d sign calls (want 2 throttled + 1)", got)
	}
	f.throttle.Store(100)
	f.signCalls.Store(0)
	_, err = s.SignMessage(strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "ThrottlingException") || f.signCalls.Load() != remoteAttempts {
		t.Fatalf("always throttled: %v after %d calls (want %d)", err, f.signCalls.Load(), remoteAttempts)
	}
}

func TestRemoteErrorsNameProviderKeyAndCause(t *testing.T) {
	for _, tc := range []struct {
		err      error
		sentinel error
		why      string
	}{
		{errors.New("operation error KMS: Sign, https response error StatusCode: 400, AccessDeniedException: not authorized"), ErrKeyRefused, "permission denied"},
		{errors.New("operation error KMS: Sign, DisabledException: arn:aws:kms:... is disabled."), ErrKeyRefused, "key disabled"},
		{errors.New("NotFoundException: Alias arn:aws:kms:eu-west-2:1:alias/x is not found."), ErrKeyRefused, "key not found"},
		{errors.New("InvalidKeyUsageException: ENCRYPT_DECRYPT key cannot sign"), ErrKeyRefused, "wrong key usage"},
		{errors.New("rpc error: code = PermissionDenied desc = Permission 'cloudkms.cryptoKeyVersions.useToSign' denied"), ErrKeyRefused, "permission denied"},
		{errors.New("rpc error: code = FailedPrecondition desc = key version DISABLED"), ErrKeyRefused, "key disabled"},
		{errors.New(`Post "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`), ErrKeyUnreachable, "unreachable"},
	} {
		f := withFake(t, SchemeAWS)
		s, err := OpenRemote(context.Background(), "awskms:///alias/release")
		if err != nil {
			t.Fatal(err)
		}
		f.failWith = tc.err
		_, err = s.SignMessage(strings.NewReader("x"), options.WithContext(context.Background()))
		if !errors.Is(err, tc.sentinel) {
			t.Errorf("%v: not %v", err, tc.sentinel)
			continue
		}
		for _, want := range []string{"AWS KMS key awskms:///alias/release", "sign", tc.why} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
	}
}

func TestPKCS11WithoutProviderAndPINNeverShown(t *testing.T) {
	openersMu.Lock()
	prev := openers[SchemePKCS11]
	delete(openers, SchemePKCS11)
	openersMu.Unlock()
	defer func() {
		if prev != nil {
			RegisterProvider(SchemePKCS11, prev)
		}
	}()
	ref := "pkcs11:token=ci;object=sig?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=s3cret-1234"
	_, err := OpenRemote(context.Background(), ref)
	if !errors.Is(err, ErrNoProvider) || !strings.Contains(err.Error(), "pkcs11 build") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "s3cret-1234") {
		t.Fatalf("PIN in the error: %v", err)
	}
	if !strings.Contains(err.Error(), "pin-value=REDACTED") || !strings.Contains(err.Error(), "object=sig") {
		t.Fatalf("key not named: %v", err)
	}
	if e := (&URIError{Ref: ref, Err: errors.New("bad")}).Error(); strings.Contains(e, "s3cret") {
		t.Fatalf("PIN in %q", e)
	}
}

func TestIsRemoteRef(t *testing.T) {
	for ref, want := range map[string]bool{
		"awskms:///alias/x": true, "gcpkms://projects/p": true, "azurekms://v.vault.azure.net/k": true,
		"hashivault://k": true, "pkcs11:token=t": true, "imgsign.key": false, "./awskms:/x": false, "": false,
	} {
		if IsRemoteRef(ref) != want {
			t.Errorf("IsRemoteRef(%q) = %v", ref, !want)
		}
	}
}

func TestParsePKCS11URI(t *testing.T) {
	pinFile := t.TempDir() + "/pin"
	os.WriteFile(pinFile, []byte("from-file\n"), 0o600)
	u, err := ParsePKCS11URI("pkcs11:token=my%20token;object=sig;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "my token" || u.Object != "sig" || !bytes.Equal(u.ID, []byte{1, 2}) || u.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || u.Pin != "1234" || u.SlotID != nil {
		t.Fatalf("%+v", u)
	}
	u, err = ParsePKCS11URI("pkcs11:slot-id=7;id=%01?module-path=/m.so&pin-source=" + pinFile)
	if err != nil || *u.SlotID != 7 || u.Pin != "from-file" {
		t.Fatalf("%+v %v", u, err)
	}
	t.Setenv(EnvPKCS11Pin, "from-env")
	if u, err = ParsePKCS11URI("pkcs11:token=t;object=o?module-path=/m.so"); err != nil || u.Pin != "from-env" {
		t.Fatalf("%+v %v", u, err)
	}
	for ref, want := range map[string]string{
		"pkcs11:token=t;object=o":                                             "module-path is required",
		"pkcs11:object=o?module-path=/m.so":                                   "token= or slot-id=",
		"pkcs11:token=t?module-path=/m.so":                                    "object= or id=",
		"pkcs11:token=t;object=o;color=red?module-path=/m.so":                 `unknown attribute "color"`,
		"pkcs11:token=t;object=o;object=p?module-path=/m.so":                  "given twice",
		"pkcs11:token=t;slot-id=x;object=o?module-path=/m.so":                 "not a slot number",
		"pkcs11:token=t;object=%zz?module-path=/m.so":                         "percent-encoding",
		"pkcs11:token=t;object=o?module-path=/m.so&pin-value=1&pin-source=/f": "not both",
	} {
		_, err := ParsePKCS11URI(ref + "")
		if !errors.Is(err, ErrMalformedKey) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (want %q)", ref, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pin-value=1&") {
			t.Errorf("PIN in %v", err)
		}
	}
	if got := PKCS11KeyURI("/usr/lib/x.so", "ci token", "sig", []byte{1}); got != "pkcs11:token=ci%20token;object=sig;id=%01?module-path=/usr/lib/x.so" {
		t.Errorf("PKCS11KeyURI = %s", got)
	}
}
