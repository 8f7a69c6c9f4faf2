package admission

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults of the webhook configurations.
const (
	// ConfigTimeoutSeconds is the API server's timeout for one call (the
	// most it allows is 30); the server's DefaultTimeout stays below it.
	ConfigTimeoutSeconds = 10
	// DefaultNamespaceLabel opts a namespace in: only namespaces labelled
	// imgsign.dev/enforce=true are checked.
	DefaultNamespaceLabel = "imgsign.dev/enforce=true"
	// DefaultName names the configurations.
	DefaultName = "imgsign"
	// DefaultNamespace is the webhook's own namespace (deploy/).
	DefaultNamespace = "imgsign-system"
)

// WebhookConfig says where the webhook is and what it checks.
type WebhookConfig struct {
	// Exactly one of URL (https://HOST[:PORT], without the path) and
	// Service ("NAMESPACE/NAME" or "NAMESPACE/NAME:PORT").
	URL, Service string
	// CABundle is the PEM of the CA that signed the webhook's certificate.
	CABundle []byte
	// Name of the configurations (DefaultName when empty).
	Name string
	// Namespace is the webhook's own namespace, never checked (the
	// service's namespace, else DefaultNamespace).
	Namespace string
	// NamespaceLabel is KEY=VALUE: only namespaces with this label are
	// checked (DefaultNamespaceLabel when empty; "-" checks every
	// namespace but kube-system and the webhook's own).
	NamespaceLabel string
	// TimeoutSeconds is the API server's timeout per call
	// (ConfigTimeoutSeconds when 0; 1 to 30).
	TimeoutSeconds int
	// FailOpen sets failurePolicy Ignore instead of Fail.
	FailOpen bool
	// Validate and Mutate choose the configurations printed.
	Validate, Mutate bool
}

// The resources checked, by API group.
var webhookRules = []struct {
	group     string
	resources []string
}{
	{"", []string{"pods", "pods/ephemeralcontainers", "podtemplates", "replicationcontrollers"}},
	{"apps", []string{"deployments", "replicasets", "statefulsets", "daemonsets"}},
	{"batch", []string{"jobs", "cronjobs"}},
}

