package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/payload"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

type fixture struct {
	reg    *testreg.Registry
	client *oci.Client
	key    crypto.Signer
	ctx    context.Context
}

func newFixture(t *testing.T, wrap func(http.Handler) http.Handler) *fixture {
	t.Helper()
	reg := testreg.Start(t, wrap)
	c, err := oci.NewClient(oci.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{reg: reg, client: c, key: k, ctx: context.Background()}
}

func (f *fixture) sign(t *testing.T, ref string, key crypto.Signer, o sign.Options) []sign.Signature {
	t.Helper()
	s, err := sign.NewSigner(f.client, key)
	if err != nil {
		t.Fatal(err)
	}
	o.Upload = true
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := s.Sign(f.ctx, r, o)
	if err != nil {
		t.Fatalf("sign %s: %v", ref, err)
	}
	return sigs
}

func (f *fixture) verify(t *testing.T, ref string, o verify.Options, pubs ...crypto.PublicKey) (*verify.Result, error) {
	t.Helper()
	return f.verifyWith(t, ref, o, nil, pubs...)
}

func mustFail(t *testing.T, err error, want error, reasonHas string, res *verify.Result) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if res.Verified {
		t.Fatal("result says verified")
	}
	if reasonHas == "" {
		return
	}
	all := err.Error()
	for _, r := range res.Rejected {
		all += " " + r.Reason
	}
	if !strings.Contains(all, reasonHas) {
		t.Fatalf("reasons %q do not mention %q", all, reasonHas)
	}
}

func TestSignThenVerify(t *testing.T) {
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("demo/app:v1"))
	sigs := f.sign(t, f.reg.Ref("demo/app:v1"), f.key, sign.Options{Annotations: map[string]string{"team": "web"}})
	if len(sigs) != 1 || sigs[0].Image.DigestStr() != d.DigestStr() || !sigs[0].Added {
		t.Fatalf("signed %+v, want the digest %s", sigs, d.DigestStr())
	}
	// Signing again with the same key and payload adds nothing.
	if again := f.sign(t, f.reg.Ref("demo/app:v1"), f.key, sign.Options{Annotations: map[string]string{"team": "web"}}); again[0].Added {
		t.Error("identical signature added twice")
	}

	for _, ref := range []string{f.reg.Ref("demo/app:v1"), d.String()} {
		res, err := f.verify(t, ref, verify.Options{Annotations: map[string]string{"team": "web"}, CheckIdentity: true}, f.key.Public())
		if err != nil || !res.Verified || res.Digest != d.DigestStr() || len(res.Signatures) != 1 {
			t.Fatalf("verify %s: %+v, %v", ref, res, err)
		}
		id, _ := keys.KeyID(f.key.Public())
		if res.Signatures[0].KeyID != id {
			t.Errorf("key ID = %s, want %s", res.Signatures[0].KeyID, id)
		}
		var crit struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		}
		if json.Unmarshal(res.Signatures[0].Critical, &crit); crit.Image.Digest != d.DigestStr() {
			t.Errorf("critical in result = %s", res.Signatures[0].Critical)
		}
	}
	res, err := f.verify(t, d.String(), verify.Options{Annotations: map[string]string{"team": "db"}}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "annotation(s): team", res)
}

func TestVerifyFailures(t *testing.T) {
	f := newFixture(t, nil)
	d := f.reg.PushImage(t, f.reg.Ref("a/img:v1"))
	other, _ := keys.Generate(keys.ECDSAP256)

	// No signatures is never a pass.
	res, err := f.verify(t, d.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)
	// Missing tag.
	res, err = f.verify(t, f.reg.Ref("a/img:nope"), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrImageNotFound, "", res)

	f.sign(t, d.String(), f.key, sign.Options{})
	// Wrong key.
	res, err = f.verify(t, d.String(), verify.Options{}, other.Public())
	mustFail(t, err, verify.ErrNotVerified, "does not verify with any trusted key", res)
	// Any of several keys may match.
	if _, err := f.verify(t, d.String(), verify.Options{}, other.Public(), f.key.Public()); err != nil {
		t.Fatalf("any-of keys: %v", err)
	}
	// Threshold of two distinct keys: one signer is not enough, two are.
	res, err = f.verify(t, d.String(), verify.Options{Threshold: 2}, other.Public(), f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "1 distinct trusted key(s) signed, 2 required", res)
	// The same key given twice is one key.
	res, err = f.verify(t, d.String(), verify.Options{Threshold: 2}, f.key.Public(), f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "2 required", res)
	f.sign(t, d.String(), other, sign.Options{})
	if res, err := f.verify(t, d.String(), verify.Options{Threshold: 2}, other.Public(), f.key.Public()); err != nil || len(res.Signatures) != 2 {
		t.Fatalf("threshold 2 with two signers: %+v %v", res, err)
	}
}

