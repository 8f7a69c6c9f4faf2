package e2e

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgsign/imgsign/internal/keylesstest"
	"github.com/imgsign/imgsign/pkg/bundle"
	"github.com/imgsign/imgsign/pkg/envelope"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/statement"
	"github.com/imgsign/imgsign/pkg/tlog"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// measured is a command's outcome with the resources its process used.
type measured struct {
	result
	maxRSS  int64 // bytes
	cpuTime time.Duration
}

// runMeasured runs bin like run and reads the process's peak RSS and CPU
// time from the kernel (getrusage), so bounds are asserted on what the
// process used, not on the wall clock of a busy machine.
//
// bin is not started by this process but by a small launcher, this test
// binary started afresh (rusageLauncher): on Linux the peak RSS the kernel
// reports for a process is never lower than the peak of the process that
// started it (exec keeps the high-water mark of the address space it
// replaces, and Go starts commands with vfork, sharing the parent's), so
// a child of this test, which holds the hostile inputs it built, would be
// charged this test's peak. The launcher's peak at start is about 12 MiB,
// well under imgsign's own.
func runMeasured(t *testing.T, bin string, args ...string) measured {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	report, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer report.Close()
	cmd := exec.CommandContext(ctx, self, append([]string{bin}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + os.TempDir(), rusageLauncher + "=1"}
	cmd.ExtraFiles = []*os.File{w}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("imgsign %v did not finish in 3 minutes", args)
	}
	m := measured{result: result{stdout: out.String(), stderr: errb.String()}}
	rep, _ := io.ReadAll(report)
	var cpu int64
	if _, serr := fmt.Sscanf(string(rep), "%d %d %d", &m.maxRSS, &cpu, &m.code); serr != nil {
		t.Fatalf("launcher: %v (report %q, %v)\nstderr: %s", serr, rep, err, m.stderr)
	}
	m.maxRSS *= 1024 // KiB on Linux
	m.cpuTime = time.Duration(cpu)
	t.Logf("imgsign %s: exit %d, max RSS %d MiB, CPU %s", args[0], m.code, m.maxRSS>>20, m.cpuTime)
	return m
}

// rusageLauncher, set in its environment, makes this test binary the
// launcher of runMeasured: it runs the command its arguments name, with its
// standard streams, and writes the command's peak RSS (KiB), CPU time (ns)
// and exit code to file descriptor 3.
const rusageLauncher = "IMGSIGN_E2E_RUSAGE_LAUNCHER"

func init() {
	if os.Getenv(rusageLauncher) != "1" {
		return
	}
	report := os.NewFile(3, "rusage report")
	syscall.CloseOnExec(3)
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, rusageLauncher+"=") })
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(127)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	fmt.Fprintf(report, "%d %d %d\n", ru.Maxrss, ru.Utime.Nano()+ru.Stime.Nano(), cmd.ProcessState.ExitCode())
	os.Exit(0)
}

// failsBecause asserts a failure whose output has every reason given, no
// stack trace, and bounded memory and CPU.
func (m measured) failsBecause(t *testing.T, maxRSS int64, maxCPU time.Duration, reasons ...string) {
	t.Helper()
	if m.code == 0 {
		t.Fatalf("succeeded, want a failure\nstdout: %s\nstderr: %s", m.stdout, m.stderr)
	}
	for _, r := range reasons {
		if !strings.Contains(m.stdout+m.stderr, r) {
			t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", r, m.stdout, m.stderr)
		}
	}
	if strings.Contains(m.stderr, "goroutine ") || strings.Contains(m.stderr, "panic:") {
		t.Fatalf("stack trace:\n%s", m.stderr)
	}
	if m.maxRSS > maxRSS {
		t.Errorf("max RSS %d MiB, want at most %d MiB", m.maxRSS>>20, maxRSS>>20)
	}
	if m.cpuTime > maxCPU {
		t.Errorf("CPU time %s, want at most %s", m.cpuTime, maxCPU)
	}
}

