//go:build linux

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgsign/imgsign/internal/oidctest"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/youmark/pkcs8"

	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
)

// Keyless stack versions built by scripts/install-tools.sh (keyless).
const (
	fulcioVersion    = "v1.8.4"
	tesseractVersion = "v0.1.1"
	tsaVersion       = "v2.1.2"
)

// keylessStack is a running keyless (Fulcio) stack on 127.0.0.1: two OIDC
// issuers of our own (internal/oidctest; Fulcio maps one as "email", the
// other as "github-workflow"), the tesseract CT log, Fulcio with a file CA
// that logs its precertificates there, and a timestamp authority. The
// test PKI is made in Go at start-up. Rekor logs are not part of it: the
// suite's Rekor v1 (process-wide) and v2 (per test) are named in the
// trusted roots and signing configs written for each test.
type keylessStack struct {
	FulcioURL string
	CTURL     string // the CT log's submission URL (Fulcio's --ct-log-url)
	CTOrigin  string // the CT log's checkpoint origin
	TSAURL    string // RFC 3161 endpoint (POST), as cosign's --timestamp-server-url
	Email     *oidctest.Issuer
	GitHub    *oidctest.Issuer

	// PEM files.
	FulcioRootPEM  string // the Fulcio root CA certificate
	FulcioChainPEM string // intermediate, then root
	CTPublicKeyPEM string // PKIX
	TSAChainPEM    string // TSA leaf, then root

	// Start of validity of every CA and log in the trusted roots written.
	ValidFrom time.Time

	fulcioRoot, fulcioInter *x509.Certificate
	tsaRoot, tsaLeaf        *x509.Certificate
	ctKey                   *ecdsa.PublicKey
	logDir                  string
}

// logTail returns the last lines of every component's log.
func (k *keylessStack) logTail() string { return logTails(k.logDir) }

// keyless is the process-wide keyless stack; its processes die with the
// test process (Pdeathsig) and a janitor removes its directory.
var keyless struct {
	once  sync.Once
	stack *keylessStack
	err   error
}

type keylessTools struct{ fulcio, tesseract, tsa string }

// startKeyless returns the process-wide keyless stack, starting it on first
// use. Certificates, CT entries and timestamps persist across tests.
func startKeyless(t testing.TB) *keylessStack {
	t.Helper()
	tools := keylessTools{
		fulcio:    tool(t, "fulcio-"+fulcioVersion),
		tesseract: tool(t, "tesseract-posix-"+tesseractVersion),
		tsa:       tool(t, "timestamp-server-"+tsaVersion),
	}
	keyless.once.Do(func() {
		start := time.Now()
		keyless.stack, keyless.err = bootKeyless(tools)
		if keyless.err == nil {
			t.Logf("keyless stack started in %v: Fulcio %s, CT %s, TSA %s, OIDC %s and %s",
				time.Since(start).Round(time.Millisecond), keyless.stack.FulcioURL, keyless.stack.CTURL,
				keyless.stack.TSAURL, keyless.stack.Email.URL, keyless.stack.GitHub.URL)
		}
	})
	if keyless.err != nil {
		t.Fatalf("keyless stack: %v", keyless.err)
	}
	return keyless.stack
}

