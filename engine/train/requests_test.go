package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/safetensors"
)

// TestRequestsKeepTheRunIdentical runs the same settings twice, the second
// time with Save now at step 1 and Sample now at steps 1 and 3 (sent from
// the events of those steps, so they are read at those steps' ends): the
// second run writes the extra checkpoint and samples, and its per-step
// losses, final state and output file are the first run's bit for bit.
func TestRequestsKeepTheRunIdentical(t *testing.T) {
	const steps = 4
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 3, 64, 64)
	cache := filepath.Join(tmp, "cache")
	be := cpu.New()
	cfg := tinyConfig(cache, steps)
	// No samples scheduled and no sample steps set (Validate asks for them
	// only with SampleEvery): Sample now takes the default steps.
	cfg.SampleEvery, cfg.SampleSteps, cfg.SampleGuidance, cfg.SampleSize = 0, 0, 2, 64

	plainDir := filepath.Join(tmp, "plain")
	plain := losses{}
	plainRes, err := Run(context.Background(), be, src, imgs, cfg, plainDir, false, plain.record)
	if err != nil {
		t.Fatal(err)
	}

	askedDir := filepath.Join(tmp, "asked")
	asked := losses{}
	reqs := make(chan Request, 4)
	var checkpoints, samples []Event
	askedRes, err := RunWith(context.Background(), be, src, imgs, cfg, askedDir, false, func(e Event) {
		asked.record(e)
		switch e.Kind {
		case Step:
			switch e.Step {
			case 1:
				reqs <- SaveNow
				reqs <- SampleNow
				reqs <- SaveNow // a repeat before the step's end coalesces
			case 3:
				reqs <- SampleNow
			}
		case Checkpoint:
			checkpoints = append(checkpoints, e)
		case Sample:
			samples = append(samples, e)
		}
	}, Options{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}

	for s := 1; s <= steps; s++ {
		if math.Float64bits(plain[s]) != math.Float64bits(asked[s]) {
			t.Errorf("step %d: loss %v without requests, %v with", s, plain[s], asked[s])
		}
	}
	sameParams(t, "with requests vs without", stateParams(t, statePath(plainDir, steps)), stateParams(t, statePath(askedDir, steps)))
	// The kohya file's metadata carries dates: compare its tensors.
	sameParams(t, "output with requests vs without", loraTensors(t, plainRes.Output), loraTensors(t, askedRes.Output))

	// Save now at step 1: a numbered LoRA and a state, reported once.
	if len(checkpoints) != 2 || checkpoints[0].Step != 1 || checkpoints[1].Step != steps {
		t.Fatalf("checkpoint events at %v, want steps 1 and %d", eventSteps(checkpoints), steps)
	}
	want := filepath.Join(askedDir, checkpointDir, "lora-000001.safetensors")
	if checkpoints[0].Path != want {
		t.Errorf("Save now wrote %s, want %s", checkpoints[0].Path, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Errorf("Save now's LoRA: %v", err)
	}
	if _, err := os.Stat(statePath(askedDir, 1)); err != nil {
		t.Errorf("Save now's state: %v", err)
	}
	if _, err := os.Stat(statePath(plainDir, 1)); err == nil {
		t.Error("the run without requests has a state at step 1: the test shows nothing")
	}

	// Sample now at steps 1 and 3: every prompt once each, as files.
	prompts := (&runner{cfg: cfg, imgs: imgs}).samplePrompts()
	if len(samples) != 2*len(prompts) {
		t.Fatalf("%d sample events at steps %v, want %d", len(samples), eventSteps(samples), 2*len(prompts))
	}
	for i, e := range samples {
		wantStep := 1
		if i >= len(prompts) {
			wantStep = 3
		}
		if e.Step != wantStep || e.Prompt != prompts[i%len(prompts)] {
			t.Errorf("sample %d: step %d prompt %q, want step %d prompt %q", i, e.Step, e.Prompt, wantStep, prompts[i%len(prompts)])
		}
		if _, err := os.Stat(e.Path); err != nil {
			t.Errorf("sample %d: %v", i, err)
		}
	}
	if len(askedRes.Samples) != len(samples) {
		t.Errorf("the result lists %d samples, the events %d", len(askedRes.Samples), len(samples))
	}
}

// TestRequestsAlreadyDoneAndClosed asks for a save and samples at a step
// the schedule already saved and sampled (nothing more is written), and
// closes the channel mid-run (the run goes on).
func TestRequestsAlreadyDoneAndClosed(t *testing.T) {
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 2, 64, 64)
	cfg := tinyConfig(filepath.Join(tmp, "cache"), 3)
	cfg.GradAccum = 1
	cfg.SaveEvery, cfg.SampleEvery = 2, 2
	cfg.SampleSteps, cfg.SampleGuidance, cfg.SampleSize = 2, 2, 64
	reqs := make(chan Request, 4)
	count := map[EventKind]map[int]int{Checkpoint: {}, Sample: {}}
	res, err := RunWith(context.Background(), cpu.New(), src, imgs, cfg, filepath.Join(tmp, "run"), false, func(e Event) {
		if m := count[e.Kind]; m != nil {
			m[e.Step]++
		}
		if e.Kind == Step && e.Step == 2 {
			reqs <- SaveNow
			reqs <- SampleNow
			close(reqs)
		}
	}, Options{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 3 {
		t.Fatalf("the run ended at step %d, want 3", res.Steps)
	}
	if n := count[Checkpoint][2]; n != 1 {
		t.Errorf("%d checkpoints at step 2, want the scheduled one only", n)
	}
	prompts := (&runner{cfg: cfg, imgs: imgs}).samplePrompts()
	if n := count[Sample][2]; n != len(prompts) {
		t.Errorf("%d samples at step 2, want the scheduled %d only", n, len(prompts))
	}
}

// eventSteps lists the events' steps, for messages.
func eventSteps(es []Event) []int {
	var out []int
	for _, e := range es {
		out = append(out, e.Step)
	}
	return out
}

// loraTensors reads every tensor of a LoRA file as float32.
func loraTensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, n := range f.Names() {
		v, err := f.Float32(n)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, n, err)
		}
		out[n] = v
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no tensors", path)
	}
	return out
}
