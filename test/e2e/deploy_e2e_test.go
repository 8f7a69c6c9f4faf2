//go:build linux

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gopkg.in/yaml.v3"
)

// koVersion is the ko that goreleaser's kos section links (scripts/install-tools.sh ko).
const koVersion = "v0.18.2-0.20260407063826-ae9c7272d7de"

// The release image's layout, as ko makes it: the binary at /ko-app/NAME
// is the entrypoint; .goreleaser.yaml sets the user.
const (
	koApp     = "/ko-app/imgsign"
	imageUser = "65532:65532"
)

// koBuild builds imgsign's image with ko, daemonless, as the release's kos
// section does (the same ko; the release build's CGO_ENABLED=0, -trimpath,
// -s -w and version flag; its user; --bare; an SPDX SBOM), and pushes it to
// the test registry as imgsign/imgsign:version. Two things differ: the base
// is an empty image in the test registry (this offline suite cannot fetch
// distroless), and only this machine's platform is built (the release
// builds linux/amd64 and linux/arm64).
func koBuild(t *testing.T, reg *registry, dir, version string) name.Digest {
	t.Helper()
	ko := tool(t, "ko-"+koVersion)
	base, err := mutate.ConfigFile(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		&v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	baseTag, _ := name.NewTag(reg.ref("base/empty:1"))
	if err := remote.Write(baseTag, base, reg.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := base.Digest()

	// ko reads registry credentials from a Docker config, the CA from
	// SSL_CERT_FILE, and the build from .ko.yaml.
	dockerDir, koDir := filepath.Join(dir, "docker"), filepath.Join(dir, "ko")
	os.MkdirAll(dockerDir, 0o700)
	os.MkdirAll(koDir, 0o755)
	auth := base64.StdEncoding.EncodeToString([]byte(reg.username + ":" + reg.password))
	os.WriteFile(filepath.Join(dockerDir, "config.json"), fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, reg.host, auth), 0o600)
	os.WriteFile(filepath.Join(koDir, ".ko.yaml"), fmt.Appendf(nil, `defaultBaseImage: %s@%s
builds:
  - id: imgsign
    main: ./cmd/imgsign
    env: [CGO_ENABLED=0]
    flags: [-trimpath]
    ldflags: ["-s -w", "-X github.com/imgsign/imgsign/internal/version.Version=%s"]
`, reg.ref("base/empty"), baseDigest, version), 0o644)
	goEnv := func(v string) string {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ko, "build", "--bare", "--platform=linux/"+runtime.GOARCH, "--tags="+version,
		"--image-user="+imageUser, "--sbom=spdx", "./cmd/imgsign")
	cmd.Dir = "../.."
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir(),
		"GOCACHE=" + goEnv("GOCACHE"), "GOMODCACHE=" + goEnv("GOMODCACHE"), "GOTOOLCHAIN=local", "GOPROXY=off",
		"DOCKER_CONFIG=" + dockerDir, "SSL_CERT_FILE=" + reg.caFile,
		"KO_DOCKER_REPO=" + reg.ref("imgsign/imgsign"), "KO_CONFIG_PATH=" + koDir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ko build: %v\n%s", err, stderr.String())
	}
	d, err := name.NewDigest(strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("ko build printed %q, not a digest reference: %v\n%s", stdout.String(), err, stderr.String())
	}
	return d
}

// checkStatic checks that a binary needs no dynamic loader, so that it
// runs on a static base (distroless static has no libc).
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".interp") != nil {
		t.Fatalf("%s asks for a dynamic loader: it would not run on a static base image", bin)
	}
}

