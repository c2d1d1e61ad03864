package lora

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// openFixtureLoRA opens the fixture's kohya file (Stability-layout names).
func openFixtureLoRA(t *testing.T, cfg sdxl.Config) *LoRA {
	t.Helper()
	l, err := Open(fixtures.Path(t, "lora", "kohya_sgm_names.safetensors"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// deltaRel returns max|a−b| / max|b| over two layers' effective updates.
func deltaRel(a, b *Layer) float64 {
	da, db := a.Delta(), b.Delta()
	var worst, ref float64
	for i := range db {
		ref = math.Max(ref, math.Abs(float64(db[i])))
		worst = math.Max(worst, math.Abs(float64(da[i]-db[i])))
	}
	return worst / math.Max(ref, 1e-30)
}

// fileDTypes returns the dtypes of a safetensors file's tensors.
func fileDTypes(t *testing.T, path string) map[safetensors.DType]int {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[safetensors.DType]int{}
	for _, n := range f.Names() {
		ti, _ := f.Tensor(n)
		out[ti.DType]++
	}
	return out
}

// TestWritersRoundTrip writes the fixture LoRA with every writer in F16 and
// F32 and opens it again: the same layers with the same update (F32 within
// float32 rounding, F16 within fp16's), and the scale kept (kohya, peft) or
// baked into up (diffusers).
func TestWritersRoundTrip(t *testing.T) {
	cfg := fixtureConfig(t)
	src := openFixtureLoRA(t, cfg)
	dir := t.TempDir()
	writers := []struct {
		name   string
		path   string
		write  func(path string, dt safetensors.DType) error
		format string
		baked  bool
	}{
		{"kohya", "k.safetensors", func(p string, dt safetensors.DType) error { return WriteKohya(p, src, cfg, dt, nil) }, FormatKohya, false},
		{"peft", "peft_adapter", func(p string, dt safetensors.DType) error { return WritePEFT(p, src, dt) }, FormatPEFT, false},
		{"diffusers", "d.safetensors", func(p string, dt safetensors.DType) error { return WriteDiffusers(p, src, dt) }, FormatDiffusers, true},
	}
	for _, w := range writers {
		for _, dt := range []safetensors.DType{safetensors.F16, safetensors.F32} {
			path := filepath.Join(dir, string(dt)+"_"+w.path)
			if err := w.write(path, dt); err != nil {
				t.Fatalf("%s %s: %v", w.name, dt, err)
			}
			weights := path
			if w.name == "peft" {
				weights = filepath.Join(path, "adapter_model.safetensors")
			}
			dts := fileDTypes(t, weights)
			if len(dts) != 1 || dts[dt] == 0 {
				t.Errorf("%s %s: the file holds %v", w.name, dt, dts)
			}
			back, err := Open(path, cfg)
			if err != nil {
				t.Fatalf("%s %s: %v", w.name, dt, err)
			}
			if back.Format != w.format {
				t.Errorf("%s %s: opens as %s", w.name, dt, back.Format)
			}
			if !slices.Equal(back.Keys(), src.Keys()) {
				t.Fatalf("%s %s: layers %v, want %v", w.name, dt, back.Keys(), src.Keys())
			}
			tol := 1e-6
			if dt == safetensors.F16 {
				tol = 2e-3 // fp16 keeps 11 bits; the factors were fp16 already, the baked up is rounded again
			}
			for _, k := range src.Keys() {
				a, b := back.Layers[k], src.Layers[k]
				if r := deltaRel(a, b); r > tol {
					t.Errorf("%s %s: %s's update differs by %.3g of its max (> %g)", w.name, dt, k, r, tol)
				}
				wantScale := b.Scale()
				if w.baked {
					wantScale = 1
				}
				if a.Scale() != wantScale || a.Rank != b.Rank {
					t.Errorf("%s %s: %s rank %d scale %g, want %d and %g", w.name, dt, k, a.Rank, a.Scale(), b.Rank, wantScale)
				}
				if !w.baked && !slices.Equal(a.Down, b.Down) {
					t.Errorf("%s %s: %s's down changed (the fixture's fp16 values must survive)", w.name, dt, k)
				}
			}
		}
	}
}

// TestWriteKohyaNamesLikeSDScripts exports a Network shaped like the
// fixture LoRA and checks WriteKohya names exactly the keys the fixture's
// Stability-layout kohya file has, with the caller's metadata added.
func TestWriteKohyaNamesLikeSDScripts(t *testing.T) {
	be := cpu.New()
	m, cfg := loadTinyUNet(t, be)
	info := fixtures.LoRA(t)
	n, err := NewNetwork(be, m.Linears(), NetworkConfig{Rank: info.R, Alpha: float32(info.Scale() * float64(info.R)), Targets: info.TargetModules}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Free()
	l, err := n.Export()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.safetensors")
	meta := map[string]string{"ss_network_module": "networks.lora", "ss_steps": "12", "ss_network_dim": "overridden"}
	if err := WriteKohya(path, l, cfg, safetensors.F16, meta); err != nil {
		t.Fatal(err)
	}
	got, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	ref, err := safetensors.Open(fixtures.Path(t, "lora", "kohya_sgm_names.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	gk, rk := got.Names(), ref.Names()
	slices.Sort(gk)
	slices.Sort(rk)
	if !slices.Equal(gk, rk) {
		t.Errorf("WriteKohya wrote %d keys, the sd-scripts-style file has %d; first of ours %v, of theirs %v", len(gk), len(rk), gk[:min(3, len(gk))], rk[:min(3, len(rk))])
	}
	md := got.Metadata()
	if md["ss_network_module"] != "networks.lora" || md["ss_steps"] != "12" || md["ss_network_dim"] != "overridden" || md["ss_base_model_version"] != "sdxl_base_v1-0" {
		t.Errorf("metadata %v: the caller's entries must be added and win", md)
	}
	if md["ss_network_alpha"] != ref.Metadata()["ss_network_alpha"] {
		t.Errorf("ss_network_alpha %q, the fixture's %q", md["ss_network_alpha"], ref.Metadata()["ss_network_alpha"])
	}
}

// TestWritePEFTLikePeft writes the fixture's peft adapter again and compares
// adapter_config.json byte for byte with the fixture's (but for
// inference_mode, which save_pretrained sets while saving and the fixture's
// tool did not), and the weight keys with peft's PeftModel spelling.
func TestWritePEFTLikePeft(t *testing.T) {
	cfg := fixtureConfig(t)
	fixtureDir := fixtures.Path(t, "lora", "peft")
	src, err := Open(fixtureDir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var refCfg map[string]any
	readJSON(t, filepath.Join(fixtureDir, "adapter_config.json"), &refCfg)
	init := ""
	if refCfg["init_lora_weights"] == InitGaussian {
		init = InitGaussian
	}
	dropout, _ := refCfg["lora_dropout"].(float64)
	out := filepath.Join(t.TempDir(), "new", "adapter")
	if err := WritePEFTWithOptions(out, src, safetensors.F32, PEFTOptions{Init: init, Dropout: float32(dropout)}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(fixtureDir, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	got = bytes.Replace(got, []byte(`"inference_mode": true`), []byte(`"inference_mode": false`), 1)
	if !bytes.Equal(got, want) {
		t.Errorf("adapter_config.json differs from peft's:\n%s\nwant:\n%s", got, want)
	}
	f, err := safetensors.Open(filepath.Join(out, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref, err := safetensors.Open(filepath.Join(fixtureDir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	var want2 []string
	for _, k := range ref.Names() {
		want2 = append(want2, strings.TrimPrefix(k, "base_model.model."))
	}
	var got2 []string
	for _, k := range f.Names() {
		rest, ok := strings.CutPrefix(k, "base_model.model.")
		if !ok {
			t.Fatalf("key %s lacks PeftModel's base_model.model. prefix", k)
		}
		got2 = append(got2, rest)
	}
	slices.Sort(got2)
	slices.Sort(want2)
	if !slices.Equal(got2, want2) {
		t.Errorf("adapter keys differ from the fixture's: %v… vs %v…", got2[:2], want2[:2])
	}
	if f.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", f.Metadata())
	}
}

// TestWritePEFTPatterns: layers of another rank or alpha go to rank_pattern
// and alpha_pattern and load back with their own scale; a text-encoder layer
// in a UNet adapter is refused by name.
func TestWritePEFTPatterns(t *testing.T) {
	cfg := fixtureConfig(t)
	src := openFixtureLoRA(t, cfg)
	keys := src.Keys()
	odd := *src.Layers[keys[0]]
	odd.Alpha = odd.Alpha * 3
	src.Layers[keys[0]] = &odd
	small := *src.Layers[keys[1]]
	small.Rank = 1
	small.Down = small.Down[:small.In]
	small.Up = make([]float32, small.Out)
	for i := range small.Up {
		small.Up[i] = src.Layers[keys[1]].Up[i*src.Layers[keys[1]].Rank]
	}
	src.Layers[keys[1]] = &small
	dir := filepath.Join(t.TempDir(), "p")
	if err := WritePEFT(dir, src, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	var c struct {
		R            int                `json:"r"`
		RankPattern  map[string]int     `json:"rank_pattern"`
		AlphaPattern map[string]float64 `json:"alpha_pattern"`
	}
	readJSON(t, filepath.Join(dir, "adapter_config.json"), &c)
	if len(c.RankPattern) != 1 || c.RankPattern[small.Module] != 1 || len(c.AlphaPattern) != 1 || c.AlphaPattern[odd.Module] != float64(odd.Alpha) {
		t.Errorf("rank_pattern %v, alpha_pattern %v: want %s at rank 1 and %s at alpha %g", c.RankPattern, c.AlphaPattern, small.Module, odd.Module, odd.Alpha)
	}
	back, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if a, b := back.Layers[k], src.Layers[k]; a.Scale() != b.Scale() || a.Rank != b.Rank {
			t.Errorf("%s: rank %d scale %g back, want %d and %g", k, a.Rank, a.Scale(), b.Rank, b.Scale())
		}
	}

	te := &Layer{Component: sdxl.TextEncoder, Module: "text_model.encoder.layers.0.self_attn.q_proj", Rank: 1, In: 1, Out: 1, Down: []float32{1}, Up: []float32{1}}
	src.Layers[te.Key()] = te
	if err := WritePEFT(filepath.Join(t.TempDir(), "q"), src, safetensors.F16); err == nil || !strings.Contains(err.Error(), te.Key()) {
		t.Errorf("a text-encoder layer in a UNet adapter: %v", err)
	}
	if err := WriteDiffusers(filepath.Join(t.TempDir(), "d.safetensors"), src, safetensors.BF16); err == nil {
		t.Error("WriteDiffusers accepted BF16")
	}
}

// TestPeftTargets derives target_modules from module names.
func TestPeftTargets(t *testing.T) {
	got := peftTargets([]string{
		"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0",
		"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj",
		"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2",
		"down_blocks.1.attentions.0.proj_in",
		"mid_block.attentions.0.transformer_blocks.0.attn2.to_k",
		"down_blocks.0.resnets.0.conv1",
	})
	want := []string{"conv1", "ff.net.0.proj", "ff.net.2", "proj_in", "to_k", "to_out.0"}
	if !slices.Equal(got, want) {
		t.Errorf("peftTargets = %v, want %v", got, want)
	}
	b, _ := json.Marshal(map[string]any{"a": pyFloat(0), "b": pyFloat(0.1), "c": jsonNumber(16), "d": jsonNumber(0.5)})
	if string(b) != `{"a":0.0,"b":0.1,"c":16,"d":0.5}` {
		t.Errorf("numbers written as %s", b)
	}
}

// TestNetworkThroughEveryWriter exports a trained-looking network (every
// factor non-zero, the attn-mlp preset) through each writer in F32 and opens
// it again: the same update everywhere; kohya and peft files load back into
// a network bit for bit.
func TestNetworkThroughEveryWriter(t *testing.T) {
	be := cpu.New()
	m, cfg := loadTinyUNet(t, be)
	targets, _ := TargetPreset(PresetAttnMLP)
	nc := NetworkConfig{Rank: 3, Alpha: 5, Targets: targets}
	n, err := NewNetwork(be, m.Linears(), nc, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Free()
	vals, _ := n.Values()
	for i := range vals {
		for j := range vals[i] {
			vals[i][j] = float32(math.Cos(float64(7*i+j))) / 8
		}
	}
	if err := n.SetParams(vals); err != nil {
		t.Fatal(err)
	}
	l, err := n.Export()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, w := range []struct {
		name     string
		path     string
		write    func(string) error
		loadable bool
	}{
		{"kohya", "k.safetensors", func(p string) error { return WriteKohya(p, l, cfg, safetensors.F32, nil) }, true},
		{"peft", "p", func(p string) error { return WritePEFT(p, l, safetensors.F32) }, true},
		{"diffusers", "d.safetensors", func(p string) error { return WriteDiffusers(p, l, safetensors.F32) }, false},
	} {
		path := filepath.Join(dir, w.path)
		if err := w.write(path); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		back, err := Open(path, cfg)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if !slices.Equal(back.Keys(), l.Keys()) {
			t.Fatalf("%s: %d layers back, %d written", w.name, len(back.Layers), len(l.Layers))
		}
		for _, k := range l.Keys() {
			if r := deltaRel(back.Layers[k], l.Layers[k]); r > 1e-6 {
				t.Errorf("%s: %s's update differs by %.3g of its max", w.name, k, r)
			}
		}
		n2, err := NewNetwork(be, fakeLinearsOf(m.Linears()), nc, 9)
		if err != nil {
			t.Fatal(err)
		}
		err = n2.Load(back)
		switch {
		case w.loadable && err != nil:
			t.Errorf("%s: %v", w.name, err)
		case w.loadable:
			got, _ := n2.Values()
			for i := range got {
				if !slices.Equal(got[i], vals[i]) {
					t.Errorf("%s: %s changed through the file", w.name, n2.Params()[i].Name)
				}
			}
		case err == nil:
			t.Errorf("%s: a file with the scale baked into up loaded as the network's factors", w.name)
		}
		n2.Free()
	}
}