func bootKeyless(tools keylessTools) (_ *keylessStack, err error) {
	dir, err := scratchDir("imgsign-keyless-")
	if err != nil {
		return nil, err
	}
	if err := startJanitor(dir); err != nil {
		return nil, err
	}
	k := &keylessStack{logDir: filepath.Join(dir, "logs"), ValidFrom: time.Now().Add(-24 * time.Hour).Truncate(time.Second)}
	if err := os.MkdirAll(k.logDir, 0o755); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*keylessStack, error) {
		return nil, fmt.Errorf(format+"\n%s", append(args, k.logTail())...)
	}
	pki, err := makeKeylessPKI(dir, k)
	if err != nil {
		return nil, err
	}
	if k.Email, err = oidctest.Start(); err != nil {
		return nil, err
	}
	if k.GitHub, err = oidctest.Start(); err != nil {
		return nil, err
	}
	g := &procGroup{logDir: k.logDir, env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir(),
		// tesseract exports metrics over OTLP: to a closed local port.
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_TRACES_EXPORTER=none"}}
	defer g.stopOnError(&err)

	// CT log.
	ctPort := freePortNoT()
	k.CTURL = fmt.Sprintf("http://127.0.0.1:%d", ctPort)
	k.CTOrigin = "ctlog.imgsign.test"
	if _, err := g.start("tesseract", tools.tesseract,
		fmt.Sprintf("--http_endpoint=127.0.0.1:%d", ctPort), "--origin="+k.CTOrigin,
		"--private_key="+pki.ctKey, "--storage_dir="+filepath.Join(dir, "ct"),
		"--roots_pem_file="+k.FulcioRootPEM, "--ext_key_usages=CodeSigning",
		"--checkpoint_interval=500ms"); err != nil {
		return nil, err
	}

	// Fulcio: the email issuer and the GitHub-style one.
	type issuer struct {
		IssuerURL, ClientID, Type string
	}
	cfg, err := json.Marshal(map[string]any{"OIDCIssuers": map[string]issuer{
		k.Email.URL:  {k.Email.URL, oidctest.DefaultAudience, "email"},
		k.GitHub.URL: {k.GitHub.URL, oidctest.DefaultAudience, "github-workflow"},
	}})
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "fulcio-config.json")
	if err := os.WriteFile(cfgFile, cfg, 0o644); err != nil {
		return nil, err
	}
	// Distinct HTTP and gRPC ports: with equal ones Fulcio runs a "duplex"
	// server whose metrics listener is not the one install-tools.sh moves
	// to loopback.
	fulcioPort := freePortNoT()
	k.FulcioURL = fmt.Sprintf("http://127.0.0.1:%d", fulcioPort)
	if _, err := g.start("fulcio", tools.fulcio, "serve",
		"--ca=fileca", "--fileca-cert="+k.FulcioChainPEM, "--fileca-key="+pki.fulcioKey,
		"--fileca-key-passwd="+pki.fulcioKeyPassword, "--fileca-watch=false",
		"--config-path="+cfgFile, "--ct-log-url="+k.CTURL, "--ct-log-public-key-path="+k.CTPublicKeyPEM,
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", fulcioPort),
		"--grpc-host=127.0.0.1", fmt.Sprintf("--grpc-port=%d", freePortNoT()),
		fmt.Sprintf("--metrics-port=%d", freePortNoT()),
		"--legacy-unix-domain-socket="+filepath.Join(dir, "fulcio-legacy.sock"),
		"--log_type=prod"); err != nil {
		return nil, err
	}

	// Timestamp authority (no NTP monitoring: it would ask public servers).
	tsaPort := freePortNoT()
	tsaBase := fmt.Sprintf("http://127.0.0.1:%d", tsaPort)
	k.TSAURL = tsaBase + "/api/v1/timestamp"
	if _, err := g.start("timestamp-server", tools.tsa, "serve",
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", tsaPort),
		"--timestamp-signer=file", "--file-signer-key-path="+pki.tsaKey,
		"--certificate-chain-path="+k.TSAChainPEM, "--disable-ntp-monitoring", "--log-type=prod"); err != nil {
		return nil, err
	}

	for _, probe := range []string{k.CTURL + "/ct/v1/get-roots", k.FulcioURL + "/api/v2/trustBundle", tsaBase + "/api/v1/timestamp/certchain"} {
		if err := g.wait(rekorStartTimeout, httpOK(probe)); err != nil {
			return fail("keyless stack not ready (%s): %v", probe, err)
		}
	}
	return k, nil
}

// keylessPKIFiles are the private key files the servers read.
type keylessPKIFiles struct {
	fulcioKey, fulcioKeyPassword string // encrypted PKCS#8 of the Fulcio intermediate
	ctKey                        string // SEC 1 EC key of the CT log
	tsaKey                       string // PKCS#8 key of the TSA leaf
}

