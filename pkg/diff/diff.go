// Package diff compares two container images level by level: the manifest
// (media types, an index's platforms), the config (entrypoint, cmd, env,
// user, working dir, ports, labels, volumes, history), the layer list
// (digests and diff IDs: added, removed, reordered, re-encoded) and the
// final file tree a runtime would build, after whiteouts and opaque
// directories: every path's type, mode, owner, size, content digest, link
// target and xattrs. Indexes are compared platform by platform.
//
// Images are read through an oci.Client, so a registry, an OCI layout and
// an archive of one (see package imagesrc) are read alike, with every
// digest checked. Reading is bounded: layers both sides share at the
// bottom of the stack are never downloaded; every other layer streams
// once, decompressed on the fly and hashed as it passes, nothing is written
// to disk, and memory grows with the number of files, never their size.
// Hostile layers (paths climbing out, long names, too many entries,
// decompression bombs) fail with ErrHostileLayer.
package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgsign/imgsign/pkg/oci"
	"golang.org/x/sync/errgroup"
)

// Side is one of the two images compared.
type Side struct {
	// Name is how the user named it (for the report).
	Name string
	// Client reads it: from a registry, or a layout through its transport.
	Client *oci.Client
	// Ref is the image or index; a digest reference reads exactly that.
	Ref name.Reference
}

// Level is one level of comparison.
type Level string

// Levels, from the outside in.
const (
	LevelManifest Level = "manifest"
	LevelConfig   Level = "config"
	LevelLayers   Level = "layers"
	LevelFiles    Level = "files"
)

// AllLevels lists every level in report order.
var AllLevels = []Level{LevelManifest, LevelConfig, LevelLayers, LevelFiles}

// Options choose what is compared and what counts as a difference.
type Options struct {
	// Levels to compare; empty means all.
	Levels []Level
	// PerLayer also compares the layers at each position file by file.
	PerLayer bool
	// Platform, for an index, compares that platform only; it also picks
	// the manifest of an index compared with a single image.
	Platform *v1.Platform
	// IgnoreTimestamps ignores file mtimes and the config's dates.
	IgnoreTimestamps bool
	// IgnoreHistory ignores the config's history.
	IgnoreHistory bool
	// Ignore are path globs (path.Match) whose paths, and everything under
	// them, are not compared.
	Ignore []string
	// Semantic treats layers with the same files as equal whatever their
	// encoding (compression, tar layout).
	Semantic bool
	// Jobs is how many layers are read at once; 0 means DefaultJobs.
	Jobs int
	// Limits bound what is read; zero fields take the defaults.
	Limits Limits
}

func (o *Options) wants(l Level) bool { return len(o.Levels) == 0 || slices.Contains(o.Levels, l) }

// Report is the result of a comparison.
type Report struct {
	A SideReport `json:"a"`
	B SideReport `json:"b"`
	// Levels compared.
	Levels []Level `json:"levels"`
	// Counts is the number of differences per level.
	Counts map[Level]int `json:"counts"`
	// Manifest lists differences of the top-level manifests (media type,
	// an index's platforms and annotations).
	Manifest []Difference `json:"manifest,omitempty"`
	// Images compares each pair of image manifests: one, or one per
	// platform of two indexes.
	Images []ImageReport `json:"images"`
	// Reads records every layer read, per side.
	Reads []LayerRead `json:"layersRead"`
}

// SideReport describes one side.
type SideReport struct {
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// SignedBy is filled by callers that verified the side first.
	SignedBy []string `json:"signedBy,omitempty"`
}

// Different reports whether any difference was found at the levels asked.
func (r *Report) Different() bool {
	for _, n := range r.Counts {
		if n > 0 {
			return true
		}
	}
	return false
}

// Difference is a field that differs.
type Difference struct {
	Field string `json:"field"`
	A     any    `json:"a,omitempty"`
	B     any    `json:"b,omitempty"`
}

