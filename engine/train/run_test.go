package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/lora"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/train/dataset"
)

// writeImages writes n small PNGs with distinct deterministic patterns and
// returns them as a dataset.
func writeImages(t testing.TB, dir string, n, w, h int) []dataset.Image {
	t.Helper()
	captions := []string{"a red square, simple", "a blue circle, flat", "a green field, calm", "a white wall, plain"}
	var imgs []dataset.Image
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, color.NRGBA{uint8((x*7 + i*60) % 256), uint8((y*5 + i*90) % 256), uint8((x*y + i*30) % 256), 255})
			}
		}
		p := filepath.Join(dir, "img"+string(rune('a'+i))+".png")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		imgs = append(imgs, dataset.Image{Path: p, Caption: captions[i%len(captions)], Repeats: 1})
	}
	return imgs
}

// tinyConfig is a run on the tiny fixture model at 64×64 (8×8 latents)
// exercising every random draw: flips, caption dropout, LoRA dropout,
// noise offset, min-SNR weighting, a batch of two and gradient accumulation.
func tinyConfig(cacheDir string, steps int) Config {
	c := Default()
	c.Rank, c.Alpha = 4, 8
	c.Data = dataset.Options{Resolution: 64, BucketStep: 64, MinSide: 64, MaxSide: 128, NoBuckets: true, Flip: true, CaptionDropout: 0.3}
	c.Batch, c.GradAccum = 2, 2
	c.LR = 1e-3
	c.MaxSteps = steps
	c.Dropout = 0.1
	c.NoiseOffset = 0.05
	c.MinSNRGamma = 5
	c.SaveEvery = 0
	c.SampleEvery = 0
	c.CacheDir = cacheDir
	c.Format = "kohya"
	c.SavePrecision = "fp32"
	return c
}

