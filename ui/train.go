package ui

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// preflightDelay is how long the pre-flight waits after an edit before it
// checks the settings again (typing a number redraws once, not per key).
const preflightDelay = 300 * time.Millisecond

// demoModelChoice is how the model picker shows the demo model ("" path).
const demoModelChoice = "demo model"

// TrainScreen is the Train tab: the run's setup on the left (dataset, base
// model, presets, every setting of `lorastudio train`, a live pre-flight),
// the run on the right (loss chart, progress, samples, Train/Stop/Resume),
// and the list of every run. A run goes on while other tabs are shown.
type TrainScreen struct {
	// OnOpenImage, when set, opens an image of the dataset in the Dataset tab.
	OnOpenImage func(path string)
	// OnTryInPlayground, when set, hands a trained LoRA with a weight to
	// the Playground tab.
	OnTryInPlayground func(path string, weight float64)

	win     fyne.Window
	svc     trainService
	content fyne.CanvasObject
	tabs    *container.AppTabs

	// setup
	dataset      string
	datasetLabel *widget.Label
	model        *widget.SelectEntry
	name         *widget.Entry
	device       *widget.Select
	presetSel    *widget.Select
	presets      []studio.TrainPreset
	base         studio.TrainConfig // the preset's settings the form does not show
	form         *trainForm
	allowUncap   *widget.Check
	preflight    *preflightPanel
	pfGen        int
	pfTimer      *time.Timer
	devMem       studio.DeviceMemory
	devMemKind   string
	lastPF       studio.TrainPreflight

	// the run
	chart        *LossChart
	chartCtl     *lossChartControls
	progress     *widget.ProgressBar
	progressText *widget.Label
	status       *widget.Label
	samples      *samplesGrid
	trainBtn     *widget.Button
	stopBtn      *widget.Button
	resumeBtn    *widget.Button
	sampleBtn    *widget.Button
	saveBtn      *widget.Button
	exportBtn    *widget.Button
	export       *exportForm // the open "Export for a cluster…" dialog (nil when none)
	exportReport *widget.Label

	job         trainJob
	starting    bool
	stopping    bool
	afterStop   []func()
	runID       int64
	runStatus   studio.RunStatus
	started     time.Time
	firstStep   int // the first step of this session (ETA waits for a few)
	lastStep    int
	sessionFrom int               // the step this session started after (0: a new run)
	lastEvent   studio.TrainEvent // the newest step event, for the final progress line
	failedShown bool
	filling     bool // missing steps are being read from the run's record

	// samplePending and savePending: Sample now / Save now was asked and its
	// first sample or its checkpoint has not arrived yet (the button waits).
	samplePending, savePending bool

	runs *runsList

	// lazy holds the pre-flight back until the tab is first shown (the
	// window's other tabs should not start model and dataset reads);
	// pending says one is owed.
	lazy, pending bool
}

// NewTrainScreen builds the Train tab for a studio. Its pre-flight (which
// reads the model's headers and the dataset, and writes the demo model on
// first use) starts when the tab is first shown.
func NewTrainScreen(win fyne.Window, st *studio.Studio) *TrainScreen {
	s := newTrainScreen(win, studioTrainService{st})
	s.lazy = true
	return s
}

// newTrainScreen builds the screen on any trainService (tests give a fake).
func newTrainScreen(win fyne.Window, svc trainService) *TrainScreen {
	s := &TrainScreen{win: win, svc: svc, base: studio.DefaultTrainConfig()}
	s.build()
	return s
}

// Content is the tab's content.
func (s *TrainScreen) Content() fyne.CanvasObject { return s.content }