// ImageReport compares two image manifests.
type ImageReport struct {
	Platform string            `json:"platform,omitempty"`
	A        string            `json:"a"`
	B        string            `json:"b"`
	Manifest []Difference      `json:"manifest,omitempty"`
	Config   []Difference      `json:"config,omitempty"`
	Layers   []LayerDifference `json:"layers,omitempty"`
	Files    []FileDifference  `json:"files,omitempty"`
	// PerLayer, with Options.PerLayer, compares position by position.
	PerLayer []LayerFiles `json:"perLayer,omitempty"`
}

// LayerInfo describes a layer of one side.
type LayerInfo struct {
	Index     int    `json:"index"`
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID,omitempty"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// LayerDifference is a layer added, removed, moved, or differing only in
// its encoding (the same files, compressed or packed otherwise).
type LayerDifference struct {
	Kind string     `json:"kind"`
	A    *LayerInfo `json:"a,omitempty"`
	B    *LayerInfo `json:"b,omitempty"`
	// Counted is false for a difference the options say to accept
	// (an encoding difference with Semantic).
	Counted bool   `json:"counted"`
	Note    string `json:"note,omitempty"`
}

// LayerFiles compares the layers at one position file by file.
type LayerFiles struct {
	Index int              `json:"index"`
	Files []FileDifference `json:"files"`
}

// Compare compares a and b at the levels o asks for. Both sides are read
// concurrently.
func Compare(ctx context.Context, a, b Side, o Options) (*Report, error) {
	o.Limits = o.Limits.orDefault()
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	levels := o.Levels
	if len(levels) == 0 {
		levels = AllLevels
	}
	r := &Report{A: SideReport{Name: a.Name}, B: SideReport{Name: b.Name}, Levels: levels, Counts: map[Level]int{}}
	for _, l := range levels {
		r.Counts[l] = 0
	}
	var ra, rb *oci.Resolved
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { ra, err = a.Client.Resolve(gctx, a.Ref); return })
	g.Go(func() (err error) { rb, err = b.Client.Resolve(gctx, b.Ref); return })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	r.A.Digest, r.A.MediaType = ra.Descriptor.Digest.String(), string(ra.Descriptor.MediaType)
	r.B.Digest, r.B.MediaType = rb.Descriptor.Digest.String(), string(rb.Descriptor.MediaType)
	c := &comparer{o: o, r: r, a: a, b: b, ignored: globMatcher(o.Ignore)}
	pairs, err := c.pairs(ctx, ra, rb)
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		ir, err := c.image(ctx, p)
		if err != nil {
			return nil, err
		}
		r.Images = append(r.Images, *ir)
	}
	if o.wants(LevelManifest) {
		r.Counts[LevelManifest] += len(r.Manifest)
	} else {
		r.Manifest = nil
	}
	return r, nil
}

type comparer struct {
	o       Options
	r       *Report
	a, b    Side
	ignored func(string) bool
	mu      sync.Mutex
}

// pair is two image manifests to compare.
type pair struct {
	platform string
	a, b     v1.Descriptor
}

