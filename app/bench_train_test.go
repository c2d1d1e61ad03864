package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"lorastudio/engine/opstats"
	"lorastudio/engine/sdxl/demo"
	"lorastudio/engine/sdxl/sdxlbench"
)

// TestBenchTrain runs `bench train` on the demo model's tiny shapes (the
// command builds SDXL base's real UNet otherwise) and reads its JSON.
func TestBenchTrain(t *testing.T) {
	cfg := demo.Config()
	benchSDXLConfig = &cfg
	defer func() { benchSDXLConfig = nil }()
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "train", "--device", "cpu", "--size", "64", "--rank", "2", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep sdxlbench.TrainReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.Backend != "cpu" || len(rep.Timings) != 2 || rep.LoRAParams <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, tm := range rep.Timings {
		if tm.Size != 64 || tm.Rank != 2 || tm.Seconds <= 0 || tm.DevicePeakBytes <= 0 {
			t.Errorf("timing %+v", tm)
		}
		if tm.Ops == nil || len(tm.Ops.Kinds) == 0 {
			t.Errorf("timing %+v has no per-op breakdown", tm)
		} else if bw := tm.Ops.Ops; !slices.ContainsFunc(bw, func(c opstats.Count) bool { return c.Name == "MatMulBackward" }) {
			t.Errorf("a training step without MatMulBackward: %+v", bw)
		}
	}
	for _, args := range [][]string{{"train", "--rank", "0"}, {"train", "--size", "65"}, {"train", "--bogus"}, {"train", "--device", "vulkan"}} {
		if err := benchCommand(args, &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("bench %v: %v, want a usage error", args, err)
		}
	}
}