// build lays out the screen.
func (s *TrainScreen) build() {
	s.form = newTrainForm(s.schedulePreflight)
	s.datasetLabel = widget.NewLabel("no dataset open: open one in the Dataset tab")
	// One line whatever the path's length: the form below keeps its place.
	s.datasetLabel.Truncation = fyne.TextTruncateEllipsis
	pickDataset := widget.NewButtonWithIcon("Other…", theme.FolderOpenIcon(), func() {
		d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				s.SetDataset(u.Path())
			}
		}, s.win)
		d.Show()
	})
	s.model = widget.NewSelectEntry([]string{demoModelChoice})
	s.model.SetPlaceHolder("an SDXL diffusers folder or .safetensors file; empty: the demo model")
	s.model.OnChanged = func(string) { s.schedulePreflight() }
	browseModel := widget.NewButtonWithIcon("", theme.FileIcon(), func() {
		d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err == nil && r != nil {
				r.Close()
				s.model.SetText(r.URI().Path())
			}
		}, s.win)
		d.Show()
	})
	browseModelDir := widget.NewButtonWithIcon("", theme.FolderIcon(), func() {
		d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				s.model.SetText(u.Path())
			}
		}, s.win)
		d.Show()
	})
	s.name = widget.NewEntry()
	s.name.SetPlaceHolder("the dataset folder's name")
	s.device = widget.NewSelect([]string{"auto", "cpu", "gl"}, func(string) { s.refreshDeviceMemory() })
	s.presetSel = widget.NewSelect(nil, s.applyPreset)
	savePreset := widget.NewButtonWithIcon("Save as preset…", theme.DocumentSaveIcon(), s.showSavePreset)
	s.allowUncap = widget.NewCheck("train them with an empty caption", func(bool) { s.schedulePreflight() })
	s.preflight = newPreflightPanel(func(p string) {
		if s.OnOpenImage != nil {
			s.OnOpenImage(p)
		}
	})

	setup := widget.NewForm(
		widget.NewFormItem("Dataset", container.NewBorder(nil, nil, nil, pickDataset, s.datasetLabel)),
		widget.NewFormItem("Uncaptioned", s.allowUncap),
		widget.NewFormItem("Base model", container.NewBorder(nil, nil, nil, container.NewHBox(browseModel, browseModelDir), s.model)),
		widget.NewFormItem("Run name", s.name),
		widget.NewFormItem("Device", s.device),
		widget.NewFormItem("Preset", container.NewBorder(nil, nil, nil, savePreset, s.presetSel)),
	)
	common := widget.NewForm(s.form.formItems(false)...)
	advanced := widget.NewAccordion(widget.NewAccordionItem("Advanced", widget.NewForm(s.form.formItems(true)...)))
	left := container.NewVSplit(
		container.NewVScroll(container.NewVBox(setup, widget.NewSeparator(), common, advanced)),
		container.NewVScroll(container.NewPadded(s.preflight.content)))
	left.Offset = 0.62

	s.chart = NewLossChart()
	s.chartCtl = newLossChartControls(s.chart, func() int { return s.lastPF.StepsPerEpoch })
	s.progress = widget.NewProgressBar()
	s.progressText = widget.NewLabel("Not started.")
	s.progressText.Wrapping = fyne.TextWrapWord
	s.status = widget.NewLabel("")
	s.status.Wrapping = fyne.TextWrapWord
	s.samples = newSamplesGrid(s.win)
	s.trainBtn = widget.NewButtonWithIcon("Train", theme.MediaPlayIcon(), s.Train)
	s.trainBtn.Importance = widget.HighImportance
	s.stopBtn = widget.NewButtonWithIcon("Stop", theme.MediaStopIcon(), s.Stop)
	s.resumeBtn = widget.NewButtonWithIcon("Resume", theme.MediaReplayIcon(), s.Resume)
	s.sampleBtn = widget.NewButtonWithIcon("Sample now", theme.MediaPhotoIcon(), s.SampleNow)
	s.saveBtn = widget.NewButtonWithIcon("Save now", theme.DocumentSaveIcon(), s.SaveNow)
	s.exportBtn = widget.NewButtonWithIcon("Export for a cluster…", theme.UploadIcon(), s.showExport)
	buttons := container.NewHBox(s.trainBtn, s.stopBtn, s.resumeBtn, s.sampleBtn, s.saveBtn, s.exportBtn)
	top := container.NewVBox(buttons, s.progress, s.progressText, s.status)
	chartBox := container.NewBorder(nil, s.chartCtl.content, nil, nil, s.chart)
	right := container.NewBorder(top, nil, nil, nil, container.NewVSplit(chartBox, s.samples.content))
	split := container.NewHSplit(left, right)
	split.Offset = 0.38

	s.runs = newRunsList(s.win, s.svc)
	s.runs.onTry = func(p string, w float64) {
		if s.OnTryInPlayground != nil {
			s.OnTryInPlayground(p, w)
		}
	}
	s.runs.onResume = func(id int64) {
		s.tabs.SelectIndex(0)
		s.resumeRun(id)
	}
	s.runs.busy = func(id int64) bool { return s.job != nil && s.runID == id }
	s.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("New run", theme.MediaPlayIcon(), split),
		container.NewTabItemWithIcon("Runs", theme.ListIcon(), s.runs.content),
	)
	s.tabs.OnSelected = func(it *container.TabItem) {
		if it.Text == "Runs" {
			s.runs.reload()
		}
	}
	s.content = newShowHook(s.tabs, s.shown)

	s.loadPresets()
	s.form.load(s.base)
	s.device.SetSelected("auto")
	s.loadRecentModels()
	s.updateButtons()
}

