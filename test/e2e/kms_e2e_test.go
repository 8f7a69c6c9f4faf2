//go:build linux

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const localKMS = "local-kms-v0.0.0-20260228092603-2a5e92d09ab6"

// kmsServer is a running local-kms (the AWS KMS API on plain HTTP) behind a
// proxy that counts requests by API action (X-Amz-Target).
type kmsServer struct {
	url   string // the proxy: what AWS_ENDPOINT_URL points at
	mu    sync.Mutex
	calls map[string]int
}

// env is the environment an AWS SDK (imgsign's, cosign's) needs to use it:
// any credentials, a region, and the endpoint (a URI without a host, since
// an endpoint inside the URI is spoken to over HTTPS).
func (k *kmsServer) env() []string {
	return []string{"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_REGION=eu-west-2", "AWS_ENDPOINT_URL=" + k.url,
		"AWS_EC2_METADATA_DISABLED=true"}
}

// count returns the requests seen for action ("Sign") and resets nothing.
func (k *kmsServer) count(action string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[action]
}

func (k *kmsServer) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = map[string]int{}
}

// startLocalKMS runs local-kms on a free 127.0.0.1 port with its own data
// directory, and a counting proxy in front of it, until the test ends.
func startLocalKMS(t testing.TB) *kmsServer {
	t.Helper()
	bin := tool(t, localKMS)
	port := freePort(t)
	dir := t.TempDir()
	procs := newProcGroup(t, dir, []string{"PATH=" + os.Getenv("PATH"), fmt.Sprintf("PORT=%d", port), "KMS_REGION=eu-west-2",
		"KMS_ACCOUNT_ID=111122223333", "KMS_DATA_PATH=" + t.TempDir(), "HOME=" + dir})
	if _, err := procs.start("local-kms", bin); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := procs.wait(20*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("local-kms not listening: %v\n%s", err, logTails(dir))
	}
	k := &kmsServer{calls: map[string]int{}}
	target, _ := url.Parse("http://" + addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := r.Header.Get("X-Amz-Target")
		action = action[strings.LastIndex(action, ".")+1:]
		k.mu.Lock()
		k.calls[action]++
		k.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	k.url = "http://" + l.Addr().String()
	return k
}

// TestKMSSignVerifyAttest: a key created in AWS KMS (local-kms) by
// generate-key-pair --kms signs and attests images through its URI; the
// signatures verify by URI and by the exported public key, and with cosign
// v3 both ways.
func TestKMSSignVerifyAttest(t *testing.T) {
	bin := imgsign(t)
	c3 := tool(t, cosign3)
	k := startLocalKMS(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	env := k.env()
	uri := "awskms:///alias/imgsign-release"
	prefix := filepath.Join(dir, "release")

	run(t, env, bin, "generate-key-pair", "--kms", uri, "--output-key-prefix", prefix).must(t, 0, "Public key written to "+prefix+".pub")
	if _, err := os.Stat(prefix + ".key"); err == nil {
		t.Fatal("generate-key-pair --kms wrote a private key file")
	}
	pub, _ := os.ReadFile(prefix + ".pub")
	out := run(t, env, bin, "public-key", "--key", uri).must(t, 0, "BEGIN PUBLIC KEY")
	if out.stdout != string(pub) {
		t.Fatalf("public-key --key URI printed\n%s\nbut generate-key-pair wrote\n%s", out.stdout, pub)
	}
	run(t, env, bin, "key", "info", prefix+".pub").must(t, 0, "P-256")

	d := reg.pushImage(t, "kms/app:v1")
	run(t, env, bin, args("sign", "--key", uri, "-a", "team=web", reg.flags(), reg.ref("kms/app:v1"))...).must(t, 0, "Signed "+d.String())
	run(t, env, bin, args("verify", "--key", uri, "-a", "team=web", reg.flags(), d.String())...).must(t, 0, "Verified")
	run(t, nil, bin, args("verify", "--key", prefix+".pub", reg.flags(), d.String())...).must(t, 0, "Verified")

	// Attestations too.
	pred := filepath.Join(dir, "pred.json")
	os.WriteFile(pred, []byte(`{"buildType":"https://example.com/kms","builder":{"id":"ci"}}`), 0o644)
	run(t, env, bin, args("attest", "--key", uri, "--type", "slsaprovenance", "--predicate", pred, reg.flags(), d.String())...).must(t, 0, "Attested")
	run(t, env, bin, args("verify-attestation", "--key", uri, "--type", "slsaprovenance", reg.flags(), d.String())...).must(t, 0, "Verified")
	run(t, nil, bin, args("verify-attestation", "--key", prefix+".pub", "--type", "slsaprovenance", reg.flags(), d.String())...).must(t, 0, "Verified")

	// Blobs.
	blobFile := filepath.Join(dir, "app.tar.gz")
	os.WriteFile(blobFile, []byte("release contents"), 0o644)
	run(t, env, bin, "sign-blob", "--key", uri, "--bundle", blobFile+".bundle", blobFile).must(t, 0, "")
	run(t, env, bin, "verify-blob", "--key", uri, "--bundle", blobFile+".bundle", blobFile).must(t, 0, "Verified")
	run(t, nil, bin, "verify-blob", "--key", prefix+".pub", "--bundle", blobFile+".bundle", blobFile).must(t, 0, "Verified")

	// A trust policy naming the key by URI.
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("version: 1\nscopes:\n  - scope: \""+reg.host+"/kms\"\n    keys:\n      - kms: "+uri+"\n"), 0o644)
	run(t, env, bin, args("verify", "--policy", pol, reg.flags(), d.String())...).must(t, 0, "Verified")

	// cosign v3 verifies imgsign's KMS signature, by URI and by file.
	cosignFlags := []string{"--registry-cacert", reg.caFile, "--registry-username", reg.username, "--registry-password", reg.password}
	run(t, env, c3, args("verify", "--key", uri, "--insecure-ignore-tlog", "-a", "team=web", cosignFlags, d.String())...).must(t, 0, d.DigestStr())
	run(t, nil, c3, args("verify", "--key", prefix+".pub", "--insecure-ignore-tlog", cosignFlags, d.String())...).must(t, 0, d.DigestStr())

	// cosign v3 signs with the same KMS key; imgsign verifies by URI.
	d2 := reg.pushImage(t, "kms/fromcosign:v1")
	run(t, env, c3, args("sign", "--key", uri, "--tlog-upload=false", "-y", "--use-signing-config=false", "--new-bundle-format=false", "-a", "by=cosign", cosignFlags, d2.String())...).must(t, 0, "")
	run(t, env, bin, args("verify", "--key", uri, "-a", "by=cosign", reg.flags(), d2.String())...).must(t, 0, "Verified")
	run(t, nil, bin, args("verify", "--key", prefix+".pub", reg.flags(), d2.String())...).must(t, 0, "Verified")

	// Another KMS key does not verify these signatures.
	other := "awskms:///alias/imgsign-other"
	run(t, env, bin, "generate-key-pair", "--kms", other, "--output-key-prefix", filepath.Join(dir, "other")).must(t, 0, "")
	run(t, env, bin, args("verify", "--key", other, reg.flags(), d.String())...).must(t, 12, "")
}

// TestKMSKeyErrors: a key that does not exist, a provider that cannot be
// reached and an algorithm the provider lacks each fail with a message
// naming provider, key and cause, and nothing reaches the registry.
func TestKMSKeyErrors(t *testing.T) {
	bin := imgsign(t)
	k := startLocalKMS(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	d := reg.pushImage(t, "kms/err:v1")
	hex := strings.TrimPrefix(d.DigestStr(), "sha256:")

	missing := "awskms:///alias/does-not-exist"
	out := run(t, k.env(), bin, args("sign", "--key", missing, reg.flags(), d.String())...).must(t, 3, "AWS KMS key "+missing)
	if !strings.Contains(out.stderr, "key not found") {
		t.Fatalf("error does not say the key was not found:\n%s", out.stderr)
	}
	run(t, k.env(), bin, args("verify", "--key", missing, reg.flags(), d.String())...).must(t, 3, "key not found")
	// The same key named by a trust policy, through dockerfile verify.
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("version: 1\nscopes:\n  - scope: \""+reg.host+"\"\n    keys: [{kms: \""+missing+"\"}]\n"), 0o644)
	dockerfile := filepath.Join(dir, "Dockerfile")
	os.WriteFile(dockerfile, []byte("FROM "+d.String()+"\n"), 0o644)
	run(t, k.env(), bin, args("dockerfile", "verify", "--policy", pol, reg.flags(), dockerfile)...).must(t, 3, "key not found")

	// Unreachable: nothing listens on the endpoint.
	env := append(k.env(), fmt.Sprintf("AWS_ENDPOINT_URL=http://127.0.0.1:%d", freePort(t)), "AWS_MAX_ATTEMPTS=1")
	out = run(t, env, bin, args("sign", "--key", "awskms:///alias/any", reg.flags(), d.String())...).must(t, 1, "AWS KMS key awskms:///alias/any")
	if !strings.Contains(out.stderr, "unreachable") {
		t.Fatalf("error does not say the provider is unreachable:\n%s", out.stderr)
	}

	// An algorithm AWS does not offer.
	run(t, k.env(), bin, "generate-key-pair", "--kms", "awskms:///alias/x", "--algorithm", "ed25519", "--output-key-prefix", filepath.Join(dir, "x")).
		must(t, 3, "this provider offers")

	// A PKCS#11 URI in the default build says which build it needs.
	run(t, nil, bin, args("sign", "--key", "pkcs11:token=t;object=o?pin-value=1234", reg.flags(), d.String())...).must(t, 3, "pkcs11 build")

	// Nothing was written for the image: no legacy signature, no bundle.
	fk := keyPair(t, dir, "file")
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, args("verify", "--key", fk+".pub", reg.flags(), d.String())...).must(t, 10, "no signatures found")
	if r := run(t, nil, tool(t, "crane-v0.22.1"), "manifest", "--insecure", reg.ref("kms/err:sha256-"+hex+".sig")); r.code == 0 || !strings.Contains(r.stderr, "MANIFEST_UNKNOWN") {
		t.Fatalf("a failed signing wrote the .sig tag, or crane failed otherwise:\n%s", r.stderr)
	}
}

