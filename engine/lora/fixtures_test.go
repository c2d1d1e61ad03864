package lora

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/sdxl"
)

// fixtureConfig reads the tiny model's configs.
func fixtureConfig(t testing.TB) sdxl.Config {
	t.Helper()
	cfg, err := sdxl.LoadConfig(filepath.Join(fixtures.Root(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readJSON decodes a fixture JSON file into v.
func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// loraForms are the four spellings of the fixture LoRA, relative to lora/.
var loraForms = []struct{ name, path, format string }{
	{"peft", "peft", FormatPEFT},
	{"diffusers", "diffusers/pytorch_lora_weights.safetensors", FormatDiffusers},
	{"kohya-diffusers-names", "kohya_diffusers_names.safetensors", FormatKohya},
	{"kohya-stability-names", "kohya_sgm_names.safetensors", FormatKohya},
}