// SetDataset makes root the dataset the run trains on.
func (s *TrainScreen) SetDataset(root string) {
	s.dataset = root
	s.datasetLabel.SetText(root)
	s.schedulePreflight()
}

// Running reports whether a run is going on (or starting).
func (s *TrainScreen) Running() bool { return s.job != nil || s.starting }

// loadPresets fills the preset picker (Tutorial first, selected).
func (s *TrainScreen) loadPresets() {
	ps, err := s.svc.Presets()
	if err != nil {
		s.status.SetText(err.Error())
		ps = studio.BuiltInTrainPresets()
	}
	s.presets = ps
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	s.presetSel.SetOptions(names)
	if s.presetSel.Selected == "" && len(names) > 0 {
		s.presetSel.Selected = names[0]
		s.presetSel.Refresh()
		s.base = ps[0].Config
	}
}

// applyPreset shows the settings of the preset named name.
func (s *TrainScreen) applyPreset(name string) {
	for _, p := range s.presets {
		if p.Name == name {
			s.base = p.Config
			s.form.load(p.Config)
			s.schedulePreflight()
			return
		}
	}
}

// showSavePreset asks for a name and keeps the form's settings under it.
func (s *TrainScreen) showSavePreset() {
	cfg, err := s.form.config(s.base)
	if err != nil {
		dialog.ShowError(err, s.win)
		return
	}
	e := widget.NewEntry()
	e.SetPlaceHolder("preset name")
	dialog.ShowForm("Save the settings as a preset", "Save", "Cancel", []*widget.FormItem{widget.NewFormItem("Name", e)}, func(ok bool) {
		if !ok {
			return
		}
		if err := s.svc.SavePreset(e.Text, cfg); err != nil {
			dialog.ShowError(err, s.win)
			return
		}
		s.loadPresets()
		s.presetSel.SetSelected(e.Text)
	}, s.win)
}

// loadRecentModels offers the models used before beside the demo model.
func (s *TrainScreen) loadRecentModels() {
	recent, err := s.svc.RecentModels(8)
	if err != nil {
		return
	}
	s.model.SetOptions(append([]string{demoModelChoice}, recent...))
}

// modelPath is the model the picker names ("" = the demo model).
func (s *TrainScreen) modelPath() string {
	if s.model.Text == demoModelChoice {
		return ""
	}
	return s.model.Text
}

// request builds the training request from the screen.
func (s *TrainScreen) request() (studio.TrainRequest, error) {
	cfg, err := s.form.config(s.base)
	if err != nil {
		return studio.TrainRequest{}, err
	}
	if s.dataset == "" {
		return studio.TrainRequest{}, errors.New("no dataset: open one in the Dataset tab or pick another folder")
	}
	return studio.TrainRequest{
		Dataset: s.dataset, Model: s.modelPath(), Name: s.name.Text, Device: s.device.Selected,
		AllowUncaptioned: s.allowUncap.Checked, Config: cfg,
	}, nil
}

