package sdxl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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

// manifestRoot returns the manifest of the real SDXL checkpoints:
// $LORASTUDIO_MANIFEST, or sdxl-manifest beside the fixture set.
func manifestRoot(t testing.TB) string {
	t.Helper()
	root := os.Getenv("LORASTUDIO_MANIFEST")
	if root == "" {
		root = filepath.Join(filepath.Dir(fixtureRoot(t)), "sdxl-manifest")
	}
	if _, err := os.Stat(filepath.Join(root, "manifest_diffusers.json")); err != nil {
		t.Fatalf("manifest not found at %s (set LORASTUDIO_MANIFEST): %v", root, err)
	}
	return root
}

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
	dir := filepath.Join(manifestRoot(t), "configs")
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