// oidTimeStamping is id-kp-timeStamping (RFC 5280).
var oidTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// makeKeylessPKI makes the test PKI: Fulcio root -> intermediate (CA,
// path length 0, code signing), TSA root -> leaf (critical timeStamping
// EKU, as RFC 3161 asks), and the CT log's ECDSA P-256 key.
func makeKeylessPKI(dir string, k *keylessStack) (keylessPKIFiles, error) {
	var files keylessPKIFiles
	notAfter := time.Now().AddDate(1, 0, 0)
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return key
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		return n
	}
	issue := func(tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) (*x509.Certificate, error) {
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	certPEM := func(certs ...*x509.Certificate) []byte {
		var out []byte
		for _, c := range certs {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return out
	}
	write := func(name string, data []byte, perm os.FileMode) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, data, perm)
	}
	var err error

	// Fulcio.
	rootKey, interKey := newKey(), newKey()
	k.fulcioRoot, err = issue(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "imgsign e2e Fulcio root", Organization: []string{"imgsign e2e"}},
		NotBefore: k.ValidFrom, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, &rootKey.PublicKey, rootKey)
	if err != nil {
		return files, err
	}
	k.fulcioInter, err = issue(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "imgsign e2e Fulcio intermediate", Organization: []string{"imgsign e2e"}},
		NotBefore: k.ValidFrom, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, k.fulcioRoot, &interKey.PublicKey, rootKey)
	if err != nil {
		return files, err
	}
	files.fulcioKeyPassword = "imgsign-e2e-fulcio-pw"
	enc, err := pkcs8.MarshalPrivateKey(interKey, []byte(files.fulcioKeyPassword), nil)
	if err != nil {
		return files, err
	}
	if files.fulcioKey, err = write("fulcio-intermediate.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), 0o600); err != nil {
		return files, err
	}
	if k.FulcioRootPEM, err = write("fulcio-root.pem", certPEM(k.fulcioRoot), 0o644); err != nil {
		return files, err
	}
	if k.FulcioChainPEM, err = write("fulcio-chain.pem", certPEM(k.fulcioInter, k.fulcioRoot), 0o644); err != nil {
		return files, err
	}

	// CT log.
	ctKey := newKey()
	k.ctKey = &ctKey.PublicKey
	sec1, err := x509.MarshalECPrivateKey(ctKey)
	if err != nil {
		return files, err
	}
	if files.ctKey, err = write("ct.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600); err != nil {
		return files, err
	}
	ctPub, err := x509.MarshalPKIXPublicKey(&ctKey.PublicKey)
	if err != nil {
		return files, err
	}
	if k.CTPublicKeyPEM, err = write("ct.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ctPub}), 0o644); err != nil {
		return files, err
	}

	// Timestamp authority.
	tsaRootKey, tsaKey := newKey(), newKey()
	k.tsaRoot, err = issue(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "imgsign e2e TSA root", Organization: []string{"imgsign e2e"}},
		NotBefore: k.ValidFrom, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, &tsaRootKey.PublicKey, tsaRootKey)
	if err != nil {
		return files, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
	if err != nil {
		return files, err
	}
	k.tsaLeaf, err = issue(&x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "imgsign e2e TSA", Organization: []string{"imgsign e2e"}},
		NotBefore: k.ValidFrom, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		// crypto/x509 writes a non-critical EKU: give the critical one.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}, k.tsaRoot, &tsaKey.PublicKey, tsaRootKey)
	if err != nil {
		return files, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(tsaKey)
	if err != nil {
		return files, err
	}
	if files.tsaKey, err = write("tsa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return files, err
	}
	if k.TSAChainPEM, err = write("tsa-chain.pem", certPEM(k.tsaLeaf, k.tsaRoot), 0o644); err != nil {
		return files, err
	}
	return files, nil
}

// trustedRoot writes a trusted_root.json into dir trusting the stack's
// Fulcio CA, CT log and TSA and the given Rekor logs, and returns its path.
// A Rekor v2 log is named as sigstore-go expects: ID SHA-256(origin "\n"
// 0x01 raw Ed25519 key) and base URL https://ORIGIN (start such logs with
// startRekorV2Origin and a host name without port).
func (k *keylessStack) trustedRoot(t testing.TB, dir string, logs ...*rekorLog) string {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: k.fulcioRoot, Intermediates: []*x509.Certificate{k.fulcioInter},
			ValidityPeriodStart: k.ValidFrom, URI: k.FulcioURL,
		}},
		map[string]*root.TransparencyLog{k.ctLogID(): {
			BaseURL: k.CTURL, ID: k.ctLogIDBytes(), ValidityPeriodStart: k.ValidFrom,
			HashFunc: crypto.SHA256, PublicKey: k.ctKey, SignatureHashFunc: crypto.SHA256,
		}},
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{
			Root: k.tsaRoot, Leaf: k.tsaLeaf, ValidityPeriodStart: k.ValidFrom, URI: k.TSAURL,
		}},
		k.rekorLogs(t, logs...))
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (k *keylessStack) ctLogIDBytes() []byte {
	der, _ := x509.MarshalPKIXPublicKey(k.ctKey)
	id := sha256.Sum256(der)
	return id[:]
}

func (k *keylessStack) ctLogID() string { return hex.EncodeToString(k.ctLogIDBytes()) }

