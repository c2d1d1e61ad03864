package lora_test

import (
	"context"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/lora"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/pipeline"
)

// generate loads modelPath with opts and makes one small image.
func generate(t *testing.T, modelPath string, opts pipeline.Options) *image.NRGBA {
	t.Helper()
	p, err := pipeline.Load(cpu.New(), modelPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	neg := "blurry"
	img, err := p.Generate(context.Background(), pipeline.Request{
		Prompt: "a photo of a cat", Negative: &neg, Steps: 2, Guidance: 5,
		Sampler: "euler", Width: 64, Height: 64, Seed: 3,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// maxPixelDiff returns the largest difference of two images' 8-bit channels.
func maxPixelDiff(a, b *image.NRGBA) int {
	worst := 0
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		worst = max(worst, d, -d)
	}
	return worst
}

// TestMergeReproducesGenerate bakes the fixture's kohya LoRA into the tiny
// model, as a single file and as a diffusers folder, and checks generate
// without --lora gives the image generate gives with it, within 1/255; the
// LoRA itself moves the image by more than that, so the test can tell.
func TestMergeReproducesGenerate(t *testing.T) {
	folder := fixtures.Path(t, "model")
	loraPath := fixtures.Path(t, "lora", "kohya_sgm_names.safetensors")
	const weight = 0.8
	src, err := sdxl.OpenSource(folder)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := lora.Open(loraPath, src.Config())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	single := filepath.Join(dir, "merged.safetensors")
	if err := lora.Merge(src, []lora.Weighted{{LoRA: l, Weight: weight}}, single, lora.MergeSingleFile); err != nil {
		t.Fatal(err)
	}
	diffusers := filepath.Join(dir, "merged")
	if err := lora.Merge(src, []lora.Weighted{{LoRA: l, Weight: weight}}, diffusers, lora.MergeDiffusers); err != nil {
		t.Fatal(err)
	}

	want := generate(t, folder, pipeline.Options{LoRAs: []pipeline.LoRASpec{{Path: loraPath, Weight: weight}}})
	plain := generate(t, folder, pipeline.Options{})
	if d := maxPixelDiff(want, plain); d <= 1 {
		t.Fatalf("the LoRA moves the image by %d/255 only: the comparison cannot tell a merge from none", d)
	}
	for _, c := range []struct {
		name string
		path string
		opts pipeline.Options
	}{
		{"single file", single, pipeline.Options{ConfigDir: folder}},
		{"diffusers folder", diffusers, pipeline.Options{}},
	} {
		got := generate(t, c.path, c.opts)
		if d := maxPixelDiff(got, want); d > 1 {
			t.Errorf("%s: the merged model's image differs from generate --lora's by %d/255", c.name, d)
		} else {
			t.Logf("%s: within %d/255 of generate --lora (the LoRA alone moves it %d/255)", c.name, d, maxPixelDiff(want, plain))
		}
	}

	// untouched parameters are passed through bit for bit, touched ones change
	back, err := sdxl.OpenSource(diffusers)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	changed := 0
	for _, comp := range sdxl.Components {
		for _, p := range src.Params(comp) {
			a, _ := src.Tensor(comp, p.Name)
			b, _ := back.Tensor(comp, p.Name)
			av, _ := a.Float16Bits()
			bv, _ := b.Float16Bits()
			module, _ := strings.CutSuffix(p.Name, ".weight")
			targeted := l.Layers[lora.LayerKey(comp, module)] != nil && strings.HasSuffix(p.Name, ".weight")
			switch eq := slices.Equal(av, bv); {
			case targeted && eq:
				t.Errorf("%s %s: a LoRA target left unchanged", comp, p.Name)
			case !targeted && !eq:
				t.Errorf("%s %s: not a LoRA target, but changed", comp, p.Name)
			case targeted:
				changed++
			}
		}
	}
	if changed != len(l.Layers) {
		t.Errorf("%d parameters changed, the LoRA has %d layers", changed, len(l.Layers))
	}
}

// TestMergeRefuses: bad formats, the model as its own output, a diffusers
// folder from a single file and a LoRA for another model are errors that say
// so.
func TestMergeRefuses(t *testing.T) {
	root := fixtures.Root(t)
	folder := filepath.Join(root, "model")
	src, err := sdxl.OpenSource(folder)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := lora.Open(filepath.Join(root, "lora", "kohya_sgm_names.safetensors"), src.Config())
	if err != nil {
		t.Fatal(err)
	}
	ws := []lora.Weighted{{LoRA: l, Weight: 1}}
	dir := t.TempDir()
	if err := lora.Merge(src, ws, filepath.Join(dir, "x"), "ckpt"); err == nil || !strings.Contains(err.Error(), "ckpt") {
		t.Errorf("format ckpt: %v", err)
	}
	if err := lora.Merge(src, ws, folder, lora.MergeDiffusers); err == nil || !strings.Contains(err.Error(), "model itself") {
		t.Errorf("the model as output: %v", err)
	}
	if err := lora.Merge(src, nil, filepath.Join(dir, "y.safetensors"), lora.MergeSingleFile); err == nil {
		t.Error("a merge of no LoRA was accepted")
	}
	single, err := sdxl.OpenSource(filepath.Join(root, "sdxl-tiny.safetensors"), sdxl.WithConfigDir(folder))
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	if err := lora.Merge(single, ws, filepath.Join(dir, "z"), lora.MergeDiffusers); err == nil || !strings.Contains(err.Error(), "single file") {
		t.Errorf("a diffusers folder from a single file: %v", err)
	}
	bad := *l
	bad.Layers = map[string]*lora.Layer{}
	for k, v := range l.Layers {
		c := *v
		c.Module = "down_blocks.9.nothing"
		bad.Layers[k] = &c
		break
	}
	if err := lora.Merge(src, []lora.Weighted{{LoRA: &bad, Weight: 1}}, filepath.Join(dir, "w.safetensors"), lora.MergeSingleFile); err == nil || !strings.Contains(err.Error(), "down_blocks.9.nothing") {
		t.Errorf("a layer the model lacks: %v", err)
	}
}
