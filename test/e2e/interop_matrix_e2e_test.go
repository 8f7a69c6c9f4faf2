package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The interop matrix: who signs x who verifies, for image signatures and
// attestations, in cosign's legacy layout and as bundles, with no log, a
// Rekor v1 log and a Rekor v2 log, each signer with a key it generated.
var (
	matrixTools   = []string{"imgsign", "cosign-v2", "cosign-v3"}
	matrixKinds   = []string{"signature", "attestation"}
	matrixFormats = []string{"legacy", "bundle"}
	matrixLogs    = []string{"none", "rekor-v1", "rekor-v2"}
)

// matrixCell is one (signer, verifier) pair for one signed artifact.
type matrixCell struct {
	signer, verifier, kind, format, log string
}

func (c matrixCell) name() string {
	return fmt.Sprintf("%s/%s/%s/by-%s/for-%s", c.kind, c.format, c.log, c.signer, c.verifier)
}

// cannot says why a peer cannot do a cell ("" when it can). These are the
// peers' limits, not imgsign's, and each is listed in the output.
func (c matrixCell) cannot() string {
	switch {
	case c.verifier == "cosign-v2" && c.format == "bundle":
		return "cosign v2 reads no Sigstore bundles attached as referrers"
	case c.signer == "cosign-v2" && c.log == "rekor-v2":
		return "cosign v2 cannot sign images into Rekor v2"
	case c.signer == "cosign-v3" && c.format == "legacy" && c.log == "rekor-v2":
		return "cosign v3 logs to Rekor v2 only with the bundle format (its signing config); legacy signatures go to Rekor v1"
	case c.signer == "imgsign" && c.format == "legacy" && c.log == "rekor-v2" && c.verifier != "imgsign":
		return "a Rekor v2 entry has no signed entry timestamp for cosign's legacy bundle annotation; it travels in imgsign's annotation, which cosign does not read"
	}
	return ""
}

// TestInteropMatrix runs every cell of the matrix against a real registry,
// real Rekor v1 and v2 logs and real cosign v2.6.5 and v3.1.3. One trusted
// root, made by imgsign, names both logs for every verifier.
func TestInteropMatrix(t *testing.T) {
	bins := map[string]string{"imgsign": imgsign(t), "cosign-v2": tool(t, cosign2), "cosign-v3": tool(t, cosign3)}
	v1, v2 := startRekorV1(t), startRekorV2(t)
	reg := startRegistry(t, false, false)
	dir := t.TempDir()
	pw := []string{"IMGSIGN_PASSWORD=pw", "COSIGN_PASSWORD=pw"}
	pred := filepath.Join(dir, "provenance.json")
	os.WriteFile(pred, []byte(`{"builder":{"id":"https://ci.example/builder"},"buildType":"https://example.com/build/v1"}`), 0o644)

	root := filepath.Join(dir, "trusted_root.json")
	run(t, nil, bins["imgsign"], "trusted-root", "create", "--rekor-key", v1.PublicKeyPEM, "--rekor-url", v1.URL,
		"--rekor-key", v2.PublicKeyPEM, "--rekor-url", v2.ReadURL, "--out", root).must(t, 0, "")
	signingConfig := filepath.Join(dir, "signing_config.json")
	run(t, nil, bins["cosign-v3"], "signing-config", "create", "--rekor", "url="+v2.URL+",api-version=2,start-time=2024-01-01T00:00:00Z,operator=imgsign-e2e",
		"--rekor-config", "ANY", "--out", signingConfig).must(t, 0, "")

	// Each tool signs with a key it generated.
	keys := map[string]string{}
	for tl, bin := range bins {
		prefix := filepath.Join(dir, tl)
		run(t, pw, bin, "generate-key-pair", "--output-key-prefix", prefix).must(t, 0, "")
		keys[tl] = prefix
	}

	// Sign every (signer, kind, format, log) a peer can do, once.
	type signed struct {
		image string
		err   string
	}
	artifacts := map[string]signed{}
	key := func(c matrixCell) string { return c.signer + "/" + c.kind + "/" + c.format + "/" + c.log }
	n := 0
	for _, signer := range matrixTools {
		for _, kind := range matrixKinds {
			for _, format := range matrixFormats {
				for _, log := range matrixLogs {
					// imgsign reads every layout, so only the signer's limits count.
					c := matrixCell{signer: signer, verifier: "imgsign", kind: kind, format: format, log: log}
					if c.cannot() != "" {
						continue
					}
					n++
					d := reg.pushImage(t, fmt.Sprintf("matrix/%s-%s-%s-%s:v1", signer, kind, format, log))
					argv := signArgs(c, keys[signer], pred, v1.URL, v2.URL, signingConfig, root, d.String())
					r := run(t, pw, bins[signer], argv...)
					s := signed{image: d.String()}
					if r.code != 0 {
						s.err = fmt.Sprintf("%s %s: exit %d\n%s%s", signer, strings.Join(argv, " "), r.code, r.stdout, r.stderr)
					}
					artifacts[key(c)] = s
				}
			}
		}
	}
	t.Logf("%d artifacts signed", n)

	var summary []string
	for _, kind := range matrixKinds {
		for _, format := range matrixFormats {
			for _, log := range matrixLogs {
				for _, signer := range matrixTools {
					for _, verifier := range matrixTools {
						c := matrixCell{signer: signer, verifier: verifier, kind: kind, format: format, log: log}
						ok := t.Run(c.name(), func(t *testing.T) {
							if why := c.cannot(); why != "" {
								summary = append(summary, fmt.Sprintf("n/a   %s: %s", c.name(), why))
								t.Skipf("cannot: %s", why)
							}
							s := artifacts[key(c)]
							if s.err != "" {
								t.Fatalf("signing failed: %s", s.err)
							}
							argv := verifyArgs(c, keys[signer]+".pub", root, s.image)
							r := run(t, nil, bins[verifier], argv...)
							if r.code != 0 {
								t.Fatalf("%s %s: exit %d\n%s%s", verifier, strings.Join(argv, " "), r.code, r.stdout, r.stderr)
							}
							// The verifier must have checked the log where there is one.
							if verifier == "imgsign" && log != "none" && !strings.Contains(r.stderr, "logged in") {
								t.Fatalf("imgsign did not report the log entry:\n%s", r.stderr)
							}
						})
						if ok && c.cannot() == "" {
							summary = append(summary, fmt.Sprintf("ok    %s", c.name()))
						} else if !ok {
							summary = append(summary, fmt.Sprintf("FAIL  %s", c.name()))
						}
					}
				}
			}
		}
	}
	sort.Strings(summary)
	t.Logf("interop matrix (%d cells):\n%s", len(summary), strings.Join(summary, "\n"))
}

