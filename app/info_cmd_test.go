package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInfoDeviceJSON(t *testing.T) {
	describe := func(args ...string) map[string]any {
		t.Helper()
		var out, errb bytes.Buffer
		if err := infoCommand(append([]string{"--device", "--json"}, args...), &out, &errb); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if m["renderer"] == "" || m["renderer"] == nil {
			t.Fatalf("no renderer in %s", out.String())
		}
		return m
	}
	// auto: GL on a GPU, else the CPU with the reason (a software GL renderer
	// such as llvmpipe is passed over).
	m := describe()
	switch m["backend"] {
	case "gl":
	case "cpu":
		if m["fallback"] == nil || m["fallback"] == "" {
			t.Fatalf("auto chose the CPU without saying why: %v", m)
		}
	default:
		t.Fatalf("backend %v", m["backend"])
	}
	if os.Getenv("LORASTUDIO_REQUIRE_GL") != "1" {
		return
	}
	g := describe("--backend", "gl")
	if g["backend"] != "gl" || g["max_ssbo_binding"] == nil || g["version"] == nil {
		t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but --backend gl gave %v", g)
	}
}

func TestInfoDeviceCPUText(t *testing.T) {
	var out, errb bytes.Buffer
	if err := infoCommand([]string{"--device", "--backend", "cpu"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "backend:") || !strings.Contains(out.String(), "cpu") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestInfoUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--device", "--backend", "vulkan"}, {"--frobnicate"},
		{"a.safetensors", "b.safetensors"}, {"--device", "model.safetensors"}, {"--device", "--config", "x"}} {
		var out, errb bytes.Buffer
		err := infoCommand(args, &out, &errb)
		if !errors.Is(err, errUsage) {
			t.Errorf("info %v: %v, want a usage error", args, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"info", "--config", "x"}, &out, &errb); code != exitUsage {
		t.Errorf("lorastudio info --config x exits %d, want %d (stderr %q)", code, exitUsage, errb.String())
	}
}

// TestInfoDefaultModel: with no MODEL, info describes the demo model (written
// on first use) and says so.
func TestInfoDefaultModel(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--data-dir", t.TempDir(), "info", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if v["format"] != "diffusers" || !strings.Contains(errb.String(), "demo (random weights)") {
		t.Fatalf("info with no model: %v, stderr %q", v["format"], errb.String())
	}
}

// TestInfoModel runs `info MODEL` on the fixture model in both file forms: the
// JSON names the format and gives each component's parameter count and dtype,
// the same in both; a missing file exits 1 naming it.
func TestInfoModel(t *testing.T) {
	root := fixtureRoot(t)
	folder := filepath.Join(root, "model")
	single := filepath.Join(root, "sdxl-tiny.safetensors")
	read := func(args ...string) map[string]any {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"info"}, args...), &out, &errb); code != 0 {
			t.Fatalf("info %v: exit %d: %s", args, code, errb.String())
		}
		var v map[string]any
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			t.Fatalf("info %v --json: %v\n%s", args, err, out.String())
		}
		return v
	}
	a := read(folder, "--json")
	b := read(single, "--config", folder, "--json")
	if a["format"] != "diffusers" || b["format"] != "single-file" {
		t.Fatalf("formats %v and %v", a["format"], b["format"])
	}
	for _, comp := range []string{"unet", "vae", "text_encoder", "text_encoder_2"} {
		ca, _ := a["components"].(map[string]any)[comp].(map[string]any)
		cb, _ := b["components"].(map[string]any)[comp].(map[string]any)
		if ca == nil || cb == nil {
			t.Fatalf("component %s missing: %v / %v", comp, a["components"], b["components"])
		}
		if p, ok := ca["params"].(float64); !ok || p <= 0 || p != cb["params"] {
			t.Errorf("%s params %v (folder) vs %v (single file)", comp, ca["params"], cb["params"])
		}
		if ca["dtype"] != "F16" || cb["dtype"] != "F16" {
			t.Errorf("%s dtype %v / %v, want F16 (the fixture stores fp16)", comp, ca["dtype"], cb["dtype"])
		}
	}
	var out, errb bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nope.safetensors")
	if code := run([]string{"info", missing}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nope.safetensors") {
		t.Fatalf("info on a missing file: exit %d, stderr %q", code, errb.String())
	}
}

// fixtureRoot is the golden set: $LORASTUDIO_FIXTURES, else
// engine/testdata/sdxl-tiny, both relative to the repository root (the
// parent of app/, where this test runs).
func fixtureRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LORASTUDIO_FIXTURES")
	if dir == "" {
		dir = filepath.Join("engine", "testdata", "sdxl-tiny")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fixtures not found at %s (set LORASTUDIO_FIXTURES): %v", dir, err)
	}
	return dir
}
