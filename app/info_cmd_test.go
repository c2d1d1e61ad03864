package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
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

// infoJSON runs `lorastudio info ARGS...` through run, as the terminal does,
// and decodes its JSON; code is the exit status.
func infoJSON(t *testing.T, args ...string) (v map[string]any, code int, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"info"}, args...), &out, &errb)
	if code == 0 {
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			t.Fatalf("info %v: not JSON: %v\n%s", args, err, out.String())
		}
	}
	return v, code, errb.String()
}

// TestInfoDeviceTakesAValue: `info --device D` accepts auto, cpu and gl as
// every other command's --device does, in both spellings and any order;
// bare --device is the default device ($LORASTUDIO_DEVICE, else auto).
func TestInfoDeviceTakesAValue(t *testing.T) {
	t.Setenv("LORASTUDIO_DEVICE", "")
	for _, args := range [][]string{
		{"--device", "cpu", "--json"},
		{"--json", "--device", "cpu"},
		{"--device=cpu", "--json"},
		{"--device", "CPU", "--json"},
		{"-device", "cpu", "-json"},
		{"--backend", "cpu", "--json"},
		{"--device", "cpu", "--backend", "cpu", "--json"},
	} {
		v, code, errs := infoJSON(t, args...)
		if code != 0 || v["backend"] != "cpu" || v["fallback"] != nil {
			t.Errorf("info %v: exit %d, %v, stderr %q; want the cpu backend", args, code, v, errs)
		}
	}

	// auto, bare --device and --device auto describe the same backend.
	auto, code, errs := infoJSON(t, "--device", "auto", "--json")
	if code != 0 || (auto["backend"] != "gl" && auto["backend"] != "cpu") {
		t.Fatalf("info --device auto: exit %d, %v, %s", code, auto, errs)
	}
	if auto["backend"] == "cpu" && auto["fallback"] == nil {
		t.Errorf("auto chose the CPU without saying why: %v", auto)
	}
	bare, _, _ := infoJSON(t, "--device", "--json")
	if bare["backend"] != auto["backend"] || bare["renderer"] != auto["renderer"] {
		t.Errorf("bare --device gave %v, --device auto %v", bare, auto)
	}
	// A bare --device follows $LORASTUDIO_DEVICE like every other command;
	// an explicit auto does not.
	t.Setenv("LORASTUDIO_DEVICE", "cpu")
	if v, code, errs := infoJSON(t, "--device", "--json"); code != 0 || v["backend"] != "cpu" {
		t.Errorf("LORASTUDIO_DEVICE=cpu info --device: exit %d, %v, %s", code, v, errs)
	}
	if v, _, _ := infoJSON(t, "--device", "auto", "--json"); v["backend"] != auto["backend"] {
		t.Errorf("LORASTUDIO_DEVICE=cpu info --device auto gave %v, want %v as without it", v["backend"], auto["backend"])
	}
	t.Setenv("LORASTUDIO_DEVICE", "")

	// gl: the GL context's limits where one can be made, else a failure
	// (exit 1) that says why, never a usage error.
	gl, code, errs := infoJSON(t, "--device", "gl", "--json")
	switch {
	case code == 0:
		if gl["backend"] != "gl" || gl["version"] == nil || gl["max_ssbo_binding"] == nil {
			t.Errorf("info --device gl --json: %v", gl)
		}
	case requireGL():
		t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but info --device gl: exit %d, %s", code, errs)
	case code != 1 || !strings.Contains(errs, "gl"):
		t.Errorf("info --device gl without GL: exit %d, stderr %q; want exit 1 saying why", code, errs)
	default:
		t.Logf("no GL here: %s", errs)
	}
	if code == 0 {
		var out, errb bytes.Buffer
		if c := run([]string{"info", "--device", "gl"}, &out, &errb); c != 0 || !regexp.MustCompile(`(?m)^backend: +gl$`).MatchString(out.String()) || !strings.Contains(out.String(), "max storage binding:") {
			t.Errorf("info --device gl (text): exit %d\n%s%s", c, out.String(), errb.String())
		}
	}
}

// TestParseInfoArgs pins how the word after a bare --device is read.
func TestParseInfoArgs(t *testing.T) {
	model := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cpuDir := filepath.Join(t.TempDir(), "cpu")
	if err := os.Mkdir(cpuDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(cpuDir)) // a folder named cpu: the word still means the device
	for _, c := range []struct {
		args []string
		want infoArgs
		err  string
	}{
		{args: []string{"--device"}, want: infoArgs{wantDevice: true}},
		{args: []string{"--device", "--json"}, want: infoArgs{wantDevice: true, asJSON: true}},
		{args: []string{"--device", "gl"}, want: infoArgs{wantDevice: true, kind: "gl"}},
		{args: []string{"--device", "cpu"}, want: infoArgs{wantDevice: true, kind: "cpu"}},
		{args: []string{"--device=auto", "--json"}, want: infoArgs{wantDevice: true, kind: "auto", asJSON: true}},
		{args: []string{"--device", "help"}, want: infoArgs{wantDevice: true, help: true}},
		{args: []string{model}, want: infoArgs{model: model}},
		{args: []string{model, "--json", "--data-dir", "d"}, want: infoArgs{model: model, asJSON: true, dataDir: "d"}},
		{args: []string{"--device", "vulkan"}, want: infoArgs{wantDevice: true, kind: "vulkan"}}, // Describe refuses it
		{args: []string{"--device", model}, err: "either --device or MODEL"},
		{args: []string{model, "--device", "gl"}, err: "either --device or MODEL"},
		{args: []string{"--device", "gl", "--backend", "cpu"}, err: "two devices"},
		{args: []string{"--device=gl", "--device=cpu"}, err: "two devices"},
		{args: []string{"--device", "--config", "x"}, err: "--config applies to MODEL only"},
		{args: []string{"--backend"}, err: "needs a value"},
		{args: []string{"--frobnicate"}, err: "unknown flag"},
	} {
		got, err := parseInfoArgs(c.args)
		if c.err != "" {
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseInfoArgs(%q) error %v, want a usage error containing %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseInfoArgs(%q) = %+v, %v; want %+v", c.args, got, err, c.want)
		}
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
		{"a.safetensors", "b.safetensors"}, {"--device", "vulkan"}, {"--device", "--config", "x"}} {
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
