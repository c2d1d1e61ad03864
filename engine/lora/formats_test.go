package lora

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// paramShape returns the shape of a component's weight from the config.
func paramShape(t *testing.T, cfg sdxl.Config, component, name string) []int {
	return paramShapeTB(t, cfg, component, name)
}

// paramShapeTB is paramShape for tests and benchmarks.
func paramShapeTB(t testing.TB, cfg sdxl.Config, component, name string) []int {
	t.Helper()
	ps, err := sdxl.ComponentParams(cfg, component)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == name {
			return p.Shape
		}
	}
	t.Fatalf("%s has no parameter %s", component, name)
	return nil
}

// stabilityName returns the kohya (underscore-joined) Stability-layout name
// of a UNet module, from the single-file table.
func stabilityName(t *testing.T, cfg sdxl.Config, module string) string {
	t.Helper()
	return flatten(stabilityDotted(t, cfg, module))
}

// stabilityDotted returns the dotted Stability-layout name of a UNet module.
func stabilityDotted(t *testing.T, cfg sdxl.Config, module string) string {
	t.Helper()
	layout, err := sdxl.SingleFileLayout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range layout {
		if r.Component == sdxl.UNet && r.Name == module+".weight" {
			return strings.TrimSuffix(strings.TrimPrefix(r.Key, stabilityUNetPrefix), ".weight")
		}
	}
	t.Fatalf("no single-file key for unet %s", module)
	return ""
}

// firstParam returns the first weight of a component whose name ends with
// suffix.
func firstParam(t testing.TB, cfg sdxl.Config, component, suffix string) string {
	t.Helper()
	ps, err := sdxl.ComponentParams(cfg, component)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if strings.HasSuffix(p.Name, suffix) {
			return strings.TrimSuffix(p.Name, ".weight")
		}
	}
	t.Fatalf("%s has no parameter ending %s", component, suffix)
	return ""
}

// spelling is one synthetic single-layer file.
type spelling struct {
	name             string
	component        string
	module           string
	downKey, upKey   string
	alphaKey         string  // "" for none
	alpha            float32 // written when alphaKey is set
	convDown, convUp bool    // write the factors 4-D (kernel of the target, 1×1)
}

