package studio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lorastudio/engine/device"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/train"
	"lorastudio/engine/train/dataset"
	"lorastudio/storage"
)

// RunsDir is the folder under the data directory holding one folder per
// training run (<id>-<name>): its checkpoints, training state and samples.
const RunsDir = "runs"

// TrainCacheDir is the folder under the data directory holding the training
// caches (VAE latents, text embeddings), shared by every run.
const TrainCacheDir = "cache/train"

// TrainConfig is every setting of a training run (engine/train's Config),
// named here so the CLI and the screens need only app/studio.
type TrainConfig = train.Config

// DefaultTrainConfig returns the tutorial's settings (LoRA r 8, alpha 16 on
// the attention projections, AdamW, 1024²).
func DefaultTrainConfig() TrainConfig { return train.Default() }

// ErrInvalidTrain marks an error in a training request itself (a setting, a
// dataset or model that cannot be trained, an output that cannot be written),
// as opposed to one met while training.
var ErrInvalidTrain = errors.New("invalid training request")

// invalidTrain wraps a message in ErrInvalidTrain.
func invalidTrain(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidTrain, fmt.Sprintf(format, a...))
}

// TrainRequest is a training job as the CLI and the Train screen give it.
type TrainRequest struct {
	Dataset string // the dataset folder (either layout, kohya N_name repeats)
	Model   string // SDXL diffusers folder or single file; "" = the configured model, else the demo model
	// Out is the final LoRA file (a folder for the peft format); "" writes
	// <run folder>/<name>.safetensors (<run folder>/<name> for peft).
	Out string
	// Name names the run and its folder; "" takes Out's file name, else the
	// dataset folder's.
	Name             string
	Device           string // auto, cpu or gl ("" = auto)
	AllowUncaptioned bool   // train images without a caption (with an empty one) instead of refusing
	Config           TrainConfig
}

// SkippedImage is an image of the dataset that cannot be trained on.
type SkippedImage struct {
	Path   string
	Reason string
}

// TrainPlan is a checked training request, ready to run: the model opened
// (headers only, no weight loaded), the dataset read, the output checked and
// the pre-flight report made. Close it when it is not run.
type TrainPlan struct {
	Request      TrainRequest // resolved: Model and Out absolute, Name set, Config complete
	IsDemo       bool         // the model is the demo model (random weights)
	ModelName    string       // the base model's file or folder name (ss_sd_model_name)
	ModelHash    string       // the base model's content hash
	Images       int          // images trained on
	TrainImages  int          // images × repeats: one epoch's samples
	Skipped      []SkippedImage
	Uncaptioned  []string // trained with an empty caption (AllowUncaptioned)
	Dirs         map[string]DirStats
	TagFrequency map[string]map[string]int // folder → tag → images with it (ss_tag_frequency)
	Preflight    train.Report              // engine/train's pre-flight: steps, LoRA size, memory and time estimates
	Report       *dataset.Report           // its dataset part: buckets, long captions, small images, corrupt images
	TotalSteps   int                       // optimizer steps the run makes

	s         *Studio
	root      string // the dataset folder, absolute
	datasetID int64
	imgs      []dataset.Image
	src       *sdxl.Source
	started   time.Time
}

// Close releases the model files the plan holds open.
func (p *TrainPlan) Close() error {
	if p.src == nil {
		return nil
	}
	err := p.src.Close()
	p.src = nil
	return err
}

// TrainResult is what a training run left behind.
type TrainResult struct {
	RunID      int64
	RunDir     string
	Status     storage.RunStatus
	Steps      int     // optimizer steps done, across resumes
	Total      int     // steps planned
	Loss       float64 // the last step's loss
	Output     string  // the final LoRA ("" when stopped)
	Checkpoint string  // the last checkpoint's LoRA file
	State      string  // the last resumable state
}

// runName makes a folder-safe run name: letters, digits, '.', '-' and '_'
// kept, anything else '_', at most 64 bytes.
func runName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	n := strings.Trim(b.String(), "._")
	if n == "" {
		return "lora"
	}
	return n
}

