package lora

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// loraInfo is the fixture's lora_info.json.
type loraInfo struct {
	R             int      `json:"r"`
	LoraAlpha     float64  `json:"lora_alpha"`
	Scale         float64  `json:"scale"`
	TargetModules []string `json:"target_modules"`
	NTensors      int      `json:"n_lora_tensors"`
}

// expectedTargets derives, from the model's config, every UNet module the
// fixture LoRA's target_modules name (peft matches a module whose name ends
// with ".<target>").
func expectedTargets(t *testing.T, cfg sdxl.Config, targetModules []string) []string {
	t.Helper()
	ps, err := sdxl.UNetParams(cfg.UNet)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range ps {
		m, ok := strings.CutSuffix(p.Name, ".weight")
		if !ok {
			continue
		}
		for _, tm := range targetModules {
			if strings.HasSuffix(m, "."+tm) {
				want = append(want, LayerKey(sdxl.UNet, m))
			}
		}
	}
	sort.Strings(want)
	return want
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestFourFormatsAgree loads the same LoRA in its four spellings and checks
// they give the same layers, the same factors, and the scales the reference
// loads them with.
func TestFourFormatsAgree(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	var info loraInfo
	readJSON(t, filepath.Join(root, "lora", "lora_info.json"), &info)
	want := expectedTargets(t, cfg, info.TargetModules)
	if 2*len(want) != info.NTensors {
		t.Fatalf("the config gives %d target modules, lora_info.json says %d tensors", len(want), info.NTensors)
	}
	// What the reference loaded the kohya file with (pipeline_lora.json).
	var pl struct {
		LoadedScaling []float64 `json:"loaded_scaling"`
		MaxDiff       float64   `json:"kohya_loaded_vs_peft_maxdiff"`
	}
	readJSON(t, filepath.Join(root, "goldens", "pipeline_lora.json"), &pl)
	if len(pl.LoadedScaling) != 1 || pl.LoadedScaling[0] != info.Scale {
		t.Fatalf("pipeline_lora.json loaded_scaling %v, lora_info.json scale %v", pl.LoadedScaling, info.Scale)
	}

	loaded := map[string]*LoRA{}
	for _, form := range loraForms {
		l, err := Open(filepath.Join(root, "lora", form.path), cfg)
		if err != nil {
			t.Fatalf("%s: %v", form.name, err)
		}
		if l.Format != form.format {
			t.Errorf("%s: format %q, want %q", form.name, l.Format, form.format)
		}
		if got := l.Keys(); !slices.Equal(got, want) {
			t.Fatalf("%s: %d layers, want %d (first got %q, first want %q)", form.name, len(got), len(want), got[0], want[0])
		}
		// The diffusers file carries no alpha: diffusers loads it at scale 1.
		// The others carry the adapter's alpha at its rank: the reference's
		// loaded_scaling.
		wantScale := float32(pl.LoadedScaling[0])
		if form.format == FormatDiffusers {
			wantScale = 1
		}
		for k, layer := range l.Layers {
			if layer.Rank != info.R || layer.Scale() != wantScale {
				t.Fatalf("%s: %s rank %d scale %v, want rank %d scale %v", form.name, k, layer.Rank, layer.Scale(), info.R, wantScale)
			}
			if layer.HasAlpha != (form.format != FormatDiffusers) {
				t.Fatalf("%s: %s HasAlpha %v", form.name, k, layer.HasAlpha)
			}
			if shape := layer.TargetShape; len(shape) != 2 || shape[0] != layer.Out || shape[1] != layer.In {
				t.Fatalf("%s: %s target shape %v for a %d×%d update", form.name, k, shape, layer.Out, layer.In)
			}
		}
		loaded[form.name] = l
	}
	ref := loaded["peft"]
	for _, form := range loraForms[1:] {
		l := loaded[form.name]
		worst := 0.0
		for k, r := range ref.Layers {
			g := l.Layers[k]
			worst = max(worst, maxAbsDiff(g.Down, r.Down), maxAbsDiff(g.Up, r.Up))
			// Effective deltas: equal for the kohya files; the diffusers
			// file's is the peft delta over the peft scale (alpha/r).
			dr, dg := r.Delta(), g.Delta()
			ratio := r.Scale() / g.Scale()
			for i := range dg {
				dg[i] *= ratio
			}
			if d := maxAbsDiff(dg, dr); d > 1e-7 {
				t.Fatalf("%s: %s delta differs from peft by %g (ratio %v)", form.name, k, d, ratio)
			}
		}
		// The files hold fp16-rounded values (kohya as F16, the others as
		// F32), so the factors agree exactly; the reference measured 0 too.
		if worst > pl.MaxDiff {
			t.Errorf("%s: factors differ from peft by %g, the reference measured %g", form.name, worst, pl.MaxDiff)
		}
		t.Logf("%s: %d layers, max |factor - peft| = %g", form.name, len(l.Layers), worst)
	}
}

// TestPeftMatchesTrainStepGolden checks the peft adapter's factors against the
// training golden's param0 (the parameters before training, dumped by peft).
func TestPeftMatchesTrainStepGolden(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	l, err := Open(filepath.Join(root, "lora", "peft", "adapter_model.safetensors"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := safetensors.Open(filepath.Join(root, "goldens", "lora", "train_step.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n := 0
	for _, name := range g.Names() {
		rest, ok := strings.CutPrefix(name, "param0.")
		if !ok {
			continue
		}
		module, ab, ok := strings.Cut(rest, ".lora_")
		if !ok {
			t.Fatalf("golden %s: no lora_ part", name)
		}
		layer := l.Layers[LayerKey(sdxl.UNet, module)]
		if layer == nil {
			t.Fatalf("golden %s: no loaded layer for %s", name, module)
		}
		want, err := g.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		got := layer.Down
		if strings.HasPrefix(ab, "B") {
			got = layer.Up
		}
		if d := maxAbsDiff(got, want); len(got) != len(want) || d != 0 {
			t.Fatalf("golden %s: %d values, loaded %d, max diff %g", name, len(want), len(got), d)
		}
		n++
	}
	if n != 2*len(l.Layers) {
		t.Fatalf("checked %d golden tensors for %d layers", n, len(l.Layers))
	}
}

// baseWeight reads a target weight of the fixture model as float32.
func baseWeight(t *testing.T, src *sdxl.Source, layer *Layer) []float32 {
	t.Helper()
	ref, err := src.Tensor(layer.Component, layer.Target())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ref.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.ToFloat32(ref.DType, b)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMergeUnmerge merges every layer of the kohya file into the model's real
// weights and checks each element against base + weight·scale·Up·Down
// computed here in float64.
func TestMergeUnmerge(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	l, err := Open(filepath.Join(root, "lora", "kohya_sgm_names.safetensors"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sdxl.OpenSource(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const weight = 0.5
	worstMerge, worstUnmerge := 0.0, 0.0
	for _, k := range l.Keys() {
		layer := l.Layers[k]
		base := baseWeight(t, src, layer)
		w := slices.Clone(base)
		if err := MergeInto(w, layer, weight); err != nil {
			t.Fatal(err)
		}
		changed := 0
		for o := range layer.Out {
			for i := range layer.In {
				var acc float64
				for r := range layer.Rank {
					acc += float64(layer.Up[o*layer.Rank+r]) * float64(layer.Down[r*layer.In+i])
				}
				want := float64(base[o*layer.In+i]) + weight*float64(layer.Alpha)/float64(layer.Rank)*acc
				got := float64(w[o*layer.In+i])
				if d := math.Abs(got - want); d > 1e-6*max(1, math.Abs(want)) {
					t.Fatalf("%s[%d,%d]: merged %v, want %v (diff %g)", k, o, i, got, want, d)
				} else {
					worstMerge = max(worstMerge, d)
				}
				if got != float64(base[o*layer.In+i]) {
					changed++
				}
			}
		}
		if changed < len(w)/2 {
			t.Fatalf("%s: merge changed only %d of %d values", k, changed, len(w))
		}
		if err := Unmerge(w, layer, weight); err != nil {
			t.Fatal(err)
		}
		d := maxAbsDiff(w, base)
		if d > 1e-6 {
			t.Fatalf("%s: unmerge leaves %g from the base", k, d)
		}
		worstUnmerge = max(worstUnmerge, d)
	}
	t.Logf("%d layers: merge max |err| %g, unmerge max |w - base| %g", len(l.Layers), worstMerge, worstUnmerge)

	// Apply merges by parameter name, and leaves other parameters alone.
	layer0 := l.Layers[l.Keys()[0]]
	base := baseWeight(t, src, layer0)
	viaApply, direct := slices.Clone(base), slices.Clone(base)
	if ok, err := l.Apply(layer0.Component, layer0.Target(), viaApply, weight); !ok || err != nil {
		t.Fatalf("Apply %s: %v %v", layer0.Target(), ok, err)
	}
	if err := MergeInto(direct, layer0, weight); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(viaApply, direct) {
		t.Fatal("Apply and MergeInto differ")
	}
	bias := strings.TrimSuffix(layer0.Target(), ".weight") + ".bias"
	for _, p := range []struct{ component, name string }{{layer0.Component, bias}, {sdxl.TextEncoder, layer0.Target()}} {
		if ok, err := l.Apply(p.component, p.name, viaApply, 1); ok || err != nil {
			t.Fatalf("Apply %s %s: %v %v, want no update", p.component, p.name, ok, err)
		}
	}
	if !slices.Equal(viaApply, direct) {
		t.Fatal("Apply changed a parameter the LoRA does not update")
	}

	// A target of the wrong size is an error naming the layer.
	layer := l.Layers[l.Keys()[0]]
	err = MergeInto(make([]float32, layer.Out*layer.In-1), layer, 1)
	if err == nil || !strings.Contains(err.Error(), layer.Key()) {
		t.Fatalf("short target: err %v, want one naming %s", err, layer.Key())
	}
}

// copyFixture writes a copy of a fixture safetensors file with extra tensors
// (and without the tensors drop names) to a temporary file.
func copyFixture(t *testing.T, src string, extra []safetensors.Tensor, drop ...string) string {
	t.Helper()
	f, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		if slices.Contains(drop, n) {
			continue
		}
		info, _ := f.Tensor(n)
		b, err := f.Bytes(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: slices.Clone(b)})
	}
	ts = append(ts, extra...)
	out := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := safetensors.Write(out, ts, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	return out
}

// f32 encodes float32 values as a little-endian F32 tensor.
func f32(name string, shape []int, v []float32) safetensors.Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: b}
}

func filled(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v * float32(i%7-3)
	}
	return s
}

// TestUnmatchedKeysNamed adds keys no module has: Open names every one, and
// with AllowUnmatched lists them and loads the rest.
func TestUnmatchedKeysNamed(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	extra := []safetensors.Tensor{
		f32("lora_unet_no_such_block_0_attn1_to_q.lora_down.weight", []int{4, 8}, filled(32, 1)),
		f32("lora_unet_no_such_block_0_attn1_to_q.lora_up.weight", []int{8, 4}, filled(32, 1)),
		f32("something_else.weight", []int{2}, filled(2, 1)),
		f32("lora_unet_input_blocks_4_1_proj_in.hada_w1_a", []int{4, 4}, filled(16, 1)),
	}
	path := copyFixture(t, filepath.Join(root, "lora", "kohya_sgm_names.safetensors"), extra)
	_, err := Open(path, cfg)
	var ue *UnmatchedError
	if !errors.As(err, &ue) {
		t.Fatalf("err %v, want an UnmatchedError", err)
	}
	for _, want := range []string{path, extra[0].Name, extra[1].Name, extra[2].Name, extra[3].Name, "LoHa"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	l, err := OpenWithOptions(path, cfg, Options{AllowUnmatched: true})
	if err != nil {
		t.Fatal(err)
	}
	wantUnmatched := []string{extra[0].Name, extra[1].Name, extra[2].Name}
	sort.Strings(wantUnmatched)
	if !slices.Equal(l.Unmatched, wantUnmatched) || len(l.Unsupported) != 1 || !strings.HasPrefix(l.Unsupported[0], extra[3].Name) {
		t.Fatalf("Unmatched %v Unsupported %v", l.Unmatched, l.Unsupported)
	}
	var info loraInfo
	readJSON(t, filepath.Join(root, "lora", "lora_info.json"), &info)
	if 2*len(l.Layers) != info.NTensors {
		t.Fatalf("loaded %d layers beside the unmatched keys, want %d", len(l.Layers), info.NTensors/2)
	}
}

// TestShapeMismatchNamed: a factor that does not fit its target weight is an
// error naming the key.
func TestShapeMismatchNamed(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	src := filepath.Join(root, "lora", "kohya_diffusers_names.safetensors")
	f, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	// The first down factor, (rank, in), replaced by one of the file's own
	// rank that is one column too wide: it fits its up factor, (out, rank),
	// but not the target weight, (out, in).
	var down string
	var shape []int
	for _, n := range f.Names() {
		if info, _ := f.Tensor(n); strings.HasSuffix(n, ".lora_down.weight") && len(info.Shape) == 2 {
			down, shape = n, info.Shape
			break
		}
	}
	f.Close()
	if down == "" {
		t.Fatalf("%s holds no 2-D .lora_down.weight", src)
	}
	wrong := []int{shape[0], shape[1] + 1}
	path := copyFixture(t, src, []safetensors.Tensor{f32(down, wrong, filled(wrong[0]*wrong[1], 1))}, down)
	_, err = Open(path, cfg)
	if err == nil || !strings.Contains(err.Error(), down) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err %v, want one naming %s and the file", err, down)
	}
	// A missing up factor is named too.
	up := strings.Replace(down, "lora_down", "lora_up", 1)
	path = copyFixture(t, src, nil, up)
	_, err = Open(path, cfg)
	if err == nil || !strings.Contains(err.Error(), down) || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("err %v, want one naming the incomplete layer", err)
	}
}

// TestCorruptFileNamed: a truncated LoRA file is an error naming it.
func TestCorruptFileNamed(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	b, err := os.ReadFile(filepath.Join(root, "lora", "kohya_sgm_names.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "truncated.safetensors")
	if err := os.WriteFile(path, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, cfg); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err %v, want one naming %s", err, path)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("not a safetensors file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(garbage, cfg); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Fatalf("err %v, want one naming %s", err, garbage)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.safetensors"), cfg); err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Fatalf("missing file: err %v", err)
	}
}
