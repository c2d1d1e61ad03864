package lora_test

import (
	"path/filepath"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/lora"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/pipeline"
)

// TestWrittenFormatsGenerateAlike writes the fixture LoRA with each writer
// (fp16, the default a trainer saves) and generates with each file: every
// image is the one the fixture's own kohya file gives, within 1/255.
func TestWrittenFormatsGenerateAlike(t *testing.T) {
	folder := fixtures.Path(t, "model")
	ref := fixtures.Path(t, "lora", "kohya_sgm_names.safetensors")
	cfg, err := sdxl.LoadConfig(folder)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lora.Open(ref, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"kohya":     filepath.Join(dir, "k.safetensors"),
		"peft":      filepath.Join(dir, "peft"),
		"diffusers": filepath.Join(dir, "pytorch_lora_weights.safetensors"),
	}
	if err := lora.WriteKohya(files["kohya"], l, cfg, safetensors.F16, nil); err != nil {
		t.Fatal(err)
	}
	if err := lora.WritePEFT(files["peft"], l, safetensors.F16); err != nil {
		t.Fatal(err)
	}
	if err := lora.WriteDiffusers(files["diffusers"], l, safetensors.F16); err != nil {
		t.Fatal(err)
	}
	want := generate(t, folder, pipeline.Options{LoRAs: []pipeline.LoRASpec{{Path: ref, Weight: 1}}})
	plain := generate(t, folder, pipeline.Options{})
	if d := maxPixelDiff(want, plain); d <= 1 {
		t.Fatalf("the LoRA moves the image by %d/255 only", d)
	}
	for name, path := range files {
		got := generate(t, folder, pipeline.Options{LoRAs: []pipeline.LoRASpec{{Path: path, Weight: 1}}})
		if d := maxPixelDiff(got, want); d > 1 {
			t.Errorf("%s: the image differs from the fixture kohya file's by %d/255", name, d)
		}
	}
}