// schedulePreflight checks the settings again once the user pauses.
func (s *TrainScreen) schedulePreflight() {
	if s.pfTimer != nil {
		s.pfTimer.Stop()
	}
	s.pfTimer = time.AfterFunc(preflightDelay, func() { fromBackground(s.runPreflight) })
}

// shown is called each time the tab is laid out visible: a pre-flight
// held back while it was never shown runs now.
func (s *TrainScreen) shown() {
	if !s.lazy {
		return
	}
	s.lazy = false
	if s.pending {
		s.pending = false
		s.schedulePreflight()
	}
}

// runPreflight checks the current settings in the background and shows
// the newest answer (older ones that arrive late are dropped).
func (s *TrainScreen) runPreflight() {
	if s.lazy {
		s.pending = true
		return
	}
	req, err := s.request()
	s.pfGen++
	gen := s.pfGen
	if err != nil {
		s.preflight.fail(err)
		s.updateButtons()
		return
	}
	s.preflight.checking()
	kind := req.Device
	go func() {
		pf, err := s.svc.Preflight(req)
		var dm studio.DeviceMemory
		if err == nil {
			dm = s.deviceMemory(kind)
		}
		fromBackground(func() {
			if gen != s.pfGen {
				return
			}
			if err != nil {
				s.preflight.fail(err)
				s.updateButtons()
				return
			}
			s.lastPF = pf
			s.preflight.show(pf, req.Config, dm)
			if s.job == nil && s.lastStep == 0 {
				s.progressText.SetText(fmt.Sprintf("Ready: %d steps.", pf.TotalSteps))
			}
			s.updateButtons()
		})
	}()
}

// deviceMemory asks for the memory of device kind once (opening a device
// takes a moment) and remembers it. Called off the UI goroutine.
func (s *TrainScreen) deviceMemory(kind string) studio.DeviceMemory {
	if kind == "" {
		kind = "auto"
	}
	var cached studio.DeviceMemory
	var have bool
	fromBackgroundWait(func() { cached, have = s.devMem, s.devMemKind == kind })
	if have {
		return cached
	}
	dm, err := s.svc.DeviceMemory(kind)
	if err != nil {
		dm = studio.DeviceMemory{Backend: kind}
	}
	fromBackgroundWait(func() { s.devMem, s.devMemKind = dm, kind })
	return dm
}

// refreshDeviceMemory re-checks the pre-flight against another device.
func (s *TrainScreen) refreshDeviceMemory() { s.schedulePreflight() }

// updateButtons enables what can be done now.
func (s *TrainScreen) updateButtons() {
	busy := s.job != nil || s.starting
	setEnabled(s.trainBtn, !busy)
	setEnabled(s.stopBtn, s.job != nil && !s.stopping)
	setEnabled(s.resumeBtn, !busy && s.runID != 0 && (s.runStatus == studio.RunStopped || s.runStatus == studio.RunFailed))
	setEnabled(s.sampleBtn, s.job != nil && !s.stopping && !s.samplePending)
	setEnabled(s.saveBtn, s.job != nil && !s.stopping && !s.savePending)
}

// SampleNow asks the run to render its sample prompts at the end of the
// current step; the button waits until the first image arrives.
func (s *TrainScreen) SampleNow() {
	if s.job == nil || s.stopping || s.samplePending {
		return
	}
	if !s.job.SampleNow() {
		s.showFailure("The run did not take the request (it is ending); samples come every \"Sample every\" steps.")
		return
	}
	s.samplePending = true
	s.status.Importance = widget.MediumImportance
	s.status.SetText(fmt.Sprintf("Sampling at the end of step %d…", s.lastStep+1))
	s.updateButtons()
}