// attestationRSS bounds verify-attestation's peak RSS on any input: one
// attestation at the 32 MiB limit, envelope or bundle, or attestations at
// the 64 MiB total allowed for one image. The document read is the only
// copy held: its payload is decoded in place, and statements are printed
// streaming. Measured: 73-75 MiB for one refused at the limit, 106 MiB for
// two valid ones at the total, 72-75 MiB for a keyless one, valid or
// refused (228 and 181 MiB when sigstore-go checked its envelope), and
// 108-112 MiB for a 24 MiB statement of small objects with a policy (355
// and 408 MiB when the whole statement was decoded); the process alone
// peaks at 38-41 MiB, of which 33 MiB are the binary's pages, 7 MiB
// anonymous.
const attestationRSS = 128 << 20

// atLimit returns a base64 payload of n bytes of JSON text, encoded to
// fill a document of at most 32 MiB (the attestation limit) with the
// overhead given.
func atLimit(overhead int) []byte {
	n := (32<<20 - overhead) / 4 * 3
	return bytes.Repeat([]byte(" "), n)
}

// lyingProxy forwards to the real registry, except for the requests lie
// answers itself (it returns false to forward).
func lyingProxy(t *testing.T, reg *registry, lie func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, _ := url.Parse("http://" + reg.host)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !lie(w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A registry that lies is refused for the right reason, in bounded
// memory and CPU: a redirect loop, a trickled manifest, a schema 1
// manifest under a wrong digest header, and attestations at the size
// limits.
func TestHostileRegistry(t *testing.T) {
	bin := imgsign(t)
	dir := t.TempDir()
	k := keyPair(t, dir, "k")
	reg := startRegistry(t, false, false)
	d := reg.pushImage(t, "hostile/app:v1")
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, "sign", "--key", k+".key", d.String()).must(t, 0, "")
	isManifest := func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, "/manifests/v1") && r.Method == http.MethodGet
	}
	const mib = 1 << 20

	t.Run("redirect loop", func(t *testing.T) {
		host := lyingProxy(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
			if !isManifest(r) {
				return false
			}
			http.Redirect(w, r, r.URL.Path+"?again="+r.URL.Query().Get("again")+"1", http.StatusFound)
			return true
		})
		m := runMeasured(t, bin, "verify", "--key", k+".pub", "--retries", "0", host+"/hostile/app:v1")
		m.failsBecause(t, 96*mib, 3*time.Second, "too many redirects", host, "/v2/hostile/app/manifests/v1")
	})

	t.Run("trickled manifest", func(t *testing.T) {
		host := lyingProxy(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
			if !isManifest(r) {
				return false
			}
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.WriteHeader(http.StatusOK)
			for i := 0; i < 600; i++ {
				if _, err := w.Write([]byte(" ")); err != nil {
					return true
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return true
				case <-time.After(time.Second):
				}
			}
			return true
		})
		m := runMeasured(t, bin, "verify", "--key", k+".pub", "--retries", "0", "--request-timeout", "2s", host+"/hostile/app:v1")
		m.failsBecause(t, 96*mib, 3*time.Second, "registry too slow", "registry "+host, "GET /v2/hostile/app/manifests/v1", "--request-timeout")
	})

	t.Run("schema 1 under a wrong digest header", func(t *testing.T) {
		host := lyingProxy(t, reg, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/v1") {
				return false
			}
			// The digest of the real, signed image, over other bytes.
			w.Header().Set("Docker-Content-Digest", d.DigestStr())
			w.Header().Set("Content-Type", string(types.DockerManifestSchema1Signed))
			fmt.Fprint(w, `{"schemaVersion":1,"name":"hostile/app","tag":"v1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}`)
			return true
		})
		m := runMeasured(t, bin, "verify", "--key", k+".pub", "--retries", "0", host+"/hostile/app:v1")
		m.failsBecause(t, 96*mib, 3*time.Second, "schema 1", host)
	})

	// A DSSE envelope and a Sigstore bundle at the size limit, with a junk
	// signature: read, decoded and refused within the bound.
	t.Run("attestation envelope at the size limit", func(t *testing.T) {
		env := hugeEnvelope(t, nil)
		pushEnvelope(t, reg, d, env, "https://example.com/huge")
		m := runMeasured(t, bin, "verify-attestation", "--key", k+".pub", "--type", "https://example.com/huge", "--retries", "0", "--format", "legacy", d.String())
		m.failsBecause(t, attestationRSS, 10*time.Second, "signature does not verify with any trusted key")
	})

	t.Run("attestation bundle at the size limit", func(t *testing.T) {
		b := hugeBundle(t, nil)
		pushBundle(t, reg, d, b, "https://example.com/hugebundle")
		m := runMeasured(t, bin, "verify-attestation", "--key", k+".pub", "--type", "https://example.com/hugebundle", "--retries", "0", "--format", "bundle", d.String())
		m.failsBecause(t, attestationRSS, 10*time.Second, "signature does not verify with any trusted key")
	})

	// What is not the payload is read by protojson: a bundle with its bulk
	// there is refused before it is decoded.
	t.Run("bundle with its bulk outside the payload", func(t *testing.T) {
		pad := base64.StdEncoding.EncodeToString(atLimit(1024))
		b := []byte(`{"mediaType":"` + bundle.MediaTypeV03 + `","verificationMaterial":{"publicKey":{"hint":"` + pad + `"}},"dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}}`)
		pushBundle(t, reg, d, b, "https://example.com/bulk")
		m := runMeasured(t, bin, "verify-attestation", "--key", k+".pub", "--type", "https://example.com/bulk", "--retries", "0", "--format", "bundle", d.String())
		m.failsBecause(t, attestationRSS, 10*time.Second, "invalid bundle", "besides the payload (limit 4194304)")
	})

	// Validly signed, at the limit, one of each: 64 MiB, the total read
	// for one image. Both verify, and both statements are printed.
	t.Run("valid attestations at the total limit", func(t *testing.T) {
		const pt = "https://example.com/valid-huge"
		img := reg.pushImage(t, "hostile/valid:v1")
		signer := loadKey(t, k+".key")
		pushEnvelope(t, reg, img, hugeEnvelope(t, &signedFor{img, pt, signer}), pt)
		pushBundle(t, reg, img, hugeBundle(t, &signedFor{img, pt, signer}), pt)
		m := runMeasured(t, bin, "verify-attestation", "--key", k+".pub", "--type", pt, "--retries", "0", img.String())
		if m.code != 0 || !strings.Contains(m.stderr, "Verified 2 attestation(s)") {
			t.Fatalf("exit %d, want 2 verified\nstderr: %s", m.code, m.stderr)
		}
		if n := strings.Count(m.stdout, `"predicateType": "`+pt+`"`); n != 2 {
			t.Errorf("%d statements printed, want 2", n)
		}
		if m.maxRSS > attestationRSS {
			t.Errorf("max RSS %d MiB, want at most %d MiB", m.maxRSS>>20, attestationRSS>>20)
		}
	})

	t.Run("attestation policy at the size limit", func(t *testing.T) { verifyAttestationPolicy(t, bin, reg, k) })
	t.Run("keyless", func(t *testing.T) { verifyKeylessAttestation(t, bin, reg) })
}

