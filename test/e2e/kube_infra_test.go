//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Kubernetes versions built by scripts/install-tools.sh (kube).
const (
	kubeVersion = "v1.37.2"
	etcdVersion = "v3.7.3"
)

// kube is a running etcd and kube-apiserver on 127.0.0.1 (no kubelet, no
// controller-manager: admission runs on CREATE and UPDATE, which is all
// the webhook tests need).
type kube struct {
	kubeconfig string
	kubectlBin string
	dir        string
	ca         *pki
	server     string
}

// userKubeconfig writes a kubeconfig for a user of the test cluster with a
// client certificate (no groups: only the rights RBAC gives it).
func (k *kube) userKubeconfig(t testing.TB, user string) string {
	t.Helper()
	cert, key := k.ca.issue(t, k.dir, "user-"+user, user, "", true)
	f := filepath.Join(k.dir, "kubeconfig-"+user)
	os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: u
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: u}
current-context: e2e
`, k.server, k.ca.file, cert, key)), 0o600)
	return f
}

// pki is a test CA that issues server and client certificates.
type pki struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	file string // CA certificate, PEM
}

func newPKI(t testing.TB, dir, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{key: key, cert: cert, file: filepath.Join(dir, name+"-ca.pem")}
	os.WriteFile(p.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return p
}

// issue writes NAME.pem and NAME.key: a server certificate for 127.0.0.1
// (client false) or a client certificate for cn in organisation org.
func (p *pki) issue(t testing.TB, dir, name, cn, org string, client bool) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	if org != "" {
		tmpl.Subject.Organization = []string{org}
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// tail returns the end of a log file, for failure messages.
func tail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startKube starts etcd and kube-apiserver on free 127.0.0.1 ports, with
// RBAC, a serving certificate for 127.0.0.1 and an admin client
// certificate (system:masters), until the test ends.
func startKube(t testing.TB) *kube {
	t.Helper()
	apiserver := tool(t, "kube-apiserver-"+kubeVersion)
	kubectlBin := tool(t, "kubectl-"+kubeVersion)
	etcd := tool(t, "etcd-"+etcdVersion)
	dir := t.TempDir()
	k := &kube{kubectlBin: kubectlBin, dir: dir}

	procs := newProcGroup(t, dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()})
	client, peer := freePort(t), freePort(t)
	etcdLog := filepath.Join(dir, "etcd.log")
	if _, err := procs.start("etcd", etcd, "--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", client), fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", client),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", peer), fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", peer),
		fmt.Sprintf("--initial-cluster=e2e=http://127.0.0.1:%d", peer), "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		t.Fatal(err)
	}

	ca := newPKI(t, dir, "kube")
	servingCert, servingKey := ca.issue(t, dir, "apiserver", "kube-apiserver", "", false)
	adminCert, adminKey := ca.issue(t, dir, "admin", "e2e-admin", "system:masters", true)
	saKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	saDER, _ := x509.MarshalECPrivateKey(saKey)
	saFile := filepath.Join(dir, "sa.key")
	os.WriteFile(saFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600)

	port := freePort(t)
	apiLog := filepath.Join(dir, "kube-apiserver.log")
	if _, err := procs.start("kube-apiserver", apiserver,
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", client),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port), "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+servingCert, "--tls-private-key-file="+servingKey,
		"--client-ca-file="+ca.file,
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+saFile,
		"--service-account-signing-key-file="+saFile,
		"--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC",
		"--cert-dir="+filepath.Join(dir, "certs"),
		// No controller-manager creates default service accounts.
		"--disable-admission-plugins=ServiceAccount",
		"--v=1"); err != nil {
		t.Fatal(err)
	}

	k.ca, k.server = ca, fmt.Sprintf("https://127.0.0.1:%d", port)
	k.kubeconfig = filepath.Join(dir, "kubeconfig")
	os.WriteFile(k.kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "https://127.0.0.1:%d", certificate-authority: %q}
users:
- name: admin
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, port, ca.file, adminCert, adminKey)), 0o600)

	if err := procs.wait(90*time.Second, func() error {
		r := k.kubectl(t, "", "get", "--raw", "/readyz")
		if r.code == 0 && strings.Contains(r.stdout, "ok") {
			return nil
		}
		return fmt.Errorf("%s %s", r.stdout, r.stderr)
	}); err != nil {
		t.Fatalf("kube-apiserver not ready: %v\nkube-apiserver:\n%s\netcd:\n%s", err, tail(apiLog), tail(etcdLog))
	}
	return k
}

// kubectl runs the built kubectl against the test cluster, with stdin.
func (k *kube) kubectl(t testing.TB, stdin string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.kubectlBin, append([]string{"--kubeconfig=" + k.kubeconfig}, argv...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + k.dir}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// apply applies YAML with kubectl and returns the result.
func (k *kube) apply(t testing.TB, yaml string, extra ...string) result {
	t.Helper()
	return k.kubectl(t, yaml, append([]string{"apply", "-f", "-"}, extra...)...)
}