func openTiny(t testing.TB) *sdxl.Source {
	t.Helper()
	src, err := sdxl.OpenSource(filepath.Join(fixtures.Root(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// losses collects the Step events' losses by step.
type losses map[int]float64

func (l losses) record(e Event) {
	if e.Kind == Step {
		l[e.Step] = e.Loss
	}
}

// stateParams reads the LoRA parameters of a state file.
func stateParams(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, n := range f.Names() {
		if strings.HasPrefix(n, "param.") {
			v, err := f.Float32(n)
			if err != nil {
				t.Fatal(err)
			}
			out[n] = v
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no parameters", path)
	}
	return out
}

// sameParams fails unless a and b are bit for bit equal.
func sameParams(t *testing.T, what string, a, b map[string][]float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d parameters vs %d", what, len(a), len(b))
	}
	for n, va := range a {
		vb := b[n]
		if len(va) != len(vb) {
			t.Fatalf("%s: %s has %d values vs %d", what, n, len(va), len(vb))
		}
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				t.Fatalf("%s: %s[%d] = %g vs %g", what, n, i, va[i], vb[i])
			}
		}
	}
}

// TestResumeIsBitIdentical runs 2N steps straight and N steps, a stop
// (context cancelled), then a resume of N more: the per-step losses and the
// final weights must be the same bit for bit. It also checks that a
// damaged or missing newest state falls back to the one before it.
func TestResumeIsBitIdentical(t *testing.T) {
	const n = 2
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 3, 64, 64)
	cache := filepath.Join(tmp, "cache")
	be := cpu.New()

	straightDir := filepath.Join(tmp, "straight")
	cfg := tinyConfig(cache, 2*n)
	cfg.SaveEvery = n
	straight := losses{}
	res, err := Run(context.Background(), be, src, imgs, cfg, straightDir, false, straight.record)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 2*n || len(straight) != 2*n {
		t.Fatalf("straight run: %d steps, %d losses", res.Steps, len(straight))
	}
	if _, err := os.Stat(res.Output); err != nil {
		t.Fatalf("no output: %v", err)
	}
	want := stateParams(t, statePath(straightDir, 2*n))

	// N steps, stop, resume
	stopDir := filepath.Join(tmp, "stopped")
	ctx, cancel := context.WithCancel(context.Background())
	resumed := losses{}
	_, err = Run(ctx, be, src, imgs, tinyConfig(cache, 2*n), stopDir, false, func(e Event) {
		resumed.record(e)
		if e.Kind == Step && e.Step == n {
			cancel()
		}
	})
	cancel()
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("stopped run: %v, want ErrStopped", err)
	}
	if _, err := os.Stat(statePath(stopDir, n)); err != nil {
		t.Fatalf("the stop left no state at step %d: %v", n, err)
	}
	if _, err := Run(context.Background(), be, src, imgs, tinyConfig(cache, 2*n), stopDir, false, nil); err == nil {
		t.Error("a fresh run over a folder with a checkpoint was not refused")
	}
	if _, err = Run(context.Background(), be, src, imgs, tinyConfig(cache, 2*n), stopDir, true, resumed.record); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 2*n; s++ {
		if math.Float64bits(straight[s]) != math.Float64bits(resumed[s]) {
			t.Errorf("step %d: loss %v straight, %v stopped and resumed", s, straight[s], resumed[s])
		}
	}
	sameParams(t, "resumed vs straight", want, stateParams(t, statePath(stopDir, 2*n)))

	// kill safety: the newest state truncated, then missing
	for _, damage := range []string{"truncated", "missing"} {
		t.Run(damage, func(t *testing.T) {
			last := statePath(straightDir, 2*n)
			if damage == "truncated" {
				b, err := os.ReadFile(last)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(last, b[:len(b)/2], 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				os.Remove(last)
			}
			var notes []string
			if _, err := Run(context.Background(), be, src, imgs, cfg, straightDir, true, func(e Event) {
				if e.Kind == Preparing {
					notes = append(notes, e.Message)
				}
			}); err != nil {
				t.Fatal(err)
			}
			if damage == "truncated" && !strings.Contains(strings.Join(notes, "\n"), "damaged") {
				t.Errorf("the damaged state was not reported: %q", notes)
			}
			sameParams(t, "resumed from step "+string(rune('0'+n)), want, stateParams(t, last))
		})
	}
}

// TestResumeRefusesAnotherRun resumes with another rank and another
// dataset: both refused, naming what differs.
func TestResumeRefusesAnotherRun(t *testing.T) {
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 2, 64, 64)
	be := cpu.New()
	dir := filepath.Join(tmp, "run")
	cfg := tinyConfig(filepath.Join(tmp, "cache"), 1)
	cfg.GradAccum = 1
	if _, err := Run(context.Background(), be, src, imgs, cfg, dir, false, nil); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.Rank = 8
	if _, err := Run(context.Background(), be, src, imgs, other, dir, true, nil); err == nil || !strings.Contains(err.Error(), "rank") {
		t.Errorf("another rank: %v", err)
	}
	hashed := cfg
	hashed.ModelHash = "0123abcd"
	if _, err := Run(context.Background(), be, src, imgs, hashed, dir, true, nil); err == nil || !strings.Contains(err.Error(), "model") || !strings.Contains(err.Error(), "0123abcd") {
		t.Errorf("another model: %v", err)
	}
	// a run stopped before its first step has nothing to resume: it starts over
	fresh := filepath.Join(tmp, "fresh")
	if res, err := Run(context.Background(), be, src, imgs, cfg, fresh, true, nil); err != nil || res.Steps != 1 {
		t.Errorf("resuming a run with no checkpoint: %v (%d steps)", err, res.Steps)
	}
	more := append(imgs, writeImages(t, t.TempDir(), 3, 64, 64)[2])
	var prepared []string
	_, err := Run(context.Background(), be, src, more, cfg, dir, true, func(e Event) {
		if e.Kind == Preparing {
			prepared = append(prepared, e.Message)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "dataset") || !strings.Contains(err.Error(), more[2].Path) {
		t.Errorf("another dataset: %v", err)
	}
	if len(prepared) > 0 {
		t.Errorf("the refused resume prepared first: %q", prepared)
	}
	t.Log(err)
}

// TestTrainingLearns overfits one image at a fixed timestep and noise: the
// loss must fall below half of the first step's within a bounded number of
// steps.
func TestTrainingLearns(t *testing.T) {
	const limit = 100
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 1, 64, 64)
	cfg := tinyConfig(filepath.Join(tmp, "cache"), limit)
	cfg.Batch, cfg.GradAccum = 1, 1
	cfg.Data.Flip, cfg.Data.CaptionDropout = false, 0
	cfg.Dropout, cfg.NoiseOffset, cfg.MinSNRGamma = 0, 0, 0
	// 1e-2 descends steadily (below half at step 35 with OpenBLAS and with
	// the Go sgemm alike); at 3e-2 AdamW oscillates, and the sgemm paths'
	// rounding decided whether the loss dipped below half within the limit.
	cfg.LR = 1e-2
	cfg.Targets = "attn-mlp"
	cfg.Rank, cfg.Alpha = 8, 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var first, last float64
	reached := 0
	_, err := run(ctx, cpu.New(), src, imgs, cfg, filepath.Join(tmp, "run"), false, func(e Event) {
		if e.Kind != Step {
			return
		}
		if e.Step == 1 {
			first = e.Loss
		}
		last = e.Loss
		if e.Loss < first/2 && reached == 0 {
			reached = e.Step
			cancel()
		}
	}, true, Options{})
	if err != nil && !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	if reached == 0 {
		t.Fatalf("after %d steps the loss is %g, first %g: not below half", limit, last, first)
	}
	t.Logf("loss %g → %g (below half) at step %d", first, last, reached)
}

// TestRunOnGL trains the same steps on the GL backend and on the CPU: the
// per-step losses agree (the first step sees the same weights and inputs;
// later ones differ only by the backends' rounding, amplified a little by
// AdamW).
func TestRunOnGL(t *testing.T) {
	gl := gltest.Backend(t)
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 2, 64, 64)
	cfg := tinyConfig(filepath.Join(tmp, "cache"), 3)
	cfg.GradAccum = 1
	got := map[string]losses{"cpu": {}, "gl": {}}
	for name, be := range map[string]tensor.Backend{"cpu": cpu.New(), "gl": gl} {
		if _, err := Run(context.Background(), be, src, imgs, cfg, filepath.Join(tmp, name), false, got[name].record); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for s := 1; s <= 3; s++ {
		c, g := got["cpu"][s], got["gl"][s]
		tol := 1e-4
		if s > 1 {
			tol = 1e-3
		}
		if math.Abs(c-g) > tol*math.Abs(c) {
			t.Errorf("step %d: loss %v on the CPU, %v on GL (relative tolerance %g)", s, c, g, tol)
		}
	}
	t.Logf("losses cpu %v, gl %v", got["cpu"], got["gl"])
}

// TestNaNStopsAndKeepsTheLastCheckpoint drives the weights to overflow with
// an absurd learning rate: the run stops at the first non-finite loss, says
// at which step, and leaves the previous step's checkpoint as it was.
func TestNaNStopsAndKeepsTheLastCheckpoint(t *testing.T) {
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 1, 64, 64)
	cfg := tinyConfig(filepath.Join(tmp, "cache"), 5)
	cfg.Batch, cfg.GradAccum, cfg.MaxGradNorm = 1, 1, 0
	cfg.LR = 1e30
	cfg.SaveEvery = 1
	dir := filepath.Join(tmp, "run")
	var failed []string
	_, err := Run(context.Background(), cpu.New(), src, imgs, cfg, dir, false, func(e Event) {
		if e.Kind == Failed {
			failed = append(failed, e.Message)
		}
	})
	if err == nil {
		t.Fatal("the run finished with a learning rate of 1e30")
	}
	steps, serr := stateFiles(dir)
	if serr != nil || len(steps) == 0 {
		t.Fatalf("no checkpoint left: %v", serr)
	}
	for _, want := range []string{fmt.Sprintf("step %d:", steps[0]+1), "last good checkpoint", statePath(dir, steps[0])} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Log(err)
	if len(failed) != 1 || failed[0] != err.Error() {
		t.Errorf("Failed events %q, want the error once", failed)
	}
	if _, err := readState(statePath(dir, steps[0]), stateNames(t, statePath(dir, steps[0]))); err != nil {
		t.Errorf("the last good state cannot be read: %v", err)
	}
}

