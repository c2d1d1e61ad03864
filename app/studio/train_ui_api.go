package studio

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"lorastudio/engine/device"
	"lorastudio/engine/train"
	"lorastudio/storage"
)

// Metric is one recorded training step (step, loss, lr, seconds), as a
// run's detail lists it for the screens.
type Metric = storage.Metric

// RunSample is one recorded sample image of a run.
type RunSample = storage.Sample

// RunFile is one file a run wrote (checkpoint, state, output).
type RunFile = storage.RunFile

// The kinds of RunFile.
const (
	FileCheckpoint = storage.FileCheckpoint
	FileState      = storage.FileState
	FileOutput     = storage.FileOutput
)

// What the Train screen asks of the studio beyond the Train job itself: a
// pre-flight it can redraw as settings change, the device's memory to hold
// the estimate against, and runs that go to the trash and come back.

// BucketBar is one bar of the pre-flight's bucket histogram.
type BucketBar struct {
	Bucket  string // "WxH"
	Images  int
	Samples int // images × repeats
}

// PreflightIssue is one warning of the pre-flight about one image.
type PreflightIssue struct {
	Path string // the image, absolute
	Text string // what is wrong, for a person
}

// TrainPreflight is everything the Train screen shows before a run starts:
// the dataset's counts, the buckets, the length of the run, and the memory
// and time estimates, made without loading any weight.
type TrainPreflight struct {
	Model         string // resolved base model path
	IsDemo        bool
	Dataset       string // the dataset folder, absolute
	Images        int    // images trained on
	TrainImages   int    // images × repeats (one epoch's samples)
	Folders       []FolderRepeats
	Buckets       []BucketBar
	StepsPerEpoch int
	TotalSteps    int
	Epochs        int
	LoRAParams    int64
	// DeviceBytes is the estimated peak on the device while training;
	// with the other switch of gradient checkpointing it would be
	// DeviceBytesOther. PrepareBytes is the peak while the caches fill,
	// HostBytes what the optimizer holds on the host.
	DeviceBytes, DeviceBytesOther, PrepareBytes, HostBytes int64
	// Estimate is the run's duration at train.DefaultFLOPS.
	Estimate time.Duration
	// Issues are per-image warnings: unreadable, uncaptioned, caption over
	// the token limit, smaller than its bucket.
	Issues []PreflightIssue
}

// FolderRepeats is one folder of a dataset with its kohya repeat count.
type FolderRepeats struct {
	Folder  string
	Images  int
	Repeats int
}

// Preflight checks req as PlanTrain does and makes engine/train's
// pre-flight report, then closes the plan: nothing is loaded beyond the
// model's headers and the dataset's captions and image headers.
// Uncaptioned images are reported as issues rather than refused.
func (s *Studio) Preflight(req TrainRequest) (TrainPreflight, error) {
	allow := req.AllowUncaptioned
	req.AllowUncaptioned = true
	p, err := s.PlanTrain(req)
	if err != nil {
		return TrainPreflight{}, err
	}
	defer p.Close()
	rep, err := train.Preflight(p.Request.Config, p.imgs, p.src.Config())
	if err != nil {
		return TrainPreflight{}, invalidTrain("%v", strings.TrimPrefix(err.Error(), "train: "))
	}
	out := TrainPreflight{
		Model: p.Request.Model, IsDemo: p.IsDemo, Dataset: p.root,
		Images: p.Images, TrainImages: p.TrainImages,
		StepsPerEpoch: rep.StepsPerEpoch, TotalSteps: p.TotalSteps, Epochs: rep.Epochs,
		LoRAParams:  rep.LoRAParams,
		DeviceBytes: rep.Memory.Device, PrepareBytes: rep.Memory.Prepare, HostBytes: rep.Memory.Host,
		Estimate: rep.Duration(train.DefaultFLOPS),
	}
	m := rep.Memory
	other := m.ActivationsCheckpoint
	if p.Request.Config.GradientCheckpointing {
		other = m.ActivationsNoCheckpoint
	}
	out.DeviceBytesOther = m.Device - m.Activations + other
	for _, d := range folderNames(p.Dirs) {
		out.Folders = append(out.Folders, FolderRepeats{Folder: d, Images: p.Dirs[d].Images, Repeats: p.Dirs[d].Repeats})
	}
	for _, b := range rep.Dataset.Buckets {
		out.Buckets = append(out.Buckets, BucketBar{Bucket: b.Bucket.String(), Images: b.Images, Samples: b.Samples})
	}
	for _, sk := range p.Skipped {
		out.Issues = append(out.Issues, PreflightIssue{Path: sk.Path, Text: "unreadable, skipped: " + sk.Reason})
	}
	for _, c := range rep.Dataset.Corrupt {
		out.Issues = append(out.Issues, PreflightIssue{Path: c.Path, Text: "corrupt, skipped: " + c.Reason})
	}
	uncapText := "no caption: the run is refused until it has one"
	if allow {
		uncapText = "no caption: trained with an empty one"
	}
	for _, u := range p.Uncaptioned {
		out.Issues = append(out.Issues, PreflightIssue{Path: u, Text: uncapText})
	}
	for _, c := range rep.Dataset.LongCaptions {
		out.Issues = append(out.Issues, PreflightIssue{Path: c.Path, Text: fmt.Sprintf("caption of %d tokens: past %d the text encoders do not read it", c.Tokens, rep.Dataset.MaxTokens)})
	}
	for _, sm := range rep.Dataset.Small {
		out.Issues = append(out.Issues, PreflightIssue{Path: sm.Path, Text: fmt.Sprintf("%s, smaller than its bucket %s: upscaled", sm.Size, sm.Bucket)})
	}
	return out, nil
}

