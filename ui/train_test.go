package ui

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// fakeJob is a run the test drives: it sends the events and ends it.
type fakeJob struct {
	id      int64
	events  chan studio.TrainEvent
	mu      sync.Mutex
	stopped bool
	// sampleNows and saveNows count the requests taken; refuse makes the
	// job turn them down (a run that is ending).
	sampleNows, saveNows int
	refuse               bool
	res                  studio.TrainResult
	err                  error
	done                 chan struct{}
}

func newFakeJob(id int64) *fakeJob {
	return &fakeJob{id: id, events: make(chan studio.TrainEvent, 64), done: make(chan struct{})}
}

func (j *fakeJob) RunID() int64                     { return j.id }
func (j *fakeJob) Events() <-chan studio.TrainEvent { return j.events }
func (j *fakeJob) Stop() {
	j.mu.Lock()
	j.stopped = true
	j.mu.Unlock()
}
func (j *fakeJob) Wait() (studio.TrainResult, error) {
	<-j.done
	return j.res, j.err
}

func (j *fakeJob) SampleNow() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.refuse {
		return false
	}
	j.sampleNows++
	return true
}
func (j *fakeJob) SaveNow() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.refuse {
		return false
	}
	j.saveNows++
	return true
}

// requests returns how many Sample now and Save now requests the job took.
func (j *fakeJob) requests() (samples, saves int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.sampleNows, j.saveNows
}

// wasStopped reports whether the screen asked the job to stop.
func (j *fakeJob) wasStopped() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stopped
}

// end sends the last event and finishes the job with res and err.
func (j *fakeJob) end(last studio.TrainEvent, res studio.TrainResult, err error) {
	j.events <- last
	j.res, j.err = res, err
	close(j.events)
	close(j.done)
}

// fakeTrain is a trainService whose pre-flight is a simple function of
// the settings and whose runs are fakeJobs.
type fakeTrain struct {
	mu         sync.Mutex
	preflights int
	started    []studio.TrainRequest
	resumed    []int64
	jobs       []*fakeJob
	detail     studio.RunDetail
	deleted    []int64
	exports    []studio.ExportRequest
	exportErr  error
}

// Preflight: 3 images (5 with repeats), 3 steps an epoch; device memory
// resolution² × 1000 × batch bytes; c.png uncaptioned.
func (f *fakeTrain) Preflight(req studio.TrainRequest) (studio.TrainPreflight, error) {
	f.mu.Lock()
	f.preflights++
	f.mu.Unlock()
	if err := req.Config.Validate(); err != nil {
		return studio.TrainPreflight{}, err
	}
	c := req.Config
	total := c.MaxSteps
	if total == 0 {
		total = 3 * c.Epochs
	}
	return studio.TrainPreflight{
		Model: "demo", IsDemo: req.Model == "", Dataset: req.Dataset, Images: 3, TrainImages: 5,
		Folders:       []studio.FolderRepeats{{Folder: "2_cats", Images: 2, Repeats: 2}, {Folder: "1_dogs", Images: 1, Repeats: 1}},
		Buckets:       []studio.BucketBar{{Bucket: fmt.Sprintf("%dx%d", c.Data.Resolution, c.Data.Resolution), Images: 3, Samples: 5}},
		StepsPerEpoch: 3, TotalSteps: total, Epochs: (total + 2) / 3,
		DeviceBytes: int64(c.Data.Resolution) * int64(c.Data.Resolution) * 1000 * int64(c.Batch), DeviceBytesOther: 1 << 32,
		Estimate: time.Duration(total) * time.Second,
		Issues:   []studio.PreflightIssue{{Path: filepath.Join(req.Dataset, "c.png"), Text: "no caption"}},
	}, nil
}

func (f *fakeTrain) newJob(id int64) *fakeJob {
	j := newFakeJob(id)
	f.jobs = append(f.jobs, j)
	return j
}

func (f *fakeTrain) Start(req studio.TrainRequest) (trainJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, req)
	return f.newJob(int64(6 + len(f.started))), nil
}

