package admission_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgsign/imgsign/pkg/admission"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imgsign-admission"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// TestServeTLSDrain: the webhook serves over TLS; when its context ends
// (SIGTERM), /readyz says so, a review in flight is still answered, and
// ServeTLS returns.
func TestServeTLSDrain(t *testing.T) {
	e := newEnv(t)
	e.hang.Store(true)
	s, err := admission.NewServer(admission.Config{PolicyFile: e.policy, Client: e.client, Timeout: 1500 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, pool := selfSigned(t, e.dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.ServeTLS(ctx, ln, cert, key, 10*time.Second) }()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + ln.Addr().String()
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}

	// A review that waits on the hanging registry until its deadline.
	pod := workloads[0]
	body := review("d", "CREATE", pod.gvk, pod.wrap(podSpec{containers: []string{e.ref("slow/app:v1")}}.json()), nil)
	answered := make(chan *admission.Response, 1)
	go func() {
		resp, err := client.Post(base+"/validate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			answered <- nil
			return
		}
		defer resp.Body.Close()
		var r admission.Review
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Errorf("%v: %s", err, raw)
		}
		answered <- r.Response
	}()
	// Wait until the review is in flight, then stop.
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "imgsign_admission_reviews_in_flight 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the review never got in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	r := <-answered
	if r == nil || r.Allowed || !strings.Contains(r.Status.Message, "not verified in time") {
		t.Fatalf("review in flight at shutdown: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("ServeTLS: %v", err)
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// TestCertificateRotation: a certificate replaced on disk (cert-manager,
// a Secret update) is served without a restart; a broken replacement keeps
// the old one.
func TestCertificateRotation(t *testing.T) {
	defer admission.SetCertCheckInterval(0)()
	e := newEnv(t)
	s, err := admission.NewServer(admission.Config{PolicyFile: e.policy, Client: e.client, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, pool1 := selfSigned(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeTLS(ctx, ln, cert, key, time.Second) }()
	defer func() { stop(); <-served }()
	get := func(pool *x509.CertPool) error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := c.Get("https://" + ln.Addr().String() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(pool1); err != nil {
		t.Fatal(err)
	}
	// A new pair, written where the old one was (a later mtime).
	time.Sleep(20 * time.Millisecond)
	_, _, pool2 := selfSigned(t, dir)
	if err := get(pool2); err != nil {
		t.Fatalf("the rotated certificate is not served: %v", err)
	}
	if err := get(pool1); err == nil {
		t.Error("the old certificate is still served")
	}
	// A broken file: the certificate in force stays.
	os.WriteFile(cert, []byte("garbage"), 0o644)
	if err := get(pool2); err != nil {
		t.Errorf("a broken certificate file replaced the good one: %v", err)
	}
}