// DeviceMemory is the memory the training device offers.
type DeviceMemory struct {
	Backend string // cpu or gl
	Device  string // the renderer or CPU description
	// Total is the memory a run can use in bytes; 0 when the device does
	// not report it (OpenGL without NVIDIA's or AMD's memory extension).
	Total int64
}

// DeviceMemoryOf opens the backend kind gives (auto, cpu, gl; "" = auto),
// describes it and closes it again. On the CPU the memory is the host's
// (MemTotal of /proc/meminfo on Linux); on GL the driver's report
// (device.Info.DeviceMemory), on Metal the recommended working set.
func (s *Studio) DeviceMemoryOf(kind string) (DeviceMemory, error) {
	if kind == "" {
		kind = "auto"
	}
	inf, err := device.Describe(kind)
	if err != nil {
		return DeviceMemory{}, err
	}
	dm := DeviceMemory{Backend: inf.Backend, Device: inf.Renderer}
	switch {
	case inf.Backend == "cpu":
		dm.Total = hostMemory()
	case inf.DeviceMemory > 0:
		dm.Total = inf.DeviceMemory // GL: what the driver's memory extension reports
	case inf.WorkingSet > 0:
		dm.Total = inf.WorkingSet // Metal: the working set it keeps without paging
	}
	return dm, nil
}