// stateNames lists the parameter names a state file holds, in its order.
func stateNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for _, n := range f.Names() {
		if p, ok := strings.CutPrefix(n, "param."); ok {
			names = append(names, p)
		}
	}
	return names
}

// TestCheckpointWriteFailureKeepsThePrevious makes the second checkpoint's
// LoRA file impossible to write (a folder stands under its name, as a full
// disk would fail the write): the run stops, the error names the previous
// checkpoint as kept, and that checkpoint still resumes.
func TestCheckpointWriteFailureKeepsThePrevious(t *testing.T) {
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 1, 64, 64)
	cfg := tinyConfig(filepath.Join(tmp, "cache"), 4)
	cfg.Batch, cfg.GradAccum = 1, 1
	cfg.SaveEvery = 1
	dir := filepath.Join(tmp, "run")
	if err := os.MkdirAll(filepath.Join(dir, checkpointDir, "lora-000002.safetensors", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), cpu.New(), src, imgs, cfg, dir, false, nil)
	if err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), "previous checkpoint") || !strings.Contains(err.Error(), "is kept") {
		t.Fatalf("error %v: want the failed step and the kept checkpoint named", err)
	}
	t.Log(err)
	steps, _ := stateFiles(dir)
	if len(steps) != 1 || steps[0] != 1 {
		t.Fatalf("states %v, want only step 1", steps)
	}
	os.RemoveAll(filepath.Join(dir, checkpointDir, "lora-000002.safetensors"))
	res, err := Run(context.Background(), cpu.New(), src, imgs, cfg, dir, true, nil)
	if err != nil || res.Steps != 4 {
		t.Fatalf("resume after the failure: %v (%d steps)", err, res.Steps)
	}
}

