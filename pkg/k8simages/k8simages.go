// Package k8simages lists the container images that Kubernetes manifests
// run, so that a deploy gate can check every one of them before a release
// is applied. It parses only: no cluster or registry access, no templating.
//
// Workloads are recognised by kind alone (apiVersion is not checked, so a
// custom resource that reuses a built-in kind is read the same way): Pod,
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
// ReplicationController and PodTemplate, inside List documents too. In each
// pod spec, the images of containers, init containers, ephemeral
// containers and image volumes (spec.volumes[].image.reference) are listed.
// Any other kind is skipped, including kinds that embed pod templates
// elsewhere (operators' custom resources); a gate that must account for
// them has to inspect them by other means. Each image found carries the
// JSON pointer of its field (Path, for a JSON patch) and the pull secrets
// and service account of its pod spec. Object reads one JSON object of a
// kind known beforehand, as an admission review carries it (pkg/admission
// reads every review through it).
//
// Where a manifest could be read in more than one way, Images fails
// instead of guessing: a key that the walk reads and that is defined twice
// in one mapping, or both directly and through a YAML merge key ("<<")
// with different values, is an error, because YAML libraries disagree on
// which definition wins and a hidden second definition could smuggle in
// an image. Likewise a container whose image is missing, empty or not a
// string, and a field on the walk that has the wrong type (a spec that is
// not a mapping, containers that are not a list, …), are errors.
package k8simages

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	// MaxBytes is the largest input Images reads.
	MaxBytes = 16 << 20
	// MaxDocuments is the largest number of documents in a stream.
	MaxDocuments = 10000
	// MaxListDepth is how deeply List documents may nest in each other.
	MaxListDepth = 10

	// maxSteps bounds the work the walk may do: YAML aliases let a small
	// document describe an exponentially large tree.
	maxSteps = 1 << 24
	// maxMergeDepth bounds chains of merge keys.
	maxMergeDepth = 32
	// maxJSONDepth bounds nesting in JSON input, as yaml.v3 does for YAML.
	maxJSONDepth = 10000
	// MaxValues bounds the values (scalars, mappings, sequences, aliases)
	// of one document, and so the memory its node tree takes (a few
	// hundred bytes a value): it is checked on the raw bytes before the
	// document is decoded. Real workloads have a few hundred values; a
	// ConfigMap's data is one value per key.
	MaxValues = 1 << 18
)

// ErrLimit is wrapped by errors reporting that the input exceeds one of
// the package's bounds.
var ErrLimit = errors.New("input exceeds a limit")

// Image is one container image reference found in a manifest.
type Image struct {
	// Ref is the image field exactly as written.
	Ref string
	// Kind, Namespace and Name identify the object (for an object in a
	// List, the object itself, not the List). Namespace and Name are ""
	// if the manifest does not set them.
	Kind, Namespace, Name string
	// Container is the container's name.
	Container string
	// InitContainer and EphemeralContainer tell which list of the pod
	// spec the container is in; both are false for spec.containers.
	InitContainer, EphemeralContainer bool
	// Volume is the name of the image volume (spec.volumes[].image,
	// Kubernetes 1.31+) whose reference this is; Container is then "".
	Volume string
	// Document is the 0-based index of the document in the stream.
	Document int
	// Line is the 1-based line of the image value in the stream.
	Line int
	// Path is the JSON pointer (RFC 6901) of the image value in its
	// document's JSON form (as kubectl sends it, with YAML aliases and
	// merge keys resolved), e.g. /spec/template/spec/containers/0/image,
	// or /items/2/spec/containers/0/image for an object in a List: the
	// path a JSON patch replaces it at. Its segments are field names and
	// indices, which never need escaping.
	Path string
	// PullSecrets are the names in the pod spec's imagePullSecrets, and
	// ServiceAccount is its serviceAccountName ("" when unset, which the
	// API server makes "default" for a Pod): what the kubelet would pull
	// this image with.
	PullSecrets    []string
	ServiceAccount string
}