// TestSpellings writes one layer in every spelling in circulation and checks
// it loads to the right target with its factors and scale, and merges as
// ΔW = scale·Up·Down (a convolution's kernel flattened).
func TestSpellings(t *testing.T) {
	cfg := fixtureConfig(t)
	attn := firstParam(t, cfg, sdxl.UNet, ".attn1.to_out.0.weight")
	attnBlock := strings.TrimSuffix(attn, ".to_out.0")
	q1 := firstParam(t, cfg, sdxl.TextEncoder, "self_attn.q_proj.weight")
	fc2 := firstParam(t, cfg, sdxl.TextEncoder2, "mlp.fc2.weight")
	conv := firstParam(t, cfg, sdxl.UNet, "resnets.0.conv1.weight")
	shortcut := firstParam(t, cfg, sdxl.UNet, "resnets.0.conv_shortcut.weight")
	projIn := firstParam(t, cfg, sdxl.UNet, "proj_in.weight")
	cases := []spelling{
		{name: "kohya te1", component: sdxl.TextEncoder, module: q1,
			downKey: "lora_te1_" + flatten(q1) + ".lora_down.weight", upKey: "lora_te1_" + flatten(q1) + ".lora_up.weight",
			alphaKey: "lora_te1_" + flatten(q1) + ".alpha", alpha: 3},
		{name: "kohya te (SD 1.x)", component: sdxl.TextEncoder, module: q1,
			downKey: "lora_te_" + flatten(q1) + ".lora_down.weight", upKey: "lora_te_" + flatten(q1) + ".lora_up.weight"},
		{name: "kohya te2", component: sdxl.TextEncoder2, module: fc2,
			downKey: "lora_te2_" + flatten(fc2) + ".lora_down.weight", upKey: "lora_te2_" + flatten(fc2) + ".lora_up.weight",
			alphaKey: "lora_te2_" + flatten(fc2) + ".alpha", alpha: 1},
		{name: "kohya stability proj_in", component: sdxl.UNet, module: projIn,
			downKey: "lora_unet_" + stabilityName(t, cfg, projIn) + ".lora_down.weight", upKey: "lora_unet_" + stabilityName(t, cfg, projIn) + ".lora_up.weight"},
		{name: "kohya LoCon 3×3", component: sdxl.UNet, module: conv, convDown: true, convUp: true,
			downKey: "lora_unet_" + stabilityName(t, cfg, conv) + ".lora_down.weight", upKey: "lora_unet_" + stabilityName(t, cfg, conv) + ".lora_up.weight",
			alphaKey: "lora_unet_" + stabilityName(t, cfg, conv) + ".alpha", alpha: 1},
		{name: "kohya LoCon 1×1", component: sdxl.UNet, module: shortcut, convDown: true, convUp: true,
			downKey: "lora_unet_" + flatten(shortcut) + ".lora_down.weight", upKey: "lora_unet_" + flatten(shortcut) + ".lora_up.weight"},
		{name: "diffusers lora_A te2", component: sdxl.TextEncoder2, module: fc2,
			downKey: "text_encoder_2." + fc2 + ".lora_A.weight", upKey: "text_encoder_2." + fc2 + ".lora_B.weight"},
		{name: "diffusers lora_linear_layer te1", component: sdxl.TextEncoder, module: q1,
			downKey: "text_encoder." + q1 + ".lora_linear_layer.down.weight", upKey: "text_encoder." + q1 + ".lora_linear_layer.up.weight"},
		{name: "diffusers attention processor", component: sdxl.UNet, module: attn,
			downKey: "unet." + attnBlock + ".processor.to_out_lora.down.weight", upKey: "unet." + attnBlock + ".processor.to_out_lora.up.weight"},
		{name: "diffusers with alpha key", component: sdxl.UNet, module: attn,
			downKey: "unet." + attn + ".lora.down.weight", upKey: "unet." + attn + ".lora.up.weight",
			alphaKey: "unet." + attn + ".alpha", alpha: 2},
		{name: "comfyui dotted stability", component: sdxl.UNet, module: projIn,
			downKey: "diffusion_model." + stabilityDotted(t, cfg, projIn) + ".lora_down.weight", upKey: "diffusion_model." + stabilityDotted(t, cfg, projIn) + ".lora_up.weight",
			alphaKey: "diffusion_model." + stabilityDotted(t, cfg, projIn) + ".alpha", alpha: 6},
		{name: "lycoris_ prefix", component: sdxl.UNet, module: attn,
			downKey: "lycoris_" + flatten(attn) + ".lora_down.weight", upKey: "lycoris_" + flatten(attn) + ".lora_up.weight"},
		{name: "attention processor without unet prefix", component: sdxl.UNet, module: attn,
			downKey: attnBlock + ".processor.to_out_lora.down.weight", upKey: attnBlock + ".processor.to_out_lora.up.weight"},
		{name: "peft base_model prefix, adapter name", component: sdxl.UNet, module: attn,
			downKey: "base_model.model." + attn + ".lora_A.default.weight", upKey: "base_model.model." + attn + ".lora_B.default.weight"},
	}
	const rank = 3
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := paramShape(t, cfg, c.component, c.module+".weight")
			out, in := target[0], prod(target[1:])
			downShape, upShape := []int{rank, target[1]}, []int{out, rank}
			if c.convDown {
				downShape = append([]int{rank}, target[1:]...)
			}
			if c.convUp {
				upShape = []int{out, rank, 1, 1}
			}
			down, up := make([]float32, rank*in), make([]float32, out*rank)
			for i := range down {
				down[i] = float32(math.Sin(float64(i)*0.37)) * 0.5
			}
			for i := range up {
				up[i] = float32(math.Cos(float64(i)*0.21)) * 0.25
			}
			ts := []safetensors.Tensor{f32(c.downKey, downShape, down), f32(c.upKey, upShape, up)}
			if c.alphaKey != "" {
				ts = append(ts, f32(c.alphaKey, nil, []float32{c.alpha}))
			}
			path := filepath.Join(t.TempDir(), "one.safetensors")
			if err := safetensors.Write(path, ts, nil); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			key := LayerKey(c.component, c.module)
			layer := l.Layers[key]
			if len(l.Layers) != 1 || layer == nil {
				t.Fatalf("layers %v, want only %s", l.Keys(), key)
			}
			if layer.Rank != rank || layer.In != in || layer.Out != out || !slices.Equal(layer.TargetShape, target) {
				t.Fatalf("rank %d in %d out %d target %v; want %d %d %d %v", layer.Rank, layer.In, layer.Out, layer.TargetShape, rank, in, out, target)
			}
			if !slices.Equal(layer.Down, down) || !slices.Equal(layer.Up, up) {
				t.Fatal("factors differ from the file's")
			}
			wantScale := float32(1)
			if c.alphaKey != "" {
				wantScale = c.alpha / rank
			}
			if layer.Scale() != wantScale {
				t.Fatalf("scale %v, want %v", layer.Scale(), wantScale)
			}
			// ΔW[o, j] = scale Σ_r up[o, r]·down[r, j], j running over the
			// target's trailing dims (in_channels·kh·kw for a convolution).
			w := make([]float32, prod(target))
			if err := MergeInto(w, layer, 1); err != nil {
				t.Fatal(err)
			}
			for o := range out {
				for j := range in {
					var acc float64
					for r := range rank {
						acc += float64(up[o*rank+r]) * float64(down[r*in+j])
					}
					want := float64(wantScale) * acc
					if d := math.Abs(float64(w[o*in+j]) - want); d > 1e-6 {
						t.Fatalf("ΔW[%d,%d] = %v, want %v", o, j, w[o*in+j], want)
					}
				}
			}
		})
	}
}