// deployment is the part of deploy/webhook.yaml's Deployment this test reads.
type deployment struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name  string   `yaml:"name"`
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Env   []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Ports []struct {
						ContainerPort int `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe struct {
						HTTPGet struct{ Path string } `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
				} `yaml:"containers"`
				Volumes []struct {
					Name string `yaml:"name"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// readDeploy returns the webhook Deployment of deploy/webhook.yaml and the
// policy file of deploy/policy.yaml's ConfigMap.
func readDeploy(t *testing.T) (deployment, string) {
	t.Helper()
	var d deployment
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, "../../deploy/webhook.yaml")))
	for d.Kind != "Deployment" {
		d = deployment{}
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("deploy/webhook.yaml: no Deployment: %v", err)
		}
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deploy/webhook.yaml: %d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(mustRead(t, "../../deploy/policy.yaml"), &cm); err != nil || cm.Data["policy.yaml"] == "" {
		t.Fatalf("deploy/policy.yaml: no policy.yaml in the ConfigMap (%v)", err)
	}
	return d, cm.Data["policy.yaml"]
}

// TestDeployManifests: deploy/ works as it is, up to what a kubelet would
// do (no kubelet runs here: the Deployment is stored and never scheduled, so
// no Pod starts and no image is pulled). The release image is built by ko
// as the release builds it (koBuild), pushed to the test registry (TLS,
// auth), and the static imgsign in it runs, signs it and verifies it. deploy/ is applied as it is to a real
// kube-apiserver (server-side apply); the webhook then runs with the
// container's own arguments, the policy of deploy/policy.yaml and the
// service account of deploy/rbac.yaml (a token for it), registered, and
// refuses a Pod in an opted-in namespace as that policy says; the pod
// template meets the restricted Pod Security Standard of its namespace (the
// API server warns otherwise; a worse copy shows it would); the webhook's
// own namespace is never sent to it, so the Deployment is then pinned to the
// image's digest as webhook.yaml documents.
func TestDeployManifests(t *testing.T) {
	dir := t.TempDir()
	d, policy := readDeploy(t)
	c := d.Spec.Template.Spec.Containers[0]
	released, err := name.NewTag(c.Image)
	if err != nil {
		t.Fatalf("deploy/webhook.yaml image %q: %v", c.Image, err)
	}

	// The image: built by ko, pushed as the manifest's tag.
	reg := startRegistry(t, true, true)
	built := koBuild(t, reg, dir, released.TagStr())
	tag, err := name.NewTag(reg.ref("imgsign/imgsign:" + released.TagStr()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(tag, reg.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := got.Digest()
	if digest.String() != built.DigestStr() {
		t.Fatalf("%s is %s, ko built %s", tag, digest, built)
	}
	pinned := tag.String() + "@" + digest.String()

	// It holds a static imgsign at the entrypoint, of the version's build.
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != koApp || cf.Config.User != imageUser || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("image config: entrypoint %v, user %q, platform %s/%s", cf.Config.Entrypoint, cf.Config.User, cf.OS, cf.Architecture)
	}
	bin := filepath.Join(dir, "imgsign-from-image")
	if err := extractFile(mutate.Extract(got), strings.TrimPrefix(koApp, "/"), bin); err != nil {
		t.Fatal(err)
	}
	checkStatic(t, bin)
	run(t, nil, bin, "version").must(t, 0, "imgsign  "+released.TagStr()+"\n")

	// Signed and verified by digest, with the imgsign it holds.
	ci := keyPair(t, dir, "ci")
	run(t, []string{"IMGSIGN_PASSWORD=pw"}, bin, args("sign", "--key", ci+".key", reg.flags(), pinned)...).must(t, 0, "Signed")
	run(t, nil, bin, args("verify", "--key", ci+".pub", reg.flags(), tag.String())...).must(t, 0, digest.String())

	// deploy/ as it is, applied for real (no kubelet: nothing is pulled).
	k := startKube(t)
	applied := k.kubectl(t, "", "apply", "--server-side", "-f", "../../deploy/").must(t, 0, "deployment.apps/imgsign-admission serverside-applied")
	t.Logf("kubectl apply --server-side -f deploy/:\n%s", applied.stdout)
	// The namespace enforces the restricted Pod Security Standard, which the
	// API server checks on the Deployment's template (as warnings): none.
	if strings.Contains(applied.stderr, "PodSecurity") {
		t.Errorf("deploy/webhook.yaml's pod template breaks the restricted Pod Security Standard:\n%s", applied.stderr)
	}
	worse := strings.Replace(string(mustRead(t, "../../deploy/webhook.yaml")), "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1)
	k.kubectl(t, worse, "apply", "--server-side", "--dry-run=server", "-f", "-").must(t, 0, `would violate PodSecurity "restricted`)
	stored := k.kubectl(t, "", "get", "deployment", "-n", "imgsign-system", "imgsign-admission", "-o", "jsonpath={.spec.template.spec.containers[0].image}").must(t, 0, "")
	if stored.stdout != c.Image {
		t.Errorf("stored image %q, want %q", stored.stdout, c.Image)
	}
	for _, obj := range []string{"service/imgsign", "poddisruptionbudget/imgsign-admission", "configmap/imgsign-policy", "serviceaccount/imgsign-admission"} {
		k.kubectl(t, "", "get", "-n", "imgsign-system", obj).must(t, 0, "")
	}

	// The webhook with the container's arguments, the ConfigMap's policy
	// and a token of deploy's service account.
	if len(c.Ports) != 1 || !containsArg(c.Args, fmt.Sprintf("--listen=:%d", c.Ports[0].ContainerPort)) || !containsArg(c.Args, "--pull-secrets") {
		t.Fatalf("deploy/webhook.yaml: args %v, ports %v: want --listen on the container port and --pull-secrets", c.Args, c.Ports)
	}
	policyDir, tlsDir := filepath.Join(dir, "policy"), filepath.Join(dir, "tls")
	os.MkdirAll(policyDir, 0o755)
	os.MkdirAll(tlsDir, 0o755)
	os.WriteFile(filepath.Join(policyDir, "policy.yaml"), []byte(policy), 0o644)
	run(t, nil, bin, "policy", "validate", filepath.Join(policyDir, "policy.yaml")).must(t, 0, "")
	ca := newPKI(t, dir, "webhook")
	cert, key := ca.issue(t, dir, "webhook", "imgsign-webhook", "", false) // for 127.0.0.1
	os.Rename(cert, filepath.Join(tlsDir, "tls.crt"))
	os.Rename(key, filepath.Join(tlsDir, "tls.key"))
	token := k.kubectl(t, "", "create", "token", "imgsign-admission", "-n", "imgsign-system", "--duration=1h").must(t, 0, "")
	saConfig := filepath.Join(dir, "sa-kubeconfig")
	os.WriteFile(saConfig, []byte(fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster: {server: %q, certificate-authority: %q}\nusers:\n- name: sa\n  user: {token: %q}\ncontexts:\n- name: e2e\n  context: {cluster: e2e, user: sa}\ncurrent-context: e2e\n",
		k.server, k.ca.file, strings.TrimSpace(token.stdout))), 0o600)
	k.kubectl(t, "", "--kubeconfig="+saConfig, "auth", "can-i", "get", "secrets", "-n", "apps").must(t, 0, "yes")
	k.kubectl(t, "", "--kubeconfig="+saConfig, "auth", "can-i", "list", "secrets", "-n", "apps").must(t, 1, "no")

	port := freePort(t)
	var argv []string
	for _, a := range c.Args {
		a = strings.ReplaceAll(a, "/etc/imgsign/policy", policyDir)
		a = strings.ReplaceAll(a, "/etc/imgsign/tls", tlsDir)
		if strings.HasPrefix(a, "--listen=") {
			a = fmt.Sprintf("--listen=127.0.0.1:%d", port) // loopback only, here
		}
		argv = append(argv, a)
	}
	argv = append(argv, "--kubeconfig="+saConfig)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+strings.ReplaceAll(e.Value, "/var/cache/imgsign", filepath.Join(dir, "cache")))
	}
	procs := newProcGroup(t, dir, env)
	if _, err := procs.start("webhook", bin, argv...); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, ca.file))
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := procs.wait(30*time.Second, func() error {
		resp, err := hc.Get(url + c.ReadinessProbe.HTTPGet.Path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: HTTP %d", c.ReadinessProbe.HTTPGet.Path, resp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatalf("the webhook with deploy/'s arguments is not ready: %v\n%s", err, logTails(dir))
	}

	// Registered: deploy/policy.yaml refuses everything in an opted-in
	// namespace until it lists registries and keys.
	cfg := run(t, nil, bin, "admission", "config", "--url", url, "--ca-file", ca.file).must(t, 0, "")
	k.apply(t, cfg.stdout).must(t, 0, "created")
	k.kubectl(t, "", "create", "namespace", "apps").must(t, 0, "created")
	k.kubectl(t, "", "label", "namespace", "apps", "imgsign.dev/enforce=true").must(t, 0, "labeled")
	pod := podYAML("apps", "app", []string{pinned}, nil, "")
	var r result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r = k.kubectl(t, pod, "create", "--dry-run=server", "-f", "-")
		if strings.Contains(r.stderr, "imgsign") || time.Now().After(deadline) {
			break
		}
	}
	r.must(t, 1, `admission webhook "mutate.imgsign.dev" denied the request: imgsign: 1 image(s) refused by the trust policy: `+pinned+" (container c0): rejected by policy: scope default")
	t.Logf("refused: %s", strings.TrimSpace(r.stderr))

	// The webhook's own namespace is not sent to it: pin the Deployment to
	// the digest, as webhook.yaml says.
	k.kubectl(t, "", "-n", "imgsign-system", "set", "image", "deployment/imgsign-admission", c.Name+"="+pinned).must(t, 0, "image updated")
	stored = k.kubectl(t, "", "get", "deployment", "-n", "imgsign-system", "imgsign-admission", "-o", "jsonpath={.spec.template.spec.containers[0].image}").must(t, 0, "")
	if stored.stdout != pinned {
		t.Errorf("stored image %q, want %q", stored.stdout, pinned)
	}
	if strings.Contains(logTails(dir), "forbidden") {
		t.Errorf("the webhook was refused an API read:\n%s", logTails(dir))
	}
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

// extractFile writes the regular file at path in a tar stream to dst.
func extractFile(rc io.ReadCloser, path, dst string) error {
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s is not in the image", path)
		}
		if err != nil {
			return err
		}
		if strings.TrimPrefix(strings.TrimPrefix(h.Name, "."), "/") != path || h.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}
