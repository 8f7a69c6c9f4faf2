package admission_test

import (
	"encoding/base64"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/imgsign/imgsign/pkg/admission"
	"gopkg.in/yaml.v3"
)

func TestWebhookConfigurations(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := selfSigned(t, dir)
	ca, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	out, err := admission.WebhookConfigurations(admission.WebhookConfig{URL: "https://127.0.0.1:8443", CABundle: ca, Validate: true, Mutate: true, NamespaceLabel: "team=prod"})
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	var kinds []string
	for {
		var d struct {
			Kind     string
			Webhooks []struct {
				Name                    string
				AdmissionReviewVersions []string `yaml:"admissionReviewVersions"`
				ClientConfig            struct {
					URL      string
					CABundle string `yaml:"caBundle"`
				} `yaml:"clientConfig"`
				FailurePolicy     string `yaml:"failurePolicy"`
				SideEffects       string `yaml:"sideEffects"`
				TimeoutSeconds    int    `yaml:"timeoutSeconds"`
				NamespaceSelector struct {
					MatchExpressions []struct {
						Key, Operator string
						Values        []string
					} `yaml:"matchExpressions"`
				} `yaml:"namespaceSelector"`
			}
		}
		if err := dec.Decode(&d); err != nil {
			break
		}
		kinds = append(kinds, d.Kind)
		w := d.Webhooks[0]
		path := "/validate"
		if d.Kind == "MutatingWebhookConfiguration" {
			path = "/mutate"
		}
		bundle, _ := base64.StdEncoding.DecodeString(w.ClientConfig.CABundle)
		if w.ClientConfig.URL != "https://127.0.0.1:8443"+path || string(bundle) != string(ca) || w.FailurePolicy != "Fail" ||
			w.SideEffects != "None" || w.TimeoutSeconds != 10 || w.AdmissionReviewVersions[0] != "v1" {
			t.Errorf("%s: %+v", d.Kind, w)
		}
		sel := w.NamespaceSelector.MatchExpressions
		if len(sel) != 2 || sel[0].Key != "team" || sel[0].Values[0] != "prod" || strings.Join(sel[1].Values, ",") != "kube-system,imgsign-system" || sel[1].Operator != "NotIn" {
			t.Errorf("%s: namespace selector %+v", d.Kind, sel)
		}
	}
	if strings.Join(kinds, ",") != "MutatingWebhookConfiguration,ValidatingWebhookConfiguration" {
		t.Errorf("kinds: %v", kinds)
	}

	for _, tc := range []struct {
		c    admission.WebhookConfig
		want string
	}{
		{admission.WebhookConfig{CABundle: ca, Validate: true}, "exactly one of a URL and a service"},
		{admission.WebhookConfig{URL: "https://x", Service: "a/b", CABundle: ca, Validate: true}, "exactly one"},
		{admission.WebhookConfig{URL: "http://x:1", CABundle: ca, Validate: true}, "want https://HOST[:PORT]"},
		{admission.WebhookConfig{URL: "https://x:1/validate", CABundle: ca, Validate: true}, "without a path"},
		{admission.WebhookConfig{Service: "svc", CABundle: ca, Validate: true}, "want NAMESPACE/NAME[:PORT]"},
		{admission.WebhookConfig{Service: "ns/svc:http", CABundle: ca, Validate: true}, `bad port "http"`},
		{admission.WebhookConfig{URL: "https://x", Validate: true}, "no CA bundle"},
		{admission.WebhookConfig{URL: "https://x", CABundle: []byte("hello"), Validate: true}, "not PEM"},
		{admission.WebhookConfig{URL: "https://x", CABundle: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), Validate: true}, "a PRIVATE KEY block"},
		{admission.WebhookConfig{URL: "https://x", CABundle: ca, Validate: true, TimeoutSeconds: 31}, "1 to 30 seconds"},
		{admission.WebhookConfig{URL: "https://x", CABundle: ca, Validate: true, NamespaceLabel: "novalue"}, "want KEY=VALUE"},
		{admission.WebhookConfig{URL: "https://x", CABundle: ca}, "neither"},
	} {
		if _, err := admission.WebhookConfigurations(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}

	// A service: its namespace is the webhook's, excluded.
	out, err = admission.WebhookConfigurations(admission.WebhookConfig{Service: "sec/imgsign:8443", CABundle: ca, Validate: true, NamespaceLabel: "-"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"namespace: sec\n", "name: imgsign\n", "path: /validate\n", "port: 8443\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("service config lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`- kube-system\n\s+- sec\n`).Match(out) {
		t.Errorf("the service's namespace is not excluded:\n%s", out)
	}
	if strings.Contains(string(out), "operator: In\n") || strings.Contains(string(out), "Mutating") {
		t.Errorf("service config:\n%s", out)
	}
}