// TestKMSBulkSignOneCallPerImage signs 50 images with one local-kms key in
// one call and counts the KMS requests: the public key is fetched once per
// run and each image costs exactly one Sign request per stored format.
func TestKMSBulkSignOneCallPerImage(t *testing.T) {
	bin := imgsign(t)
	k := startLocalKMS(t)
	reg := startRegistry(t, false, false)
	uri := "awskms:///alias/bulk"
	run(t, k.env(), bin, "generate-key-pair", "--kms", uri, "--output-key-prefix", filepath.Join(t.TempDir(), "bulk")).must(t, 0, "")
	const n = 50
	var refs []string
	for i := range n {
		refs = append(refs, reg.pushImage(t, fmt.Sprintf("bulk/app%d:v1", i)).String())
	}
	for _, format := range []string{"legacy", "bundle"} {
		k.reset()
		start := time.Now()
		run(t, k.env(), bin, args("sign", "--key", uri, "--format", format, reg.flags(), refs)...).must(t, 0, "Signed")
		el := time.Since(start)
		if got := k.count("Sign"); got != n {
			t.Errorf("--format %s: %d Sign requests for %d images (want exactly one each)", format, got, n)
		}
		if got := k.count("GetPublicKey"); got != 1 {
			t.Errorf("--format %s: %d GetPublicKey requests (want one per run)", format, got)
		}
		t.Logf("--format %s: %d images in %v (%.1f images/s); KMS requests: %v", format, n, el.Round(time.Millisecond), float64(n)/el.Seconds(), k.calls)
	}
	// The same with a key file, for comparison.
	fk := keyPair(t, t.TempDir(), "file")
	start := time.Now()
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, args("sign", "--key", fk+".key", "--format", "legacy", reg.flags(), refs)...).must(t, 0, "Signed")
	el := time.Since(start)
	t.Logf("key file, --format legacy: %d images in %v (%.1f images/s)", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
}