// attach writes a signature manifest by hand, for hostile cases.
func attach(t *testing.T, f *fixture, img name.Digest, payloadBytes []byte, sigB64 string) {
	t.Helper()
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)
	att := oci.Attachment{Payload: payloadBytes, MediaType: oci.SimpleSigningMediaType, Annotations: map[string]string{oci.SignatureAnnotation: sigB64}}
	if _, err := f.client.AddAttachments(f.ctx, tag, []oci.Attachment{att}, nil); err != nil {
		t.Fatal(err)
	}
}

func signBytes(t *testing.T, k crypto.Signer, p []byte) string {
	sv, err := signature.LoadSignerVerifier(k, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sv.SignMessage(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(s)
}

func TestHostileSignatures(t *testing.T) {
	f := newFixture(t, nil)
	a := f.reg.PushImage(t, f.reg.Ref("h/a:v1"))
	b := f.reg.PushImage(t, f.reg.Ref("h/b:v1"))

	// Mix and match: a valid signature for image A attached to image B.
	pa, _ := payload.Build(a, nil)
	attach(t, f, b, pa, signBytes(t, f.key, pa))
	res, err := f.verify(t, b.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "not this image", res)

	// Tampered payload: the signature is over other bytes.
	c := f.reg.PushImage(t, f.reg.Ref("h/c:v1"))
	pc, _ := payload.Build(c, nil)
	sig := signBytes(t, f.key, pc)
	tampered := bytes.Replace(pc, []byte(`"optional":null`), []byte(`"optional":{"x":"y"}`), 1)
	attach(t, f, c, tampered, sig)
	res, err = f.verify(t, c.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "does not verify", res)

	// Malformed payload, validly signed: rejected, never verified.
	dimg := f.reg.PushImage(t, f.reg.Ref("h/d:v1"))
	bad := []byte(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"` + dimg.DigestStr() + `"},"type":"cosign container image signature","extra":1},"optional":null}`)
	attach(t, f, dimg, bad, signBytes(t, f.key, bad))
	res, err = f.verify(t, dimg.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "invalid signature payload", res)

	// Wrong identity is caught only with CheckIdentity.
	e := f.reg.PushImage(t, f.reg.Ref("h/e:v1"))
	other := f.reg.Ref("h/other") + "@" + e.DigestStr()
	od, _ := name.NewDigest(other)
	pe, _ := payload.Build(od, nil)
	attach(t, f, e, pe, signBytes(t, f.key, pe))
	if _, err := f.verify(t, e.String(), verify.Options{}, f.key.Public()); err != nil {
		t.Fatalf("without identity check: %v", err)
	}
	res, err = f.verify(t, e.String(), verify.Options{CheckIdentity: true}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "signed identity", res)

	// Garbage in the signature annotation.
	g := f.reg.PushImage(t, f.reg.Ref("h/g:v1"))
	pg, _ := payload.Build(g, nil)
	attach(t, f, g, pg, "!!!not-base64")
	res, err = f.verify(t, g.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "not base64", res)
}

func TestHugeSignatureManifestAndPayload(t *testing.T) {
	f := newFixture(t, nil)
	img := f.reg.PushImage(t, f.reg.Ref("big/app:v1"))
	tag, _ := oci.AttachedTag(img, nil, oci.SignatureTagSuffix)

	// A manifest declaring more layers than the limit is refused whole,
	// before any payload is fetched.
	layers := make([]v1.Descriptor, oci.DefaultMaxSignatures+1)
	for i := range layers {
		layers[i] = v1.Descriptor{MediaType: oci.SimpleSigningMediaType, Size: 10, Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)}}
	}
	putManifest(t, f, tag, layers)
	res, err := f.verify(t, img.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "too many entries", res)

	// A payload declared (or served) larger than the limit is not read.
	big := bytes.Repeat([]byte("x"), int(oci.DefaultMaxPayloadBytes)+10)
	img2 := f.reg.PushImage(t, f.reg.Ref("big/app:v2"))
	attach(t, f, img2, big, signBytes(t, f.key, big))
	res, err = f.verify(t, img2.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "exceeds the size limit", res)
}

// putManifest writes a signature manifest with arbitrary layers directly.
func putManifest(t *testing.T, f *fixture, tag name.Tag, layers []v1.Descriptor) {
	t.Helper()
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
		"layers":        layers,
	}
	raw, _ := json.Marshal(m)
	putRaw(t, f, tag.RepositoryStr(), tag.TagStr(), "application/vnd.oci.image.manifest.v1+json", raw)
}

// putRaw PUTs a manifest as-is, bypassing imgsign.
func putRaw(t *testing.T, f *fixture, repo, ref, mediaType string, raw []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+f.reg.Host+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(raw))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT manifest: %s", resp.Status)
	}
}

func TestRegistryLiesAboutBlobs(t *testing.T) {
	var lie atomic.Bool
	f := newFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if lie.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				// Serve other bytes than the digest asked for.
				w.Write([]byte(`{"critical":{}}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	img := f.reg.PushImage(t, f.reg.Ref("lie/app:v1"))
	f.sign(t, img.String(), f.key, sign.Options{})
	lie.Store(true)
	res, err := f.verify(t, img.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNotVerified, "payload", res)
}