func (f *fakeTrain) Resume(id int64, device string) (trainJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resumed = append(f.resumed, id)
	return f.newJob(id), nil
}

// job is the newest job (nil before any).
func (f *fakeTrain) job() *fakeJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.jobs) == 0 {
		return nil
	}
	return f.jobs[len(f.jobs)-1]
}

func (f *fakeTrain) setDetail(d studio.RunDetail) {
	f.mu.Lock()
	f.detail = d
	f.mu.Unlock()
}

func (f *fakeTrain) Runs() ([]studio.RunSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.detail.ID == 0 {
		return nil, nil
	}
	return []studio.RunSummary{{Run: f.detail.Run}}, nil
}
func (f *fakeTrain) TrashedRuns() ([]studio.RunSummary, error) { return nil, nil }
func (f *fakeTrain) Run(id int64) (studio.RunDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.detail.ID != id {
		return studio.RunDetail{}, fmt.Errorf("run %d: no such run", id)
	}
	return f.detail, nil
}
func (f *fakeTrain) DeleteRun(id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	return nil
}
func (f *fakeTrain) RestoreRun(int64) error { return nil }
func (f *fakeTrain) DeviceMemory(kind string) (studio.DeviceMemory, error) {
	return studio.DeviceMemory{Backend: "cpu", Total: 1 << 30}, nil
}
func (f *fakeTrain) RecentModels(int) ([]string, error) { return []string{"/models/sdxl"}, nil }
func (f *fakeTrain) Presets() ([]studio.TrainPreset, error) {
	return studio.BuiltInTrainPresets(), nil
}
func (f *fakeTrain) SavePreset(string, studio.TrainConfig) error { return nil }

// Export records the request and reports a small export with one note,
// or fails with exportErr.
func (f *fakeTrain) Export(req studio.ExportRequest) (*studio.ExportResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exports = append(f.exports, req)
	if f.exportErr != nil {
		return nil, f.exportErr
	}
	return &studio.ExportResult{
		Dir: req.To, Model: req.Model, Files: []string{filepath.Join(req.To, studio.ExportTrainConfig), filepath.Join(req.To, studio.ExportLaunch)},
		Subsets: []studio.ExportSubset{{Dir: "dataset/2_cats", Source: "2_cats", Repeats: 2, Images: 2}},
		Images:  2, Linked: 2, Steps: req.Config.MaxSteps,
		Notes: []string{"targets \"attn\": networks.lora trains every Linear"},
	}, nil
}

// exported returns the export requests made so far.
func (f *fakeTrain) exported() []studio.ExportRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]studio.ExportRequest(nil), f.exports...)
}

// metrics makes recorded steps 1..n with loss 1/step.
func metrics(n int) []studio.Metric {
	var ms []studio.Metric
	for i := 1; i <= n; i++ {
		ms = append(ms, studio.Metric{Step: i, Loss: 1 / float64(i), LR: 1e-4})
	}
	return ms
}

// newFakeTrainScreen shows a Train screen on a fake service in the test driver.
func newFakeTrainScreen(t *testing.T) (*TrainScreen, *fakeTrain, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	f := &fakeTrain{}
	w := test.NewTempWindow(t, nil)
	s := newTrainScreen(w, f)
	w.SetContent(s.Content())
	w.Resize(fyne.NewSize(1400, 900))
	s.SetDataset(t.TempDir())
	return s, f, w
}