// TestUnsupportedVariantsNamed: a LoCon Tucker core and DoRA magnitudes are
// refused by key name.
func TestUnsupportedVariantsNamed(t *testing.T) {
	cfg := fixtureConfig(t)
	conv := firstParam(t, cfg, sdxl.UNet, "resnets.0.conv1.weight")
	attn := firstParam(t, cfg, sdxl.UNet, ".attn1.to_q.weight")
	mid := "lora_unet_" + flatten(conv) + ".lora_mid.weight"
	mag := "unet." + attn + ".lora_magnitude_vector"
	path := filepath.Join(t.TempDir(), "variants.safetensors")
	if err := safetensors.Write(path, []safetensors.Tensor{
		f32(mid, []int{2, 2, 3, 3}, filled(36, 1)),
		f32(mag, []int{4}, filled(4, 1)),
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, cfg)
	if err == nil {
		t.Fatal("a file of unsupported variants loaded")
	}
	for _, want := range []string{mid, mag, "Tucker", "DoRA", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}

// TestTwoSpellingsOneTarget: two keys updating the same weight is an error.
func TestTwoSpellingsOneTarget(t *testing.T) {
	cfg := fixtureConfig(t)
	attn := firstParam(t, cfg, sdxl.UNet, ".attn1.to_q.weight")
	shape := paramShape(t, cfg, sdxl.UNet, attn+".weight")
	down, up := filled(2*shape[1], 0.1), filled(shape[0]*2, 0.1)
	path := filepath.Join(t.TempDir(), "twice.safetensors")
	if err := safetensors.Write(path, []safetensors.Tensor{
		f32("lora_unet_"+flatten(attn)+".lora_down.weight", []int{2, shape[1]}, down),
		f32("lora_unet_"+flatten(attn)+".lora_up.weight", []int{shape[0], 2}, up),
		f32("lora_unet_"+stabilityName(t, cfg, attn)+".lora_down.weight", []int{2, shape[1]}, down),
		f32("lora_unet_"+stabilityName(t, cfg, attn)+".lora_up.weight", []int{shape[0], 2}, up),
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, cfg)
	if err == nil || !strings.Contains(err.Error(), "both update") || !strings.Contains(err.Error(), attn) {
		t.Fatalf("err %v, want one naming both spellings of %s", err, attn)
	}
}

// TestAmbiguousUnderscoreName: an underscore form two modules share is never
// guessed.
func TestAmbiguousUnderscoreName(t *testing.T) {
	tg := &targets{shapes: map[string]map[string][]int{}, flat: map[string]map[string]string{sdxl.UNet: {}}, ambiguous: map[string][]string{}}
	tg.addFlat(sdxl.UNet, "a_b_c", "a.b_c")
	tg.addFlat(sdxl.UNet, "a_b_c", "a_b.c")
	tg.addFlat(sdxl.UNet, "d_e", "d.e")
	if m, ok, err := tg.resolveFlat(sdxl.UNet, "d_e"); err != nil || !ok || m != "d.e" {
		t.Fatalf("d_e: %q %v %v", m, ok, err)
	}
	_, _, err := tg.resolveFlat(sdxl.UNet, "a_b_c")
	if err == nil || !strings.Contains(err.Error(), "a.b_c") || !strings.Contains(err.Error(), "a_b.c") {
		t.Fatalf("ambiguous: err %v", err)
	}
	if _, ok, err := tg.resolveFlat(sdxl.UNet, "x_y"); ok || err != nil {
		t.Fatalf("unknown: %v %v", ok, err)
	}
	// The fixture model's configs give no ambiguous form.
	real, err := newTargets(fixtureConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(real.ambiguous) != 0 {
		t.Fatalf("ambiguous forms in the fixture model: %v", real.ambiguous)
	}
}

// writePeftFolder copies the fixture adapter into a folder with a changed
// adapter_config.json.
func writePeftFolder(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	root := fixtures.Root(t)
	var c map[string]any
	readJSON(t, filepath.Join(root, "lora", "peft", peftConfigFile), &c)
	edit(c)
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, peftConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(filepath.Join(root, "lora", "peft", peftWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, peftWeightsFile), w, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPeftPatterns: alpha_pattern and rank_pattern pick per-module values,
// use_rslora scales by alpha/√r, DoRA is refused.
func TestPeftPatterns(t *testing.T) {
	cfg := fixtureConfig(t)
	var base peftConfig
	readJSON(t, filepath.Join(fixtures.Root(t), "lora", "peft", peftConfigFile), &base)
	dir := writePeftFolder(t, func(c map[string]any) {
		c["alpha_pattern"] = map[string]any{"attn2.to_q": 3 * base.LoraAlpha}
	})
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, layer := range l.Layers {
		want := float32(base.LoraAlpha) / float32(base.R)
		if strings.HasSuffix(k, ".attn2.to_q") {
			want *= 3
			n++
		}
		if layer.Scale() != want {
			t.Fatalf("%s: scale %v, want %v", k, layer.Scale(), want)
		}
	}
	if n == 0 {
		t.Fatal("no attn2.to_q layer in the fixture")
	}

	dir = writePeftFolder(t, func(c map[string]any) { c["use_rslora"] = true })
	if l, err = Open(dir, cfg); err != nil {
		t.Fatal(err)
	}
	for k, layer := range l.Layers {
		want := base.LoraAlpha / math.Sqrt(float64(base.R))
		if math.Abs(float64(layer.Scale())-want) > 1e-6 {
			t.Fatalf("%s: rsLoRA scale %v, want %v", k, layer.Scale(), want)
		}
	}

	dir = writePeftFolder(t, func(c map[string]any) { c["rank_pattern"] = map[string]any{"to_k": base.R + 1} })
	if _, err = Open(dir, cfg); err == nil || !strings.Contains(err.Error(), "to_k") {
		t.Fatalf("rank_pattern disagreeing with the factors: err %v", err)
	}

	dir = writePeftFolder(t, func(c map[string]any) { c["use_dora"] = true })
	if _, err = Open(dir, cfg); err == nil || !strings.Contains(err.Error(), "DoRA") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("DoRA: err %v", err)
	}
}

// TestDiffusersAdapterMetadata: a diffusers file whose metadata carries the
// peft config (lora_adapter_metadata, diffusers ≥ 0.33) loads at the config's
// alpha/r — the fixture's diffusers file with the adapter's config added gives
// the peft adapter's deltas.
func TestDiffusersAdapterMetadata(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	var pc map[string]any
	readJSON(t, filepath.Join(root, "lora", "peft", peftConfigFile), &pc)
	prefixed := map[string]any{}
	for k, v := range pc {
		prefixed["unet."+k] = v
	}
	for name, meta := range map[string]map[string]any{"prefixed": prefixed, "bare": pc} {
		b, err := json.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(root, "lora", "diffusers", diffusersWeightFile)
		path := copyFixtureMeta(t, src, map[string]string{adapterMetadataKey: string(b)})
		l, err := Open(path, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ref, err := Open(filepath.Join(root, "lora", "peft"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for k, r := range ref.Layers {
			g := l.Layers[k]
			if g == nil || g.Scale() != r.Scale() || maxAbsDiff(g.Delta(), r.Delta()) != 0 {
				t.Fatalf("%s: %s does not match the peft adapter", name, k)
			}
		}
	}
	path := copyFixtureMeta(t, filepath.Join(root, "lora", "diffusers", diffusersWeightFile), map[string]string{adapterMetadataKey: "{not json"})
	if _, err := Open(path, cfg); err == nil || !strings.Contains(err.Error(), adapterMetadataKey) || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad metadata: err %v", err)
	}
}

// copyFixtureMeta copies a fixture safetensors file with other metadata.
func copyFixtureMeta(t *testing.T, src string, meta map[string]string) string {
	t.Helper()
	f, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		info, _ := f.Tensor(n)
		b, err := f.Bytes(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: slices.Clone(b)})
	}
	out := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := safetensors.Write(out, ts, meta); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestComponentOption: keys without a component prefix belong to
// Options.Component (a peft adapter of a text encoder saved from the bare
// model); without it they are looked up in the UNet and reported unmatched.
func TestComponentOption(t *testing.T) {
	cfg := fixtureConfig(t)
	q := firstParam(t, cfg, sdxl.TextEncoder2, "self_attn.q_proj.weight")
	shape := paramShape(t, cfg, sdxl.TextEncoder2, q+".weight")
	path := filepath.Join(t.TempDir(), "te2.safetensors")
	if err := safetensors.Write(path, []safetensors.Tensor{
		f32(q+".lora_A.weight", []int{2, shape[1]}, filled(2*shape[1], 0.1)),
		f32(q+".lora_B.weight", []int{shape[0], 2}, filled(2*shape[0], 0.1)),
	}, nil); err != nil {
		t.Fatal(err)
	}
	l, err := OpenWithOptions(path, cfg, Options{Component: sdxl.TextEncoder2})
	if err != nil {
		t.Fatal(err)
	}
	if l.Layers[LayerKey(sdxl.TextEncoder2, q)] == nil || len(l.Layers) != 1 {
		t.Fatalf("layers %v", l.Keys())
	}
	if _, err := Open(path, cfg); err == nil || !strings.Contains(err.Error(), q+".lora_A.weight") {
		t.Fatalf("as a UNet file: err %v, want the keys named", err)
	}
	if _, err := OpenWithOptions(path, cfg, Options{Component: sdxl.VAE}); err == nil || !strings.Contains(err.Error(), sdxl.VAE) {
		t.Fatalf("component vae: err %v", err)
	}
}