// pairs returns the image manifests to compare and records the top-level
// manifest differences.
func (c *comparer) pairs(ctx context.Context, ra, rb *oci.Resolved) ([]pair, error) {
	ma, mb := ra.Descriptor.MediaType, rb.Descriptor.MediaType
	if ma != mb {
		c.r.Manifest = append(c.r.Manifest, Difference{Field: "mediaType", A: ma, B: mb})
	}
	switch {
	case ma.IsIndex() && mb.IsIndex():
		ia, err := v1.ParseIndexManifest(bytes.NewReader(ra.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed index: %w", c.a.Name, err)
		}
		ib, err := v1.ParseIndexManifest(bytes.NewReader(rb.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed index: %w", c.b.Name, err)
		}
		if !maps.Equal(ia.Annotations, ib.Annotations) {
			c.r.Manifest = append(c.r.Manifest, Difference{Field: "annotations", A: ia.Annotations, B: ib.Annotations})
		}
		pa, pb := platforms(ia), platforms(ib)
		var out []pair
		for _, k := range slices.Sorted(maps.Keys(pa)) {
			if c.o.Platform != nil && !pa[k].Platform.Satisfies(*c.o.Platform) {
				continue
			}
			if db, ok := pb[k]; ok {
				out = append(out, pair{platform: k, a: pa[k], b: db})
			} else if c.o.Platform == nil {
				c.r.Manifest = append(c.r.Manifest, Difference{Field: "platform " + k, A: pa[k].Digest.String()})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(pb)) {
			if _, ok := pa[k]; !ok && c.o.Platform == nil {
				c.r.Manifest = append(c.r.Manifest, Difference{Field: "platform " + k, B: pb[k].Digest.String()})
			}
		}
		if c.o.Platform != nil && len(out) == 0 {
			return nil, fmt.Errorf("platform %s: %w in both indexes", c.o.Platform, oci.ErrNotFound)
		}
		return out, nil
	case ma.IsIndex() || mb.IsIndex():
		if c.o.Platform == nil {
			return nil, fmt.Errorf("one side is an index and the other a single image: choose the index's platform to compare with --platform")
		}
		da, db := ra.Descriptor, rb.Descriptor
		var err error
		if ma.IsIndex() {
			da, err = ra.PlatformManifest(*c.o.Platform)
		} else {
			db, err = rb.PlatformManifest(*c.o.Platform)
		}
		if err != nil {
			return nil, err
		}
		return []pair{{platform: c.o.Platform.String(), a: da, b: db}}, nil
	case ma.IsImage() && mb.IsImage():
		return []pair{{a: ra.Descriptor, b: rb.Descriptor}}, nil
	}
	return nil, fmt.Errorf("cannot compare media types %q and %q: not image manifests or indexes", ma, mb)
}

// platforms maps an index's image manifests by platform, leaving out
// attestation manifests (platform unknown/unknown).
func platforms(idx *v1.IndexManifest) map[string]v1.Descriptor {
	out := map[string]v1.Descriptor{}
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || !m.MediaType.IsImage() {
			continue
		}
		if _, dup := out[m.Platform.String()]; !dup {
			out[m.Platform.String()] = m
		}
	}
	return out
}

// loaded is one side's image manifest and config.
type loaded struct {
	m   *v1.Manifest
	cfg *v1.ConfigFile
}

func (c *comparer) load(ctx context.Context, s Side, d v1.Descriptor) (*loaded, error) {
	ref := s.Ref.Context().Digest(d.Digest.String())
	res, err := s.Client.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(res.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: malformed manifest: %w", ref, err)
	}
	if len(m.Layers) > oci.MaxDeepBlobs {
		return nil, fmt.Errorf("%s: %w: %d layers", ref, oci.ErrTooMany, len(m.Layers))
	}
	if m.Config.Size > c.o.Limits.MaxConfigBytes {
		return nil, fmt.Errorf("%s: config of %d bytes (limit %d)", ref, m.Config.Size, c.o.Limits.MaxConfigBytes)
	}
	rc, err := s.Client.OpenBlob(ctx, ref.Context(), m.Config)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", ref, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: malformed config: %w", ref, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: the config lists %d diff IDs for %d layers", ref, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	return &loaded{m: m, cfg: cfg}, nil
}

// image compares one pair of image manifests.
func (c *comparer) image(ctx context.Context, p pair) (*ImageReport, error) {
	ir := &ImageReport{Platform: p.platform, A: p.a.Digest.String(), B: p.b.Digest.String()}
	var la, lb *loaded
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { la, err = c.load(gctx, c.a, p.a); return })
	g.Go(func() (err error) { lb, err = c.load(gctx, c.b, p.b); return })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if c.o.wants(LevelManifest) {
		ir.Manifest = manifestDiffs(la.m, lb.m)
		c.r.Counts[LevelManifest] += len(ir.Manifest)
	}
	if c.o.wants(LevelConfig) {
		ir.Config = configDiffs(la.cfg, lb.cfg, c.o)
		c.r.Counts[LevelConfig] += len(ir.Config)
	}
	infosA, infosB := layerInfos(la), layerInfos(lb)
	// The shared base: the bottom layers both sides have, in order.
	base := 0
	for base < len(infosA) && base < len(infosB) && infosA[base].Digest == infosB[base].Digest && infosA[base].DiffID == infosB[base].DiffID {
		base++
	}
	needFiles := c.o.wants(LevelFiles) || c.o.PerLayer || c.o.Semantic
	var idxA, idxB []*layerIndex
	if needFiles {
		var err error
		if idxA, idxB, err = c.readLayers(ctx, la, lb, base); err != nil {
			return nil, err
		}
	}
	if c.o.wants(LevelLayers) {
		ir.Layers = c.layerDiffs(infosA, infosB, idxA, idxB, base)
		for _, d := range ir.Layers {
			if d.Counted {
				c.r.Counts[LevelLayers]++
			}
		}
	}
	co := compareOptions{ignoreTimestamps: c.o.IgnoreTimestamps, ignored: c.ignored}
	if c.o.wants(LevelFiles) {
		ta, tb := buildTree(idxA[base:]), buildTree(idxB[base:])
		ta.noBase, tb.noBase = base == 0, base == 0
		ir.Files = compareTrees(ta, tb, co)
		c.r.Counts[LevelFiles] += len(ir.Files)
	}
	if c.o.PerLayer {
		for i := base; i < max(len(idxA), len(idxB)); i++ {
			ta, tb := emptyTree(), emptyTree()
			ta.noBase, tb.noBase = true, true
			if i < len(idxA) {
				ta = layerTree(idxA[i])
			}
			if i < len(idxB) {
				tb = layerTree(idxB[i])
			}
			files := compareTrees(ta, tb, co)
			for j := range files {
				files[j].Note = "" // within one layer there is no shared base
			}
			if len(files) > 0 {
				ir.PerLayer = append(ir.PerLayer, LayerFiles{Index: i, Files: files})
			}
		}
	}
	return ir, nil
}

func emptyTree() *tree {
	return &tree{files: map[string]*Entry{}, removed: map[string]bool{}, opaque: map[string]bool{}}
}

// readLayers reads the layers of both sides above the shared base, both
// sides at once and at most Jobs layers at a time. A layer both sides have
// (same digest) is read once.
func (c *comparer) readLayers(ctx context.Context, la, lb *loaded, base int) ([]*layerIndex, []*layerIndex, error) {
	idxA := make([]*layerIndex, len(la.m.Layers))
	idxB := make([]*layerIndex, len(lb.m.Layers))
	type job struct {
		side   Side
		name   string
		desc   v1.Descriptor
		diffID v1.Hash
		budget *entryBudget
		dst    []*[]*layerIndex
		at     []int
	}
	var jobs []*job
	byDigest := map[v1.Hash]*job{}
	budgetA, budgetB := &entryBudget{left: c.o.Limits.MaxEntries}, &entryBudget{left: c.o.Limits.MaxEntries}
	add := func(s Side, nm string, l *loaded, dst *[]*layerIndex, budget *entryBudget) {
		for i := base; i < len(l.m.Layers); i++ {
			d := l.m.Layers[i]
			if j, ok := byDigest[d.Digest]; ok && j.diffID == l.cfg.RootFS.DiffIDs[i] {
				j.dst, j.at = append(j.dst, dst), append(j.at, i)
				continue
			}
			j := &job{side: s, name: nm, desc: d, diffID: l.cfg.RootFS.DiffIDs[i], budget: budget, dst: []*[]*layerIndex{dst}, at: []int{i}}
			byDigest[d.Digest] = j
			jobs = append(jobs, j)
		}
	}
	add(c.a, "a", la, &idxA, budgetA)
	add(c.b, "b", lb, &idxB, budgetB)
	// Interleave the sides so both are read at once.
	var ja, jb []*job
	for _, j := range jobs {
		if j.name == "a" {
			ja = append(ja, j)
		} else {
			jb = append(jb, j)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Jobs)
	for _, j := range interleave(ja, jb) {
		g.Go(func() error {
			li, err := readLayer(gctx, j.side.Client, j.side.Ref.Context(), j.desc, j.diffID, c.o.Limits, j.budget, &c.mu)
			if err != nil {
				return fmt.Errorf("%s: %w", j.side.Name, err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			for k, dst := range j.dst {
				(*dst)[j.at[k]] = li
			}
			c.r.Reads = append(c.r.Reads, LayerRead{Side: j.name, Digest: j.desc.Digest.String(), Compressed: li.Compressed, Uncompressed: li.Uncompressed, Entries: len(li.entries)})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(c.r.Reads, func(x, y LayerRead) int {
		if x.Side != y.Side {
			return cmpString(x.Side, y.Side)
		}
		return cmpString(x.Digest, y.Digest)
	})
	return idxA, idxB, nil
}

// interleave orders jobs a, b, a, b, ... so both sides progress together.
func interleave[T any](a, b []T) []T {
	out := make([]T, 0, len(a)+len(b))
	for i := 0; i < max(len(a), len(b)); i++ {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func layerInfos(l *loaded) []LayerInfo {
	out := make([]LayerInfo, len(l.m.Layers))
	for i, d := range l.m.Layers {
		out[i] = LayerInfo{Index: i, Digest: d.Digest.String(), DiffID: l.cfg.RootFS.DiffIDs[i].String(), MediaType: string(d.MediaType), Size: d.Size}
	}
	return out
}

// layerDiffs compares the layer lists. Layers are matched by diff ID (their
// uncompressed content): one only in A is removed, only in B added, in
// both at other positions reordered. At one position, two layers with
// other content but the same files (both read) differ in encoding only.
func (c *comparer) layerDiffs(a, b []LayerInfo, idxA, idxB []*layerIndex, base int) []LayerDifference {
	var out []LayerDifference
	posA, posB := map[string][]int{}, map[string][]int{}
	for i, l := range a {
		posA[l.DiffID] = append(posA[l.DiffID], i)
	}
	for i, l := range b {
		posB[l.DiffID] = append(posB[l.DiffID], i)
	}
	sameFiles := func(i int) bool {
		return idxA != nil && i < len(idxA) && i < len(idxB) && idxA[i] != nil && idxB[i] != nil && sameEntries(idxA[i], idxB[i], c.o.IgnoreTimestamps)
	}
	for i := base; i < max(len(a), len(b)); i++ {
		switch {
		case i < len(a) && i < len(b) && a[i].DiffID == b[i].DiffID:
			if a[i].Digest != b[i].Digest || a[i].MediaType != b[i].MediaType {
				out = append(out, LayerDifference{Kind: KindEncoding, A: &a[i], B: &b[i], Counted: !c.o.Semantic, Note: "same uncompressed content, other compression"})
			}
			continue
		case sameFiles(i):
			out = append(out, LayerDifference{Kind: KindEncoding, A: &a[i], B: &b[i], Counted: !c.o.Semantic, Note: "same files, packed otherwise"})
			continue
		}
		if i < len(a) && i < len(b) && len(posB[a[i].DiffID]) == 0 && len(posA[b[i].DiffID]) == 0 {
			out = append(out, LayerDifference{Kind: KindChanged, A: &a[i], B: &b[i], Counted: true})
			continue
		}
		if i < len(a) {
			if js := posB[a[i].DiffID]; len(js) > 0 {
				out = append(out, LayerDifference{Kind: KindReordered, A: &a[i], B: &b[js[0]], Counted: true})
			} else {
				out = append(out, LayerDifference{Kind: KindRemoved, A: &a[i], Counted: true})
			}
		}
		if i < len(b) && len(posA[b[i].DiffID]) == 0 {
			out = append(out, LayerDifference{Kind: KindAdded, B: &b[i], Counted: true})
		}
	}
	return out
}

// sameEntries reports whether two layers hold the same entries, whatever
// their order (and mtimes, when timestamps are ignored).
func sameEntries(a, b *layerIndex, ignoreTimestamps bool) bool {
	if len(a.entries) != len(b.entries) {
		return false
	}
	m := make(map[string]*Entry, len(a.entries))
	for _, e := range a.entries {
		m[e.Path] = e
	}
	for _, e := range b.entries {
		x, ok := m[e.Path]
		if !ok || len(changedFields(x, e, ignoreTimestamps)) > 0 {
			return false
		}
	}
	return true
}

// manifestDiffs compares two image manifests, other than their layers.
func manifestDiffs(a, b *v1.Manifest) []Difference {
	var out []Difference
	if a.MediaType != b.MediaType {
		out = append(out, Difference{Field: "mediaType", A: a.MediaType, B: b.MediaType})
	}
	if a.Config.MediaType != b.Config.MediaType {
		out = append(out, Difference{Field: "config.mediaType", A: a.Config.MediaType, B: b.Config.MediaType})
	}
	if !maps.Equal(a.Annotations, b.Annotations) {
		out = append(out, Difference{Field: "annotations", A: a.Annotations, B: b.Annotations})
	}
	return out
}

// configDiffs compares the fields of two configs a user would care about.
func configDiffs(a, b *v1.ConfigFile, o Options) []Difference {
	var out []Difference
	cmp := func(field string, x, y any) {
		if !reflect.DeepEqual(x, y) && !(isEmpty(x) && isEmpty(y)) {
			out = append(out, Difference{Field: field, A: x, B: y})
		}
	}
	cmp("os", a.OS, b.OS)
	cmp("architecture", a.Architecture, b.Architecture)
	cmp("variant", a.Variant, b.Variant)
	cmp("entrypoint", a.Config.Entrypoint, b.Config.Entrypoint)
	cmp("cmd", a.Config.Cmd, b.Config.Cmd)
	cmp("env", a.Config.Env, b.Config.Env)
	cmp("user", a.Config.User, b.Config.User)
	cmp("workingDir", a.Config.WorkingDir, b.Config.WorkingDir)
	cmp("exposedPorts", slices.Sorted(maps.Keys(a.Config.ExposedPorts)), slices.Sorted(maps.Keys(b.Config.ExposedPorts)))
	cmp("labels", a.Config.Labels, b.Config.Labels)
	cmp("volumes", slices.Sorted(maps.Keys(a.Config.Volumes)), slices.Sorted(maps.Keys(b.Config.Volumes)))
	cmp("stopSignal", a.Config.StopSignal, b.Config.StopSignal)
	cmp("healthcheck", a.Config.Healthcheck, b.Config.Healthcheck)
	if !o.IgnoreTimestamps {
		cmp("created", a.Created.UTC(), b.Created.UTC())
	}
	if !o.IgnoreHistory {
		ha, hb := history(a.History, o), history(b.History, o)
		cmp("history", ha, hb)
	}
	return out
}

// history returns h as compared: without dates when timestamps are ignored.
func history(h []v1.History, o Options) []v1.History {
	out := slices.Clone(h)
	if o.IgnoreTimestamps {
		for i := range out {
			out[i].Created = v1.Time{}
		}
	}
	return out
}

func isEmpty(x any) bool {
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// MarshalIndent is the JSON form of a report.
func (r *Report) MarshalIndent() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }
