package blob_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/blob"
	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// conformanceCase is a case.json of testdata/sigstore/bundle-verify (see
// its README.md).
type conformanceCase struct {
	Bundle, Artifact, Key, Identity, Issuer string
	TrustedRoot                             string `json:"trusted_root"`
	Expect                                  string
	TlogRequired                            *bool `json:"tlog_required"`
}

// failReasons is why each adversarial case must fail: the error must match.
// A case not listed here must still fail, and its error is logged.
var failReasons = map[string]string{
	"bundle-malformed-json_fail":                                `invalid bundle`,
	"bundle-unknown-version_fail":                               `invalid bundle.*(unsupported|version)`,
	"bundle-with-root-cert_fail":                                `chain contains a root certificate`,
	"checkpoint-wrong-roothash_fail":                            `root hash does not match`,
	"dsse-with-hashedrekord-invalid-sig_fail":                   `signature does not verify with the certificate.s key`,
	"dsse-with-hashedrekord-mismatch-envelope_fail":             `hashedrekord entry digest .* does not match the envelope's PAE digest`,
	"dsse-with-hashedrekord-mismatch-sig_fail":                  `transparency log signature does not match`,
	"cve-2022-36056-swapped-tlog-entry_fail":                    `transparency log signature does not match`,
	"dsse-statement-missing-type_fail":                          `invalid in-toto statement: _type ""`,
	"dsse-statement-unknown-type_fail":                          `invalid in-toto statement: _type "https://in-toto.io/Statement/v2"`,
	"dsse-invalid-sig_fail":                                     `signature does not verify with the certificate.s key`,
	"integrated-time-in-future_fail":                            `integrated time outside certificate validity`,
	"intoto-expired-certificate_fail":                           `outside certificate validity|certificate.*(expired|no longer valid)`,
	"invalid-ct-key_fail":                                       `signed certificate timestamp`,
	"invalid-inclusion-proof_fail":                              `inclusion proof`,
	"managed-key-wrong-key_fail":                                `does not verify with any trusted key|public key does not parse`,
	"rekor2-checkpoint-missing-origin_fail":                     `checkpoint`,
	"rekor2-multiple-timestamps-one-outside-cert-validity_fail": `RFC 3161 timestamp 2 of 2 \(2025-07-15T10:33:31Z\) is outside certificate validity`,
	"rekor2-no-timestamp_fail":                                  `no verified signing time.* 0 timestamp`,
	"rekor2-timestamp-payload-mismatch_fail":                    `signed timestamps: hashed messages don.t match`,
	"rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail":    `signed timestamps: certificate embedded in the TSR does not match`,
	"rsa-pss-spki-artifact_fail":                                `unsupported public key type`,
	"set-invalid-signature_fail":                                `signed entry timestamp \(SET\) does not verify`,
	"signature-mismatch_fail":                                   `signature does not verify with the certificate.s key`,
	"wrong-hashedrekord-entry_fail":                             `transparency log signature does not match`,
}

// knownGaps are cases imgsign still gets wrong, and why. The test fails
// when one starts to pass, so the list cannot go stale.
var knownGaps = map[string]string{}

// TestConformance runs every case of testdata/sigstore/bundle-verify through
// VerifyBundle, the path imgsign verify-blob takes.
func TestConformance(t *testing.T) {
	dirs, err := filepath.Glob("testdata/sigstore/bundle-verify/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c conformanceCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			res, err := verifyCase(t, dir, c)
			if gap, ok := knownGaps[name]; ok {
				if (err == nil) == (c.Expect == "pass") {
					t.Fatalf("%s is listed as a known gap but now gets its verdict: remove it from knownGaps", name)
				}
				t.Skipf("known gap: %s (%v)", gap, err)
			}
			switch {
			case c.Expect == "pass" && err != nil:
				t.Fatalf("want pass, got %v", err)
			case c.Expect == "pass":
				if res.Keyless != nil && (res.Keyless.Subject != c.Identity || len(res.Keyless.SignedAt) == 0) {
					t.Fatalf("verified %+v, want identity %q with a signing time", res.Keyless, c.Identity)
				}
			case err == nil:
				t.Fatalf("want fail (%s), it verified", name)
			default:
				t.Logf("refused: %v", err)
				want, ok := failReasons[name]
				if !ok {
					t.Logf("failed (no reason listed for this case): %v", err)
					return
				}
				if !regexp.MustCompile(want).MatchString(err.Error()) {
					t.Fatalf("failed for another reason:\n got: %v\nwant: /%s/", err, want)
				}
			}
		})
	}
}

// verifyCase verifies one case as verify-blob would with its flags.
func verifyCase(t *testing.T, dir string, c conformanceCase) (*blob.BundleResult, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, c.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	art, err := os.ReadFile(filepath.Join(dir, c.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	var o blob.BundleOptions
	trPath := filepath.Join(dir, c.TrustedRoot)
	if c.Key != "" {
		pem, err := os.ReadFile(filepath.Join(dir, c.Key))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := keys.ParsePublicKey(pem)
		if err != nil {
			return nil, err // verify-blob refuses such a key (exit 3)
		}
		o.Keys = []crypto.PublicKey{pub}
		// As verify-blob --key --trusted-root: the root's TSAs verify
		// timestamps, its logs (if it lists any) the log entries.
		tr, err := root.NewTrustedRootFromPath(trPath)
		if err != nil {
			return nil, err
		}
		o.Trusted = tr
		o.Log = tlog.Policy{Trust: &tlog.Trust{}}
		if len(tr.RekorLogs()) > 0 {
			logs, err := tlog.LoadTrustedRoot(trPath)
			if err != nil {
				return nil, err
			}
			o.Log.Trust.Add(logs...)
		}
	} else {
		tr, err := root.NewTrustedRootFromPath(trPath)
		if err != nil {
			return nil, err
		}
		o.Keyless = &keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: c.Identity, Issuer: c.Issuer}}, IgnoreTlog: c.TlogRequired != nil && !*c.TlogRequired}
	}
	d, err := blob.Digest(bytes.NewReader(art), true)
	if err != nil {
		t.Fatal(err)
	}
	return blob.VerifyBundle(context.Background(), data, d, o)
}

// TestKeyBundleTimestampMustVerify: a key-signed bundle's RFC 3161
// timestamp is verified against the trusted root; one over other bytes
// (taken from another bundle) fails the bundle.
func TestKeyBundleTimestampMustVerify(t *testing.T) {
	dir := "testdata/sigstore/bundle-verify/managed-key-happy-path"
	raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c conformanceCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyCase(t, dir, c); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	var b, other map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, c.Bundle))
	otherData, _ := os.ReadFile("testdata/sigstore/bundle-verify/sgo-public-key-validity/bundle.sigstore.json")
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(otherData, &other); err != nil {
		t.Fatal(err)
	}
	vm := b["verificationMaterial"].(map[string]any)
	vm["timestampVerificationData"] = other["verificationMaterial"].(map[string]any)["timestampVerificationData"]
	mutated, _ := json.Marshal(b)
	tmp := t.TempDir()
	for _, f := range []string{c.Artifact, c.Key, c.TrustedRoot} {
		d, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(tmp, f), d, 0o644)
	}
	os.WriteFile(filepath.Join(tmp, c.Bundle), mutated, 0o644)
	_, err = verifyCase(t, tmp, c)
	if err == nil || !strings.Contains(err.Error(), "RFC 3161 timestamp") {
		t.Fatalf("foreign timestamp: %v", err)
	}
}

// TestTrustRootValidityBoundaries verifies the rekor2-happy-path case
// (a staging Rekor v2 entry and one RFC 3161 timestamp at
// 2025-06-12T12:02:20Z) against its trusted root changed at one validity
// bound: the bounds are closed intervals, a missing start is refused, and
// a TSA's window belongs to that TSA alone (another TSA of the root cannot
// lend it).
func TestTrustRootValidityBoundaries(t *testing.T) {
	dir := "testdata/sigstore/bundle-verify/rekor2-happy-path"
	raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c conformanceCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	prod, err := os.ReadFile("testdata/sigstore/bundle-verify/happy-path-v0.3/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	const tsTime = "2025-06-12T12:02:20Z"
	tsa := func(r map[string]any) map[string]any {
		return r["timestampAuthorities"].([]any)[0].(map[string]any)
	}
	for _, tc := range []struct {
		name   string
		change func(r map[string]any)
		want   string // "" passes
	}{
		{"unchanged", func(map[string]any) {}, ""},
		{"tsa end equals the timestamp", func(r map[string]any) {
			tsa(r)["validFor"].(map[string]any)["end"] = tsTime
		}, ""},
		{"tsa end a second before", func(r map[string]any) {
			tsa(r)["validFor"].(map[string]any)["end"] = "2025-06-12T12:02:19Z"
		}, `after the validity period end`},
		{"tsa start a second after", func(r map[string]any) {
			tsa(r)["validFor"].(map[string]any)["start"] = "2025-06-12T12:02:21Z"
		}, `before the validity period start`},
		{"tsa window borrowed from another tsa", func(r map[string]any) {
			tsa(r)["validFor"].(map[string]any)["end"] = "2025-06-01T00:00:00Z"
			var p map[string]any
			if err := json.Unmarshal(prod, &p); err != nil {
				t.Fatal(err)
			}
			other := tsa(p)
			other["validFor"] = map[string]any{"start": "2025-06-01T00:00:00Z", "end": "2025-07-01T00:00:00Z"}
			r["timestampAuthorities"] = append(r["timestampAuthorities"].([]any), other)
		}, `after the validity period end`},
		{"tlog validity start missing", func(r map[string]any) {
			for _, l := range r["tlogs"].([]any) {
				delete(l.(map[string]any)["publicKey"].(map[string]any)["validFor"].(map[string]any), "start")
			}
		}, `missing public key validity period start`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r map[string]any
			data, err := os.ReadFile(filepath.Join(dir, c.TrustedRoot))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			tc.change(r)
			tmp := t.TempDir()
			for _, f := range []string{c.Artifact, c.Bundle} {
				d, _ := os.ReadFile(filepath.Join(dir, f))
				if err := os.WriteFile(filepath.Join(tmp, f), d, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			changed, _ := json.Marshal(r)
			if err := os.WriteFile(filepath.Join(tmp, c.TrustedRoot), changed, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = verifyCase(t, tmp, c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want pass, got %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatal("verified")
			case !regexp.MustCompile(tc.want).MatchString(err.Error()):
				t.Fatalf("got %v, want /%s/", err, tc.want)
			}
		})
	}
}

// TestMessageDigestMismatch (the suite's message-digest-mismatch_fail,
// whose bundle the index lacks): a bundle whose messageDigest is not the
// file's is refused, on the keyless and on the key path, for that reason,
// though its signature, certificate and log entry are genuine.
func TestMessageDigestMismatch(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"happy-path-v0.3", `over this artifact: artifact does not match digest`},
		{"managed-key-happy-path", `the bundle signs another file`},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata/sigstore/bundle-verify", tc.dir)
			raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c conformanceCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			var b map[string]any
			data, _ := os.ReadFile(filepath.Join(dir, c.Bundle))
			if err := json.Unmarshal(data, &b); err != nil {
				t.Fatal(err)
			}
			md := b["messageSignature"].(map[string]any)["messageDigest"].(map[string]any)
			other := sha256.Sum256([]byte("another file"))
			md["digest"] = base64.StdEncoding.EncodeToString(other[:])
			mutated, _ := json.Marshal(b)
			tmp := t.TempDir()
			for _, f := range []string{c.Artifact, c.Key, c.TrustedRoot} {
				if f == "" {
					continue
				}
				d, _ := os.ReadFile(filepath.Join(dir, f))
				os.WriteFile(filepath.Join(tmp, f), d, 0o644)
			}
			os.WriteFile(filepath.Join(tmp, c.Bundle), mutated, 0o644)
			_, err = verifyCase(t, tmp, c)
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("got %v, want /%s/", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestDuplicateIntermediateName (the suite's sct-duplicate-intermediate-name,
// whose bundle the stored suite lacks): its trusted root is the public-good
// root with a decoy CA of the genuine intermediate's subject name and
// another key put first. Every certificate case verified against the
// public-good root gets the same verdict against it: the SCT's issuer is
// the verified chain's, not a certificate found by name.
func TestDuplicateIntermediateName(t *testing.T) {
	decoy := "testdata/sigstore/roots/sct-duplicate-intermediate-name/trusted_root.json"
	prod, err := os.ReadFile("testdata/sigstore/bundle-verify/happy-path-v0.3/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob("testdata/sigstore/bundle-verify/*")
	ran := 0
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c conformanceCase
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		root, _ := os.ReadFile(filepath.Join(dir, c.TrustedRoot))
		if c.Identity == "" || !bytes.Equal(root, prod) {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, plain := verifyCase(t, dir, c)
			tmp := t.TempDir()
			for _, f := range []string{c.Artifact, c.Bundle} {
				d, _ := os.ReadFile(filepath.Join(dir, f))
				os.WriteFile(filepath.Join(tmp, f), d, 0o644)
			}
			d, _ := os.ReadFile(decoy)
			os.WriteFile(filepath.Join(tmp, c.TrustedRoot), d, 0o644)
			_, withDecoy := verifyCase(t, tmp, c)
			if (plain == nil) != (withDecoy == nil) || (plain == nil) != (c.Expect == "pass") {
				t.Fatalf("expect %s; public-good root: %v; with the decoy CA: %v", c.Expect, plain, withDecoy)
			}
			ran++
		})
	}
	if ran < 5 {
		t.Fatalf("only %d cases ran", ran)
	}
}

// TestTSAValidityNotBorrowed (the suite's
// rekor2-timestamp-wrong-tsa-validity-borrow_fail, whose bundle the stored
// suite lacks): rekor2-happy-path's bundle against that case's trusted root
// (its TSA's validity ended before the timestamp; an unrelated TSA without
// certificates covers it) is refused. That entry makes the root refused
// as a whole (a TSA with no certificate does not load); the rule that a
// TSA's window is its own is tested with a real second TSA in
// TestTrustRootValidityBoundaries.
func TestTSAValidityNotBorrowed(t *testing.T) {
	dir := "testdata/sigstore/bundle-verify/rekor2-happy-path"
	raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c conformanceCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, f := range []string{c.Artifact, c.Bundle} {
		d, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(tmp, f), d, 0o644)
	}
	d, err := os.ReadFile("testdata/sigstore/roots/rekor2-timestamp-wrong-tsa-validity-borrow_fail/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, c.TrustedRoot), d, 0o644)
	_, err = verifyCase(t, tmp, c)
	if err == nil || !strings.Contains(err.Error(), "cert chain is empty") {
		t.Fatalf("got %v, want the root refused for its TSA without certificates", err)
	}
}
