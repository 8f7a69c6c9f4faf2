//go:build linux

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// webhook is a running `imgsign admission serve`.
type webhook struct {
	url, caFile, log string
	proc             *proc
}

// startWebhook runs the webhook on a free port with a certificate for
// 127.0.0.1 issued by ca, and waits until it is ready.
func startWebhook(t *testing.T, ca *pki, dir, policy string, extra ...string) *webhook {
	t.Helper()
	cert, key := ca.issue(t, dir, "webhook", "imgsign-webhook", "", false)
	port := freePort(t)
	logName := fmt.Sprintf("webhook-%d", port)
	w := &webhook{url: fmt.Sprintf("https://127.0.0.1:%d", port), caFile: ca.file, log: filepath.Join(dir, logName+".log")}
	procs := newProcGroup(t, dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()})
	var err error
	if w.proc, err = procs.start(logName, imgsign(t), append([]string{"admission", "serve", "--policy", policy,
		"--tls-cert", cert, "--tls-key", key, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--policy-reload-interval", "200ms"}, extra...)...); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca.file)
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := procs.wait(30*time.Second, func() error {
		resp, err := c.Get(w.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/readyz: HTTP %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatalf("webhook not ready: %v\n%s", err, tail(w.log))
	}
	return w
}

// get fetches a path of the webhook.
func (w *webhook) get(t *testing.T, path string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(w.caFile)
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(w.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// stop sends SIGTERM and waits for the webhook to exit.
func (w *webhook) stop(t *testing.T) {
	t.Helper()
	syscall.Kill(-w.proc.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-w.proc.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("webhook still running 30s after SIGTERM")
	}
}

func podYAML(ns, name string, containers, initContainers []string, imageVolume string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec:\n  containers:\n", name, ns)
	for i, c := range containers {
		fmt.Fprintf(&b, "    - {name: c%d, image: %q}\n", i, c)
	}
	if len(initContainers) > 0 {
		b.WriteString("  initContainers:\n")
		for i, c := range initContainers {
			fmt.Fprintf(&b, "    - {name: i%d, image: %q}\n", i, c)
		}
	}
	if imageVolume != "" {
		fmt.Fprintf(&b, "  volumes:\n    - name: data\n      image: {reference: %q, pullPolicy: IfNotPresent}\n", imageVolume)
	}
	return b.String()
}

// TestAdmissionWebhook: the webhook registered with a real kube-apiserver by
// URL and caBundle, verifying images on a real registry (TLS, auth).
func TestAdmissionWebhook(t *testing.T) {
	k := startKube(t)
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	env := []string{"IMGSIGN_PASSWORD=pw"}
	ci := keyPair(t, dir, "ci")
	signed := reg.pushImage(t, "team/app:v1")
	tool := reg.pushImage(t, "team/tool:v1")
	reg.pushImage(t, "team/unsigned:v1")
	run(t, env, bin, args("sign", "--key", ci+".key", reg.flags(), signed.String())...).must(t, 0, "Signed")
	run(t, env, bin, args("sign", "--key", ci+".key", reg.flags(), tool.String())...).must(t, 0, "Signed")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/team\n    keys: [{file: ci.pub}]\n", reg.host)), 0o644)

	ca := newPKI(t, dir, "webhook")
	wh := startWebhook(t, ca, dir, policy, reg.flags()...)

	// The configurations as `admission config` prints them.
	cfg := run(t, nil, bin, "admission", "config", "--url", wh.url, "--ca-file", ca.file).must(t, 0, "ValidatingWebhookConfiguration")
	k.apply(t, cfg.stdout).must(t, 0, "created")
	for _, ns := range []string{"enforced", "free"} {
		k.kubectl(t, "", "create", "namespace", ns).must(t, 0, "created")
	}
	k.kubectl(t, "", "label", "namespace", "enforced", "imgsign.dev/enforce=true").must(t, 0, "labeled")

	// A new configuration takes a moment to be enforced.
	unsignedPod := podYAML("enforced", "unsigned", []string{reg.ref("team/unsigned:v1")}, nil, "")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := k.kubectl(t, unsignedPod, "create", "--dry-run=server", "-f", "-")
		if r.code != 0 && strings.Contains(r.stderr, "imgsign") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook never enforced: %+v\n%s", r, tail(wh.log))
		}
	}

	t.Run("unsigned pod refused and not stored", func(t *testing.T) {
		r := k.apply(t, unsignedPod)
		r.must(t, 1, `admission webhook "mutate.imgsign.dev" denied the request: imgsign: 1 image(s) refused by the trust policy: `+reg.ref("team/unsigned:v1")+" (container c0): not signed (no signatures found)")
		k.kubectl(t, "", "get", "pod", "-n", "enforced", "unsigned").must(t, 1, `pods "unsigned" not found`)
	})

	t.Run("signed pod admitted and pinned", func(t *testing.T) {
		k.apply(t, podYAML("enforced", "signed", []string{reg.ref("team/app:v1")}, nil, "")).must(t, 0, "created")
		r := k.kubectl(t, "", "get", "pod", "-n", "enforced", "signed", "-o", "jsonpath={.spec.containers[0].image}").must(t, 0, "")
		if want := reg.ref("team/app:v1") + "@" + signed.DigestStr(); r.stdout != want {
			t.Errorf("stored image %q, want %q", r.stdout, want)
		}
	})

	t.Run("unsigned init container, image volume refused", func(t *testing.T) {
		k.apply(t, podYAML("enforced", "init", []string{reg.ref("team/app:v1")}, []string{reg.ref("team/unsigned:v1")}, "")).
			must(t, 1, reg.ref("team/unsigned:v1")+" (init container i0): not signed")
		k.apply(t, podYAML("enforced", "vol", []string{reg.ref("team/app:v1")}, nil, reg.ref("team/unsigned:v1"))).
			must(t, 1, reg.ref("team/unsigned:v1")+" (image volume data): not signed")
	})

	t.Run("ephemeral container refused", func(t *testing.T) {
		r := k.kubectl(t, "", "debug", "-n", "enforced", "signed", "--image="+reg.ref("team/unsigned:v1"), "-c", "dbg", "--profile=restricted")
		r.must(t, 1, reg.ref("team/unsigned:v1")+" (ephemeral container dbg): not signed")
		// A signed one is admitted through the subresource too.
		k.kubectl(t, "", "debug", "-n", "enforced", "signed", "--image="+reg.ref("team/tool:v1"), "-c", "dbg2", "--profile=restricted").must(t, 0, "")
		r = k.kubectl(t, "", "get", "pod", "-n", "enforced", "signed", "-o", "jsonpath={.spec.ephemeralContainers[0].image}").must(t, 0, "")
		if want := reg.ref("team/tool:v1") + "@" + tool.DigestStr(); r.stdout != want {
			t.Errorf("ephemeral container image %q, want %q", r.stdout, want)
		}
	})

	t.Run("update to an unsigned image refused", func(t *testing.T) {
		k.kubectl(t, "", "set", "image", "-n", "enforced", "pod/signed", "c0="+reg.ref("team/unsigned:v1")).
			must(t, 1, reg.ref("team/unsigned:v1")+" (container c0): not signed")
		// A change that keeps the images is not a registry's business.
		k.kubectl(t, "", "label", "pod", "-n", "enforced", "signed", "tier=web").must(t, 0, "labeled")
	})

	t.Run("deployment refused", func(t *testing.T) {
		k.apply(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: enforced}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: %q}, {name: side, image: %q}]
`, reg.ref("team/app:v1"), reg.ref("team/unsigned:v1"))).must(t, 1, reg.ref("team/unsigned:v1")+" (container side): not signed")
		k.kubectl(t, "", "get", "deployment", "-n", "enforced", "web").must(t, 1, "not found")
	})

	t.Run("a moved tag changes nothing", func(t *testing.T) {
		moved := reg.pushImage(t, "team/app:v1") // the tag now names an unsigned image
		r := k.kubectl(t, "", "get", "pod", "-n", "enforced", "signed", "-o", "jsonpath={.spec.containers[0].image}").must(t, 0, "")
		if !strings.HasSuffix(r.stdout, "@"+signed.DigestStr()) {
			t.Errorf("stored pod changed: %s", r.stdout)
		}
		k.apply(t, podYAML("enforced", "moved", []string{reg.ref("team/app:v1")}, nil, "")).
			must(t, 1, reg.ref("team/app:v1")+" (container c0): not signed")
		_ = moved
	})

	t.Run("namespace without the label untouched", func(t *testing.T) {
		k.apply(t, podYAML("free", "anything", []string{reg.ref("team/unsigned:v1")}, nil, "")).must(t, 0, "created")
		r := k.kubectl(t, "", "get", "pod", "-n", "free", "anything", "-o", "jsonpath={.spec.containers[0].image}").must(t, 0, "")
		if r.stdout != reg.ref("team/unsigned:v1") {
			t.Errorf("image in an unlabelled namespace changed: %s", r.stdout)
		}
	})

	t.Run("deploy manifests accepted by the API server", func(t *testing.T) {
		k.apply(t, string(mustRead(t, "../../deploy/namespace.yaml"))).must(t, 0, "created")
		for _, f := range []string{"rbac.yaml", "policy.yaml", "webhook.yaml"} {
			k.kubectl(t, "", "apply", "--dry-run=server", "-f", "../../deploy/"+f).must(t, 0, "(server dry run)")
		}
	})

	t.Run("policy file re-read; a broken one keeps the old policy", func(t *testing.T) {
		good, _ := os.ReadFile(policy)
		os.WriteFile(policy, []byte("version: 1\nscopes:\n  - scope: x\n    keyz: []\n"), 0o644)
		var ready string
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(ready, "policy file not loaded"); time.Sleep(100 * time.Millisecond) {
			ready = wh.get(t, "/readyz")
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never reported the broken policy: %s", ready)
			}
		}
		if !strings.Contains(ready, `unknown field "keyz"`) || !strings.Contains(wh.get(t, "/metrics"), "imgsign_admission_policy_file_ok 0") {
			t.Errorf("broken policy not reported: %s", ready)
		}
		k.apply(t, podYAML("enforced", "stillrefused", []string{reg.ref("team/unsigned:v1")}, nil, "")).must(t, 1, "not signed")
		// A policy that accepts unsigned images in team/: in force at once.
		os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/team\n    unsigned: accept\n", reg.host)), 0o644)
		var r result
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if r = k.apply(t, podYAML("enforced", "nowaccepted", []string{reg.ref("team/unsigned:v1")}, nil, "")); r.code == 0 || time.Now().After(deadline) {
				break
			}
		}
		r.must(t, 0, "created")
		os.WriteFile(policy, good, 0o644)
		if !strings.Contains(tail(wh.log), "policy file did not load") {
			t.Errorf("the broken policy is not in the log")
		}
	})

	// Warn-only: admitted, with a warning kubectl shows.
	wh.stop(t)
	warn := startWebhook(t, ca, dir, policy, append(reg.flags(), "--warn-only")...)
	cfg = run(t, nil, bin, "admission", "config", "--url", warn.url, "--ca-file", ca.file).must(t, 0, "")
	k.apply(t, cfg.stdout).must(t, 0, "configured")
	t.Run("warn-only admits with a warning", func(t *testing.T) {
		var r result
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			r = k.apply(t, podYAML("enforced", "warned", []string{reg.ref("team/unsigned:v1")}, nil, ""))
			if r.code == 0 || time.Now().After(deadline) {
				break
			}
		}
		r.must(t, 0, "Warning: imgsign (warn-only): refused "+reg.ref("team/unsigned:v1")+" (container c0): not signed")
	})

	t.Run("webhook stopped means pods refused", func(t *testing.T) {
		warn.stop(t)
		k.apply(t, podYAML("enforced", "nowebhook", []string{reg.ref("team/app:v1")}, nil, "")).
			must(t, 1, `failed calling webhook "mutate.imgsign.dev"`)
		k.kubectl(t, "", "get", "pod", "-n", "enforced", "nowebhook").must(t, 1, "not found")
	})
}

// TestAdmissionPullSecrets: a private registry (TLS, auth) the webhook has
// no credentials of its own for: it reads the workload's imagePullSecrets
// and its service account's through the API (as a user with only the
// rights of deploy/rbac.yaml's ClusterRole), as the kubelet would.
func TestAdmissionPullSecrets(t *testing.T) {
	k := startKube(t)
	bin := imgsign(t)
	reg := startRegistry(t, true, true)
	dir := t.TempDir()
	ci := keyPair(t, dir, "ci")
	signed := reg.pushImage(t, "team/app:v1")
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, args("sign", "--key", ci+".key", reg.flags(), signed.String())...).must(t, 0, "Signed")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("version: 1\nscopes:\n  - scope: %s/team\n    keys: [{file: ci.pub}]\n", reg.host)), 0o644)

	// The ClusterRole of deploy/rbac.yaml, bound to the webhook's user.
	k.apply(t, string(mustRead(t, "../../deploy/namespace.yaml"))).must(t, 0, "created")
	k.kubectl(t, "", "apply", "-f", "../../deploy/rbac.yaml").must(t, 0, "clusterrole.rbac.authorization.k8s.io/imgsign-admission-pull-secrets created")
	k.kubectl(t, "", "create", "clusterrolebinding", "e2e-webhook", "--clusterrole=imgsign-admission-pull-secrets", "--user=imgsign-webhook").must(t, 0, "created")
	userConfig := k.userKubeconfig(t, "imgsign-webhook")
	// It may get a secret, never list them.
	k.kubectl(t, "", "--kubeconfig="+userConfig, "get", "secrets", "-n", "default").must(t, 1, "forbidden")

	ca := newPKI(t, dir, "webhook")
	wh := startWebhook(t, ca, dir, policy, "--registry-cacert", reg.caFile, "--pull-secrets", "--kubeconfig", userConfig)
	cfg := run(t, nil, bin, "admission", "config", "--url", wh.url, "--ca-file", ca.file, "--webhooks", "validate").must(t, 0, "")
	k.apply(t, cfg.stdout).must(t, 0, "created")
	for _, ns := range []string{"private", "viasa"} {
		k.kubectl(t, "", "create", "namespace", ns).must(t, 0, "created")
		k.kubectl(t, "", "label", "namespace", ns, "imgsign.dev/enforce=true").must(t, 0, "labeled")
		k.kubectl(t, "", "create", "secret", "docker-registry", "regcred", "-n", ns, "--docker-server="+reg.host,
			"--docker-username="+reg.username, "--docker-password="+reg.password).must(t, 0, "created")
	}
	// No controller makes default service accounts here: one by hand, with
	// the pull secret in viasa.
	k.kubectl(t, "", "create", "serviceaccount", "default", "-n", "private").must(t, 0, "created")
	k.apply(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: viasa}\nimagePullSecrets: [{name: regcred}]\n").must(t, 0, "created")

	pod := func(ns, name string, secret bool) string {
		y := podYAML(ns, name, []string{reg.ref("team/app:v1")}, nil, "")
		if secret {
			y += "  imagePullSecrets: [{name: regcred}]\n"
		}
		return y
	}
	var r result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r = k.kubectl(t, pod("private", "nosecret", false), "create", "--dry-run=server", "-f", "-")
		if strings.Contains(r.stderr, "imgsign") || time.Now().After(deadline) {
			break
		}
	}
	r.must(t, 1, reg.ref("team/app:v1")+" (container c0): ")
	if !strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Errorf("refusal without credentials does not say why: %s", r.stderr)
	}
	k.apply(t, pod("private", "withsecret", true)).must(t, 0, "created")
	k.apply(t, pod("viasa", "fromsa", false)).must(t, 0, "created")
	if strings.Contains(tail(wh.log), "forbidden") {
		t.Errorf("the webhook was refused an API read:\n%s", tail(wh.log))
	}
}
