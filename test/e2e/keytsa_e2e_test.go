//go:build linux

package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// keyTSAEnv is what the key + TSA tests share: the real timestamp-server
// of the keyless stack (no Rekor anywhere), a TLS registry with
// authentication, a key pair, a trusted root naming the TSA alone (made by
// 'imgsign trusted-root create' from the TSA's chain, so cosign reading it
// is tested too), and one naming another TSA.
type keyTSAEnv struct {
	k            *keylessStack
	reg          *registry
	dir, key     string
	root         string // trusts the stack's TSA
	otherRoot    string // trusts another TSA only
	otherChain   string // that TSA's chain, PEM (leaf first)
	pw           []string
	bin, c3, c2  string
	regF         []string
	untouchedEnv *keylessSignEnv // for registryState
}

func newKeyTSAEnv(t *testing.T) *keyTSAEnv {
	t.Helper()
	e := &keyTSAEnv{k: startKeyless(t), reg: startRegistry(t, true, true), dir: t.TempDir(),
		pw: []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}, bin: imgsign(t), c3: tool(t, cosign3), c2: tool(t, cosign2)}
	e.key = keyPair(t, e.dir, "k")
	e.root = filepath.Join(e.dir, "tsa_root.json")
	run(t, nil, e.bin, "trusted-root", "create", "--timestamp-certificate-chain", e.k.TSAChainPEM, "--timestamp-url", e.k.TSAURL,
		"--valid-from", e.k.ValidFrom.Format(time.RFC3339), "--out", e.root).must(t, 0, "")
	e.regF = e.reg.flags()
	e.untouchedEnv = &keylessSignEnv{reg: e.reg}
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: e.k.fulcioRoot, Intermediates: []*x509.Certificate{e.k.fulcioInter}, ValidityPeriodStart: e.k.ValidFrom, URI: e.k.FulcioURL}},
		nil, vs.TimestampingAuthorities(), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	e.otherRoot = filepath.Join(e.dir, "other_tsa_root.json")
	if err := os.WriteFile(e.otherRoot, data, 0o644); err != nil {
		t.Fatal(err)
	}
	other := vs.TimestampingAuthorities()[0].(*root.SigstoreTimestampingAuthority)
	var chain []byte
	for _, c := range append(append([]*x509.Certificate{other.Leaf}, other.Intermediates...), other.Root) {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	e.otherChain = filepath.Join(e.dir, "other_tsa_chain.pem")
	if err := os.WriteFile(e.otherChain, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// cosignTS are cosign v3's flags to verify a key signature by its signed
// timestamp alone: without them cosign v3 ignores timestamps (and looks
// for a log entry).
var cosignTS = []string{"--insecure-ignore-tlog", "--use-signed-timestamps"}

// TestKeyTSAImgsignSignsCosignVerifies: imgsign signs and attests with a
// key and the real TSA, no log, in every layout; cosign v3 verifies each
// by its timestamp against the trusted root, cosign v2 the legacy layout
// by the TSA's chain, and imgsign reports the verified signing time. A
// root naming another TSA makes cosign (--use-signed-timestamps) and
// imgsign refuse them, imgsign with the reason.
func TestKeyTSAImgsignSignsCosignVerifies(t *testing.T) {
	e := newKeyTSAEnv(t)
	for _, format := range []string{"legacy", "bundle", "both"} {
		t.Run("sign-"+format, func(t *testing.T) {
			d := e.reg.pushImage(t, "keytsa/sign-"+format+":v1")
			run(t, e.pw, e.bin, args("sign", "--key", e.key+".key", "--timestamp-server-url", e.k.TSAURL, "--format", format, e.regF, d.String())...).
				must(t, 0, "timestamped by "+e.k.TSAURL)
			if format != "bundle" {
				m := e.reg.manifest(t, e.reg.ref("keytsa/sign-"+format+":"+strings.Replace(d.DigestStr(), ":", "-", 1)+".sig"))
				if ts := m.Layers[0].Annotations["dev.sigstore.cosign/rfc3161timestamp"]; !strings.Contains(ts, `"SignedRFC3161Timestamp":"`) {
					t.Fatalf("legacy layer timestamp annotation %q", ts)
				}
			}
			lookFormat := format
			if format == "both" {
				lookFormat = "any"
			}
			out := run(t, nil, e.bin, args("verify", "--key", e.key+".pub", "--trusted-root", e.root, "--format", lookFormat, "-o", "json", e.regF, d.String())...).
				must(t, 0, "timestamped at ")
			if !strings.Contains(out.stdout, `"signedAt"`) {
				t.Fatalf("-o json lacks signedAt:\n%s", out.stdout)
			}
			run(t, nil, e.c3, args("verify", "--key", e.key+".pub", "--trusted-root", e.root, cosignTS, e.regF, d.String())...).must(t, 0, d.DigestStr())
			// cosign v2.6: the legacy layout by the TSA's chain; once a
			// bundle is there it reads only the bundle (whatever
			// --new-bundle-format says) and takes a TSA only from a trusted
			// root (a chain is refused: "TSA certificate chain path may only
			// be provided using --trusted-root"), so with --format both it
			// never sees the legacy layer's timestamp.
			if format == "legacy" {
				run(t, nil, e.c2, args("verify", "--key", e.key+".pub", cosignTS, "--timestamp-certificate-chain", e.k.TSAChainPEM, e.regF, d.String())...).must(t, 0, d.DigestStr())
				mustRefuse(t, run(t, nil, e.c2, args("verify", "--key", e.key+".pub", cosignTS, "--timestamp-certificate-chain", e.otherChain, e.regF, d.String())...), "timestamp")
			} else {
				run(t, nil, e.c2, args("verify", "--key", e.key+".pub", cosignTS, "--new-bundle-format", "--trusted-root", e.root, e.regF, d.String())...).must(t, 0, d.DigestStr())
				mustRefuse(t, run(t, nil, e.c2, args("verify", "--key", e.key+".pub", cosignTS, "--new-bundle-format", "--trusted-root", e.otherRoot, e.regF, d.String())...), "timestamp")
			}
			// Another TSA trusted: both refuse, imgsign saying why.
			mustRefuse(t, run(t, nil, e.c3, args("verify", "--key", e.key+".pub", "--trusted-root", e.otherRoot, cosignTS, e.regF, d.String())...), "timestamp")
			run(t, nil, e.bin, args("verify", "--key", e.key+".pub", "--trusted-root", e.otherRoot, "--format", lookFormat, e.regF, d.String())...).
				must(t, 12, "does not verify against the trusted timestamp authorities")
		})
	}

	// With a log too: the signature is logged and timestamped; a root
	// naming both (made by imgsign) lets cosign v3 verify with its log
	// required, and imgsign with both required.
	t.Run("sign-both-with-rekor-v1", func(t *testing.T) {
		rekor := startRekorV1(t)
		both := filepath.Join(t.TempDir(), "log_and_tsa_root.json")
		run(t, nil, e.bin, "trusted-root", "create", "--rekor-key", rekor.PublicKeyPEM, "--rekor-url", rekor.URL,
			"--timestamp-certificate-chain", e.k.TSAChainPEM, "--timestamp-url", e.k.TSAURL,
			"--valid-from", e.k.ValidFrom.Format(time.RFC3339), "--out", both).must(t, 0, "")
		d := e.reg.pushImage(t, "keytsa/sign-rekor:v1")
		run(t, e.pw, e.bin, args("sign", "--key", e.key+".key", "--rekor-url", rekor.URL, "--timestamp-server-url", e.k.TSAURL, e.regF, d.String())...).
			must(t, 0, "recorded in transparency log").must(t, 0, "timestamped by")
		run(t, nil, e.bin, args("verify", "--key", e.key+".pub", "--trusted-root", both, "--require-tlog", "--require-timestamp", e.regF, d.String())...).
			must(t, 0, "timestamped at ").must(t, 0, "logged in")
		run(t, nil, e.c3, args("verify", "--key", e.key+".pub", "--trusted-root", both, "--use-signed-timestamps", e.regF, d.String())...).must(t, 0, d.DigestStr())
	})

	for _, format := range []string{"legacy", "bundle"} {
		t.Run("attest-"+format, func(t *testing.T) {
			d := e.reg.pushImage(t, "keytsa/attest-"+format+":v1")
			pred := filepath.Join(e.dir, "pred.json")
			os.WriteFile(pred, []byte(`{"built":"by ci"}`), 0o644)
			run(t, e.pw, e.bin, args("attest", "--key", e.key+".key", "--timestamp-server-url", e.k.TSAURL, "--type", "custom", "--predicate", pred, "--format", format, e.regF, d.String())...).
				must(t, 0, "timestamped by "+e.k.TSAURL)
			run(t, nil, e.bin, args("verify-attestation", "--key", e.key+".pub", "--trusted-root", e.root, "--type", "custom", e.regF, d.String())...).
				must(t, 0, "timestamped at ")
			run(t, nil, e.bin, args("verify-attestation", "--key", e.key+".pub", "--trusted-root", e.otherRoot, "--type", "custom", e.regF, d.String())...).
				must(t, 12, "does not verify")
			run(t, nil, e.c3, args("verify-attestation", "--key", e.key+".pub", "--trusted-root", e.root, cosignTS, "--type", "custom", e.regF, d.String())...).must(t, 0, "")
			mustRefuse(t, run(t, nil, e.c3, args("verify-attestation", "--key", e.key+".pub", "--trusted-root", e.otherRoot, cosignTS, "--type", "custom", e.regF, d.String())...), "timestamp")
			if format == "legacy" {
				// cosign v2: the .att layer's timestamp covers the whole layer.
				run(t, nil, e.c2, args("verify-attestation", "--key", e.key+".pub", cosignTS, "--timestamp-certificate-chain", e.k.TSAChainPEM, "--type", "custom", e.regF, d.String())...).must(t, 0, "")
				mustRefuse(t, run(t, nil, e.c2, args("verify-attestation", "--key", e.key+".pub", cosignTS, "--timestamp-certificate-chain", e.otherChain, "--type", "custom", e.regF, d.String())...), "timestamp")
			} else {
				run(t, nil, e.c2, args("verify-attestation", "--key", e.key+".pub", cosignTS, "--new-bundle-format", "--trusted-root", e.root, "--type", "custom", e.regF, d.String())...).must(t, 0, "")
			}
		})
	}

	t.Run("sign-blob", func(t *testing.T) {
		file := filepath.Join(e.dir, "release.tar.gz")
		os.WriteFile(file, []byte("release bytes"), 0o644)
		b := filepath.Join(e.dir, "release.bundle")
		run(t, e.pw, e.bin, "sign-blob", "--key", e.key+".key", "--timestamp-server-url", e.k.TSAURL, "--bundle", b, file).must(t, 0, "Timestamped by")
		run(t, nil, e.c3, args("verify-blob", "--key", e.key+".pub", "--trusted-root", e.root, cosignTS, "--bundle", b, file)...).must(t, 0, "Verified OK")
		run(t, nil, e.bin, "verify-blob", "--key", e.key+".pub", "--trusted-root", e.root, "--bundle", b, file).must(t, 0, "Verified")
		run(t, nil, e.bin, "verify-blob", "--key", e.key+".pub", "--trusted-root", e.otherRoot, "--bundle", b, file).must(t, 12, "timestamp")
		// And the other way: cosign v3 sign-blob with the TSA, imgsign verifies.
		cb := filepath.Join(e.dir, "release.cosign.bundle")
		run(t, e.pw, e.c3, "sign-blob", "--key", e.key+".key", "--timestamp-server-url", e.k.TSAURL, "--tlog-upload=false", "--use-signing-config=false", "--bundle", cb, "-y", file).must(t, 0, "")
		run(t, nil, e.bin, "verify-blob", "--key", e.key+".pub", "--trusted-root", e.root, "--bundle", cb, file).must(t, 0, "Verified")
		run(t, nil, e.bin, "verify-blob", "--key", e.key+".pub", "--trusted-root", e.otherRoot, "--bundle", cb, file).must(t, 12, "timestamp")
	})
}

// TestKeyTSACosignSignsImgsignWindow: cosign v3 (bundle) and cosign v2
// (legacy) sign with a key and the real TSA, no log; a trust policy whose
// key has a notBefore/notAfter window accepts the signatures by their
// verified timestamps (the policy's trustedRoot names the TSA), refuses
// them when the timestamp is after the key's notAfter (the reason
// asserted), and refuses them without a trusted TSA: no verified time.
func TestKeyTSACosignSignsImgsignWindow(t *testing.T) {
	e := newKeyTSAEnv(t)
	v3 := e.reg.pushImage(t, "keytsa/window/cosign3:v1")
	v2 := e.reg.pushImage(t, "keytsa/window/cosign2:v1")
	run(t, e.pw, e.c3, args("sign", "--key", e.key+".key", "--timestamp-server-url", e.k.TSAURL, "--tlog-upload=false", "--use-signing-config=false", "-y", e.regF, v3.String())...).must(t, 0, "")
	run(t, e.pw, e.c2, args("sign", "--key", e.key+".key", "--timestamp-server-url", e.k.TSAURL, "--tlog-upload=false", "-y", e.regF, v2.String())...).must(t, 0, "")
	now := time.Now().UTC()
	policy := func(name, window, trustedRoot string) string {
		p := filepath.Join(e.dir, name+".yaml")
		doc := fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/keytsa/window\n    keys: [{file: k.pub, %s}]\n", e.reg.host, window)
		if trustedRoot != "" {
			doc += "    trustedRoot: " + trustedRoot + "\n"
		}
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	within := policy("within", "notBefore: "+rfc(now.Add(-time.Hour))+", notAfter: "+rfc(now.Add(time.Hour)), e.root)
	retired := policy("retired", "notAfter: "+rfc(now.Add(-time.Hour)), e.root)
	notYet := policy("not-yet", "notBefore: "+rfc(now.Add(time.Hour)), e.root)
	noTSA := policy("no-tsa", "notBefore: "+rfc(now.Add(-time.Hour)), "")
	otherTSA := policy("other-tsa", "notBefore: "+rfc(now.Add(-time.Hour)), e.otherRoot)
	for _, d := range []string{v3.String(), v2.String()} {
		r := run(t, nil, e.bin, args("verify", "--policy", within, "-o", "json", e.regF, d)...).must(t, 0, "timestamped at ")
		if !strings.Contains(r.stdout, `"signedAt"`) {
			t.Fatalf("-o json lacks signedAt:\n%s", r.stdout)
		}
		run(t, nil, e.bin, args("verify", "--policy", retired, e.regF, d)...).must(t, 12, "after key")
		run(t, nil, e.bin, args("verify", "--policy", notYet, e.regF, d)...).must(t, 12, "before key")
		run(t, nil, e.bin, args("verify", "--policy", noTSA, e.regF, d)...).must(t, 12, "no verified signing time")
		run(t, nil, e.bin, args("verify", "--policy", otherTSA, e.regF, d)...).must(t, 12, "does not verify against the trusted timestamp authorities")
	}
}

// TestKeyTSADown: the TSA down makes sign (every layout), attest and
// sign-blob fail with exit 16 and the TSA's name, writing nothing: no new
// tag, no referrer, no bundle file.
func TestKeyTSADown(t *testing.T) {
	e := newKeyTSAEnv(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d/api/v1/timestamp", freePort(t))
	for _, format := range []string{"legacy", "bundle", "both"} {
		t.Run("sign-"+format, func(t *testing.T) {
			d := e.reg.pushImage(t, "keytsa/down-"+format+":v1")
			before := e.untouchedEnv.registryState(t, d)
			run(t, e.pw, e.bin, args("sign", "--key", e.key+".key", "--timestamp-server-url", dead, "--format", format, e.regF, d.String())...).
				must(t, 16, "timestamp authority "+dead+" did not timestamp").must(t, 16, "nothing was written to the registry")
			e.untouchedEnv.assertUntouched(t, d, before)
		})
	}
	t.Run("attest", func(t *testing.T) {
		d := e.reg.pushImage(t, "keytsa/down-attest:v1")
		before := e.untouchedEnv.registryState(t, d)
		pred := filepath.Join(e.dir, "pred.json")
		os.WriteFile(pred, []byte(`{"a":1}`), 0o644)
		run(t, e.pw, e.bin, args("attest", "--key", e.key+".key", "--timestamp-server-url", dead, "--type", "custom", "--predicate", pred, e.regF, d.String())...).
			must(t, 16, "timestamp authority "+dead).must(t, 16, "nothing was written to the registry")
		e.untouchedEnv.assertUntouched(t, d, before)
	})
	t.Run("sign-blob", func(t *testing.T) {
		file := filepath.Join(e.dir, "f")
		os.WriteFile(file, []byte("x"), 0o644)
		b := filepath.Join(e.dir, "f.bundle")
		run(t, e.pw, e.bin, "sign-blob", "--key", e.key+".key", "--timestamp-server-url", dead, "--bundle", b, file).must(t, 16, "timestamp authority "+dead).must(t, 16, "no file was written")
		if _, err := os.Stat(b); !os.IsNotExist(err) {
			t.Fatalf("bundle written although the TSA failed: %v", err)
		}
	})
}

// mustRefuse asserts a peer's refusal: a non-zero exit, no crash, and a
// fragment of its reason.
func mustRefuse(t *testing.T, r result, has string) {
	t.Helper()
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, has) || strings.Contains(r.stderr, "panic:") {
		t.Fatalf("exit %d (want a refusal), output lacks %q?\nstdout: %s\nstderr: %s", r.code, has, r.stdout, r.stderr)
	}
}
