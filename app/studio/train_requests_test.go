package studio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lorastudio/engine/safetensors"
	"lorastudio/engine/train"
	"lorastudio/storage"
)

// TestTrainSaveAndSampleNowRecorded sends Save now and Sample now from the
// first step's event (so the run serves them at the end of step 1, with no
// checkpoint or sample scheduled there): the checkpoint's LoRA and state
// are recorded as run files, its kohya metadata says step 1, and the
// samples are recorded with their prompts.
func TestTrainSaveAndSampleNowRecorded(t *testing.T) {
	s := newStudio(t)
	cfg := tinyTrainConfig()
	cfg.SaveEvery, cfg.SampleEvery = 0, 0
	cfg.SampleSteps, cfg.SampleGuidance, cfg.SampleSize = 2, 2, 64
	p, err := s.PlanTrain(TrainRequest{Dataset: trainDataset(t), Model: filepath.Join(fixtureDir(t), "model"), Device: "cpu", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := s.createRun(p)
	if err != nil {
		t.Fatal(err)
	}
	reqs := make(chan train.Request, 2)
	var samples []TrainEvent
	res, err := s.executeWith(context.Background(), p, r, false, reqs, func(e TrainEvent) {
		switch {
		case e.Kind == TrainStep && e.Step == 1:
			reqs <- train.SaveNow
			reqs <- train.SampleNow
		case e.Kind == TrainSample:
			samples = append(samples, e)
		}
	})
	if err != nil || res.Status != RunDone {
		t.Fatalf("run: %+v, %v", res, err)
	}
	d, err := s.Run(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ckpt, state string
	for _, f := range d.Files {
		if f.Step == 1 && f.Kind == storage.FileCheckpoint {
			ckpt = f.Path
		}
		if f.Step == 1 && f.Kind == storage.FileState {
			state = f.Path
		}
	}
	if ckpt == "" || state == "" {
		t.Fatalf("Save now at step 1 recorded checkpoint %q, state %q; files %+v", ckpt, state, d.Files)
	}
	f, err := safetensors.Open(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	steps := f.Metadata()[metaSteps]
	f.Close()
	if steps != "1" {
		t.Errorf("%s says %s = %q, want 1", ckpt, metaSteps, steps)
	}
	if len(samples) == 0 || len(d.Samples) != len(samples) {
		t.Fatalf("%d sample events, %d recorded samples", len(samples), len(d.Samples))
	}
	for i, sm := range d.Samples {
		if sm.Step != 1 || sm.Prompt != samples[i].Prompt || sm.ImagePath != samples[i].Path {
			t.Errorf("recorded sample %d: %+v, event %+v", i, sm, samples[i])
		}
		if _, err := os.Stat(sm.ImagePath); err != nil {
			t.Errorf("sample %d: %v", i, err)
		}
	}
}

// TestTrainJobRequests checks the job's plumbing on a stand-in run that
// serves what it is asked: SaveNow and SampleNow reach the run in order and
// never wait, a full queue refuses, and a finished job refuses.
func TestTrainJobRequests(t *testing.T) {
	got := make(chan train.Request, trainRequestSlots+2)
	release := make(chan struct{})
	j := startJob(7, func(ctx context.Context, reqs <-chan train.Request, on func(TrainEvent)) (TrainResult, error) {
		<-release
		for {
			select {
			case q := <-reqs:
				got <- q
			default:
				return TrainResult{RunID: 7, Status: RunDone}, nil
			}
		}
	})
	if !j.SaveNow() || !j.SampleNow() {
		t.Fatal("a running job refused a request")
	}
	for range trainRequestSlots - 2 {
		j.SaveNow()
	}
	if j.SampleNow() {
		t.Error("a job whose queue is full accepted a request")
	}
	close(release)
	select {
	case <-j.Done():
	case <-time.After(time.Minute):
		t.Fatal("the job did not end")
	}
	if first, second := <-got, <-got; first != train.SaveNow || second != train.SampleNow {
		t.Errorf("the run got %v then %v, want save now then sample now", first, second)
	}
	if j.SaveNow() || j.SampleNow() {
		t.Error("a finished job accepted a request")
	}
	if _, err := j.Wait(); err != nil && !errors.Is(err, train.ErrStopped) {
		t.Fatal(err)
	}
}