// BenchmarkKMSSign50 signs 50 images with one local-kms key in one
// imgsign call per iteration (--format legacy), reporting images/s and KMS
// Sign requests per image:
//
//	IMGSIGN_E2E_REQUIRE=1 go test -run '^$' -bench KMSSign50 -benchtime 3x ./test/e2e/
func BenchmarkKMSSign50(b *testing.B) {
	bin := imgsign(b)
	k := startLocalKMS(b)
	reg := startRegistry(b, false, false)
	uri := "awskms:///alias/bench"
	run(b, k.env(), bin, "generate-key-pair", "--kms", uri, "--output-key-prefix", filepath.Join(b.TempDir(), "bench")).must(b, 0, "")
	const n = 50
	var refs []string
	for i := range n {
		refs = append(refs, reg.pushImage(b, fmt.Sprintf("bench/app%d:v1", i)).String())
	}
	k.reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A new annotation each round, so every round signs anew.
		run(b, k.env(), bin, args("sign", "--key", uri, "--format", "legacy", "-a", fmt.Sprintf("round=%d", i), reg.flags(), refs)...).must(b, 0, "Signed")
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(k.count("Sign"))/float64(n*b.N), "kms-signs/image")
	b.ReportMetric(float64(k.count("GetPublicKey"))/float64(b.N), "kms-pubkey-fetches/run")
}
