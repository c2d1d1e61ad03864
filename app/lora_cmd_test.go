package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/half"
	"lorastudio/engine/lora"
	"lorastudio/engine/sdxl"
)

// TestLoRAMergeCommand merges the fixture's kohya LoRA at weight 0.5 into
// the tiny model through the command line, as a single file and as a
// diffusers folder, and checks a targeted weight is the base plus half the
// LoRA's update, rounded to fp16, and an untouched one the base's.
func TestLoRAMergeCommand(t *testing.T) {
	root := fixtureRoot(t)
	model := filepath.Join(root, "model")
	kohya := filepath.Join(root, "lora", "kohya_sgm_names.safetensors")
	dir := t.TempDir()
	single := filepath.Join(dir, "merged.safetensors")
	folder := filepath.Join(dir, "merged")
	dataDir := filepath.Join(dir, "data")

	code, stdout, stderr := runCLI("lora", "merge", "--model", model, "--lora", kohya+":0.5", "--out", single)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "single") || !strings.Contains(stdout, single) {
		t.Errorf("stdout %q does not say what was written", stdout)
	}
	// the format follows --out; the global --data-dir may lead the subcommand
	code, _, stderr = runCLI("--data-dir", dataDir, "lora", "merge", "--model", model, "--lora", kohya+":0.5", "--out", folder)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}

	base, err := sdxl.OpenSource(model)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	l, err := lora.Open(kohya, base.Config())
	if err != nil {
		t.Fatal(err)
	}
	layer := l.Layers[l.Keys()[0]]
	for _, out := range []string{single, folder} {
		var opts []sdxl.Option
		if out == single {
			opts = append(opts, sdxl.WithConfigDir(model))
		}
		m, err := sdxl.OpenSource(out, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Check(); err != nil {
			t.Errorf("%s: %v", out, err)
		}
		br, _ := base.Tensor(layer.Component, layer.Target())
		w, _ := br.Float32()
		delta := layer.Delta()
		mr, err := m.Tensor(layer.Component, layer.Target())
		if err != nil {
			t.Fatal(err)
		}
		got, _ := mr.Float16Bits()
		for i := range w {
			if want := half.Float32ToFloat16(w[i] + 0.5*delta[i]); got[i] != want {
				t.Fatalf("%s: %s[%d] = %#04x, want base + 0.5·ΔW = %#04x", out, layer.Target(), i, got[i], want)
			}
		}
		// conv_in is no LoRA target: passed through bit for bit
		a, _ := base.Tensor(sdxl.UNet, "conv_in.weight")
		b, _ := m.Tensor(sdxl.UNet, "conv_in.weight")
		ab, _ := a.Float16Bits()
		bb, _ := b.Float16Bits()
		if string(u16bytes(ab)) != string(u16bytes(bb)) {
			t.Errorf("%s: conv_in.weight changed", out)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lora"}, "subcommand"},
		{[]string{"lora", "split"}, "split"},
		{[]string{"lora", "merge", "--model", model, "--out", filepath.Join(dir, "x.safetensors")}, "--lora"},
		{[]string{"lora", "merge", "--model", model, "--lora", kohya}, "--out"},
		{[]string{"lora", "merge", "--model", model, "--lora", kohya, "--out", filepath.Join(dir, "y"), "--format", "single"}, ".safetensors"},
		{[]string{"lora", "merge", "--model", model, "--lora", kohya, "--out", filepath.Join(dir, "z"), "--format", "ckpt"}, "ckpt"},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
	// a failure (the folder exists) names the problem and exits 1
	code, _, stderr = runCLI("lora", "merge", "--model", model, "--lora", kohya, "--out", folder)
	if code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("merging into an existing folder: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.safetensors")); !os.IsNotExist(err) {
		t.Error("a refused command line wrote a file")
	}
}

// u16bytes views fp16 bits as bytes for comparison.
func u16bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		b[2*i], b[2*i+1] = byte(x), byte(x>>8)
	}
	return b
}
