package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"lorastudio/engine/opstats"
	"lorastudio/engine/sdxl/demo"
)

// TestBenchGenerate runs `bench generate` on the demo model's tiny shapes (the
// command builds SDXL base's real shapes otherwise, minutes on a CPU) and
// checks the figures it reports add up.
func TestBenchGenerate(t *testing.T) {
	cfg := demo.Config()
	benchSDXLConfig = &cfg
	defer func() { benchSDXLConfig = nil }()
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "generate", "--device", "cpu", "--size", "64x64", "--steps", "3", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var g generateBench
	if err := json.Unmarshal(out.Bytes(), &g); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if g.Backend != "cpu" || g.Size != 64 || g.Steps != 3 {
		t.Fatalf("report %+v", g)
	}
	if g.StepSeconds <= 0 || g.DecodeSeconds <= 0 || g.EncodeSeconds <= 0 || g.DevicePeakBytes <= 0 || g.HostPeakBytes <= 0 {
		t.Fatalf("a figure is missing: %+v", g)
	}
	if want := g.EncodeSeconds + 3*g.StepSeconds + g.DecodeSeconds; math.Abs(g.ImageSeconds-want) > 1e-9 {
		t.Fatalf("whole image %v s, want encode + 3 steps + decode = %v s", g.ImageSeconds, want)
	}
	for name, s := range map[string]*opstats.Stats{"step": g.StepOps, "decode": g.DecodeOps, "encode": g.EncodeOps} {
		if s == nil || len(s.Kinds) == 0 || s.Total <= 0 {
			t.Errorf("%s: no per-op breakdown on the cpu: %+v", name, s)
		}
	}
	out.Reset()
	if code := run([]string{"bench", "generate", "--device", "cpu", "--size", "64", "--no-ops", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("--no-ops: exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "step_ops") {
		t.Errorf("--no-ops still reports ops:\n%s", out.String())
	}

	out.Reset()
	if code := run([]string{"bench", "sdxl", "--device", "cpu", "--size", "64"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "unet") {
		t.Fatalf("bench sdxl: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

func TestBenchSDXLUsage(t *testing.T) {
	for _, args := range [][]string{
		{"generate", "--size", "64x32"}, {"generate", "--size", "65"}, {"generate", "--steps", "0"},
		{"sdxl", "--steps", "3"}, {"generate", "--size", "64", "--size", "128"}, {"sdxl", "--bogus"},
		{"generate", "--device", "vulkan"},
	} {
		var out, errb bytes.Buffer
		if err := benchCommand(args, &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("bench %v: %v, want a usage error", args, err)
		}
	}
}
