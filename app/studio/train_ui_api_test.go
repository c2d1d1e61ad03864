package studio

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/device"
)

// TestPreflightFollowsSettings checks the Train screen's pre-flight on the
// tiny fixture model: counts with repeats, buckets, steps that follow the
// epochs and batch, memory that grows with the resolution and drops with
// gradient checkpointing, and an uncaptioned image reported, not refused.
func TestPreflightFollowsSettings(t *testing.T) {
	s := newStudio(t)
	ds := trainDataset(t) // 2_cats: a, b; 1_dogs: c
	os.Remove(filepath.Join(ds, "1_dogs", "c.txt"))
	model := filepath.Join(fixtureDir(t), "model")
	cfg := tinyTrainConfig()
	cfg.MaxSteps, cfg.Epochs = 0, 3
	pf, err := s.Preflight(TrainRequest{Dataset: ds, Model: model, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if pf.Images != 3 || pf.TrainImages != 5 || pf.StepsPerEpoch != 5 || pf.TotalSteps != 15 || pf.Epochs != 3 {
		t.Fatalf("counts: %+v", pf)
	}
	if len(pf.Folders) != 2 || pf.Folders[1].Folder != "2_cats" || pf.Folders[1].Repeats != 2 {
		t.Fatalf("folders %+v", pf.Folders)
	}
	if len(pf.Buckets) != 1 || pf.Buckets[0].Bucket != "64x64" || pf.Buckets[0].Samples != 5 {
		t.Fatalf("buckets %+v", pf.Buckets)
	}
	found := false
	for _, is := range pf.Issues {
		if strings.HasSuffix(is.Path, "c.png") && strings.Contains(is.Text, "no caption") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the uncaptioned c.png is not among the issues %+v", pf.Issues)
	}
	if pf.DeviceBytes <= 0 || pf.DeviceBytesOther <= pf.DeviceBytes || pf.Estimate <= 0 {
		t.Fatalf("memory %d (other %d), estimate %v: checkpointing on should use less", pf.DeviceBytes, pf.DeviceBytesOther, pf.Estimate)
	}
	cfg.Batch = 2
	cfg.Data.Resolution = 128
	cfg.Data.MinSide = 64
	pf2, err := s.Preflight(TrainRequest{Dataset: ds, Model: model, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if pf2.StepsPerEpoch != 3 || pf2.TotalSteps != 9 || pf2.DeviceBytes <= pf.DeviceBytes {
		t.Fatalf("batch 2 at 128: %d per epoch, %d steps, %d bytes (was %d)", pf2.StepsPerEpoch, pf2.TotalSteps, pf2.DeviceBytes, pf.DeviceBytes)
	}
	cfg.Rank = 0
	if _, err := s.Preflight(TrainRequest{Dataset: ds, Model: model, Config: cfg}); err == nil {
		t.Fatal("rank 0 passed the pre-flight")
	}
}

// TestDeleteAndRestoreRun trains a short run, deletes it (its folder moves
// to <data>/trash/runs and it leaves the list) and restores it.
func TestDeleteAndRestoreRun(t *testing.T) {
	s := newStudio(t)
	cfg := tinyTrainConfig()
	cfg.MaxSteps, cfg.SaveEvery = 2, 0
	p, err := s.PlanTrain(TrainRequest{Dataset: trainDataset(t), Model: filepath.Join(fixtureDir(t), "model"), Device: "cpu", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Train(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRun(res.RunID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.RunDir); !os.IsNotExist(err) {
		t.Fatalf("the run folder %s is still there: %v", res.RunDir, err)
	}
	trashed := filepath.Join(s.DataDir(), TrashDir, RunsDir, filepath.Base(res.RunDir))
	if _, err := os.Stat(filepath.Join(trashed, filepath.Base(res.Output))); err != nil {
		t.Fatalf("the LoRA is not in the trash: %v", err)
	}
	vis, err := s.VisibleRuns()
	if err != nil || len(vis) != 0 {
		t.Fatalf("visible runs after delete: %d, %v", len(vis), err)
	}
	tr, err := s.TrashedRuns()
	if err != nil || len(tr) != 1 || tr[0].ID != res.RunID {
		t.Fatalf("trashed runs %+v, %v", tr, err)
	}
	if err := s.DeleteRun(res.RunID); err == nil {
		t.Fatal("deleting a run twice passed")
	}
	if err := s.RestoreRun(res.RunID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.Output); err != nil {
		t.Fatalf("the LoRA did not come back: %v", err)
	}
	if vis, err := s.VisibleRuns(); err != nil || len(vis) != 1 {
		t.Fatalf("visible runs after restore: %d, %v", len(vis), err)
	}
	if err := s.RestoreRun(res.RunID); err == nil {
		t.Fatal("restoring a run not in the trash passed")
	}
}

// TestTrainPresets checks the built-in presets and that a saved one comes
// back, replaces one of its name, and cannot take a built-in name.
func TestTrainPresets(t *testing.T) {
	s := newStudio(t)
	ps, err := s.TrainPresets()
	if err != nil || len(ps) != 2 {
		t.Fatalf("presets %+v, %v", ps, err)
	}
	tut := ps[0].Config
	if ps[0].Name != "Tutorial" || tut.Rank != 8 || tut.Alpha != 16 || tut.Targets != "attn" || tut.LR != 1e-4 {
		t.Fatalf("Tutorial preset %+v", ps[0])
	}
	if ps[1].Config.Targets != "attn-mlp" {
		t.Fatalf("style preset %+v", ps[1])
	}
	cfg := DefaultTrainConfig()
	cfg.Rank = 32
	if err := s.SaveTrainPreset("mine", cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Rank = 4
	if err := s.SaveTrainPreset("mine", cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTrainPreset("tutorial", cfg); err == nil {
		t.Fatal("a preset named like a built-in one was saved")
	}
	ps, err = s.TrainPresets()
	if err != nil || len(ps) != 3 || ps[2].Name != "mine" || ps[2].Config.Rank != 4 || ps[2].BuiltIn {
		t.Fatalf("presets after saving %+v, %v", ps, err)
	}
}

// TestDeviceMemoryOfCPU reads the CPU's memory: the host's RAM.
func TestDeviceMemoryOfCPU(t *testing.T) {
	s := newStudio(t)
	dm, err := s.DeviceMemoryOf("cpu")
	if err != nil {
		t.Fatal(err)
	}
	if dm.Backend != "cpu" || (dm.Total <= 0 && hostMemory() != 0) {
		t.Fatalf("cpu memory %+v", dm)
	}
}

// TestDeviceMemoryOfGL reads the GL device's memory as its driver reports
// it, the same number engine/device describes; where no GL context can be
// made it says so as an error, and an unknown size (llvmpipe) is 0, not an error.
func TestDeviceMemoryOfGL(t *testing.T) {
	s := newStudio(t)
	inf, err := device.Describe("gl")
	if err != nil {
		if os.Getenv("LORASTUDIO_REQUIRE_GL") == "1" {
			t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but no GL context: %v", err)
		}
		t.Skipf("no GL context: %v", err)
	}
	dm, err := s.DeviceMemoryOf("gl")
	if err != nil {
		t.Fatal(err)
	}
	if dm.Backend != "gl" || dm.Total != inf.DeviceMemory || dm.Total < 0 {
		t.Fatalf("gl memory %+v, the device reports %d bytes", dm, inf.DeviceMemory)
	}
	if strings.Contains(inf.Renderer, "llvmpipe") && dm.Total != 0 {
		t.Fatalf("llvmpipe has no memory extension, yet %d bytes", dm.Total)
	}
}
