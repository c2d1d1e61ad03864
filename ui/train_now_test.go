package ui

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// TestTrainSampleAndSaveNow taps Sample now and Save now during a run: each
// asks the job once and waits (a second tap asks nothing) until the run's
// sample or checkpoint arrives, the sample joins the grid, a refused
// request is shown, and both buttons go grey when the run ends.
func TestTrainSampleAndSaveNow(t *testing.T) {
	s, f, _ := newFakeTrainScreen(t)
	s.form.entry("max-steps").SetText("6")
	test.Tap(s.trainBtn)
	waitFor(t, "the job", func() (bool, string) { return f.job() != nil && s.job != nil, "" })
	j := f.job()
	j.events <- studio.TrainEvent{Kind: studio.TrainStep, RunID: j.id, Step: 1, Total: 6, Loss: 0.5, LR: 1e-4}
	waitFor(t, "step 1", func() (bool, string) { return s.lastStep == 1, s.progressText.Text })

	test.Tap(s.sampleBtn)
	if n, _ := j.requests(); n != 1 || !s.sampleBtn.Disabled() || !strings.Contains(s.status.Text, "Sampling at the end of step 2") {
		t.Fatalf("after Sample now: %d requests, button disabled %v, status %q", n, s.sampleBtn.Disabled(), s.status.Text)
	}
	test.Tap(s.sampleBtn)
	s.SampleNow()
	if n, _ := j.requests(); n != 1 {
		t.Fatalf("a pending Sample now asked again: %d requests", n)
	}
	if s.saveBtn.Disabled() {
		t.Fatal("Save now waits for Sample now")
	}
	p := filepath.Join(t.TempDir(), "step2.png")
	writePNG(t, p, 32, 32)
	j.events <- studio.TrainEvent{Kind: studio.TrainStep, RunID: j.id, Step: 2, Total: 6, Loss: 0.4, LR: 1e-4}
	j.events <- studio.TrainEvent{Kind: studio.TrainSample, RunID: j.id, Step: 2, Prompt: "a cat", Path: p}
	waitFor(t, "the sample", func() (bool, string) {
		return s.samples.count() == 1 && !s.sampleBtn.Disabled(), fmt.Sprint(s.samples.count(), s.status.Text)
	})

	test.Tap(s.saveBtn)
	if _, n := j.requests(); n != 1 || !s.saveBtn.Disabled() || !strings.Contains(s.status.Text, "Saving a checkpoint at the end of step 3") {
		t.Fatalf("after Save now: %d requests, button disabled %v, status %q", n, s.saveBtn.Disabled(), s.status.Text)
	}
	test.Tap(s.saveBtn)
	if _, n := j.requests(); n != 1 {
		t.Fatalf("a pending Save now asked again: %d requests", n)
	}
	j.events <- studio.TrainEvent{Kind: studio.TrainStep, RunID: j.id, Step: 3, Total: 6, Loss: 0.3, LR: 1e-4}
	j.events <- studio.TrainEvent{Kind: studio.TrainCheckpoint, RunID: j.id, Step: 3, Path: "/runs/7/checkpoints/lora-000003.safetensors"}
	waitFor(t, "the checkpoint", func() (bool, string) {
		return !s.saveBtn.Disabled() && strings.Contains(s.status.Text, "Checkpoint saved at step 3"), s.status.Text
	})

	// A run that is ending turns requests down: said in red, nothing waits.
	j.mu.Lock()
	j.refuse = true
	j.mu.Unlock()
	test.Tap(s.sampleBtn)
	if s.status.Importance != widget.DangerImportance || !strings.Contains(s.status.Text, "did not take") || s.sampleBtn.Disabled() {
		t.Fatalf("a refused Sample now: status %q (%v), button disabled %v", s.status.Text, s.status.Importance, s.sampleBtn.Disabled())
	}

	// A request pending when the run ends does not leave its button waiting
	// for the next run.
	j.mu.Lock()
	j.refuse = false
	j.mu.Unlock()
	test.Tap(s.saveBtn)
	j.end(studio.TrainEvent{Kind: studio.TrainDone, RunID: j.id, Step: 3, Path: "/runs/7/lora.safetensors"},
		studio.TrainResult{RunID: j.id, Status: studio.RunDone, Steps: 3, Total: 6, Output: "/runs/7/lora.safetensors"}, nil)
	waitFor(t, "the end", func() (bool, string) { return !s.Running(), s.status.Text })
	if !s.sampleBtn.Disabled() || !s.saveBtn.Disabled() || s.savePending {
		t.Fatal("Sample now and Save now enabled (or waiting) after the run")
	}
	if txt := s.progressText.Text; !strings.Contains(txt, "step 3 / 6 · done in") || strings.Contains(txt, "ETA") {
		t.Errorf("the progress line of a finished run: %q", txt)
	}
	test.Tap(s.trainBtn)
	waitFor(t, "a second job", func() (bool, string) { return len(f.jobs) == 2 && s.job == f.jobs[1], "" })
	if s.sampleBtn.Disabled() || s.saveBtn.Disabled() {
		t.Fatal("the next run starts with Sample now and Save now enabled")
	}
}