// TestTrainPreflightFollowsSettings edits the form and sees the pre-flight
// follow: the steps, the memory against the device's 1 GiB (red with
// advice past it), a bad value named, and the Tutorial preset's numbers.
func TestTrainPreflightFollowsSettings(t *testing.T) {
	s, _, _ := newFakeTrainScreen(t)
	if s.presetSel.Selected != "Tutorial" {
		t.Fatalf("preset %q, want Tutorial", s.presetSel.Selected)
	}
	for flag, want := range map[string]string{"rank": "8", "alpha": "16", "lr": "0.0001", "targets": "attn"} {
		var got string
		if e := s.form.entry(flag); e != nil {
			got = e.Text
		} else {
			got = s.form.byFlag[flag].obj.(*widget.SelectEntry).Text
		}
		if got != want {
			t.Errorf("Tutorial %s = %q, want %q", flag, got, want)
		}
	}
	waitFor(t, "the first pre-flight", func() (bool, string) {
		return strings.Contains(s.preflight.steps.Text, "30 steps in all"), s.preflight.steps.Text + " | " + s.preflight.status.Text
	})
	if !s.preflight.fits || !strings.Contains(s.preflight.memory.Text, "of 1.00 GiB") {
		t.Fatalf("1024² should fit 1 GiB: %q fits=%v", s.preflight.memory.Text, s.preflight.fits)
	}
	s.form.entry("max-steps").SetText("6")
	waitFor(t, "6 steps", func() (bool, string) {
		return strings.Contains(s.preflight.steps.Text, "6 steps in all"), s.preflight.steps.Text
	})
	s.form.entry("resolution").SetText("2048")
	waitFor(t, "the red memory line", func() (bool, string) {
		return !s.preflight.fits && s.preflight.memory.Importance == widget.DangerImportance, s.preflight.memory.Text
	})
	if !strings.Contains(s.preflight.advice.Text, "Will not fit") || !strings.Contains(s.preflight.advice.Text, "lower the resolution") {
		t.Fatalf("advice %q", s.preflight.advice.Text)
	}
	s.form.entry("rank").SetText("x")
	waitFor(t, "the bad rank named", func() (bool, string) {
		return strings.Contains(s.preflight.status.Text, `Rank: "x"`), s.preflight.status.Text
	})
	s.form.entry("rank").SetText("8")
	s.form.entry("resolution").SetText("512")
	waitFor(t, "fits again", func() (bool, string) {
		return s.preflight.fits && s.preflight.advice.Text == "" && strings.Contains(s.preflight.memory.Text, "0.24 GiB"), s.preflight.memory.Text
	})
	s.presetSel.SetSelected("Style / attn-mlp")
	if got := s.form.byFlag["targets"].obj.(*widget.SelectEntry).Text; got != "attn-mlp" {
		t.Fatalf("style preset targets %q", got)
	}
	// A warning opens its image.
	var opened string
	s.OnOpenImage = func(p string) { opened = p }
	waitFor(t, "the warning", func() (bool, string) {
		return len(s.preflight.issues.Objects) == 2, fmt.Sprint(len(s.preflight.issues.Objects))
	})
	test.Tap(s.preflight.issues.Objects[1].(*widget.Button))
	if filepath.Base(opened) != "c.png" {
		t.Fatalf("the warning opened %q", opened)
	}
}

