package studio

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lorastudio/engine/lora"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// tinyTrainConfig is a 4-step run on the tiny fixture model at 64×64 with a
// checkpoint every 2 steps and no samples.
func tinyTrainConfig() TrainConfig {
	c := DefaultTrainConfig()
	c.Rank, c.Alpha = 4, 8
	c.Data.Resolution, c.Data.MinSide, c.Data.NoBuckets = 64, 64, true
	c.MaxSteps, c.SaveEvery, c.SampleEvery = 4, 2, 0
	return c
}

// trainDataset writes a kohya dataset of three captioned 64×64 images, two
// in a "2_cats" repeat folder, one in "1_dogs".
func trainDataset(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for i, f := range []struct{ rel, caption string }{
		{"2_cats/a.png", "sks cat, sitting, grass"},
		{"2_cats/b.png", "sks cat, grass"},
		{"1_dogs/c.png", "a dog"},
	} {
		p := filepath.Join(root, filepath.FromSlash(f.rel))
		writePNG(t, p, 64, 64, i+1)
		if err := os.WriteFile(strings.TrimSuffix(p, ".png")+".txt", []byte(f.caption), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fileAddnet is the SHA-256 of a safetensors file's bytes after its header,
// computed here independently of addnetHash.
func fileAddnet(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	s := sha256.Sum256(b[8+n:])
	return hex.EncodeToString(s[:])
}

// TestFinishKohyaFile checks the metadata completion of a written LoRA: the
// missing keys are added, present ones kept, sshs_model_hash is the file's own
// addnet hash after the rewrite, and the tensors are unchanged.
func TestFinishKohyaFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	down := make([]byte, 4*6)
	up := make([]byte, 2*3)
	for i := range down {
		down[i] = byte(i * 7)
	}
	for i := range up {
		up[i] = byte(200 - i)
	}
	ts := []safetensors.Tensor{
		{Name: "lora_unet_a.lora_up.weight", DType: safetensors.F16, Shape: []int{3, 1}, Data: up},
		{Name: "lora_unet_a.lora_down.weight", DType: safetensors.F32, Shape: []int{1, 6}, Data: down},
	}
	if err := safetensors.Write(p, ts, map[string]string{"ss_steps": "7", "ss_network_dim": "1"}); err != nil {
		t.Fatal(err)
	}
	before := fileAddnet(t, p)
	if err := finishKohyaFile(p, map[string]string{"ss_steps": "99", "ss_epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := f.Metadata()
	if m["ss_steps"] != "7" || m["ss_epoch"] != "3" || m["ss_network_dim"] != "1" {
		t.Errorf("metadata %v: want ss_steps kept at 7, ss_epoch added", m)
	}
	if got := fileAddnet(t, p); m[metaModelHash] != got || got != before {
		t.Errorf("sshs_model_hash %s, file's addnet hash %s, before the rewrite %s: want all equal", m[metaModelHash], got, before)
	}
	for _, want := range ts {
		b, err := f.Bytes(want.Name)
		if err != nil || string(b) != string(want.Data) {
			t.Errorf("%s changed: %v", want.Name, err)
		}
	}
	if _, err := addnetHash([]byte{1, 2, 3}); err == nil {
		t.Error("addnetHash accepted 3 bytes")
	}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(bad, []byte("not a safetensors file at all"), 0o644)
	if err := finishKohyaFile(bad, nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("finishKohyaFile of a non-safetensors file: %v, want an error naming it", err)
	}
}

// TestPlanTrainBadInput checks that every unusable request fails before
// training with ErrInvalidTrain and names the folder or file at fault.
func TestPlanTrainBadInput(t *testing.T) {
	s := newStudio(t)
	model := filepath.Join(fixtureDir(t), "model")
	good := trainDataset(t)

	empty := t.TempDir()
	uncaptioned := t.TempDir()
	writePNG(t, filepath.Join(uncaptioned, "u.png"), 64, 64, 1)
	partly := trainDataset(t)
	writePNG(t, filepath.Join(partly, "1_dogs", "d.png"), 64, 64, 9)
	notSDXL := filepath.Join(t.TempDir(), "weights.safetensors")
	if err := safetensors.Write(notSDXL, []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int{1}, Data: make([]byte, 4)}}, nil); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, []byte("x"), 0o644)

	cases := []struct {
		name  string
		req   TrainRequest
		names string // the path the message must name
		also  string
	}{
		{"no images", TrainRequest{Dataset: empty, Model: model}, empty, "no images"},
		{"none captioned", TrainRequest{Dataset: uncaptioned, Model: model}, filepath.Join(uncaptioned, "u.png"), "--allow-uncaptioned"},
		{"one uncaptioned", TrainRequest{Dataset: partly, Model: model}, filepath.Join(partly, "1_dogs", "d.png"), "1 of 4"},
		{"model not SDXL", TrainRequest{Dataset: good, Model: notSDXL}, notSDXL, "not an SDXL model"},
		{"model missing", TrainRequest{Dataset: good, Model: filepath.Join(empty, "nope")}, filepath.Join(empty, "nope"), "no such file"},
		{"out unwritable", TrainRequest{Dataset: good, Model: model, Out: filepath.Join(aFile, "x.safetensors")}, aFile, "cannot"},
		{"out is a folder", TrainRequest{Dataset: good, Model: model, Out: empty}, empty, "is a folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.Config = tinyTrainConfig()
			p, err := s.PlanTrain(c.req)
			if err == nil {
				p.Close()
				t.Fatal("PlanTrain accepted it")
			}
			if !errors.Is(err, ErrInvalidTrain) || !strings.Contains(err.Error(), c.names) || !strings.Contains(err.Error(), c.also) {
				t.Errorf("error %q: want ErrInvalidTrain naming %s and saying %q", err, c.names, c.also)
			}
		})
	}
	if runs, err := s.Runs(); err != nil || len(runs) != 0 {
		t.Errorf("bad requests recorded runs: %+v %v", runs, err)
	}

	// With --allow-uncaptioned the partly captioned dataset plans, and the
	// uncaptioned image is listed.
	cfg := tinyTrainConfig()
	p, err := s.PlanTrain(TrainRequest{Dataset: partly, Model: model, AllowUncaptioned: true, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Images != 4 || p.TrainImages != 6 || len(p.Uncaptioned) != 1 || !strings.Contains(p.Describe(), "uncaptioned") {
		t.Errorf("plan: %d images, %d with repeats, uncaptioned %v; describe:\n%s", p.Images, p.TrainImages, p.Uncaptioned, p.Describe())
	}
}

// TestTrainRecordsRun trains the tiny fixture model for 4 steps through the
// studio and checks what a user sees afterwards: the run finished in the
// database with every step's loss, lr and time, its checkpoints, states and
// output recorded; the output loads as a LoRA and carries the kohya
// metadata, its tag frequency from the dataset's captions and its own
// addnet hash.
func TestTrainRecordsRun(t *testing.T) {
	s := newStudio(t)
	model := filepath.Join(fixtureDir(t), "model")
	ds := trainDataset(t)
	out := filepath.Join(t.TempDir(), "my lora.safetensors")
	p, err := s.PlanTrain(TrainRequest{Dataset: ds, Model: model, Out: out, Device: "cpu", Config: tinyTrainConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Images != 3 || p.TrainImages != 5 || p.Request.Name != "my lora" {
		t.Errorf("plan: %d images, %d with repeats, name %q", p.Images, p.TrainImages, p.Request.Name)
	}
	var kinds []TrainEventKind
	steps := 0
	res, err := s.Train(context.Background(), p, func(e TrainEvent) {
		kinds = append(kinds, e.Kind)
		if e.Kind == TrainStep {
			steps++
			if e.RunID == 0 || e.Total != 4 {
				t.Errorf("step event %+v", e)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if steps != 4 || kinds[len(kinds)-1] != TrainDone || res.Status != RunDone || res.Steps != 4 || res.Output != out {
		t.Fatalf("result %+v, %d step events, kinds %v", res, steps, kinds)
	}
	if filepath.Base(res.RunDir) != fmt.Sprintf("%d-my_lora", res.RunID) || filepath.Dir(res.RunDir) != filepath.Join(s.DataDir(), RunsDir) {
		t.Errorf("run folder %s", res.RunDir)
	}
	d, err := s.Run(res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != RunDone || d.StepsDone != 4 || d.StepsTotal != 4 || d.Name != "my lora" || d.ModelName != "model" || d.ModelHash == "" || d.OutputPath != out {
		t.Errorf("run row %+v", d.Run)
	}
	if d.StepsPerEpoch != p.Preflight.StepsPerEpoch || d.StepsPerEpoch <= 0 {
		t.Errorf("run recorded %d steps an epoch, the plan had %d", d.StepsPerEpoch, p.Preflight.StepsPerEpoch)
	}
	if recordedStepsPerEpoch(`{"rank":8}`) != 0 || recordedStepsPerEpoch(`[1]`) != 0 {
		t.Error("a run recorded without steps per epoch must read as 0 (unknown)")
	}
	if len(d.Metrics) != 4 {
		t.Fatalf("metrics %+v", d.Metrics)
	}
	for i, m := range d.Metrics {
		if m.Step != i+1 || !(m.Loss > 0) || !(m.LR > 0) || !(m.Seconds > 0) {
			t.Errorf("metric %+v", m)
		}
	}
	var cps, states, outs []int
	for _, f := range d.Files {
		if _, err := os.Stat(f.Path); err != nil {
			t.Errorf("recorded file %s: %v", f.Path, err)
		}
		switch f.Kind {
		case "checkpoint":
			cps = append(cps, f.Step)
		case "state":
			states = append(states, f.Step)
		case "output":
			outs = append(outs, f.Step)
		}
	}
	if len(cps) < 1 || cps[0] != 2 || len(states) < 1 || len(outs) != 1 || outs[0] != 4 {
		t.Errorf("files: checkpoints at %v, states at %v, outputs at %v (%+v)", cps, states, outs, d.Files)
	}
	var cfg TrainConfig
	if err := json.Unmarshal([]byte(d.ConfigJSON), &cfg); err != nil || cfg.Rank != 4 || cfg.MaxSteps != 4 || cfg.Metadata != nil {
		t.Errorf("stored settings %s (%v)", d.ConfigJSON, err)
	}

	// The output is a kohya LoRA every tool loads, with the metadata they read.
	src, err := sdxl.OpenSource(model)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := lora.Open(out, src.Config())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Layers) == 0 {
		t.Fatal("the output holds no layers")
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata()
	f.Close()
	for k, want := range map[string]string{
		"ss_base_model_version": "sdxl_base_v1-0", "ss_network_module": "networks.lora", "ss_network_dim": "4",
		"ss_network_alpha": "8", "ss_resolution": "(64, 64)", "ss_num_train_images": "5", "ss_steps": "4",
		"ss_sd_model_name": "model", "ss_seed": "42", "modelspec.sai_model_spec": "1.0.0",
		"modelspec.architecture": "stable-diffusion-xl-v1-base/lora", "modelspec.title": "my lora",
		"modelspec.resolution": "64x64", "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
		metaModelHash: fileAddnet(t, out),
	} {
		if m[k] != want {
			t.Errorf("metadata %s = %q, want %q", k, m[k], want)
		}
	}
	for _, k := range []string{metaStarted, metaFinished, "ss_epoch", "ss_learning_rate", "modelspec.date"} {
		if m[k] == "" {
			t.Errorf("metadata %s missing", k)
		}
	}
	var tags map[string]map[string]int
	if err := json.Unmarshal([]byte(m["ss_tag_frequency"]), &tags); err != nil {
		t.Fatal(err)
	}
	if tags["2_cats"]["sks cat"] != 2 || tags["2_cats"]["sitting"] != 1 || tags["1_dogs"]["a dog"] != 1 || len(tags) != 2 {
		t.Errorf("ss_tag_frequency %s", m["ss_tag_frequency"])
	}
	sums, err := s.Runs()
	if err != nil || len(sums) != 1 || sums[0].LastLoss == nil || *sums[0].LastLoss != d.Metrics[3].Loss || len(sums[0].Outputs) != 1 {
		t.Errorf("Runs = %+v, %v", sums, err)
	}
}

// TestTrainStopAndResume stops a run from its event callback after step 2
// (as the Train screen's Stop does), checks it is recorded as stopped and
// resumable, then resumes it to the planned 4 steps: the step counter
// continues and each step is recorded once.
func TestTrainStopAndResume(t *testing.T) {
	s := newStudio(t)
	model := filepath.Join(fixtureDir(t), "model")
	ds := trainDataset(t)
	cfg := tinyTrainConfig()
	cfg.SaveEvery = 0
	p, err := s.PlanTrain(TrainRequest{Dataset: ds, Model: model, Name: "stop me", Device: "cpu", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := s.Train(ctx, p, func(e TrainEvent) {
		if e.Kind == TrainStep && e.Step == 2 {
			cancel()
		}
	})
	if err == nil || res.Status != RunStopped || res.Steps != 2 {
		t.Fatalf("stopped run: %+v, %v", res, err)
	}
	r, err := s.Run(res.RunID)
	if err != nil || r.Status != RunStopped || r.StepsDone != 2 || r.StepsTotal != 4 || !strings.Contains(r.Error, "step 2") {
		t.Fatalf("stopped run row %+v, %v", r.Run, err)
	}
	if !strings.HasSuffix(r.OutputPath, filepath.Join(filepath.Base(res.RunDir), "stop_me.safetensors")) {
		t.Errorf("default output %s, want stop_me.safetensors in the run folder %s", r.OutputPath, res.RunDir)
	}
	var steps []int
	res2, err := s.ResumeTrain(context.Background(), ResumeRequest{RunID: res.RunID, Device: "cpu"}, func(e TrainEvent) {
		if e.Kind == TrainStep {
			steps = append(steps, e.Step)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Status != RunDone || res2.Steps != 4 || len(steps) != 2 || steps[0] != 3 || res2.Output != r.OutputPath {
		t.Fatalf("resumed: %+v, steps %v", res2, steps)
	}
	d, err := s.Run(res.RunID)
	if err != nil || d.Status != RunDone || d.StepsDone != 4 || len(d.Metrics) != 4 || d.Error != "" {
		t.Fatalf("resumed run %+v, %d metrics, %v", d.Run, len(d.Metrics), err)
	}
	if _, err := s.ResumeTrain(context.Background(), ResumeRequest{RunID: res.RunID}, nil); err == nil || !strings.Contains(err.Error(), "finished") {
		t.Errorf("resuming a finished run: %v", err)
	}
	if id, err := s.FindRun(filepath.Join(res.RunDir, "checkpoints")); err != nil || id != res.RunID {
		t.Errorf("FindRun(run folder) = %d, %v", id, err)
	}
}

// drain reads a job's events until the channel closes, with a deadline.
func drain(t *testing.T, j *TrainJob, onEvent func(TrainEvent)) []TrainEvent {
	t.Helper()
	var got []TrainEvent
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case e, ok := <-j.Events():
			if !ok {
				return got
			}
			got = append(got, e)
			if onEvent != nil {
				onEvent(e)
			}
		case <-deadline:
			j.Stop()
			t.Fatalf("the job's events did not end; got %d", len(got))
		}
	}
}

// TestTrainJob runs the background job as the Train screen does: Stop on
// the first step event gives a stopped run with a checkpoint, StartResume
// finishes it, and each job's events end with its final kind.
func TestTrainJob(t *testing.T) {
	s := newStudio(t)
	p, err := s.PlanTrain(TrainRequest{Dataset: trainDataset(t), Model: filepath.Join(fixtureDir(t), "model"), Device: "cpu", Config: tinyTrainConfig()})
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.StartTrain(p)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Run(j.RunID()); err != nil || r.RunDir == "" {
		t.Fatalf("the job's run %+v, %v", r.Run, err)
	}
	evs := drain(t, j, func(e TrainEvent) {
		if e.Kind == TrainStep {
			j.Stop()
		}
	})
	res, err := j.Wait()
	if err == nil || res.Status != RunStopped || res.Steps < 1 || res.Steps >= 4 {
		t.Fatalf("stopped job: %+v, %v", res, err)
	}
	if last := evs[len(evs)-1]; last.Kind != TrainStopped || last.RunID != j.RunID() {
		t.Errorf("last event %+v, want stopped", last)
	}
	if e, ok := j.Latest(); !ok || e.Kind != TrainStopped {
		t.Errorf("Latest = %+v %v", e, ok)
	}
	j2, err := s.StartResume(ResumeRequest{RunID: j.RunID(), Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	evs = drain(t, j2, nil)
	res, err = j2.Wait()
	if err != nil || res.Status != RunDone || res.Steps != 4 || evs[len(evs)-1].Kind != TrainDone {
		t.Fatalf("resumed job: %+v, %v, last event %+v", res, err, evs[len(evs)-1])
	}
	<-j2.Done()
}

// TestTrainFailureRecorded removes an image between the plan and the run:
// the run fails, and the database says so with the reason naming the file.
func TestTrainFailureRecorded(t *testing.T) {
	s := newStudio(t)
	ds := trainDataset(t)
	p, err := s.PlanTrain(TrainRequest{Dataset: ds, Model: filepath.Join(fixtureDir(t), "model"), Device: "cpu", Config: tinyTrainConfig()})
	if err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(ds, "1_dogs", "c.png")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	var failed []TrainEvent
	res, err := s.Train(context.Background(), p, func(e TrainEvent) {
		if e.Kind == TrainFailed {
			failed = append(failed, e)
		}
	})
	if err == nil || res.Status != RunFailed || !strings.Contains(err.Error(), "c.png") {
		t.Fatalf("run with a vanished image: %+v, %v", res, err)
	}
	r, err := s.Run(res.RunID)
	if err != nil || r.Status != RunFailed || !strings.Contains(r.Error, "c.png") || r.FinishedAt.IsZero() {
		t.Fatalf("failed run row %+v, %v", r.Run, err)
	}
	if len(failed) != 1 {
		t.Errorf("failed events %+v", failed)
	}
}

// TestTrainStopWhilePreparing stops a run before its first step (while the
// caches fill): it is stopped at step 0, and resuming it starts it over and
// finishes.
func TestTrainStopWhilePreparing(t *testing.T) {
	s := newStudio(t)
	p, err := s.PlanTrain(TrainRequest{Dataset: trainDataset(t), Model: filepath.Join(fixtureDir(t), "model"), Device: "cpu", Config: tinyTrainConfig()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := s.Train(ctx, p, func(e TrainEvent) {
		if e.Kind == TrainPreparing {
			cancel()
		}
	})
	if err == nil || res.Status != RunStopped || res.Steps != 0 {
		t.Fatalf("stopped while preparing: %+v, %v", res, err)
	}
	res, err = s.ResumeTrain(context.Background(), ResumeRequest{RunID: res.RunID, Device: "cpu"}, nil)
	if err != nil || res.Status != RunDone || res.Steps != 4 {
		t.Fatalf("resumed: %+v, %v", res, err)
	}
}