// Images reads a stream of Kubernetes manifests and returns the image of
// every container, init container and ephemeral container of the
// workloads in it, in order of appearance (document by document, and by
// position within a document).
//
// The stream is YAML, one or more documents separated by "---", or JSON,
// one or more objects one after the other. Documents that are not mappings
// (empty ones, comments only, scalars, lists) and objects of kinds the
// package does not know are skipped. YAML anchors, aliases and merge keys
// are followed.
//
// Malformed input is an error naming the line. So are the ambiguities and
// malformed workloads described in the package documentation. Input larger
// than MaxBytes, with more than MaxDocuments documents or Lists nested
// deeper than MaxListDepth, or whose aliases expand to too much work, is
// an error wrapping ErrLimit.
//
// Each document is held in memory as a node tree (yaml.v3's), which costs
// on the order of a hundred times its size for documents made of millions
// of tiny values: a hostile 16 MiB document can take a couple of gigabytes
// and several seconds. Callers reading untrusted input may want a smaller
// size limit; they should reject larger input rather than truncate it, as
// a truncated stream can still parse, without its last documents.
func Images(r io.Reader) ([]Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("k8simages: reading manifests: %w", err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("k8simages: %w: manifests larger than %d bytes", ErrLimit, MaxBytes)
	}
	if looksLikeJSON(data) {
		docs, err := jsonDocuments(data)
		if err == nil {
			w := &walker{steps: maxSteps}
			for i, d := range docs {
				w.doc = i
				if err := w.object(d, "", 0, ""); err != nil {
					return nil, err
				}
			}
			return w.result(), nil
		}
		if errors.Is(err, ErrLimit) {
			return nil, err
		}
		// Not a JSON stream after all (for instance JSON documents
		// separated by ---): read it as YAML, of which JSON is a subset.
	}
	return yamlImages(data)
}

// Object returns the images of one object whose kind is known (as an
// admission review names it), given as one JSON document: as Images does
// for a workload of that kind, with the same errors and limits. A kind the
// package does not read, an object that is not a JSON object, a second
// document, and a kind field that names another kind are errors. Paths are
// pointers into the object.
func Object(kind string, data []byte) ([]Image, error) {
	wk, ok := workloads[kind]
	if !ok {
		return nil, fmt.Errorf("k8simages: kind %q has no pod spec this package reads", kind)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("k8simages: %w: object larger than %d bytes", ErrLimit, MaxBytes)
	}
	docs, err := jsonDocuments(data)
	if err != nil {
		if errors.Is(err, ErrLimit) {
			return nil, err
		}
		return nil, fmt.Errorf("k8simages: the %s is not JSON: %w", kind, err)
	}
	if len(docs) != 1 || docs[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("k8simages: the %s is not one JSON object", kind)
	}
	w := &walker{steps: maxSteps}
	k, err := w.field(docs[0], "kind")
	if err != nil {
		return nil, err
	}
	if k != nil && (k.Kind != yaml.ScalarNode || k.Value != kind) {
		return nil, fmt.Errorf("k8simages: the object's kind is %q, not %s", k.Value, kind)
	}
	if err := w.workload(docs[0], kind, wk.path, ""); err != nil {
		return nil, err
	}
	return w.result(), nil
}

// checkValues bounds the number of values of each document before any is
// decoded. Every value but the first of a collection follows an indicator
// (',' '-' ':' '[' '{' '?' or '*' for an alias), so their count, which
// overestimates, bounds the values. Documents are split at lines that begin
// with "---", which end a YAML document wherever they appear. (JSON
// streams are counted by their own parser, document by document.)
func checkValues(data []byte) error {
	doc, n := 0, 0
	for i, b := range data {
		switch b {
		case ',', '-', ':', '[', '{', '?', '*':
			if b == '-' && (i == 0 || data[i-1] == '\n') && bytes.HasPrefix(data[i:], []byte("---")) {
				doc, n = doc+1, 0
				continue
			}
			if n++; n > MaxValues {
				return fmt.Errorf("k8simages: %w: document %d has more than %d values", ErrLimit, doc, MaxValues)
			}
		}
	}
	return nil
}

// Unique returns the distinct references in images, in the order they are
// first seen.
func Unique(images []Image) []string {
	seen := make(map[string]bool, len(images))
	var refs []string
	for _, im := range images {
		if !seen[im.Ref] {
			seen[im.Ref] = true
			refs = append(refs, im.Ref)
		}
	}
	return refs
}