// TestTrainScreenFlow drives a run through a fake job: start, progress,
// samples, a gap filled from the record, stop, resume, finish, then a
// failure shown in red.
func TestTrainScreenFlow(t *testing.T) {
	s, f, w := newFakeTrainScreen(t)
	s.form.entry("max-steps").SetText("6")
	s.name.SetText("cats")
	if !s.stopBtn.Disabled() || !s.resumeBtn.Disabled() || s.trainBtn.Disabled() {
		t.Fatal("before a run only Train is enabled")
	}
	if !s.sampleBtn.Disabled() || !s.saveBtn.Disabled() {
		t.Fatal("Sample now and Save now are enabled without a run")
	}
	test.Tap(s.trainBtn)
	waitFor(t, "the job", func() (bool, string) { return f.job() != nil && s.job != nil, "" })
	j := f.job()
	if req := f.started[0]; req.Config.MaxSteps != 6 || req.Name != "cats" || req.Dataset != s.dataset {
		t.Fatalf("request %+v", req)
	}
	if !s.trainBtn.Disabled() || s.stopBtn.Disabled() || !s.Running() || s.sampleBtn.Disabled() || s.saveBtn.Disabled() {
		t.Fatal("while training: Train disabled, Stop, Sample now and Save now enabled")
	}
	j.events <- studio.TrainEvent{Kind: studio.TrainPreparing, RunID: j.id, Message: "filling the caches"}
	waitFor(t, "preparing", func() (bool, string) { return strings.Contains(s.status.Text, "caches"), s.status.Text })
	for step := 1; step <= 3; step++ {
		j.events <- studio.TrainEvent{Kind: studio.TrainStep, RunID: j.id, Step: step, Total: 6, Loss: 1 / float64(step), LR: 1e-4, ItPerSec: 2, ETA: time.Duration(6-step) * 500 * time.Millisecond, DeviceBytes: 3 << 29}
		if step == 1 {
			waitFor(t, "step 1", func() (bool, string) { return strings.Contains(s.progressText.Text, "step 1 / 6"), s.progressText.Text })
			if !strings.Contains(s.progressText.Text, "ETA estimating…") {
				t.Fatalf("the ETA after one step: %q", s.progressText.Text)
			}
		}
	}
	waitFor(t, "three points", func() (bool, string) {
		return s.chart.Points(0) == 3 && strings.Contains(s.progressText.Text, "step 3 / 6"), s.progressText.Text
	})
	for _, want := range []string{"epoch 1", "2.00 it/s", "ETA 2s", "device memory 1.50 GiB"} {
		if !strings.Contains(s.progressText.Text, want) {
			t.Errorf("progress %q lacks %q", s.progressText.Text, want)
		}
	}
	if s.progress.Value != 3 || s.progress.Max != 6 {
		t.Errorf("progress bar %v/%v", s.progress.Value, s.progress.Max)
	}
	dir := t.TempDir()
	for i, prompt := range []string{"a cat", "a dog"} {
		p := filepath.Join(dir, fmt.Sprintf("s%d.png", i))
		writePNG(t, p, 32, 32)
		j.events <- studio.TrainEvent{Kind: studio.TrainSample, RunID: j.id, Step: 3, Prompt: prompt, Path: p}
	}
	waitFor(t, "two samples", func() (bool, string) { return s.samples.count() == 2, fmt.Sprint(s.samples.count()) })
	s.samples.open(0, 0)
	v := s.samples.viewer
	if v == nil || w.Canvas().Focused() != v {
		t.Fatal("the large view is not open and focused")
	}
	v.TypedKey(&fyne.KeyEvent{Name: fyne.KeyRight})
	if _, p := v.Current(); p != "a dog" {
		t.Fatalf("→ shows %q", p)
	}
	v.TypedKey(&fyne.KeyEvent{Name: fyne.KeyRight}) // stays on the last prompt
	v.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})

	// Steps 4 merged into 5 by the job: the curve is read from the record.
	f.setDetail(studio.RunDetail{Run: studio.RunSummary{}.Run, Metrics: metrics(5)})
	f.mu.Lock()
	f.detail.ID, f.detail.Name, f.detail.StepsDone, f.detail.StepsTotal, f.detail.Status = j.id, "cats", 5, 6, studio.RunStopped
	f.mu.Unlock()
	j.events <- studio.TrainEvent{Kind: studio.TrainStep, RunID: j.id, Step: 5, Total: 6, Loss: 0.2, LR: 1e-4}
	waitFor(t, "the gap filled", func() (bool, string) { return s.chart.Points(0) == 5, fmt.Sprint(s.chart.Points(0)) })

	// Closing the window asks; Stop saves.
	closed := false
	s.ConfirmClose(func() { closed = true })
	if closed {
		t.Fatal("the window closed during a run without asking")
	}
	yes := findButton(w.Canvas().Overlays().Top(), "Yes")
	if yes == nil {
		t.Fatal("no confirmation to stop and close")
	}
	test.Tap(yes)
	if !j.wasStopped() || !s.stopBtn.Disabled() {
		t.Fatal("Yes did not stop the run")
	}
	if !s.sampleBtn.Disabled() || !s.saveBtn.Disabled() {
		t.Fatal("Sample now and Save now stay enabled while the run stops")
	}
	j.end(studio.TrainEvent{Kind: studio.TrainStopped, RunID: j.id, Step: 5}, studio.TrainResult{RunID: j.id, Status: studio.RunStopped, Steps: 5, Total: 6}, errors.New("stopped"))
	waitFor(t, "stopped", func() (bool, string) {
		return !s.Running() && !s.resumeBtn.Disabled() && strings.Contains(s.status.Text, "Stopped at step 5"), s.status.Text
	})
	if !closed {
		t.Fatal("the window did not close once the run was stopped and saved")
	}
	if txt := s.progressText.Text; !strings.Contains(txt, "stopped at step 5 / 6") || strings.Contains(txt, "ETA") {
		t.Errorf("the progress line of a stopped run: %q", txt)
	}
	if !s.sampleBtn.Disabled() || !s.saveBtn.Disabled() {
		t.Fatal("Sample now and Save now enabled after the run stopped")
	}

	test.Tap(s.resumeBtn)
	waitFor(t, "the resumed job", func() (bool, string) { return len(f.jobs) == 2 && s.job == f.jobs[1], "" })
	if f.resumed[0] != j.id {
		t.Fatalf("resumed run %d, want %d", f.resumed[0], j.id)
	}
	j2 := f.job()
	if s.chart.Points(0) != 5 {
		t.Fatalf("the resumed run's recorded curve: %d points", s.chart.Points(0))
	}
	j2.events <- studio.TrainEvent{Kind: studio.TrainStep, RunID: j.id, Step: 6, Total: 6, Loss: 0.15, LR: 1e-4}
	j2.end(studio.TrainEvent{Kind: studio.TrainDone, RunID: j.id, Step: 6, Path: "/runs/7-cats/cats.safetensors"},
		studio.TrainResult{RunID: j.id, Status: studio.RunDone, Steps: 6, Total: 6, Output: "/runs/7-cats/cats.safetensors"}, nil)
	waitFor(t, "finished", func() (bool, string) {
		return !s.Running() && strings.Contains(s.status.Text, "Finished 6 steps") && s.chart.Points(0) == 6, s.status.Text
	})
	if !s.resumeBtn.Disabled() || s.trainBtn.Disabled() {
		t.Fatal("after a finished run: Resume disabled, Train enabled")
	}
	// The resumed session ran steps 6–6: the line says done, not an ETA.
	if txt := s.progressText.Text; !strings.Contains(txt, "step 6 / 6 · done · steps 6–6 took") || strings.Contains(txt, "ETA") || !strings.Contains(txt, "loss 0.15") {
		t.Errorf("the progress line of a finished run: %q", txt)
	}

	test.Tap(s.trainBtn)
	waitFor(t, "a third job", func() (bool, string) { return len(f.jobs) == 3 && s.job == f.jobs[2], "" })
	j3 := f.job()
	if s.chart.Points(0) != 0 || s.samples.count() != 0 {
		t.Fatal("a new run starts with an empty chart and no samples")
	}
	j3.end(studio.TrainEvent{Kind: studio.TrainFailed, RunID: j3.id, Step: 2, Message: "loss is NaN at step 2"},
		studio.TrainResult{RunID: j3.id, Status: studio.RunFailed, Steps: 1}, errors.New("run 9: loss is NaN at step 2"))
	waitFor(t, "the failure", func() (bool, string) {
		return !s.Running() && strings.Contains(s.status.Text, "loss is NaN") && s.status.Importance == widget.DangerImportance, s.status.Text
	})
	if txt := s.progressText.Text; !strings.Contains(txt, "failed at step 1") {
		t.Errorf("the progress line of a failed run: %q", txt)
	}
	if s.resumeBtn.Disabled() {
		t.Fatal("a failed run can be resumed from its last checkpoint")
	}
}

