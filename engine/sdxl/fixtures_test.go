package sdxl

import (
	"encoding/json"
	"lorastudio/engine/internal/fixtures"
	"os"
	"path/filepath"
	"testing"
)

type manifestTensor struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

type diffusersManifest struct {
	ParamCounts  map[string]int64            `json:"param_counts"`
	TensorCounts map[string]int              `json:"tensor_counts"`
	Components   map[string][]manifestTensor `json:"components"`
}

type singleFileManifest struct {
	ParamCount  int64            `json:"param_count"`
	TensorCount int              `json:"tensor_count"`
	Tensors     []manifestTensor `json:"tensors"`
}

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

// manifestConfig reads the real SDXL configs from the manifest's configs/ folder.
func manifestConfig(t testing.TB) Config {
	t.Helper()
	dir := filepath.Join(fixtures.Manifest(t), "configs")
	files := map[string]string{"model_index": "model_index.json", UNet: "unet.json", VAE: "vae.json",
		TextEncoder: "text_encoder.json", TextEncoder2: "text_encoder_2.json", "scheduler": "scheduler.json"}
	cfg, err := parseConfigs(func(key string) (string, []byte, error) {
		p := filepath.Join(dir, files[key])
		b, err := os.ReadFile(p)
		return p, b, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mustEmbedded returns an embedded config file (configs/name).
func mustEmbedded(name string) []byte {
	b, err := embeddedConfigs.ReadFile("configs/" + name)
	if err != nil {
		panic(err)
	}
	return b
}