// WebhookConfigurations returns the MutatingWebhookConfiguration and the
// ValidatingWebhookConfiguration (as asked) as a YAML stream.
func WebhookConfigurations(c WebhookConfig) ([]byte, error) {
	if (c.URL == "") == (c.Service == "") {
		return nil, errors.New("give exactly one of a URL and a service")
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = ConfigTimeoutSeconds
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > 30 {
		return nil, fmt.Errorf("timeout %ds: the API server allows 1 to 30 seconds", c.TimeoutSeconds)
	}
	if !c.Validate && !c.Mutate {
		return nil, errors.New("neither the validating nor the mutating configuration asked for")
	}
	if err := checkCABundle(c.CABundle); err != nil {
		return nil, err
	}
	client := func(path string) (yamlMap, error) {
		cc := yamlMap{}
		if c.URL != "" {
			u, err := url.Parse(c.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return nil, fmt.Errorf("webhook URL %q: want https://HOST[:PORT], without a path, query or user", c.URL)
			}
			cc.add("url", "https://"+u.Host+path)
		} else {
			ns, rest, ok := strings.Cut(c.Service, "/")
			svc, port, hasPort := strings.Cut(rest, ":")
			if !ok || ns == "" || svc == "" || strings.Contains(svc, "/") {
				return nil, fmt.Errorf("service %q: want NAMESPACE/NAME[:PORT]", c.Service)
			}
			s := yamlMap{}
			s.add("namespace", ns)
			s.add("name", svc)
			s.add("path", path)
			if hasPort {
				var p int
				if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 1 || p > 65535 || fmt.Sprint(p) != port {
					return nil, fmt.Errorf("service %q: bad port %q", c.Service, port)
				}
				s.add("port", p)
			}
			cc.add("service", s)
		}
		cc.add("caBundle", base64.StdEncoding.EncodeToString(c.CABundle))
		return cc, nil
	}
	if ns, _, ok := strings.Cut(c.Service, "/"); ok && c.Namespace == "" {
		c.Namespace = ns
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	selector := yamlMap{}
	exprs := []yamlMap{}
	if c.NamespaceLabel != "-" {
		label := c.NamespaceLabel
		if label == "" {
			label = DefaultNamespaceLabel
		}
		k, v, ok := strings.Cut(label, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("namespace label %q: want KEY=VALUE", label)
		}
		e := yamlMap{}
		e.add("key", k)
		e.add("operator", "In")
		e.add("values", []string{v})
		exprs = append(exprs, e)
	}
	never := yamlMap{}
	never.add("key", "kubernetes.io/metadata.name")
	never.add("operator", "NotIn")
	never.add("values", uniq("kube-system", c.Namespace))
	exprs = append(exprs, never)
	selector.add("matchExpressions", exprs)

	var rules []yamlMap
	for _, r := range webhookRules {
		m := yamlMap{}
		m.add("apiGroups", []string{r.group})
		m.add("apiVersions", []string{"v1"})
		m.add("operations", []string{"CREATE", "UPDATE"})
		m.add("resources", r.resources)
		m.add("scope", "Namespaced")
		rules = append(rules, m)
	}
	policy := "Fail"
	if c.FailOpen {
		policy = "Ignore"
	}
	doc := func(kind, hook, path string) (yamlMap, error) {
		cc, err := client(path)
		if err != nil {
			return nil, err
		}
		w := yamlMap{}
		w.add("name", hook+".imgsign.dev")
		w.add("admissionReviewVersions", []string{"v1"})
		w.add("clientConfig", cc)
		w.add("rules", rules)
		w.add("failurePolicy", policy)
		w.add("matchPolicy", "Equivalent")
		w.add("sideEffects", "None")
		w.add("timeoutSeconds", c.TimeoutSeconds)
		w.add("namespaceSelector", selector)
		if kind == "MutatingWebhookConfiguration" {
			// Another webhook may change images after this one.
			w.add("reinvocationPolicy", "IfNeeded")
		}
		meta := yamlMap{}
		meta.add("name", c.Name)
		d := yamlMap{}
		d.add("apiVersion", "admissionregistration.k8s.io/v1")
		d.add("kind", kind)
		d.add("metadata", meta)
		d.add("webhooks", []yamlMap{w})
		return d, nil
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	for _, k := range []struct {
		on         bool
		kind, hook string
		path       string
	}{{c.Mutate, "MutatingWebhookConfiguration", "mutate", "/mutate"}, {c.Validate, "ValidatingWebhookConfiguration", "validate", "/validate"}} {
		if !k.on {
			continue
		}
		d, err := doc(k.kind, k.hook, k.path)
		if err != nil {
			return nil, err
		}
		if err := enc.Encode(d.node()); err != nil {
			return nil, err
		}
	}
	enc.Close()
	return out.Bytes(), nil
}

// checkCABundle accepts PEM holding certificates only.
func checkCABundle(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("no CA bundle: the API server must be told which CA signed the webhook's certificate")
	}
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				return errors.New("CA bundle: text that is not PEM")
			}
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("CA bundle: a %s block, want CERTIFICATE only", blk.Type)
		}
		n++
	}
	if n == 0 {
		return errors.New("CA bundle: no PEM certificate in it")
	}
	return nil
}

func uniq(ss ...string) []string {
	var out []string
	for _, s := range ss {
		dup := false
		for _, o := range out {
			dup = dup || o == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// yamlMap is a mapping that keeps its keys in order.
type yamlMap []struct {
	k string
	v any
}

func (m *yamlMap) add(k string, v any) {
	*m = append(*m, struct {
		k string
		v any
	}{k, v})
}

func (m yamlMap) node() *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, kv := range m {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: kv.k}, toNode(kv.v))
	}
	return n
}

func toNode(v any) *yaml.Node {
	switch x := v.(type) {
	case yamlMap:
		return x.node()
	case []yamlMap:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, m := range x {
			n.Content = append(n.Content, m.node())
		}
		return n
	default:
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			panic(err) // strings, ints and []string always encode
		}
		return &n
	}
}