// rekorLogs describes the logs as a trusted root names them.
func (k *keylessStack) rekorLogs(t testing.TB, logs ...*rekorLog) map[string]*root.TransparencyLog {
	t.Helper()
	out := map[string]*root.TransparencyLog{}
	for _, l := range logs {
		pub := readPEMPublicKey(t, l.PublicKeyPEM)
		tl := &root.TransparencyLog{ValidityPeriodStart: k.ValidFrom, HashFunc: crypto.SHA256, PublicKey: pub}
		switch key := pub.(type) {
		case ed25519.PublicKey:
			if l.Version != 2 {
				t.Fatalf("an Ed25519 Rekor v%d log", l.Version)
			}
			sum := sha256.Sum256(append([]byte(l.Origin+"\n\x01"), key...))
			tl.ID, tl.BaseURL = sum[:], "https://"+l.Origin
		case *ecdsa.PublicKey:
			der, _ := x509.MarshalPKIXPublicKey(key)
			sum := sha256.Sum256(der)
			tl.ID, tl.BaseURL, tl.SignatureHashFunc = sum[:], l.URL, crypto.SHA256
		default:
			t.Fatalf("Rekor log key %T", pub)
		}
		out[hex.EncodeToString(tl.ID)] = tl
	}
	return out
}

func readPEMPublicKey(t testing.TB, file string) crypto.PublicKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// signingConfig writes a signing_config.json into dir with the stack's
// Fulcio and email OIDC issuer, the Rekor log given (nil: none) and, when
// withTSA, the timestamp authority; returns its path.
func (k *keylessStack) signingConfig(t testing.TB, dir string, rekor *rekorLog, withTSA bool) string {
	t.Helper()
	svc := func(url string, version uint32) root.Service {
		return root.Service{URL: url, MajorAPIVersion: version, ValidityPeriodStart: k.ValidFrom}
	}
	var logs, tsas []root.Service
	if rekor != nil {
		logs = append(logs, svc(rekor.URL, uint32(rekor.Version)))
	}
	if withTSA {
		tsas = append(tsas, svc(k.TSAURL, 1))
	}
	anyOne := root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY}
	sc, err := root.NewSigningConfig(root.SigningConfigMediaType02,
		[]root.Service{svc(k.FulcioURL, 1)}, []root.Service{svc(k.Email.URL, 1)},
		logs, anyOne, tsas, anyOne)
	if err != nil {
		t.Fatal(err)
	}
	data, err := sc.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	name := "signing_config"
	if rekor != nil {
		name += fmt.Sprintf("-rekor-v%d", rekor.Version)
	}
	if withTSA {
		name += "-tsa"
	}
	p := filepath.Join(dir, name+".json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenFile writes an ID token where cosign's --identity-token reads it
// (verbatim: no trailing newline) and returns the path.
func tokenFile(t testing.TB, dir, name, token string) string {
	t.Helper()
	if strings.ContainsAny(token, "\n ") {
		t.Fatalf("token with whitespace: %q", token)
	}
	p := filepath.Join(dir, name+".jwt")
	if err := os.WriteFile(p, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// emailToken mints a token of the email issuer for email.
func (k *keylessStack) emailToken(t testing.TB, dir, email string) string {
	t.Helper()
	tok, err := k.Email.EmailToken(email)
	if err != nil {
		t.Fatal(err)
	}
	return tokenFile(t, dir, "email", tok)
}

// githubToken mints a token of the GitHub-style issuer for workflow w.
func (k *keylessStack) githubToken(t testing.TB, dir string, w oidctest.GitHubWorkflow) string {
	t.Helper()
	tok, err := k.GitHub.GitHubToken(w)
	if err != nil {
		t.Fatal(err)
	}
	return tokenFile(t, dir, "github", tok)
}

// cosign2Env is the environment cosign v2 needs to verify against the
// stack without reaching the public TUF repository.
func (k *keylessStack) cosign2Env(rekorV1 *rekorLog) []string {
	return []string{
		"SIGSTORE_CT_LOG_PUBLIC_KEY_FILE=" + k.CTPublicKeyPEM,
		"SIGSTORE_REKOR_PUBLIC_KEY=" + rekorV1.PublicKeyPEM,
		"SIGSTORE_ROOT_FILE=" + k.FulcioChainPEM,
		"SIGSTORE_TSA_CERTIFICATE_FILE=" + k.TSAChainPEM,
	}
}
