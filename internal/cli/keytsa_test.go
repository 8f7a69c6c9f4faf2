package cli

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// TestKeyTimestampCommands: sign --key --timestamp-server-url against the
// in-process TSA, verify with --trusted-root naming it (signedAt, and
// --require-timestamp), the TSA failing (exit 16), and the command-line
// mistakes (exit 2).
func TestKeyTimestampCommands(t *testing.T) {
	fake := sigstoretest.Start(t)
	reg := testreg.Start(t, nil, registry.WithReferrersSupport(true))
	img := reg.PushImage(t, reg.Ref("k/app:v1")).String()
	other := reg.PushImage(t, reg.Ref("k/other:v1")).String()
	plain := reg.PushImage(t, reg.Ref("k/plain:v1")).String()
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	env("pw").do(t, "generate-key-pair", "--output-key-prefix", k).expect(t, ExitOK, "")
	// The trusted root of the TSA alone, made from its chain.
	ta := fake.Trusted.TimestampingAuthorities()[0].(*root.SigstoreTimestampingAuthority)
	var chain, rootOnly []byte
	for _, c := range append(append([]*x509.Certificate{ta.Leaf}, ta.Intermediates...), ta.Root) {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	rootOnly = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ta.Root.Raw})
	chainFile, rootFile := filepath.Join(dir, "tsa-chain.pem"), filepath.Join(dir, "tsa-root.pem")
	os.WriteFile(chainFile, chain, 0o644)
	os.WriteFile(rootFile, rootOnly, 0o644)
	tr := filepath.Join(dir, "trusted_root.json")
	env("").do(t, "trusted-root", "create", "--timestamp-certificate-chain", chainFile, "--timestamp-url", fake.TSAURL, "--valid-from", "2020-01-01T00:00:00Z", "--out", tr).expect(t, ExitOK, "")
	env("").do(t, "trusted-root", "create", "--timestamp-certificate-chain", rootFile).expect(t, ExitUsage, "is not for time stamping")
	env("").do(t, "trusted-root", "create", "--timestamp-url", fake.TSAURL).expect(t, ExitUsage, "--rekor-key or --timestamp-certificate-chain is required")
	env("").do(t, "trusted-root", "create", "--timestamp-certificate-chain", chainFile, "--timestamp-url", "a", "--timestamp-url", "b").expect(t, ExitUsage, "2 --timestamp-url for 1")

	env("pw").do(t, "sign", "--key", k+".key", "--timestamp-server-url", fake.TSAURL, img).expect(t, ExitOK, "timestamped by "+fake.TSAURL)
	if fake.TSACalls.Load() != 2 {
		t.Fatalf("%d TSA requests for one image in both layouts, want 2", fake.TSACalls.Load())
	}
	r := env("").do(t, "verify", "--key", k+".pub", "--trusted-root", tr, "--require-timestamp", "-o", "json", img)
	r.expect(t, ExitOK, "timestamped at ")
	if !strings.Contains(r.stdout, `"signedAt"`) {
		t.Fatalf("-o json lacks signedAt: %s", r.stdout)
	}
	env("").do(t, "verify", "--key", k+".pub", img).expect(t, ExitOK, "its 1 RFC 3161 timestamp(s) were not checked: no timestamp authority is trusted")
	env("pw").do(t, "sign", "--key", k+".key", plain).expect(t, ExitOK, "Signed")
	env("").do(t, "verify", "--key", k+".pub", "--trusted-root", tr, "--require-timestamp", plain).expect(t, ExitNotVerified, "no RFC 3161 timestamp verified")
	env("").do(t, "verify", "--key", k+".pub", "--trusted-root", tr, plain).expect(t, ExitOK, "Verified")

	// verify-blob: a key bundle's timestamp, verified and required.
	blobFile := filepath.Join(dir, "blob.txt")
	os.WriteFile(blobFile, []byte("a file"), 0o644)
	stamped, bare := filepath.Join(dir, "stamped.sigstore.json"), filepath.Join(dir, "bare.sigstore.json")
	env("pw").do(t, "sign-blob", "--key", k+".key", "--timestamp-server-url", fake.TSAURL, "--bundle", stamped, blobFile).expect(t, ExitOK, "")
	env("pw").do(t, "sign-blob", "--key", k+".key", "--bundle", bare, blobFile).expect(t, ExitOK, "")
	env("").do(t, "verify-blob", "--key", k+".pub", "--trusted-root", tr, "--require-timestamp", "--bundle", stamped, blobFile).expect(t, ExitOK, "timestamped at ")
	env("").do(t, "verify-blob", "--key", k+".pub", "--trusted-root", tr, "--require-timestamp", "--bundle", bare, blobFile).expect(t, ExitNotVerified, "no RFC 3161 timestamp verified")
	env("").do(t, "verify-blob", "--key", k+".pub", "--trusted-root", tr, "--bundle", bare, blobFile).expect(t, ExitOK, "Verified")
	env("").do(t, "verify-blob", "--key", k+".pub", "--require-timestamp", "--bundle", stamped, blobFile).expect(t, ExitUsage, "--require-timestamp needs --trusted-root")
	env("").do(t, "verify-blob", "--key", k+".pub", "--trusted-root", tr, "--require-timestamp", "--signature", bare, blobFile).expect(t, ExitUsage, "--require-timestamp needs --bundle")

	fake.FailTSA.Store(true)
	env("pw").do(t, "sign", "--key", k+".key", "--timestamp-server-url", fake.TSAURL, other).expect(t, ExitKeyless, "timestamp authority "+fake.TSAURL+" did not timestamp")
	env("").do(t, "verify", "--key", k+".pub", other).expect(t, ExitNoSignatures, "no signatures")

	env("pw").do(t, "sign", "--key", k+".key", "--timestamp-server-url", "ftp://tsa.test", img).expect(t, ExitUsage, "not an http(s) URL")
	env("pw").do(t, "sign", "--key", k+".key", "--timestamp-server-url", fake.TSAURL, "--upload=false", img).expect(t, ExitUsage, "--upload=false")
	env("pw").do(t, "sign-blob", "--key", k+".key", "--timestamp-server-url", fake.TSAURL, tr).expect(t, ExitUsage, "needs --bundle")
	env("").do(t, "verify", "--key", k+".pub", "--require-timestamp", img).expect(t, ExitUsage, "--require-timestamp needs --trusted-root")
	env("").do(t, "verify-attestation", "--key", k+".pub", "--type", "custom", "--require-timestamp", img).expect(t, ExitUsage, "--require-timestamp needs --trusted-root")
}