// TestOutputFolderMustBeWritable refuses an output whose folder cannot be
// made, before loading anything.
func TestOutputFolderMustBeWritable(t *testing.T) {
	src := openTiny(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(filepath.Join(tmp, "cache"), 1)
	cfg.Output = filepath.Join(file, "sub", "lora.safetensors")
	var prepared bool
	_, err := Run(context.Background(), cpu.New(), src, writeImages(t, t.TempDir(), 1, 64, 64), cfg, filepath.Join(tmp, "run"), false, func(e Event) {
		prepared = prepared || e.Kind == Preparing
	})
	if err == nil || !strings.Contains(err.Error(), cfg.Output) {
		t.Fatalf("error %v: want the output named", err)
	}
	if prepared {
		t.Error("the run started preparing before refusing the output")
	}
}

// TestSamplesAndOutputs trains with samples every step and writes each
// output format: the samples are PNGs of the configured size that change as
// the LoRA learns (the live adapters, not the base model), and every output
// file loads back through lora.Open with the final state's weights.
func TestSamplesAndOutputs(t *testing.T) {
	src := openTiny(t)
	tmp := t.TempDir()
	imgs := writeImages(t, t.TempDir(), 2, 64, 64)
	for _, format := range []string{"kohya", "peft", "diffusers"} {
		t.Run(format, func(t *testing.T) {
			cfg := tinyConfig(filepath.Join(tmp, "cache"), 2)
			cfg.GradAccum = 1
			cfg.Format = format
			cfg.LR = 1e-2
			if format == "kohya" {
				cfg.SampleEvery, cfg.SampleSteps, cfg.SampleGuidance, cfg.SampleSize = 1, 3, 2, 64
				cfg.SavePrecision = "fp16"
			}
			dir := filepath.Join(tmp, format)
			var samples []Event
			res, err := Run(context.Background(), cpu.New(), src, imgs, cfg, dir, false, func(e Event) {
				if e.Kind == Sample {
					samples = append(samples, e)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if format == "kohya" {
				checkSamples(t, samples, imgs)
			}
			l, err := lora.Open(res.Output, src.Config())
			if err != nil {
				t.Fatal(err)
			}
			params := stateParams(t, statePath(dir, 2))
			if len(l.Layers) != len(params)/2 {
				t.Fatalf("%s holds %d layers, the state %d", res.Output, len(l.Layers), len(params)/2)
			}
			tol, abs := 0.0, 1e-12
			if cfg.SavePrecision == "fp16" {
				tol, abs = 1e-3, 0x1p-24 // fp16's relative step; its subnormal spacing
			}
			for _, layer := range l.Layers {
				down, up := params["param."+layer.Module+".lora_down"], params["param."+layer.Module+".lora_up"]
				if format == "diffusers" { // the file carries no alpha: the scale is baked into up
					s := cfg.Alpha / float32(cfg.Rank)
					scaled := make([]float32, len(up))
					for i, v := range up {
						scaled[i] = v * s
					}
					up = scaled
				}
				for name, pair := range map[string][2][]float32{"down": {down, layer.Down}, "up": {up, layer.Up}} {
					want, got := pair[0], pair[1]
					if len(want) != len(got) {
						t.Fatalf("%s %s: %d values, the state %d", layer.Module, name, len(got), len(want))
					}
					for i := range want {
						if d := math.Abs(float64(got[i] - want[i])); d > tol*math.Abs(float64(want[i]))+abs {
							t.Fatalf("%s %s[%d] = %g, the state's %g", layer.Module, name, i, got[i], want[i])
						}
					}
				}
				if s := layer.Scale(); format != "diffusers" && math.Abs(float64(s-cfg.Alpha/float32(cfg.Rank))) > 1e-6 {
					t.Errorf("%s: scale %g, want alpha/rank %g", layer.Module, s, cfg.Alpha/float32(cfg.Rank))
				}
			}
			if format == "kohya" {
				f, err := safetensors.Open(res.Output)
				if err != nil {
					t.Fatal(err)
				}
				meta := f.Metadata()
				f.Close()
				for k, want := range map[string]string{"ss_network_dim": "4", "ss_network_alpha": "8", "ss_steps": "2",
					"ss_base_model_version": "sdxl_base_v1-0", "modelspec.architecture": "stable-diffusion-xl-v1-base/lora", "ss_resolution": "(64, 64)"} {
					if meta[k] != want {
						t.Errorf("metadata %s = %q, want %q", k, meta[k], want)
					}
				}
				for _, k := range []string{"ss_training_started_at", "ss_training_finished_at", "modelspec.date", "ss_seed", "ss_learning_rate"} {
					if meta[k] == "" {
						t.Errorf("metadata %s is missing", k)
					}
				}
			}
		})
	}
}

// checkSamples checks the sample events and files: one per prompt per step,
// PNGs of 64×64, and the later step's image differs from the earlier one
// (the LoRA in use is the live, trained one).
func checkSamples(t *testing.T, samples []Event, imgs []dataset.Image) {
	t.Helper()
	if len(samples) != 4 { // two dataset captions × steps 1 and 2
		t.Fatalf("%d sample events, want 4: %+v", len(samples), samples)
	}
	read := func(p string) string {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Fatalf("%s is %v, want 64×64", p, b)
		}
		var px []byte
		for y := range 64 {
			for x := range 64 {
				r, g, b, _ := img.At(x, y).RGBA()
				px = append(px, byte(r>>8), byte(g>>8), byte(b>>8))
			}
		}
		return string(px)
	}
	for i, s := range samples {
		if s.Prompt != imgs[i%2].Caption || s.Step != 1+i/2 {
			t.Errorf("sample %d: step %d prompt %q", i, s.Step, s.Prompt)
		}
		read(s.Path)
	}
	a, b := read(samples[0].Path), read(samples[2].Path)
	if a == b {
		t.Error("the sample of step 2 equals step 1's: the samples do not use the trained LoRA")
	}
}