// TestRunsList shows a recorded run, hands its LoRA to the Playground and
// deletes it.
func TestRunsList(t *testing.T) {
	s, f, _ := newFakeTrainScreen(t)
	d := studio.RunDetail{Metrics: metrics(4)}
	d.ID, d.Name, d.Status, d.StepsDone, d.StepsTotal, d.ConfigJSON, d.RunDir = 3, "cats", studio.RunDone, 4, 4, `{"rank":8}`, t.TempDir()
	d.Files = []studio.RunFile{{Kind: studio.FileCheckpoint, Path: "/r/c2.safetensors", Step: 2}, {Kind: studio.FileOutput, Path: "/r/cats.safetensors", Step: 4}}
	f.setDetail(d)
	s.tabs.SelectIndex(1)
	r := s.runs
	waitFor(t, "the run listed", func() (bool, string) { return len(r.runs) == 1, fmt.Sprint(len(r.runs)) })
	if row := runRow(r.runs[0]); !strings.Contains(row, "#3 cats") || !strings.Contains(row, "finished") {
		t.Fatalf("row %q", row)
	}
	r.list.Select(0)
	waitFor(t, "the run shown", func() (bool, string) {
		return r.hasSel && r.chart.Points(0) == 4 && !r.tryBtn.Disabled() && strings.Contains(r.files.Text, "cats.safetensors"), r.title.Text
	})
	if !strings.Contains(r.settings.Text, `"rank": 8`) || !strings.Contains(r.files.Text, "cats.safetensors") {
		t.Fatalf("settings %q files %q", r.settings.Text, r.files.Text)
	}
	// A run recorded without steps per epoch cannot draw epochs: the switch
	// is off, disabled and says why.
	if !r.ctl.epochs.Disabled() || r.ctl.epochs.Text != epochsUnknownLabel || r.chart.view().epochs {
		t.Fatalf("epochs switch of a run without steps per epoch: disabled %v, %q", r.ctl.epochs.Disabled(), r.ctl.epochs.Text)
	}
	d.StepsPerEpoch = 2
	f.setDetail(d)
	r.show(3)
	waitFor(t, "the epochs switch enabled", func() (bool, string) { return !r.ctl.epochs.Disabled(), r.ctl.epochs.Text })
	r.ctl.epochs.SetChecked(true)
	if v := r.chart.view(); !v.epochs || v.spe != 2 || r.ctl.epochs.Text != epochsLabel {
		t.Fatalf("x in epochs on a run of 2 steps an epoch: epochs %v, %d steps an epoch", v.epochs, v.spe)
	}
	d.StepsPerEpoch = 0
	f.setDetail(d)
	r.show(3)
	waitFor(t, "the epochs switch off again", func() (bool, string) { return r.ctl.epochs.Disabled(), r.ctl.epochs.Text })
	if r.ctl.epochs.Checked || r.chart.view().epochs {
		t.Fatal("showing a run without steps per epoch left the epochs axis on")
	}
	var tried string
	var weight float64
	s.OnTryInPlayground = func(p string, w float64) { tried, weight = p, w }
	r.weight.SetValue(0.8)
	test.Tap(r.tryBtn)
	if tried != "/r/cats.safetensors" || weight != 0.8 {
		t.Fatalf("Try in Playground got %q at %v", tried, weight)
	}
	if !r.resBtn.Disabled() {
		t.Fatal("a finished run offers Resume")
	}
	r.compareWith("#3 cats")
	waitFor(t, "the comparison", func() (bool, string) { return r.chart.Points(1) == 4, "" })
	r.delete(3)
	if len(f.deleted) != 1 || f.deleted[0] != 3 || r.hasSel {
		t.Fatalf("deleted %v, selection %v", f.deleted, r.hasSel)
	}
}

// findButton finds the button labelled text under o.
func findButton(o fyne.CanvasObject, text string) *widget.Button {
	switch x := o.(type) {
	case *widget.Button:
		if x.Text == text {
			return x
		}
	case *fyne.Container:
		for _, c := range x.Objects {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
	case *container.Scroll:
		return findButton(x.Content, text)
	}
	if w, ok := o.(fyne.Widget); ok {
		for _, c := range test.WidgetRenderer(w).Objects() {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
	}
	return nil
}