// SaveNow asks the run for a checkpoint (a numbered LoRA file and a
// resumable state) at the end of the current step; the button waits until
// it is written.
func (s *TrainScreen) SaveNow() {
	if s.job == nil || s.stopping || s.savePending {
		return
	}
	if !s.job.SaveNow() {
		s.showFailure("The run did not take the request (it is ending); Stop saves a checkpoint.")
		return
	}
	s.savePending = true
	s.status.Importance = widget.MediumImportance
	s.status.SetText(fmt.Sprintf("Saving a checkpoint at the end of step %d…", s.lastStep+1))
	s.updateButtons()
}

// setEnabled enables or disables b.
func setEnabled(b *widget.Button, on bool) {
	if on {
		b.Enable()
	} else {
		b.Disable()
	}
}

// Train starts a new run with the screen's settings.
func (s *TrainScreen) Train() {
	if s.Running() {
		return
	}
	req, err := s.request()
	if err != nil {
		s.showFailure(err.Error())
		return
	}
	s.starting = true
	s.status.Importance = widget.MediumImportance
	s.status.SetText("Starting…")
	s.updateButtons()
	go func() {
		j, err := s.svc.Start(req)
		fromBackground(func() {
			s.starting = false
			if err != nil {
				s.showFailure(err.Error())
				s.updateButtons()
				return
			}
			s.chart.SetSeries(0, req.Name, nil, nil, nil)
			s.chart.ClearSeries(1)
			s.samples.clear()
			s.lastStep = 0
			s.attach(j)
		})
	}()
}

// Resume continues the run shown (stopped or failed).
func (s *TrainScreen) Resume() {
	if s.runID != 0 {
		s.resumeRun(s.runID)
	}
}

// resumeRun continues run id: its recorded curve and samples are shown
// first, then the new steps join them.
func (s *TrainScreen) resumeRun(id int64) {
	if s.Running() {
		s.showFailure("a run is training; stop it before resuming another")
		return
	}
	s.starting = true
	s.status.Importance = widget.MediumImportance
	s.status.SetText(fmt.Sprintf("Resuming run %d…", id))
	s.updateButtons()
	dev := s.device.Selected
	go func() {
		d, derr := s.svc.Run(id)
		j, err := s.svc.Resume(id, dev)
		fromBackground(func() {
			s.starting = false
			s.runID = id
			if err != nil {
				s.showFailure(err.Error())
				s.updateButtons()
				return
			}
			if derr == nil {
				s.showRecorded(d)
			}
			s.attach(j)
		})
	}()
}

// showRecorded draws a run's recorded curve and samples.
func (s *TrainScreen) showRecorded(d studio.RunDetail) {
	steps, loss, lr := metricSeries(d.Metrics)
	s.chart.SetSeries(0, d.Name, steps, loss, lr)
	s.chart.ClearSeries(1)
	s.samples.clear()
	for _, sm := range d.Samples {
		s.samples.add(sm.Step, sm.Prompt, sm.ImagePath)
	}
	s.lastStep = d.StepsDone
	if len(steps) > 0 {
		s.lastStep = steps[len(steps)-1]
	}
}

// attach follows job: its events are applied on the UI goroutine.
func (s *TrainScreen) attach(j trainJob) {
	s.job = j
	s.runID = j.RunID()
	s.runStatus = studio.RunRunning
	s.started = time.Now()
	s.firstStep = 0
	s.sessionFrom = s.lastStep
	s.lastEvent = studio.TrainEvent{}
	s.stopping = false
	s.samplePending, s.savePending = false, false
	s.failedShown = false
	s.status.Importance = widget.MediumImportance
	s.status.SetText(fmt.Sprintf("Run %d: preparing…", s.runID))
	s.progressText.SetText("Preparing: loading the model and filling the caches…")
	s.updateButtons()
	go func() {
		for e := range j.Events() {
			fromBackground(func() { s.apply(e) })
		}
		res, err := j.Wait()
		fromBackground(func() { s.finish(j, res, err) })
	}()
}