func TestRegistryLiesAboutManifestByDigest(t *testing.T) {
	var lie atomic.Bool
	f := newFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if lie.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/sha256:") {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	_, children := f.reg.PushIndex(t, f.reg.Ref("lie/idx:v1"))
	lie.Store(true)
	// Resolving by digest (as --platform and sign do) refuses bytes that do
	// not hash to the digest requested.
	if _, err := f.client.Resolve(f.ctx, children[0]); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Resolve accepted a manifest with the wrong digest: %v", err)
	}
}

func TestPlatformAndRecursive(t *testing.T) {
	f := newFixture(t, nil)
	idx, children := f.reg.PushIndex(t, f.reg.Ref("multi/app:v1"))
	f.sign(t, f.reg.Ref("multi/app:v1"), f.key, sign.Options{})
	// The index's own signature verifies the index.
	if res, err := f.verify(t, f.reg.Ref("multi/app:v1"), verify.Options{}, f.key.Public()); err != nil || res.Digest != idx.DigestStr() {
		t.Fatalf("index verify: %+v %v", res, err)
	}
	// Without --recursive the children are unsigned.
	res, err := f.verify(t, f.reg.Ref("multi/app:v1"), verify.Options{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)
	if res.Digest != children[1].DigestStr() {
		t.Errorf("platform digest = %s, want %s", res.Digest, children[1].DigestStr())
	}
	sigs := f.sign(t, f.reg.Ref("multi/app:v1"), f.key, sign.Options{Recursive: true})
	if len(sigs) != 3 {
		t.Fatalf("recursive signed %d manifests, want 3", len(sigs))
	}
	if _, err := f.verify(t, f.reg.Ref("multi/app:v1"), verify.Options{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}, f.key.Public()); err != nil {
		t.Fatalf("child verify: %v", err)
	}
	res, err = f.verify(t, f.reg.Ref("multi/app:v1"), verify.Options{Platform: &v1.Platform{OS: "windows", Architecture: "amd64"}}, f.key.Public())
	mustFail(t, err, verify.ErrImageNotFound, "", res)
}

func TestSignatureRepository(t *testing.T) {
	f := newFixture(t, nil)
	img := f.reg.PushImage(t, f.reg.Ref("src/app:v1"))
	sigRepo, _ := name.NewRepository(f.reg.Ref("sigs/store"))
	f.sign(t, img.String(), f.key, sign.Options{SignatureRepo: &sigRepo})
	res, err := f.verify(t, img.String(), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)
	if _, err := f.verify(t, img.String(), verify.Options{SignatureRepo: &sigRepo}, f.key.Public()); err != nil {
		t.Fatalf("verify from signature repository: %v", err)
	}
}

// TestTagMovedAfterResolve: the tag is read once; if it moves to another
// image during verification, the image verified is still the one resolved,
// and the verdict says which digest that was.
func TestTagMovedAfterResolve(t *testing.T) {
	var tagReads atomic.Int32
	var f *fixture
	var moveTo name.Digest
	f = newFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				if tagReads.Add(1) > 1 {
					t.Errorf("the tag was read %d times", tagReads.Load())
				}
			}
			next.ServeHTTP(w, r)
			// Right after the first resolve, an attacker moves the tag.
			if moveTo.DigestStr() != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				copyTag(t, f, moveTo, "moved/app:v1")
			}
		})
	})
	signed := f.reg.PushImage(t, f.reg.Ref("moved/app:v1"))
	f.sign(t, signed.String(), f.key, sign.Options{})
	moveTo = f.reg.PushImage(t, f.reg.Ref("moved/other:v1"))
	tagReads.Store(0)
	res, err := f.verify(t, f.reg.Ref("moved/app:v1"), verify.Options{}, f.key.Public())
	if err != nil || res.Digest != signed.DigestStr() {
		t.Fatalf("verify: %+v %v (want the digest resolved first, %s)", res, err, signed.DigestStr())
	}
	// The tag now names the unsigned image: verifying it again fails.
	moveTo = name.Digest{}
	tagReads.Store(0)
	res, err = f.verify(t, f.reg.Ref("moved/app:v1"), verify.Options{}, f.key.Public())
	mustFail(t, err, verify.ErrNoSignatures, "", res)
}

// copyTag points repoTag at the manifest of d, bypassing the fixture's hooks.
func copyTag(t *testing.T, f *fixture, d name.Digest, repoTag string) {
	t.Helper()
	resp, err := http.Get("http://" + f.reg.Host + "/v2/" + d.RepositoryStr() + "/manifests/" + d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Blobs are shared by digest in the in-process registry's storage.
	repo, tag, _ := strings.Cut(repoTag, ":")
	req, _ := http.NewRequest(http.MethodPut, "http://"+f.reg.Host+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", resp.Header.Get("Content-Type"))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode/100 != 2 {
		t.Fatalf("move tag: %s", r2.Status)
	}
}
