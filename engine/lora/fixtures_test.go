package lora

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"lorastudio/engine/sdxl"
)

// fixtureRoot returns the fixture set: $LORASTUDIO_FIXTURES, or
// ../shared/fixtures/sdxl-tiny relative to the repository root (the directory
// holding go.mod). A missing set fails the test: the fixtures are the judge.
func fixtureRoot(t testing.TB) string {
	t.Helper()
	root := os.Getenv("LORASTUDIO_FIXTURES")
	if root == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				t.Fatal("no go.mod above the test directory; set LORASTUDIO_FIXTURES")
			}
			dir = parent
		}
		root = filepath.Join(dir, "..", "shared", "fixtures", "sdxl-tiny")
	}
	if _, err := os.Stat(filepath.Join(root, "model", "model_index.json")); err != nil {
		t.Fatalf("fixture set not found at %s (set LORASTUDIO_FIXTURES): %v", root, err)
	}
	return root
}

// fixtureConfig reads the tiny model's configs.
func fixtureConfig(t testing.TB) sdxl.Config {
	t.Helper()
	cfg, err := sdxl.LoadConfig(filepath.Join(fixtureRoot(t), "model"))
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