// apply shows one event of the run.
func (s *TrainScreen) apply(e studio.TrainEvent) {
	switch e.Kind {
	case studio.TrainPreparing:
		s.status.SetText(e.Message)
	case studio.TrainStep:
		if s.firstStep == 0 {
			s.firstStep = e.Step
			s.status.SetText(fmt.Sprintf("Run %d: training.", e.RunID))
		}
		if e.Step > s.lastStep+1 && s.lastStep > 0 {
			// The job merged steps while the screen lagged: they are in the record.
			s.fillFromRecord(e.RunID)
		}
		s.chart.Append(0, e.Step, e.Loss, e.LR)
		s.lastStep = e.Step
		s.lastEvent = e
		s.showProgress(e)
	case studio.TrainSample:
		s.samples.add(e.Step, e.Prompt, e.Path)
		if s.samplePending {
			s.samplePending = false
			s.status.Importance = widget.MediumImportance
			s.status.SetText(fmt.Sprintf("Sampling step %d: the images join the grid below.", e.Step))
			s.updateButtons()
		}
	case studio.TrainCheckpoint:
		s.status.SetText(fmt.Sprintf("Checkpoint saved at step %d: %s", e.Step, e.Path))
		if s.savePending {
			s.savePending = false
			s.updateButtons()
		}
	case studio.TrainDone:
		s.status.SetText("Finished. The LoRA: " + e.Path)
	case studio.TrainStopped:
		s.status.SetText(fmt.Sprintf("Stopped at step %d; the checkpoint is saved and Resume continues from it.", e.Step))
	case studio.TrainFailed:
		s.showFailure(fmt.Sprintf("Failed at step %d: %s", e.Step, e.Message))
		s.failedShown = true
	}
}

// fillFromRecord redraws the curve from the run's recorded metrics (steps
// the job merged into later ones are there).
func (s *TrainScreen) fillFromRecord(id int64) {
	if s.filling {
		return
	}
	s.filling = true
	go func() {
		d, err := s.svc.Run(id)
		fromBackground(func() {
			s.filling = false
			if err != nil || id != s.runID {
				return
			}
			steps, loss, lr := metricSeries(d.Metrics)
			if len(steps) > 0 && steps[len(steps)-1] >= s.lastStep {
				s.chart.SetSeries(0, d.Name, steps, loss, lr)
			}
		})
	}()
}

// showProgress writes the progress line of a step event.
func (s *TrainScreen) showProgress(e studio.TrainEvent) {
	if e.Total > 0 {
		s.progress.Max = float64(e.Total)
		s.progress.SetValue(float64(e.Step))
	}
	eta := "estimating…"
	// The first steps include warming up (caches, kernels): an ETA from them misleads.
	switch {
	case e.Total > 0 && e.Step >= e.Total:
		eta = "none: the last step"
	case e.ETA > 0 && e.Step-s.firstStep >= 2:
		eta = roundDuration(e.ETA)
	}
	text := fmt.Sprintf("step %d / %d · epoch %d · %.2f it/s · elapsed %s · ETA %s",
		e.Step, e.Total, e.Epoch+1, e.ItPerSec, roundDuration(time.Since(s.started)), eta)
	if e.DeviceBytes > 0 {
		text += " · device memory " + gib(e.DeviceBytes)
	}
	text += fmt.Sprintf(" · loss %.4g", e.Loss)
	s.progressText.SetText(text)
}

// finish shows how the run ended and runs what waited for it.
func (s *TrainScreen) finish(j trainJob, res studio.TrainResult, err error) {
	if s.job != j {
		return
	}
	s.job = nil
	s.stopping = false
	s.samplePending, s.savePending = false, false
	s.runStatus = res.Status
	s.showEnd(res, err)
	switch {
	case res.Status == studio.RunDone:
		s.status.Importance = widget.SuccessImportance
		s.status.SetText(fmt.Sprintf("Finished %d steps. The LoRA: %s", res.Steps, res.Output))
		s.status.Refresh()
	case res.Status == studio.RunStopped:
		s.status.Importance = widget.MediumImportance
		s.status.SetText(fmt.Sprintf("Stopped at step %d of %d; the checkpoint is saved and Resume continues from it.", res.Steps, res.Total))
	case err != nil && !s.failedShown:
		s.runStatus = studio.RunFailed
		s.showFailure(err.Error())
	case err != nil:
		s.runStatus = studio.RunFailed
	}
	s.updateButtons()
	s.runs.reload()
	waiting := s.afterStop
	s.afterStop = nil
	for _, f := range waiting {
		f()
	}
}