// outputStem is the name part of an output path ("my_lora" of my_lora.safetensors).
func outputStem(out string) string {
	b := filepath.Base(out)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// checkOutput makes sure the final LoRA can be written at out before any
// training starts: its folder exists (made if missing) and takes a file.
func checkOutput(out, format string) error {
	if st, err := os.Stat(out); err == nil {
		if format == "peft" && !st.IsDir() {
			return invalidTrain("output %s: a file is there; the peft format writes a folder", out)
		}
		if format != "peft" && st.IsDir() {
			return invalidTrain("output %s is a folder; give a file name (e.g. %s)", out, filepath.Join(out, "lora.safetensors"))
		}
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return invalidTrain("output folder %s cannot be made: %v", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".lorastudio-write-test-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return invalidTrain("output folder %s cannot be written: %v", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// readTrainDataset reads the dataset through the studio's dataset reader
// (registering it as opening it in the studio does) and fills the plan's
// images, skipped and uncaptioned images, folders and tag frequency.
func (s *Studio) readTrainDataset(p *TrainPlan) error {
	ds, err := s.OpenDataset(p.Request.Dataset)
	if err != nil {
		return invalidTrain("%v", err)
	}
	p.root, p.datasetID = ds.Root(), ds.ID()
	p.Dirs = map[string]DirStats{}
	p.TagFrequency = map[string]map[string]int{}
	var uncaptioned []string
	for _, it := range ds.Items() {
		if it.Err != nil {
			p.Skipped = append(p.Skipped, SkippedImage{Path: it.ImagePath, Reason: it.Err.Error()})
			continue
		}
		// Trained as sd-scripts reads a caption file: without the surrounding
		// white space (the final newline editors add).
		caption := strings.TrimSpace(it.Caption)
		if it.CaptionErr != nil || !it.HasCaption || caption == "" {
			uncaptioned = append(uncaptioned, it.ImagePath)
			caption = ""
		}
		reps := max(it.Repeats, 1)
		p.imgs = append(p.imgs, dataset.Image{Path: it.ImagePath, Caption: caption, Repeats: reps})
		dir := datasetDir(p.root, it.Rel)
		d := p.Dirs[dir]
		d.Repeats, d.Images = reps, d.Images+1
		p.Dirs[dir] = d
		tf := p.TagFrequency[dir]
		if tf == nil {
			tf = map[string]int{}
			p.TagFrequency[dir] = tf
		}
		seen := map[string]bool{}
		for _, t := range captionTags(caption) {
			if !seen[t] { // sd-scripts counts an image once per tag
				seen[t] = true
				tf[t]++
			}
		}
		p.Images++
		p.TrainImages += reps
	}
	if p.Images == 0 {
		if len(p.Skipped) > 0 {
			return invalidTrain("dataset %s: none of its %d images can be read (first: %s: %s)", p.root, len(p.Skipped), p.Skipped[0].Path, p.Skipped[0].Reason)
		}
		return invalidTrain("dataset %s holds no images (png, jpeg or webp)", p.root)
	}
	if len(uncaptioned) > 0 && !p.Request.AllowUncaptioned {
		if len(uncaptioned) == p.Images {
			return invalidTrain("dataset %s: none of its %d images has a caption (%s); %s",
				p.root, p.Images, someOf(uncaptioned), allowUncaptionedHint)
		}
		return invalidTrain("dataset %s: %d of %d images have no caption: %s; %s",
			p.root, len(uncaptioned), p.Images, someOf(uncaptioned), allowUncaptionedHint)
	}
	p.Uncaptioned = uncaptioned
	return nil
}

// allowUncaptionedHint ends the refusal of uncaptioned images (training and
// export) with both ways to allow them: the CLI's flag and the window's box.
const allowUncaptionedHint = "caption them, or allow uncaptioned images (--allow-uncaptioned; in the window, \"train them with an empty caption\")"

// someOf lists the first five paths, "and N more" for the rest.
func someOf(paths []string) string {
	show := paths[:min(len(paths), 5)]
	list := strings.Join(show, ", ")
	if len(paths) > len(show) {
		list += fmt.Sprintf(" and %d more", len(paths)-len(show))
	}
	return list
}

// PlanTrain checks a training request without loading any weight: the
// settings, the model (resolved as generate does, opened as SDXL), the
// dataset (read with the studio's reader; unreadable images skipped and
// named; uncaptioned ones refused unless allowed), the output's folder (it
// must take a file), and the pre-flight report (engine/train.Preflight).
// Errors about the request wrap ErrInvalidTrain and name the file.
func (s *Studio) PlanTrain(req TrainRequest) (*TrainPlan, error) {
	if req.Device == "" {
		req.Device = "auto"
	}
	if err := req.Config.Validate(); err != nil {
		return nil, invalidTrain("%v", strings.TrimPrefix(err.Error(), "train: "))
	}
	if req.Dataset == "" {
		return nil, invalidTrain("no dataset folder given")
	}
	p := &TrainPlan{Request: req, s: s, started: time.Now()}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	model, isDemo, err := s.ResolveModel(req.Model)
	if err != nil {
		return nil, invalidTrain("%v", err)
	}
	p.Request.Model, p.IsDemo = model, isDemo
	p.Request.Config.Model = model
	if p.Request.Config.CacheDir == "" {
		// Latents and text embeddings are keyed by content: every run shares them.
		p.Request.Config.CacheDir = filepath.Join(s.dataDir, TrainCacheDir)
	}
	if p.src, err = sdxl.OpenSource(model); err != nil {
		return nil, invalidTrain("model %s is not an SDXL model this build can train: %v", model, strings.TrimPrefix(err.Error(), "sdxl: "))
	}
	p.ModelName = filepath.Base(model)
	if err := s.readTrainDataset(p); err != nil {
		return nil, err
	}
	if p.Request.Name == "" {
		if req.Out != "" {
			p.Request.Name = outputStem(req.Out)
		} else {
			p.Request.Name = filepath.Base(p.root)
		}
	}
	if req.Out != "" {
		out, err := filepath.Abs(req.Out)
		if err != nil {
			return nil, invalidTrain("output %s: %v", req.Out, err)
		}
		if err := checkOutput(out, req.Config.Format); err != nil {
			return nil, err
		}
		p.Request.Out = out
	}
	cfg := &p.Request.Config
	if len(cfg.SamplePrompts) == 0 && cfg.SampleEvery > 0 {
		// The default sample prompts: the first two captions of the dataset.
		for _, im := range p.imgs {
			if im.Caption != "" && len(cfg.SamplePrompts) < 2 {
				cfg.SamplePrompts = append(cfg.SamplePrompts, im.Caption)
			}
		}
	}
	if p.Preflight, err = train.Preflight(*cfg, p.imgs, p.src.Config()); err != nil {
		return nil, invalidTrain("dataset %s: %v", p.root, strings.TrimPrefix(strings.TrimPrefix(err.Error(), "train: "), "dataset: "))
	}
	p.Report, p.TotalSteps = p.Preflight.Dataset, p.Preflight.Steps
	ok = true
	return p, nil
}

// prepareMetadata hashes the plan's model (remembered in the database, so a
// large checkpoint is read once) and builds the kohya metadata of the run.
func (p *TrainPlan) prepareMetadata() error {
	h, err := p.s.HashPath(p.Request.Model)
	if err != nil {
		return err
	}
	p.ModelHash = h
	single := ""
	if st, err := os.Stat(p.Request.Model); err == nil && !st.IsDir() {
		single = h // HashPath of a file is its sha256, as ss_new_sd_model_hash wants
	}
	cfg := &p.Request.Config
	cfg.ModelHash = h
	meta, err := kohyaMetadata(trainMetadataInput{
		Title: p.Request.Name, ModelName: p.ModelName, ModelSHA256: single,
		Rank: cfg.Rank, Alpha: cfg.Alpha, LR: cfg.LR, Resolution: cfg.Data.Resolution, Seed: cfg.Seed,
		PredictionType: p.src.Config().Scheduler.PredictionType,
		TagFrequency:   p.TagFrequency, Dirs: p.Dirs, TrainImages: p.TrainImages, Started: p.started,
	})
	if err != nil {
		return err
	}
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	for k, v := range meta {
		if _, set := cfg.Metadata[k]; !set {
			cfg.Metadata[k] = v
		}
	}
	return nil
}

// TrainEventKind says what a TrainEvent reports.
type TrainEventKind string

// The kinds of TrainEvent (engine/train's event kinds).
const (
	TrainPreparing  TrainEventKind = "preparing"  // loading the model, filling caches (Message)
	TrainStep       TrainEventKind = "step"       // an optimizer step done
	TrainSample     TrainEventKind = "sample"     // a sample image written (Path, Prompt)
	TrainCheckpoint TrainEventKind = "checkpoint" // a numbered LoRA and a resumable state written (Path)
	TrainDone       TrainEventKind = "done"       // finished (Path: the output)
	TrainStopped    TrainEventKind = "stopped"    // stopped on request; resumable (Path: the checkpoint)
	TrainFailed     TrainEventKind = "failed"     // failed (Message)
)

// TrainEvent is one progress report of a training run, as the Train screen
// and the CLI show it.
type TrainEvent struct {
	Kind                 TrainEventKind
	RunID                int64
	Step, Total, Epoch   int
	Loss, SmoothLoss, LR float64
	ItPerSec             float64
	ETA                  time.Duration
	DeviceBytes          int64
	HostBytes            int64
	Path                 string
	Prompt               string
	Message              string
}

// eventKinds maps engine/train's kinds to the studio's.
var eventKinds = map[train.EventKind]TrainEventKind{
	train.Preparing: TrainPreparing, train.Step: TrainStep, train.Sample: TrainSample,
	train.Checkpoint: TrainCheckpoint, train.Done: TrainDone, train.Stopped: TrainStopped, train.Failed: TrainFailed,
}

// configJSON is the run's settings as stored with it: the config without the
// metadata (rebuilt on resume, its start time included).
func configJSON(cfg TrainConfig) (string, error) {
	cfg.Metadata = nil
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("training settings: %w", err)
	}
	return string(b), nil
}

// runConfigJSON is configJSON with the plan's optimizer steps per epoch
// added as "steps_per_epoch": the Runs page draws a recorded run's curve in
// epochs without re-reading its dataset (which may have changed since).
func runConfigJSON(cfg TrainConfig, stepsPerEpoch int) (string, error) {
	cfg.Metadata = nil
	b, err := json.Marshal(struct {
		TrainConfig
		StepsPerEpoch int `json:"steps_per_epoch,omitempty"`
	}{cfg, stepsPerEpoch})
	if err != nil {
		return "", fmt.Errorf("training settings: %w", err)
	}
	return string(b), nil
}

// recordedStepsPerEpoch is the "steps_per_epoch" runConfigJSON stored with a
// run; 0 for runs recorded before it was (or imported ones), and for settings
// that do not parse (storage only keeps valid JSON; 0 then means unknown).
func recordedStepsPerEpoch(configJSON string) int {
	var x struct {
		StepsPerEpoch int `json:"steps_per_epoch"`
	}
	if json.Unmarshal([]byte(configJSON), &x) != nil || x.StepsPerEpoch < 0 {
		return 0
	}
	return x.StepsPerEpoch
}

// createRun records the plan as a new queued run and makes its folder
// <data>/runs/<id>-<name>.
func (s *Studio) createRun(p *TrainPlan) (storage.Run, error) {
	if err := p.prepareMetadata(); err != nil {
		return storage.Run{}, err
	}
	cj, err := runConfigJSON(p.Request.Config, p.Preflight.StepsPerEpoch)
	if err != nil {
		return storage.Run{}, err
	}
	r, err := s.db.CreateRun(storage.NewRun{
		DatasetID: p.datasetID, Name: p.Request.Name, DatasetPath: p.root, BaseModel: p.Request.Model,
		ModelName: p.ModelName, ModelHash: p.ModelHash, ConfigJSON: cj, OutputPath: p.Request.Out, StepsTotal: p.TotalSteps,
	})
	if err != nil {
		return storage.Run{}, err
	}
	dir := filepath.Join(s.dataDir, RunsDir, fmt.Sprintf("%d-%s", r.ID, runName(p.Request.Name)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.db.UpdateRunStatus(r.ID, storage.RunFailed, err.Error())
		return storage.Run{}, fmt.Errorf("run folder %s: %w", dir, err)
	}
	if err := s.db.SetRunDir(r.ID, dir); err != nil {
		return storage.Run{}, err
	}
	r.RunDir = dir
	if p.Request.Out == "" {
		ext := ".safetensors"
		if p.Request.Config.Format == "peft" {
			ext = ""
		}
		p.Request.Out = filepath.Join(dir, runName(p.Request.Name)+ext)
		if err := s.db.SetRunOutput(r.ID, p.Request.Out); err != nil {
			return storage.Run{}, err
		}
		r.OutputPath = p.Request.Out
	}
	p.Request.Config.Output = p.Request.Out
	return r, nil
}

// Train runs the plan as a new run: records it (status, every step's loss,
// learning rate and time, samples, checkpoints, the output) in the database,
// trains in <data>/runs/<id>-<name>, and reports every event to onEvent (may
// be nil; called on the training goroutine, so a screen hands it to
// fyne.Do). Cancelling ctx stops the run after a resumable checkpoint is
// saved; the run is then "stopped" and ResumeTrain continues it. The plan is
// closed.
func (s *Studio) Train(ctx context.Context, p *TrainPlan, onEvent func(TrainEvent)) (TrainResult, error) {
	defer p.Close()
	r, err := s.createRun(p)
	if err != nil {
		return TrainResult{}, err
	}
	return s.execute(ctx, p, r, false, onEvent)
}

// ResumeRequest says how to continue a stopped or failed run.
type ResumeRequest struct {
	RunID  int64
	Device string // auto, cpu or gl ("" = auto)
}

// PlanResume checks that a run can continue: it is stopped, failed or was
// killed (still "running"), its dataset and model are still there, and the
// model is the one it trained on (its hash). engine/train refuses a resume
// whose dataset or settings changed, saying what differs.
func (s *Studio) PlanResume(req ResumeRequest) (*TrainPlan, storage.Run, error) {
	r, err := s.db.Run(req.RunID)
	if err != nil {
		return nil, storage.Run{}, invalidTrain("run %d: no such run (see 'lorastudio runs list')", req.RunID)
	}
	if r.Status == storage.RunDone {
		return nil, r, invalidTrain("run %d (%s) is finished (%d steps); nothing to resume", r.ID, r.Name, r.StepsDone)
	}
	if r.RunDir == "" {
		return nil, r, invalidTrain("run %d has no run folder (recorded by an older version); it cannot resume", r.ID)
	}
	cfg := DefaultTrainConfig()
	if err := json.Unmarshal([]byte(r.ConfigJSON), &cfg); err != nil {
		return nil, r, fmt.Errorf("run %d: its settings cannot be read: %w", r.ID, err)
	}
	p, err := s.PlanTrain(TrainRequest{
		Dataset: r.DatasetPath, Model: r.BaseModel, Out: r.OutputPath, Name: r.Name, Device: req.Device,
		AllowUncaptioned: true, // the run was checked when it started; engine/train compares the dataset
		Config:           cfg,
	})
	if err != nil {
		return nil, r, fmt.Errorf("run %d: %w", r.ID, err)
	}
	if err := p.prepareMetadata(); err != nil {
		p.Close()
		return nil, r, err
	}
	if r.ModelHash != "" && p.ModelHash != r.ModelHash {
		p.Close()
		return nil, r, invalidTrain("run %d trained on %s with hash %.12s; the file there now has hash %.12s: it is another model, resume refused",
			r.ID, r.BaseModel, r.ModelHash, p.ModelHash)
	}
	p.Request.Config.Output = p.Request.Out
	return p, r, nil
}

// ResumeTrain continues a stopped, failed or killed run from its last
// checkpoint (see PlanResume), with the step counter, data order and noise
// continuing exactly as the uninterrupted run's.
func (s *Studio) ResumeTrain(ctx context.Context, req ResumeRequest, onEvent func(TrainEvent)) (TrainResult, error) {
	p, r, err := s.PlanResume(req)
	if err != nil {
		return TrainResult{RunID: req.RunID}, err
	}
	defer p.Close()
	return s.execute(ctx, p, r, true, onEvent)
}

// ResumePlanned runs a plan made by PlanResume (so a caller can show its
// pre-flight first).
func (s *Studio) ResumePlanned(ctx context.Context, p *TrainPlan, r storage.Run, onEvent func(TrainEvent)) (TrainResult, error) {
	defer p.Close()
	return s.execute(ctx, p, r, true, onEvent)
}

// runRecorder turns engine/train's events into database rows and TrainEvents.
type runRecorder struct {
	s        *Studio
	p        *TrainPlan
	run      storage.Run
	onEvent  func(TrainEvent)
	total    int
	lastStep time.Time
	err      error // the first database error; training goes on, the run reports it at the end
	res      TrainResult
}

// keep remembers the first error of recording.
func (rc *runRecorder) keep(err error) {
	if err != nil && rc.err == nil {
		rc.err = err
	}
}

// sampleSeed is the seed engine/train draws prompt's sample with: SampleSeed
// plus the prompt's index.
func (rc *runRecorder) sampleSeed(prompt string) int64 {
	cfg := rc.p.Request.Config
	for i, sp := range cfg.SamplePrompts {
		if sp == prompt {
			return int64(cfg.SampleSeed) + int64(i)
		}
	}
	return int64(cfg.SampleSeed)
}

// stateFile is the resumable state engine/train writes beside a checkpoint
// at step, "" when there is none.
func stateFile(runDir string, step int) string {
	p := filepath.Join(runDir, "checkpoints", fmt.Sprintf("state-%06d.safetensors", step))
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// hasState reports whether runDir holds a resumable state of engine/train.
func hasState(runDir string) bool {
	m, _ := filepath.Glob(filepath.Join(runDir, "checkpoints", "state-*.safetensors"))
	return len(m) > 0
}

// kohyaExtra is the metadata a kohya file written at step lacks when
// engine/train did not add it.
func (rc *runRecorder) kohyaExtra(step, epoch int, finished time.Time) map[string]string {
	m := map[string]string{metaSteps: strconv.Itoa(step), metaEpoch: strconv.Itoa(epoch + 1)}
	if !finished.IsZero() {
		m[metaFinished] = unixSeconds(finished)
	}
	return m
}

// isKohyaFile reports whether p is a LoRA file the kohya writer made.
func (rc *runRecorder) isKohyaFile(p string) bool {
	if rc.p.Request.Config.Format != "kohya" {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// handle records one event and forwards it.
func (rc *runRecorder) handle(e train.Event) {
	db := rc.s.db
	id := rc.run.ID
	switch e.Kind {
	case train.Step:
		now := time.Now()
		secs := 0.0
		switch {
		case !rc.lastStep.IsZero():
			secs = now.Sub(rc.lastStep).Seconds()
		case e.ItPerSec > 0:
			secs = 1 / e.ItPerSec
		}
		rc.lastStep = now
		if e.Total > 0 && e.Total != rc.total {
			rc.total = e.Total
			rc.keep(db.SetRunSteps(id, max(e.Step-1, 0), e.Total))
		}
		rc.keep(db.AddMetric(storage.Metric{RunID: id, Step: e.Step, Loss: e.Loss, LR: e.LR, Seconds: secs}))
		rc.res.Steps, rc.res.Loss = e.Step, e.Loss
	case train.Sample:
		_, err := db.AddSample(storage.Sample{RunID: id, Step: e.Step, Prompt: e.Prompt, Seed: rc.sampleSeed(e.Prompt), ImagePath: e.Path})
		rc.keep(err)
	case train.Checkpoint:
		if rc.isKohyaFile(e.Path) {
			rc.keep(finishKohyaFile(e.Path, rc.kohyaExtra(e.Step, e.Epoch, time.Time{})))
		}
		_, err := db.AddRunFile(storage.RunFile{RunID: id, Kind: storage.FileCheckpoint, Path: e.Path, Step: e.Step})
		rc.keep(err)
		if st := stateFile(rc.run.RunDir, e.Step); st != "" {
			_, err := db.AddRunFile(storage.RunFile{RunID: id, Kind: storage.FileState, Path: st, Step: e.Step})
			rc.keep(err)
		}
		rc.keep(db.SetRunCheckpoint(id, e.Path, e.Step))
		rc.res.Checkpoint = e.Path
	}
	if rc.onEvent != nil {
		rc.onEvent(TrainEvent{
			Kind: eventKinds[e.Kind], RunID: id, Step: e.Step, Total: e.Total, Epoch: e.Epoch,
			Loss: e.Loss, SmoothLoss: e.SmoothLoss, LR: e.LR, ItPerSec: e.ItPerSec, ETA: e.ETA,
			DeviceBytes: e.DeviceBytes, HostBytes: e.HostBytes, Path: e.Path, Prompt: e.Prompt, Message: e.Message,
		})
	}
}

// execute trains run r of plan p (resuming it when resume) and records its end.
func (s *Studio) execute(ctx context.Context, p *TrainPlan, r storage.Run, resume bool, onEvent func(TrainEvent)) (TrainResult, error) {
	return s.executeWith(ctx, p, r, resume, nil, onEvent)
}

// executeWith is execute taking Save now / Sample now requests (TrainJob's;
// nil for none) between steps.
func (s *Studio) executeWith(ctx context.Context, p *TrainPlan, r storage.Run, resume bool, reqs <-chan train.Request, onEvent func(TrainEvent)) (TrainResult, error) {
	rc := &runRecorder{s: s, p: p, run: r, onEvent: onEvent, total: r.StepsTotal}
	rc.res = TrainResult{RunID: r.ID, RunDir: r.RunDir, Steps: r.StepsDone, Total: r.StepsTotal}
	fail := func(err error) (TrainResult, error) {
		msg := err.Error()
		if rc.res.Steps > 0 {
			msg = fmt.Sprintf("at step %d: %s", rc.res.Steps, msg)
		}
		if uerr := s.db.UpdateRunStatus(r.ID, storage.RunFailed, msg); uerr != nil {
			err = errors.Join(err, uerr)
		}
		rc.res.Status = storage.RunFailed
		return rc.res, fmt.Errorf("run %d: %w", r.ID, err)
	}
	if err := s.db.UpdateRunStatus(r.ID, storage.RunRunning, ""); err != nil {
		return rc.res, err
	}
	if resume && !hasState(r.RunDir) {
		// Stopped (or killed) before its first checkpoint: nothing to
		// continue from, so the run starts over in its folder.
		resume = false
	}
	be, err := device.Open(p.Request.Device)
	if err != nil {
		return fail(err)
	}
	defer be.Close()
	res, err := train.RunWith(ctx, be, p.src, p.imgs, p.Request.Config, r.RunDir, resume, rc.handle, train.Options{Requests: reqs})
	rc.res.Steps, rc.res.Loss, rc.res.State = res.Steps, res.Loss, res.State
	if res.Checkpoint != "" {
		rc.res.Checkpoint = res.Checkpoint
	}
	if res.State != "" {
		_, serr := s.db.AddRunFile(storage.RunFile{RunID: r.ID, Kind: storage.FileState, Path: res.State, Step: res.Steps})
		rc.keep(serr)
	}
	if res.Steps > 0 {
		rc.keep(s.db.SetRunSteps(r.ID, res.Steps, max(rc.total, res.Steps)))
	}
	switch {
	case errors.Is(err, train.ErrStopped):
		reason := fmt.Sprintf("stopped at step %d", res.Steps)
		if uerr := s.db.UpdateRunStatus(r.ID, storage.RunStopped, reason); uerr != nil {
			return fail(uerr)
		}
		rc.res.Status = storage.RunStopped
		return rc.res, fmt.Errorf("run %d: %w", r.ID, err)
	case err != nil:
		return fail(err)
	}
	if res.Output != "" && rc.isKohyaFile(res.Output) {
		if err := finishKohyaFile(res.Output, rc.kohyaExtra(res.Steps, res.Epoch, time.Now())); err != nil {
			return fail(err)
		}
	}
	if res.Output != "" {
		if _, err := s.db.AddRunFile(storage.RunFile{RunID: r.ID, Kind: storage.FileOutput, Path: res.Output, Step: res.Steps}); err != nil {
			return fail(err)
		}
	}
	if rc.err != nil {
		return fail(fmt.Errorf("recording the run: %w", rc.err))
	}
	if err := s.db.UpdateRunStatus(r.ID, storage.RunDone, ""); err != nil {
		return fail(err)
	}
	rc.res.Status, rc.res.Output = storage.RunDone, res.Output
	return rc.res, nil
}

// RunDetail is one run with everything it recorded.
type RunDetail struct {
	storage.Run
	// StepsPerEpoch is the optimizer steps of one epoch as planned when the
	// run was created; 0 when not recorded (runs made before it was).
	StepsPerEpoch int
	Metrics       []storage.Metric
	Samples       []storage.Sample
	Files         []storage.RunFile
}

// Runs lists the training runs, newest first, with each one's last loss and outputs.
func (s *Studio) Runs() ([]storage.RunSummary, error) { return s.db.RunSummaries(0) }

// Run returns one run with its metrics, samples and files.
func (s *Studio) Run(id int64) (RunDetail, error) {
	r, err := s.db.Run(id)
	if err != nil {
		return RunDetail{}, err
	}
	d := RunDetail{Run: r, StepsPerEpoch: recordedStepsPerEpoch(r.ConfigJSON)}
	if d.Metrics, err = s.db.Metrics(id); err != nil {
		return RunDetail{}, err
	}
	if d.Samples, err = s.db.Samples(id); err != nil {
		return RunDetail{}, err
	}
	if d.Files, err = s.db.RunFiles(id); err != nil {
		return RunDetail{}, err
	}
	return d, nil
}

// FindRun resolves what `--resume` names: a run id, or a run folder (or a
// file in it, such as a state file).
func (s *Studio) FindRun(ref string) (int64, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return id, nil
	}
	abs, err := filepath.Abs(ref)
	if err != nil {
		return 0, invalidTrain("run %s: %v", ref, err)
	}
	runs, err := s.db.Runs(0)
	if err != nil {
		return 0, err
	}
	for _, r := range runs {
		if r.RunDir != "" && (abs == r.RunDir || strings.HasPrefix(abs, r.RunDir+string(filepath.Separator))) {
			return r.ID, nil
		}
	}
	return 0, invalidTrain("%s is neither a run id nor inside a run folder (see 'lorastudio runs list')", ref)
}

// RunStatusLabel is how a run's status is shown: a done run is "finished",
// the other statuses read as stored (queued, running, stopped, failed).
func RunStatusLabel(s storage.RunStatus) string {
	if s == storage.RunDone {
		return "finished"
	}
	return string(s)
}

// RunStatus is a training run's status, as the database stores it.
type RunStatus = storage.RunStatus

// The statuses of a training run.
const (
	RunQueued  = storage.RunQueued
	RunRunning = storage.RunRunning
	RunStopped = storage.RunStopped // resumable
	RunFailed  = storage.RunFailed
	RunDone    = storage.RunDone // shown as "finished"
)

// RunSummary is a run as `runs list` and the runs screen show it.
type RunSummary = storage.RunSummary

// Describe is the plan's pre-flight report as the CLI prints it and the
// Train screen shows it: the model, the dataset (images, repeats, folders,
// skipped and uncaptioned images), then engine/train's report (buckets,
// long captions, small images, steps, memory and time estimates).
func (p *TrainPlan) Describe() string {
	var b strings.Builder
	model := p.Request.Model
	if p.IsDemo {
		model += " (the demo model: random weights)"
	}
	fmt.Fprintf(&b, "pre-flight\n  model:    %s\n  dataset:  %s\n", model, p.root)
	fmt.Fprintf(&b, "  images:   %d (%d with repeats)\n", p.Images, p.TrainImages)
	for _, d := range folderNames(p.Dirs) {
		fmt.Fprintf(&b, "    %-20s %d images × %d repeats\n", d, p.Dirs[d].Images, p.Dirs[d].Repeats)
	}
	if len(p.Skipped) > 0 {
		fmt.Fprintf(&b, "  skipped:  %d unreadable images\n", len(p.Skipped))
		for _, s := range p.Skipped {
			fmt.Fprintf(&b, "    %s: %s\n", s.Path, s.Reason)
		}
	}
	if len(p.Uncaptioned) > 0 {
		fmt.Fprintf(&b, "  uncaptioned (trained with an empty caption): %d\n", len(p.Uncaptioned))
		for _, u := range p.Uncaptioned {
			fmt.Fprintf(&b, "    %s\n", u)
		}
	}
	out := p.Request.Out
	if out == "" {
		out = filepath.Join(p.s.dataDir, RunsDir, "<id>-"+runName(p.Request.Name), runName(p.Request.Name)+".safetensors")
	}
	fmt.Fprintf(&b, "  output:   %s (%s, %s)\n", out, p.Request.Config.Format, p.Request.Config.SavePrecision)
	r := p.Report
	if len(r.Corrupt) > 0 {
		fmt.Fprintf(&b, "  corrupt:  %d images skipped\n", len(r.Corrupt))
		for _, c := range r.Corrupt {
			fmt.Fprintf(&b, "    %s: %s\n", c.Path, c.Reason)
		}
	}
	if len(r.LongCaptions) > 0 {
		fmt.Fprintf(&b, "  captions over %d tokens (the rest is not read): %d\n", r.MaxTokens, len(r.LongCaptions))
		for _, c := range r.LongCaptions {
			fmt.Fprintf(&b, "    %s: %d tokens\n", c.Path, c.Tokens)
		}
	}
	if len(r.Small) > 0 {
		fmt.Fprintf(&b, "  smaller than their bucket (upscaled): %d\n", len(r.Small))
		for _, sm := range r.Small {
			fmt.Fprintf(&b, "    %s: %s in bucket %s\n", sm.Path, sm.Size, sm.Bucket)
		}
	}
	fmt.Fprintf(&b, "  buckets:\n")
	for _, bc := range r.Buckets {
		fmt.Fprintf(&b, "    %-11s %d images, %d samples\n", bc.Bucket, bc.Images, bc.Samples)
	}
	cfg := p.Request.Config
	fmt.Fprintf(&b, "  LoRA:     rank %d, alpha %g, targets %s, lr %g (%s), batch %d", cfg.Rank, cfg.Alpha, cfg.Targets, cfg.LR, cfg.Scheduler, r.Batch)
	if cfg.GradAccum > 1 {
		fmt.Fprintf(&b, " × %d accumulated", cfg.GradAccum)
	}
	b.WriteString("\n")
	for _, line := range strings.Split(strings.TrimRight(p.Preflight.String(), "\n"), "\n") {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	return b.String()
}