// hostMemory is the machine's RAM in bytes (0 when it cannot be read).
func hostMemory() int64 {
	if runtime.GOOS != "linux" {
		return 0
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// runsTrash is the folder deleted runs' folders move to.
func (s *Studio) runsTrash() string { return filepath.Join(s.dataDir, TrashDir, RunsDir) }

// runTrashPath is where run r's folder goes when deleted: <data>/trash/runs/<id>-<folder name>.
func (s *Studio) runTrashPath(r RunSummary) string {
	name := strconv.FormatInt(r.ID, 10)
	if r.RunDir != "" {
		name = filepath.Base(r.RunDir)
		if !strings.HasPrefix(name, strconv.FormatInt(r.ID, 10)+"-") {
			name = strconv.FormatInt(r.ID, 10) + "-" + name
		}
	}
	return filepath.Join(s.runsTrash(), name)
}

// trashedRunIDs reads which runs are in the trash: the folders of
// <data>/trash/runs, named <id>-….
func (s *Studio) trashedRunIDs() (map[int64]string, error) {
	ents, err := os.ReadDir(s.runsTrash())
	if errors.Is(err, fs.ErrNotExist) {
		return map[int64]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runs trash %s: %w", s.runsTrash(), err)
	}
	out := map[int64]string{}
	for _, e := range ents {
		idText, _, _ := strings.Cut(e.Name(), "-")
		if id, err := strconv.ParseInt(idText, 10, 64); err == nil && e.IsDir() {
			out[id] = filepath.Join(s.runsTrash(), e.Name())
		}
	}
	return out, nil
}

// VisibleRuns lists the runs not in the trash, newest first, with each
// one's last loss and outputs (what the Runs list shows).
func (s *Studio) VisibleRuns() ([]RunSummary, error) { return s.runsInTrash(false) }

// TrashedRuns lists the runs in the trash, newest first.
func (s *Studio) TrashedRuns() ([]RunSummary, error) {
	out, err := s.runsInTrash(true)
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, err
}

// runsInTrash lists the runs whose folder is (or is not) in the trash, in
// the order Runs gives them.
func (s *Studio) runsInTrash(inTrash bool) ([]RunSummary, error) {
	all, err := s.Runs()
	if err != nil {
		return nil, err
	}
	trashed, err := s.trashedRunIDs()
	if err != nil {
		return nil, err
	}
	var out []RunSummary
	for _, r := range all {
		if _, in := trashed[r.ID]; in == inTrash {
			out = append(out, r)
		}
	}
	return out, nil
}

// DeleteRun moves run id's folder (checkpoints, states, samples and, when
// it lies there, the output) to <data>/trash/runs, which takes the run off
// the list; RestoreRun brings it back. A running run is refused. A run
// whose folder is already gone is still put in the trash (an empty folder
// marks it). Its rows stay in the database, so nothing is lost.
func (s *Studio) DeleteRun(id int64) error {
	r, err := s.db.Run(id)
	if err != nil {
		return fmt.Errorf("run %d: %w", id, err)
	}
	if r.Status == RunRunning || r.Status == RunQueued {
		return fmt.Errorf("run %d (%s) is %s; stop it before deleting it", id, r.Name, r.Status)
	}
	dst := s.runTrashPath(RunSummary{Run: r})
	if err := os.MkdirAll(s.runsTrash(), 0o755); err != nil {
		return fmt.Errorf("runs trash %s: %w", s.runsTrash(), err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("run %d is already in the trash (%s)", id, dst)
	}
	if r.RunDir != "" {
		if _, err := os.Stat(r.RunDir); err == nil {
			if err := os.Rename(r.RunDir, dst); err != nil {
				return fmt.Errorf("moving run folder %s to the trash: %w", r.RunDir, err)
			}
			return nil
		}
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("runs trash %s: %w", dst, err)
	}
	return nil
}

// RestoreRun brings run id back from the trash: its folder returns to
// where it was recorded.
func (s *Studio) RestoreRun(id int64) error {
	trashed, err := s.trashedRunIDs()
	if err != nil {
		return err
	}
	src, ok := trashed[id]
	if !ok {
		return fmt.Errorf("run %d is not in the trash", id)
	}
	r, err := s.db.Run(id)
	if err != nil {
		return fmt.Errorf("run %d: %w", id, err)
	}
	if r.RunDir == "" {
		return os.Remove(src)
	}
	if _, err := os.Stat(r.RunDir); err == nil {
		// The folder came back by other means: the marker goes if empty.
		if rmErr := os.Remove(src); rmErr != nil {
			return fmt.Errorf("run %d: %s exists again and the trash still holds %s", id, r.RunDir, src)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.RunDir), 0o755); err != nil {
		return fmt.Errorf("restoring run %d: %w", id, err)
	}
	if err := os.Rename(src, r.RunDir); err != nil {
		return fmt.Errorf("restoring run %d to %s: %w", id, r.RunDir, err)
	}
	return nil
}

// TrainPreset is a named set of training settings the Train screen offers.
type TrainPreset struct {
	Name    string
	Hint    string // one line on what it is for
	BuiltIn bool   // one of the studio's own; the user's can be replaced
	Config  TrainConfig
}

// trainPresetsKey is the setting holding the user's saved presets (JSON).
const trainPresetsKey = "train.presets"

// BuiltInTrainPresets are the presets every studio has: the tutorial's
// settings, and kohya's wider attention+MLP set for styles.
func BuiltInTrainPresets() []TrainPreset {
	tut := DefaultTrainConfig() // r 8, alpha 16, to_q/to_k/to_v/to_out.0, lr 1e-4
	style := DefaultTrainConfig()
	style.Rank, style.Alpha, style.Targets = 16, 8, "attn-mlp"
	style.MinSNRGamma = 5
	return []TrainPreset{
		{Name: "Tutorial", Hint: "the tutorial's LoRA: rank 8, alpha 16 on the attention projections, lr 1e-4", BuiltIn: true, Config: tut},
		{Name: "Style / attn-mlp", Hint: "a style: rank 16, alpha 8 on attention and MLP (kohya's set), min-SNR γ 5", BuiltIn: true, Config: style},
	}
}

// TrainPresets returns the built-in presets, then the user's saved ones in
// the order they were saved.
func (s *Studio) TrainPresets() ([]TrainPreset, error) {
	var saved []TrainPreset
	if _, err := s.db.SettingJSON(trainPresetsKey, &saved); err != nil {
		return nil, fmt.Errorf("saved training presets: %w", err)
	}
	return append(BuiltInTrainPresets(), saved...), nil
}

// SaveTrainPreset keeps cfg under name among the user's presets (replacing
// one of that name). The names of the built-in presets are refused.
func (s *Studio) SaveTrainPreset(name string, cfg TrainConfig) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return errors.New("a preset needs a name")
	}
	for _, b := range BuiltInTrainPresets() {
		if strings.EqualFold(b.Name, name) {
			return fmt.Errorf("%q is a built-in preset; save under another name", b.Name)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("preset %q: %w", name, err)
	}
	cfg.Metadata, cfg.Output, cfg.Model = nil, "", ""
	var saved []TrainPreset
	if _, err := s.db.SettingJSON(trainPresetsKey, &saved); err != nil {
		return fmt.Errorf("saved training presets: %w", err)
	}
	p := TrainPreset{Name: name, Hint: "your preset", Config: cfg}
	replaced := false
	for i := range saved {
		if saved[i].Name == name {
			saved[i], replaced = p, true
		}
	}
	if !replaced {
		saved = append(saved, p)
	}
	return s.db.SetSettingJSON(trainPresetsKey, saved)
}