// showEnd replaces the progress line's ETA by how the run ended: done
// with the time this session took, stopped at its step, or failed.
func (s *TrainScreen) showEnd(res studio.TrainResult, err error) {
	total := res.Total
	if total == 0 {
		total = int(s.progress.Max)
	}
	took := roundDuration(time.Since(s.started))
	var text string
	switch {
	case res.Status == studio.RunDone:
		s.progress.Max = float64(max(total, res.Steps, 1))
		s.progress.SetValue(float64(res.Steps))
		if s.sessionFrom > 0 {
			text = fmt.Sprintf("step %d / %d · done · steps %d–%d took %s", res.Steps, total, s.sessionFrom+1, res.Steps, took)
		} else {
			text = fmt.Sprintf("step %d / %d · done in %s", res.Steps, total, took)
		}
	case res.Status == studio.RunStopped:
		text = fmt.Sprintf("stopped at step %d / %d after %s", res.Steps, total, took)
	case err != nil:
		text = fmt.Sprintf("failed at step %d / %d after %s", max(res.Steps, s.lastStep), total, took)
	default:
		return
	}
	if s.lastEvent.Step > 0 {
		text += fmt.Sprintf(" · loss %.4g", s.lastEvent.Loss)
	}
	s.progressText.SetText(text)
}

// showFailure shows a failure in red.
func (s *TrainScreen) showFailure(msg string) {
	s.status.Importance = widget.DangerImportance
	s.status.SetText(msg)
}

// Stop asks the run to stop; it saves a resumable checkpoint first.
func (s *TrainScreen) Stop() {
	if s.job == nil || s.stopping {
		return
	}
	s.stopping = true
	s.status.SetText("Stopping after this step and saving a checkpoint…")
	s.job.Stop()
	s.updateButtons()
}

// StopThen stops the run (saving it) and calls then once it has ended; with
// no run, then runs at once.
func (s *TrainScreen) StopThen(then func()) {
	if s.job == nil {
		then()
		return
	}
	s.afterStop = append(s.afterStop, then)
	s.Stop()
}

// ConfirmClose asks, while a run trains, whether to stop and save it before
// closing; close is called when the window may close.
func (s *TrainScreen) ConfirmClose(close func()) {
	if !s.Running() {
		close()
		return
	}
	dialog.ShowConfirm("A run is training",
		fmt.Sprintf("Run %d is at step %d. Stop it, save a checkpoint (Resume continues it later) and close?", s.runID, s.lastStep),
		func(stop bool) {
			if stop {
				s.StopThen(close)
			}
		}, s.win)
}

// metricSeries splits recorded metrics into the chart's columns.
func metricSeries(ms []studio.Metric) (steps []int, loss, lr []float64) {
	for _, m := range ms {
		steps = append(steps, m.Step)
		loss = append(loss, m.Loss)
		lr = append(lr, m.LR)
	}
	return
}

// baseName is a path's last element ("" stays "").
func baseName(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Base(p)
}

// showHook wraps content and reports every Show (container.AppTabs shows
// the selected tab's content on each layout).
type showHook struct {
	widget.BaseWidget
	content fyne.CanvasObject
	onShow  func()
}

// newShowHook wraps content; onShow runs on the UI goroutine.
func newShowHook(content fyne.CanvasObject, onShow func()) *showHook {
	h := &showHook{content: content, onShow: onShow}
	h.ExtendBaseWidget(h)
	return h
}

// Show shows the content and reports it.
func (h *showHook) Show() {
	h.BaseWidget.Show()
	if h.onShow != nil {
		h.onShow()
	}
}

// CreateRenderer draws the content.
func (h *showHook) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(h.content) }