// signArgs are the arguments with which c.signer makes c's artifact.
func signArgs(c matrixCell, keyPrefix, pred, v1URL, v2URL, signingConfig, root, image string) []string {
	var a []string
	if c.kind == "signature" {
		a = []string{"sign", "--key", keyPrefix + ".key"}
	} else {
		a = []string{"attest", "--key", keyPrefix + ".key", "--type", "slsaprovenance", "--predicate", pred}
	}
	if c.signer == "imgsign" {
		a = append(a, "--format", c.format)
		switch c.log {
		case "rekor-v1":
			a = append(a, "--rekor-url", v1URL)
		case "rekor-v2":
			a = append(a, "--rekor-url", v2URL)
		}
		return append(a, image)
	}
	a = append(a, "-y", "--allow-http-registry")
	if c.format == "bundle" {
		a = append(a, "--new-bundle-format=true")
	} else {
		a = append(a, "--new-bundle-format=false")
	}
	switch c.log {
	case "none":
		a = append(a, "--tlog-upload=false", "--use-signing-config=false")
	case "rekor-v1":
		a = append(a, "--tlog-upload=true", "--rekor-url", v1URL, "--use-signing-config=false")
	case "rekor-v2":
		a = append(a, "--signing-config", signingConfig, "--trusted-root", root)
	}
	return append(a, image)
}

// verifyArgs are the arguments with which c.verifier checks c's artifact
// with the public key pub, the log checked where there is one.
func verifyArgs(c matrixCell, pub, root, image string) []string {
	var a []string
	if c.kind == "signature" {
		a = []string{"verify", "--key", pub}
	} else {
		a = []string{"verify-attestation", "--key", pub, "--type", "slsaprovenance"}
	}
	if c.verifier == "imgsign" {
		a = append(a, "--format", c.format)
		if c.log != "none" {
			a = append(a, "--trusted-root", root, "--require-tlog")
		}
		return append(a, image)
	}
	a = append(a, "--allow-http-registry")
	if c.verifier == "cosign-v3" {
		a = append(a, fmt.Sprintf("--new-bundle-format=%v", c.format == "bundle"))
	}
	if c.log == "none" {
		a = append(a, "--insecure-ignore-tlog")
	} else {
		a = append(a, "--trusted-root", root)
	}
	return append(a, image)
}