// verifyKeylessAttestation runs inside TestHostileRegistry: a bundle at
// the size limit, validly signed with a certificate of a private Sigstore
// (keylesstest: its CA with an SCT, a Rekor v1 dsse entry with inclusion
// proof, an RFC 3161 timestamp), given with --trusted-root. It verifies
// under attestationRSS; a bundle whose log entry records another envelope
// is refused for that reason, under the same bound.
func verifyKeylessAttestation(t *testing.T, bin string, reg *registry) {
	const pt = "https://example.com/keyless-huge"
	const subject, issuer = "https://ci.example/build@refs/heads/main", "https://issuer.example"
	s := keylesstest.New(t)
	cert, key := s.Issue(t, keylesstest.Cert{Subject: subject, Issuer: issuer})
	root := t.TempDir() + "/trusted_root.json"
	if err := os.WriteFile(root, s.TrustedRootJSON(t, false), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := oci.NewClient(oci.Options{})
	if err != nil {
		t.Fatal(err)
	}
	statementFor := func(img name.Digest) []byte {
		h, _ := v1.NewHash(img.DigestStr())
		stmt, err := statement.ForImage(h, pt, json.RawMessage(`{}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Padded inside the predicate to fill a bundle at the limit.
		pad := atLimit(1 << 20)
		stmt = append(stmt[:len(stmt)-2], pad[:len(pad)-len(stmt)]...)
		return append(stmt, "}}"...)
	}
	verify := func(img name.Digest) measured {
		return runMeasured(t, bin, "verify-attestation", "--trusted-root", root, "--certificate-identity", subject, "--certificate-oidc-issuer", issuer,
			"--type", pt, "--retries", "0", "--format", "bundle", img.String())
	}
	t.Run("keyless attestation at the size limit", func(t *testing.T) {
		img := reg.pushImage(t, "hostile/keyless:v1")
		b := s.DSSEBundle(t, cert, key, statementFor(img))
		t.Logf("bundle %d bytes", len(b))
		keylesstest.AttachBundle(t, c, img, b, pt)
		m := verify(img)
		if m.code != 0 || !strings.Contains(m.stderr, "Verified 1 attestation(s)") {
			t.Fatalf("exit %d, want 1 verified\nstderr: %s", m.code, m.stderr)
		}
		if m.maxRSS > attestationRSS {
			t.Errorf("max RSS %d MiB, want at most %d MiB", m.maxRSS>>20, attestationRSS>>20)
		}
	})
	// The same as cosign v2's legacy layout: a DSSE envelope in the .att
	// image, its certificate and log entry (a SET) in annotations.
	t.Run("legacy keyless attestation at the size limit", func(t *testing.T) {
		img := reg.pushImage(t, "hostile/keyless-legacy:v1")
		stmt := statementFor(img)
		var pb protobundle.Bundle
		if err := protojson.Unmarshal(s.DSSEBundle(t, cert, key, stmt), &pb); err != nil {
			t.Fatal(err)
		}
		// The bundle's entry has an inclusion proof; the annotation takes
		// its SET, which the test log signs.
		tle := pb.VerificationMaterial.TlogEntries[0]
		promise, err := s.RekorSignPayload(sgtlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
		if err != nil {
			t.Fatal(err)
		}
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: promise}
		set, err := tlog.CosignBundle(tle)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Marshal(statement.PayloadType, stmt, pb.GetDsseEnvelope().GetSignatures()[0].GetSig())
		if err != nil {
			t.Fatal(err)
		}
		// The padding makes the envelope (not a bundle) 32 MiB less 1 MiB.
		t.Logf("envelope %d bytes", len(env))
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		pushEnvelopeAnnotated(t, reg, img, env, map[string]string{"predicateType": pt, oci.CertificateAnnotation: string(certPEM), oci.ChainAnnotation: "", tlog.CosignBundleAnnotation: string(set)})
		m := runMeasured(t, bin, "verify-attestation", "--trusted-root", root, "--certificate-identity", subject, "--certificate-oidc-issuer", issuer,
			"--type", pt, "--retries", "0", "--format", "legacy", img.String())
		if m.code != 0 || !strings.Contains(m.stderr, "Verified 1 attestation(s)") {
			t.Fatalf("exit %d, want 1 verified\nstderr: %s", m.code, m.stderr)
		}
		if m.maxRSS > attestationRSS {
			t.Errorf("max RSS %d MiB, want at most %d MiB", m.maxRSS>>20, attestationRSS>>20)
		}
	})
	// The log entry must be this envelope's: the entry of another envelope
	// (one byte of the statement changed, signed and logged) is refused.
	// (An entry recording this signature over another payload's hash takes
	// a lying log: pkg/verify's TestKeylessAttestationBinding makes one.)
	t.Run("keyless attestation whose log entry is another envelope's", func(t *testing.T) {
		img := reg.pushImage(t, "hostile/keyless-other:v1")
		stmt := statementFor(img)
		b := s.DSSEBundle(t, cert, key, stmt)
		other := bytes.Clone(stmt)
		other[len(other)-3] = '\n' // one byte of the padding
		b = withTlogEntry(t, b, func(*protobundle.Bundle) *protorekor.TransparencyLogEntry {
			var ob protobundle.Bundle
			if err := protojson.Unmarshal(s.DSSEBundle(t, cert, key, other), &ob); err != nil {
				t.Fatal(err)
			}
			return ob.VerificationMaterial.TlogEntries[0]
		})
		keylesstest.AttachBundle(t, c, img, b, pt)
		verify(img).failsBecause(t, attestationRSS, 10*time.Second, "failed to verify log inclusion: transparency log signature does not match")
	})
}

// withTlogEntry returns bundle a with its log entry replaced by the one
// entry returns (given a).
func withTlogEntry(t *testing.T, a []byte, entry func(*protobundle.Bundle) *protorekor.TransparencyLogEntry) []byte {
	t.Helper()
	var pa protobundle.Bundle
	if err := protojson.Unmarshal(a, &pa); err != nil {
		t.Fatal(err)
	}
	pa.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{entry(&pa)}
	out, err := protojson.Marshal(&pa)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyAttestationPolicy runs inside TestHostileRegistry: a validly
// signed statement at the size limit whose predicate is made of small
// objects (the costliest JSON to decode: 15 times its size as Go maps),
// checked with --policy. A condition on predicateType alone decodes
// nothing of the predicate; one that reads the predicate decodes it within
// policy.MaxDecodedBytes, or refuses it for its size: both under
// attestationRSS.
func verifyAttestationPolicy(t *testing.T, bin string, reg *registry, k string) {
	const pt = "https://example.com/scan-huge"
	img := reg.pushImage(t, "hostile/scanned:v1")
	h, _ := v1.NewHash(img.DigestStr())
	const item = `{"id":"CVE-2026-0001","severity":"LOW"},`
	pad := atLimit(1024)
	items := strings.Repeat(item, (len(pad)-512)/len(item))
	stmt, err := statement.ForImage(h, pt, json.RawMessage(`{"vulns":[`+items+`{"id":"CVE-2026-0002","severity":"HIGH"}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadSignerVerifier(loadKey(t, k+".key"), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(dsse.PAE(statement.PayloadType, stmt)))
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Marshal(statement.PayloadType, stmt, sig)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statement %d bytes, envelope %d bytes", len(stmt), len(env))
	pushEnvelope(t, reg, img, env, pt)
	stmt, env, sig = nil, nil, nil
	dir := t.TempDir()
	policyFile := func(name, expr string) string {
		f := dir + "/" + name + ".yaml"
		if err := os.WriteFile(f, []byte("conditions:\n  - name: "+name+"\n    expression: '"+expr+"'\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	verify := func(policy string) measured {
		return runMeasured(t, bin, "verify-attestation", "--key", k+".pub", "--type", pt, "--retries", "0", "--format", "legacy", "--policy", policy, img.String())
	}
	t.Run("policy on predicateType", func(t *testing.T) {
		m := verify(policyFile("scan", `predicateType == "`+pt+`"`))
		if m.code != 0 || !strings.Contains(m.stderr, "Verified 1 attestation(s)") {
			t.Fatalf("exit %d, want 1 verified\nstderr: %s", m.code, m.stderr)
		}
		if m.maxRSS > attestationRSS {
			t.Errorf("max RSS %d MiB, want at most %d MiB", m.maxRSS>>20, attestationRSS>>20)
		}
	})
	t.Run("policy on the predicate", func(t *testing.T) {
		m := verify(policyFile("nohigh", `!predicate.vulns.exists(v, v.severity == "HIGH")`))
		m.failsBecause(t, attestationRSS, 10*time.Second, "statement too large for the policy", "the predicate would take more than 24 MiB of memory decoded")
	})
	// A trust policy's attestation requirement evaluates its conditions
	// the same way (verify --policy, as gate and the admission webhook).
	t.Run("trust policy attestation conditions", func(t *testing.T) {
		run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, "sign", "--key", k+".key", img.String()).must(t, 0, "")
		trust := dir + "/trust.yaml"
		scope := img.Context().String()
		for _, c := range []struct{ expr, want string }{
			{`predicateType == "` + pt + `"`, ""},
			{`!predicate.vulns.exists(v, v.severity == "HIGH")`, "the predicate would take more than 24 MiB of memory decoded"},
		} {
			if err := os.WriteFile(trust, []byte("version: 1\nscopes:\n  - scope: "+scope+"\n    keys: [{file: "+k+".pub}]\n    attestations:\n      - type: "+pt+"\n        conditions:\n          - name: c\n            expression: '"+c.expr+"'\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			m := runMeasured(t, bin, "verify", "--policy", trust, "--retries", "0", img.String())
			if c.want == "" {
				if m.code != 0 || !strings.Contains(m.stdout+m.stderr, "All 1 image(s) meet the policy") {
					t.Fatalf("exit %d, want the policy met\nstdout: %s\nstderr: %s", m.code, m.stdout, m.stderr)
				}
				if m.maxRSS > attestationRSS {
					t.Errorf("max RSS %d MiB, want at most %d MiB", m.maxRSS>>20, attestationRSS>>20)
				}
				continue
			}
			m.failsBecause(t, attestationRSS, 10*time.Second, c.want)
		}
	})
}

// signedFor says whom a test attestation is about and who signs it; nil
// makes a junk signature.
type signedFor struct {
	image         name.Digest
	predicateType string
	key           crypto.Signer
}

// statementAndSig returns a statement of n bytes (spaces pad its
// predicate) and its DSSE signature, or junk ones.
func (s *signedFor) statementAndSig(t *testing.T, pad []byte) ([]byte, []byte) {
	t.Helper()
	if s == nil {
		return pad, []byte{0, 0, 0}
	}
	h, _ := v1.NewHash(s.image.DigestStr())
	stmt, err := statement.ForImage(h, s.predicateType, json.RawMessage(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The padding goes inside the predicate: {<spaces>}.
	stmt = append(stmt[:len(stmt)-2], pad[:len(pad)-len(stmt)]...)
	stmt = append(stmt, "}}"...)
	sv, err := signature.LoadSignerVerifier(s.key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(dsse.PAE(statement.PayloadType, stmt)))
	if err != nil {
		t.Fatal(err)
	}
	return stmt, sig
}

// hugeEnvelope is a DSSE envelope at the attestation size limit.
func hugeEnvelope(t *testing.T, s *signedFor) []byte {
	stmt, sig := s.statementAndSig(t, atLimit(1024))
	env, err := envelope.Marshal(statement.PayloadType, stmt, sig)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// hugeBundle is a Sigstore bundle at the attestation size limit.
func hugeBundle(t *testing.T, s *signedFor) []byte {
	stmt, sig := s.statementAndSig(t, atLimit(1024))
	b, err := bundle.MarshalDSSE("", statement.PayloadType, stmt, sig)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushEnvelope stores env as the legacy attestation (.att) of img.
func pushEnvelope(t *testing.T, reg *registry, img name.Digest, env []byte, predicateType string) {
	t.Helper()
	pushEnvelopeAnnotated(t, reg, img, env, map[string]string{"predicateType": predicateType})
}

// pushEnvelopeAnnotated stores env as the legacy attestation (.att) of
// img, its layer annotated with ann.
func pushEnvelopeAnnotated(t *testing.T, reg *registry, img name.Digest, env []byte, ann map[string]string) {
	t.Helper()
	layer := static.NewLayer(env, "application/vnd.dsse.envelope.v1+json")
	att, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, Annotations: ann})
	if err != nil {
		t.Fatal(err)
	}
	att = mutate.MediaType(att, types.OCIManifestSchema1)
	h, _ := v1.NewHash(img.DigestStr())
	tag, _ := name.NewTag(img.Context().Tag(h.Algorithm + "-" + h.Hex + ".att").String())
	if err := remote.Write(tag, att, reg.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
}

// pushBundle stores b as a bundle referrer of img, in the registry's
// fallback index (docker-registry has no referrers API).
func pushBundle(t *testing.T, reg *registry, img name.Digest, b []byte, predicateType string) {
	t.Helper()
	c, err := oci.NewClient(oci.Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(img.DigestStr(), "sha256:")}, Size: int64(len(reg.rawManifest(t, img.String())))}
	if _, err := c.PushReferrer(context.Background(), img, desc, oci.Artifact{
		ArtifactType: bundle.MediaTypeV03, Layer: b, LayerMediaType: bundle.MediaTypeV03,
		Annotations: map[string]string{oci.BundleContentAnnotation: "dsse-envelope", oci.BundlePredicateTypeAnnotation: predicateType},
	}); err != nil {
		t.Fatal(err)
	}
}

// loadKey reads a key pair's private key (password pw, as keyPair makes).
func loadKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.ParsePrivateKey(data, func() ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawManifest fetches the manifest bytes at ref.
func (r *registry) rawManifest(t *testing.T, ref string) []byte {
	t.Helper()
	rr, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(rr, r.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return desc.Manifest
}