func yamlImages(data []byte) ([]Image, error) {
	if err := checkValues(data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	w := &walker{merge: true, steps: maxSteps}
	for i := 0; ; i++ {
		var doc yaml.Node
		err := decode(dec, &doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("k8simages: document %d: %w", i, err)
		}
		if i == MaxDocuments {
			return nil, fmt.Errorf("k8simages: %w: more than %d documents", ErrLimit, MaxDocuments)
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			continue
		}
		w.doc = i
		if err := w.object(doc.Content[0], "", 0, ""); err != nil {
			return nil, err
		}
	}
	return w.result(), nil
}

// decode guards against a panic in the YAML library, which must not take
// the caller down on hostile input.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: malformed input (%v)", r)
		}
	}()
	return dec.Decode(n)
}

// ---------------------------------------------------------------------------
// The walk.

type found struct {
	Image
	col int
}

type walker struct {
	merge bool // honour YAML merge keys (not in JSON)
	doc   int
	steps int
	out   []found
}

func (w *walker) result() []Image {
	// Order by document, then by position of the image value.
	sort.SliceStable(w.out, func(i, j int) bool {
		a, b := w.out[i], w.out[j]
		if a.Document != b.Document {
			return a.Document < b.Document
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.col < b.col
	})
	images := make([]Image, len(w.out))
	for i, f := range w.out {
		images[i] = f.Image
	}
	return images
}

func (w *walker) step() error {
	w.steps--
	if w.steps < 0 {
		return fmt.Errorf("k8simages: %w: manifests too complex (aliases expand to too much)", ErrLimit)
	}
	return nil
}

func resolve(n *yaml.Node) *yaml.Node {
	// An alias never points at another alias; the bound is only a guard.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// keyString is the string a mapping key stands for once the manifest is
// converted to JSON (as kubectl does): a !!binary key is its decoded
// value.
func keyString(k *yaml.Node) string {
	if k.ShortTag() == "!!binary" {
		if b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(k.Value), "")); err == nil {
			return string(b)
		}
	}
	return k.Value
}

func same(a, b *yaml.Node) bool {
	a, b = resolve(a), resolve(b)
	if a == b {
		return true
	}
	return a != nil && b != nil && a.Kind == yaml.ScalarNode && b.Kind == yaml.ScalarNode &&
		a.ShortTag() == b.ShortTag() && a.Value == b.Value
}

// lookup returns the value of key in mapping m (resolved, nil if absent),
// following merge keys. If key is also defined through merge keys with a
// different value, lookup fails when strict; otherwise the direct
// definition wins, then the first merged one (the YAML merge-key rule).
func (w *walker) lookup(m *yaml.Node, key string, strict bool) (*yaml.Node, error) {
	var vals []*yaml.Node
	if err := w.collect(m, key, 0, &vals); err != nil {
		return nil, err
	}
	if len(vals) == 0 {
		return nil, nil
	}
	if !strict {
		return resolve(vals[0]), nil
	}
	for _, v := range vals[1:] {
		if !same(vals[0], v) {
			return nil, fmt.Errorf("k8simages: document %d, line %d: %q is defined more than once in one mapping (directly or through merge keys) with different values, lines %d and %d",
				w.doc, m.Line, key, line(vals[0]), line(v))
		}
	}
	return resolve(vals[0]), nil
}

func line(n *yaml.Node) int {
	if r := resolve(n); r != nil {
		return r.Line
	}
	return n.Line
}

func (w *walker) collect(m *yaml.Node, key string, depth int, vals *[]*yaml.Node) error {
	if depth > maxMergeDepth {
		return fmt.Errorf("k8simages: %w: merge keys nested more than %d deep (line %d)", ErrLimit, maxMergeDepth, m.Line)
	}
	var direct *yaml.Node
	var merged []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if err := w.step(); err != nil {
			return err
		}
		k := resolve(m.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			continue
		}
		v := m.Content[i+1]
		if w.merge && k.ShortTag() == "!!merge" {
			src := resolve(v)
			var maps []*yaml.Node
			switch {
			case src != nil && src.Kind == yaml.MappingNode:
				maps = []*yaml.Node{src}
			case src != nil && src.Kind == yaml.SequenceNode:
				for _, e := range src.Content {
					e := resolve(e)
					if e == nil || e.Kind != yaml.MappingNode {
						return fmt.Errorf("k8simages: document %d, line %d: merge key value must be a mapping or a list of mappings", w.doc, k.Line)
					}
					maps = append(maps, e)
				}
			default:
				return fmt.Errorf("k8simages: document %d, line %d: merge key value must be a mapping or a list of mappings", w.doc, k.Line)
			}
			for _, mm := range maps {
				if err := w.collect(mm, key, depth+1, &merged); err != nil {
					return err
				}
			}
			continue
		}
		if keyString(k) != key {
			continue
		}
		if direct != nil {
			return fmt.Errorf("k8simages: document %d, line %d: duplicate key %q", w.doc, k.Line, key)
		}
		direct = v
	}
	if direct != nil {
		*vals = append(*vals, direct)
	}
	*vals = append(*vals, merged...)
	return nil
}

// field returns the value of key in mapping m, or nil if it is absent or
// null. Keys that decide which images are found are read strictly.
func (w *walker) field(m *yaml.Node, key string) (*yaml.Node, error) {
	strict := true
	switch key {
	case "name", "namespace", "metadata":
		strict = false
	}
	v, err := w.lookup(m, key, strict)
	if err != nil || isNull(v) {
		return nil, err
	}
	return v, nil
}

// mapping returns the mapping at key in m, nil if absent or null.
func (w *walker) mapping(m *yaml.Node, key, path string) (*yaml.Node, error) {
	v, err := w.field(m, key)
	if err != nil || v == nil {
		return nil, err
	}
	if v.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("k8simages: document %d, line %d: %s is not a mapping", w.doc, v.Line, path)
	}
	return v, nil
}

// str returns the string value of key in m, "" if absent or null.
func (w *walker) str(m *yaml.Node, key string) (string, *yaml.Node, error) {
	v, err := w.field(m, key)
	if err != nil || v == nil {
		return "", nil, err
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		return "", v, fmt.Errorf("k8simages: document %d, line %d: %s is not a string", w.doc, v.Line, key)
	}
	return v.Value, v, nil
}

// workloadKind is a kind whose objects hold a pod spec.
type workloadKind struct {
	group string   // its API group, "" for the core group
	path  []string // the fields that lead to its pod spec
}

// workloads are the kinds the package reads: the one list of where each
// kind keeps its pod spec (the admission webhook reads it too).
var workloads = map[string]workloadKind{
	"Pod":                   {"", []string{"spec"}},
	"PodTemplate":           {"", []string{"template", "spec"}},
	"ReplicationController": {"", []string{"spec", "template", "spec"}},
	"Deployment":            {"apps", []string{"spec", "template", "spec"}},
	"StatefulSet":           {"apps", []string{"spec", "template", "spec"}},
	"DaemonSet":             {"apps", []string{"spec", "template", "spec"}},
	"ReplicaSet":            {"apps", []string{"spec", "template", "spec"}},
	"Job":                   {"batch", []string{"spec", "template", "spec"}},
	"CronJob":               {"batch", []string{"spec", "jobTemplate", "spec", "template", "spec"}},
}

// Group returns the API group ("" for the core group) of a kind the
// package reads, and false for any other kind.
func Group(kind string) (string, bool) {
	k, ok := workloads[kind]
	return k.group, ok
}

// object reads one Kubernetes object; defaultKind is the kind of the items
// of a typed list (PodList, …), which may leave it out; ptr is the JSON
// pointer of the object in its document ("" for the document itself).
func (w *walker) object(n *yaml.Node, defaultKind string, depth int, ptr string) error {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	kind := defaultKind
	kn, err := w.field(n, "kind")
	if err != nil {
		return err
	}
	if kn != nil {
		if kn.Kind != yaml.ScalarNode {
			return nil
		}
		kind = kn.Value
	}
	if wk, ok := workloads[kind]; ok {
		return w.workload(n, kind, wk.path, ptr)
	}
	itemKind, isList := strings.CutSuffix(kind, "List")
	if _, known := workloads[itemKind]; !isList || itemKind != "" && !known {
		return nil
	}
	if depth >= MaxListDepth {
		return fmt.Errorf("k8simages: %w: Lists nested more than %d deep (document %d, line %d)", ErrLimit, MaxListDepth, w.doc, n.Line)
	}
	items, err := w.field(n, "items")
	if err != nil || items == nil {
		return err
	}
	if items.Kind != yaml.SequenceNode {
		return fmt.Errorf("k8simages: document %d, line %d: %s items is not a list", w.doc, items.Line, kind)
	}
	for i, it := range items.Content {
		if err := w.step(); err != nil {
			return err
		}
		if err := w.object(it, itemKind, depth+1, ptr+"/items/"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) workload(n *yaml.Node, kind string, path []string, ptr string) error {
	var name, namespace string
	meta, err := w.mapping(n, "metadata", "metadata")
	if err != nil {
		return err
	}
	if meta != nil {
		if name, _, err = w.str(meta, "name"); err != nil {
			return err
		}
		if namespace, _, err = w.str(meta, "namespace"); err != nil {
			return err
		}
	}
	spec := n
	for i, key := range path {
		spec, err = w.mapping(spec, key, strings.Join(path[:i+1], "."))
		if err != nil || spec == nil {
			return err
		}
	}
	where := strings.Join(path, ".")
	ptr += "/" + strings.Join(path, "/")
	pull, sa, err := w.pullSecrets(spec, where)
	if err != nil {
		return err
	}
	for _, list := range []struct {
		key             string
		init, ephemeral bool
	}{{"initContainers", true, false}, {"containers", false, false}, {"ephemeralContainers", false, true}} {
		seq, err := w.field(spec, list.key)
		if err != nil {
			return err
		}
		if seq == nil {
			continue
		}
		if seq.Kind != yaml.SequenceNode {
			return fmt.Errorf("k8simages: document %d, line %d: %s.%s is not a list", w.doc, seq.Line, where, list.key)
		}
		for i, c := range seq.Content {
			if err := w.step(); err != nil {
				return err
			}
			c := resolve(c)
			if c == nil || c.Kind != yaml.MappingNode {
				return fmt.Errorf("k8simages: document %d, line %d: %s.%s[%d] is not a mapping", w.doc, seq.Line, where, list.key, i)
			}
			cname, _, err := w.str(c, "name")
			if err != nil {
				return err
			}
			ref, img, err := w.str(c, "image")
			if err != nil {
				return err
			}
			if ref == "" {
				return fmt.Errorf("k8simages: document %d, line %d: %s %q: container %q (%s[%d]) has an empty image",
					w.doc, c.Line, kind, name, cname, list.key, i)
			}
			w.out = append(w.out, found{Image{
				Ref: ref, Kind: kind, Namespace: namespace, Name: name, Container: cname,
				InitContainer: list.init, EphemeralContainer: list.ephemeral,
				Document: w.doc, Line: img.Line,
				Path:        ptr + "/" + list.key + "/" + strconv.Itoa(i) + "/image",
				PullSecrets: pull, ServiceAccount: sa,
			}, img.Column})
		}
	}
	return w.volumes(spec, kind, namespace, name, where, ptr, pull, sa)
}

// pullSecrets reads the names of a pod spec's imagePullSecrets and its
// service account (serviceAccountName, or the deprecated serviceAccount
// when that is all it has).
func (w *walker) pullSecrets(spec *yaml.Node, where string) ([]string, string, error) {
	sa, _, err := w.str(spec, "serviceAccountName")
	if err != nil {
		return nil, "", err
	}
	if sa == "" {
		if sa, _, err = w.str(spec, "serviceAccount"); err != nil {
			return nil, "", err
		}
	}
	seq, err := w.field(spec, "imagePullSecrets")
	if err != nil || seq == nil {
		return nil, sa, err
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, "", fmt.Errorf("k8simages: document %d, line %d: %s.imagePullSecrets is not a list", w.doc, seq.Line, where)
	}
	var names []string
	for i, r := range seq.Content {
		if err := w.step(); err != nil {
			return nil, "", err
		}
		r := resolve(r)
		if r == nil || r.Kind != yaml.MappingNode {
			return nil, "", fmt.Errorf("k8simages: document %d, line %d: %s.imagePullSecrets[%d] is not a mapping", w.doc, seq.Line, where, i)
		}
		n, _, err := w.str(r, "name")
		if err != nil {
			return nil, "", err
		}
		if n != "" {
			names = append(names, n)
		}
	}
	return names, sa, nil
}

// volumes adds the image volumes of a pod spec: spec.volumes[].image.reference
// is an image the kubelet pulls, as a container's image is.
func (w *walker) volumes(spec *yaml.Node, kind, namespace, name, where, ptr string, pull []string, sa string) error {
	seq, err := w.field(spec, "volumes")
	if err != nil || seq == nil || isNull(seq) {
		return err
	}
	if seq.Kind != yaml.SequenceNode {
		return fmt.Errorf("k8simages: document %d, line %d: %s.volumes is not a list", w.doc, seq.Line, where)
	}
	for i, v := range seq.Content {
		if err := w.step(); err != nil {
			return err
		}
		v := resolve(v)
		if v == nil || v.Kind != yaml.MappingNode {
			return fmt.Errorf("k8simages: document %d, line %d: %s.volumes[%d] is not a mapping", w.doc, seq.Line, where, i)
		}
		src, err := w.mapping(v, "image", where+".volumes.image")
		if err != nil {
			return err
		}
		if src == nil {
			continue
		}
		vname, _, err := w.str(v, "name")
		if err != nil {
			return err
		}
		ref, img, err := w.str(src, "reference")
		if err != nil {
			return err
		}
		if ref == "" {
			return fmt.Errorf("k8simages: document %d, line %d: %s %q: image volume %q (volumes[%d]) has an empty reference",
				w.doc, src.Line, kind, name, vname, i)
		}
		w.out = append(w.out, found{Image{
			Ref: ref, Kind: kind, Namespace: namespace, Name: name, Volume: vname,
			Document: w.doc, Line: img.Line,
			Path:        ptr + "/volumes/" + strconv.Itoa(i) + "/image/reference",
			PullSecrets: pull, ServiceAccount: sa,
		}, img.Column})
	}
	return nil
}

// ---------------------------------------------------------------------------
// JSON streams.

func looksLikeJSON(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

// jsonDocuments parses a stream of JSON values into yaml nodes carrying
// the line and column of each value.
func jsonDocuments(data []byte) ([]*yaml.Node, error) {
	// A byte order mark shifts columns on line 1 only; lines are right.
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	for i, b := range data {
		if b == '\n' {
			p.newlines = append(p.newlines, i)
		}
	}
	var docs []*yaml.Node
	for {
		tok, err := p.dec.Token()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(docs) == MaxDocuments {
			return nil, fmt.Errorf("k8simages: %w: more than %d documents", ErrLimit, MaxDocuments)
		}
		p.values = 0
		n, err := p.value(tok, 0)
		if err != nil {
			return nil, err
		}
		docs = append(docs, n)
	}
}

type jsonParser struct {
	values   int // in the current document
	dec      *json.Decoder
	newlines []int // offsets of '\n'
}

// pos returns the line and column of the last byte of the token just read.
func (p *jsonParser) pos() (int, int) {
	off := int(p.dec.InputOffset()) - 1
	i := sort.SearchInts(p.newlines, off) // newlines before off
	start := 0
	if i > 0 {
		start = p.newlines[i-1] + 1
	}
	return i + 1, off - start + 1
}

func (p *jsonParser) value(tok json.Token, depth int) (*yaml.Node, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("k8simages: %w: JSON nested more than %d deep", ErrLimit, maxJSONDepth)
	}
	if p.values++; p.values > MaxValues {
		return nil, fmt.Errorf("k8simages: %w: a document has more than %d values", ErrLimit, MaxValues)
	}
	line, col := p.pos()
	n := &yaml.Node{Line: line, Column: col}
	switch t := tok.(type) {
	case json.Delim:
		closing := json.Delim('}')
		n.Kind, n.Tag = yaml.MappingNode, "!!map"
		if t == '[' {
			closing = ']'
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for p.dec.More() {
			if n.Kind == yaml.MappingNode {
				kt, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				k, err := p.value(kt, depth+1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k)
			}
			vt, err := p.dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := p.value(vt, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		end, err := p.dec.Token()
		if err != nil {
			return nil, err
		}
		if end != closing {
			return nil, fmt.Errorf("unexpected %v", end)
		}
	case string:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", t
	case json.Number:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", t.String()
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", fmt.Sprint(t)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	default:
		return nil, fmt.Errorf("unexpected JSON token %v", t)
	}
	return n, nil
}
