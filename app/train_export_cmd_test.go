package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"lorastudio/engine/lora"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// exportDataset writes a kohya dataset: two captioned images in 3_cat.
func exportDataset(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, n := range []string{"a", "b"} {
		p := filepath.Join(root, "3_cat", n+".png")
		writeTestPNG(t, p, 64, 64)
		if err := os.WriteFile(filepath.Join(root, "3_cat", n+".txt"), []byte("sks cat, "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestSplitExportArgs checks that export's own flags are taken out wherever
// they stand and train's flags keep their values, even values that look
// like export's flags.
func TestSplitExportArgs(t *testing.T) {
	own, rest, err := splitExportArgs([]string{"--dataset", "D", "--to=O", "--flip", "--num-processes", "8",
		"--sample-prompt", "--to", "-rank", "4", "--main-process-ip", "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"to": "O", "num-processes": "8", "main-process-ip": "10.0.0.1"}; !reflect.DeepEqual(own, want) {
		t.Errorf("own %v, want %v", own, want)
	}
	if want := []string{"--dataset", "D", "--flip", "--sample-prompt", "--to", "-rank", "4"}; !reflect.DeepEqual(rest, want) {
		t.Errorf("rest %q, want %q", rest, want)
	}
	if _, _, err := splitExportArgs([]string{"--out", "x"}); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("--out: %v", err)
	}
}

// TestTrainExportImportCLI runs export with train's settings and cluster
// flags, reads the TOML back, puts a LoRA with sd-scripts' metadata where
// sd-scripts writes it, imports the folder and finds the run in runs list.
func TestTrainExportImportCLI(t *testing.T) {
	ds := exportDataset(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	out := filepath.Join(dir, "export")
	code, stdout, stderr := runCLI("--data-dir", data, "train", "export", "--dataset", ds, "--model", "/cluster/sdxl.safetensors",
		"--to", out, "--rank", "16", "--alpha", "8", "--lr", "2e-4", "--steps", "300", "--flip", "--keep-tags", "1", "--shuffle-tags",
		"--num-processes", "8", "--num-machines", "2", "--machine-rank", "1", "--main-process-ip", "10.0.0.1", "--name", "cat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "dataset/3_cat: 2 images x 3 repeats") || !strings.Contains(stdout, "train import "+out) {
		t.Errorf("stdout:\n%s", stdout)
	}
	var tc map[string]map[string]any
	if _, err := toml.DecodeFile(filepath.Join(out, "train_config.toml"), &tc); err != nil {
		t.Fatal(err)
	}
	if tc["network"]["network_dim"] != int64(16) || tc["network"]["network_alpha"] != 8.0 || tc["optimizer"]["learning_rate"] != 2e-4 ||
		tc["training"]["max_train_steps"] != int64(300) || tc["model"]["pretrained_model_name_or_path"] != "/cluster/sdxl.safetensors" {
		t.Errorf("train_config.toml %v", tc)
	}
	var dc struct {
		Datasets []struct {
			Subsets []map[string]any
		}
	}
	if _, err := toml.DecodeFile(filepath.Join(out, "dataset_config.toml"), &dc); err != nil {
		t.Fatal(err)
	}
	if sub := dc.Datasets[0].Subsets[0]; sub["num_repeats"] != int64(3) || sub["flip_aug"] != true || sub["keep_tokens"] != int64(1) || sub["shuffle_caption"] != true {
		t.Errorf("subset %v", sub)
	}
	launch, _ := os.ReadFile(filepath.Join(out, "launch.sh"))
	if !strings.Contains(string(launch), "--num_processes 8") || !strings.Contains(string(launch), "--num_machines 2") || !strings.Contains(string(launch), "MACHINE_RANK:-1") {
		t.Errorf("launch.sh:\n%s", launch)
	}

	// Bad lines exit 2 naming the flag.
	for _, args := range [][]string{
		{"train", "export", "--dataset", ds, "--model", "m"},
		{"train", "export", "--dataset", ds, "--model", "m", "--to", out, "--format", "peft"},
		{"train", "export", "--dataset", ds, "--model", "m", "--to", out, "--num-processes", "x"},
		{"train", "import"},
	} {
		if code, _, stderr := runCLI(append([]string{"--data-dir", data}, args...)...); code != 2 || !strings.Contains(stderr, "train ") {
			t.Errorf("%q: exit %d, %s", args, code, stderr)
		}
	}

	// sd-scripts' output, stood in for by the fixture LoRA with its metadata.
	root := fixtureRoot(t)
	src, err := sdxl.OpenSource(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := lora.Open(filepath.Join(root, "lora", "kohya_sgm_names.safetensors"), src.Config())
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(out, "output"), 0o755)
	meta := map[string]string{"ss_steps": "300", "ss_epoch": "50", "ss_output_name": "cat", "ss_training_started_at": "1700000000",
		"ss_dataset_dirs": `{"3_cat": {"n_repeats": 3, "img_count": 2}}`, "ss_tag_frequency": `{"3_cat": {"sks cat": 2}}`}
	if err := lora.WriteKohya(filepath.Join(out, "output", "cat.safetensors"), l, src.Config(), safetensors.F16, meta); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("--data-dir", data, "train", "import", out)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "run: 1 (cat)") || !strings.Contains(stdout, "steps: 300 (epoch 50)") {
		t.Errorf("import stdout:\n%s", stdout)
	}
	code, stdout, stderr = runCLI("--data-dir", data, "runs", "list")
	if code != 0 || !strings.Contains(stdout, "cat") || !strings.Contains(stdout, "300") {
		t.Errorf("runs list: exit %d\n%s%s", code, stdout, stderr)
	}
}
