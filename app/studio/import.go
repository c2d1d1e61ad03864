package studio

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"lorastudio/engine/safetensors"
	"lorastudio/storage"
)

// ErrInvalidImport marks an import that cannot be carried out.
var ErrInvalidImport = errors.New("invalid import")

// invalidImport wraps a message in ErrInvalidImport.
func invalidImport(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidImport, fmt.Sprintf(format, a...))
}

// ImportRequest names what kohya's sd-scripts wrote: export folders (the
// LoRA files in it or its output/ folder, sample images in sample/ beside
// them) or LoRA files.
type ImportRequest struct {
	Paths []string
	// Name names the run ("" = the export's name, else the files'
	// ss_output_name, else the file's name).
	Name string
	// Dataset is the folder the LoRA was trained on, for a file that comes
	// without an export's lorastudio_export.json ("" = the export's
	// dataset, else its dataset/ view, else the LoRA's folder).
	Dataset string
}

// ImportedRun is one run an import recorded.
type ImportedRun struct {
	ID          int64
	Name        string
	RunDir      string
	Output      string   // the final LoRA in the run folder
	Checkpoints []string // the numbered LoRA files, by step
	Samples     int
	Steps       int
	Epoch       int
	Rank        int
	Alpha       float64
	LR          float64
	Dirs        map[string]DirStats       // ss_dataset_dirs
	Tags        map[string]map[string]int // ss_tag_frequency
}

// importLoRA is one LoRA file read for an import.
type importLoRA struct {
	path  string
	meta  map[string]string
	steps int
	final bool // named <output_name>.safetensors, not -stepNNNNNNNN / -NNNNNN
}

// importSource is what one path of an ImportRequest brings.
type importSource struct {
	files      []importLoRA
	sampleDirs []string
	prompts    []string // the prompts of sample_prompts.txt, as sd-scripts numbers them
	manifest   *exportManifestFile
	manifestAt string // the export folder of the manifest
}

// numberedLoRA matches sd-scripts' numbered LoRA names: <name>-step00000500
// (save_every_n_steps) or <name>-000002 (save_every_n_epochs).
var numberedLoRA = regexp.MustCompile(`-(step[0-9]{8}|[0-9]{6})$`)

// sampleName matches sd-scripts' sample image names:
// [<output_name>_]<steps:06d | e<epoch:06d>>_<prompt:02d>_<YYYYmmddHHMMSS>[_<seed>].png
var sampleName = regexp.MustCompile(`^(?:(.*)_)?(e?)([0-9]{6,})_([0-9]{2,})_([0-9]{14})(?:_([0-9]+))?\.png$`)

// readManifest reads dir's lorastudio_export.json (nil when there is none).
func readManifest(dir string) (*exportManifestFile, error) {
	p := filepath.Join(dir, ExportManifest)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	m := &exportManifestFile{Config: DefaultTrainConfig()}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, invalidImport("%s is not an export manifest: %v", p, err)
	}
	return m, nil
}

// readSamplePrompts reads the prompts of an sd-scripts prompt file as it
// numbers them: lines stripped, empty ones and those starting with '#'
// skipped, the text before the first " --" (nil when there is no file).
func readSamplePrompts(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.TrimSpace(line) == "" || line[0] == '#' {
			continue
		}
		prompt, _, _ := strings.Cut(strings.TrimSpace(line), " --")
		out = append(out, prompt)
	}
	return out, nil
}

// readImportLoRA opens a LoRA file and reads its metadata; it must hold
// LoRA weights (kohya's lora_down/lora_up, or diffusers'/peft's lora_A/B).
func readImportLoRA(p string) (importLoRA, error) {
	f, err := safetensors.Open(p)
	if err != nil {
		return importLoRA{}, invalidImport("%v", err)
	}
	defer f.Close()
	isLoRA := false
	for _, n := range f.Names() {
		if strings.Contains(n, "lora_down") || strings.Contains(n, "lora_up") || strings.Contains(n, "lora_A") || strings.Contains(n, "lora_B") {
			isLoRA = true
			break
		}
	}
	if !isLoRA {
		return importLoRA{}, invalidImport("%s holds no LoRA weights (no lora_down/lora_up tensors)", p)
	}
	meta := f.Metadata()
	if meta == nil {
		meta = map[string]string{}
	}
	l := importLoRA{path: p, meta: meta}
	if v, ok := meta[metaSteps]; ok {
		if l.steps, err = strconv.Atoi(v); err != nil || l.steps < 0 {
			return importLoRA{}, invalidImport("%s: metadata ss_steps %q is not a step count", p, v)
		}
	}
	stem := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
	l.final = !numberedLoRA.MatchString(stem)
	return l, nil
}

// loraFiles lists the .safetensors files of dir (not recursive).
func loraFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".safetensors") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// readImportSource reads one path of an import: an export folder (or any
// folder sd-scripts wrote into) or a LoRA file.
func readImportSource(path string) (*importSource, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, invalidImport("%s: %v", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, invalidImport("%s: no such file or folder", abs)
		}
		return nil, fmt.Errorf("import: %w", err)
	}
	src := &importSource{}
	var paths, loraDirs []string
	if st.IsDir() {
		for _, d := range []string{abs, filepath.Join(abs, ExportOutputDir)} {
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
				continue
			}
			ps, err := loraFiles(d)
			if err != nil {
				return nil, err
			}
			paths = append(paths, ps...)
			loraDirs = append(loraDirs, d)
		}
		if len(paths) == 0 {
			return nil, invalidImport("%s holds no LoRA files (*.safetensors), nor does its %s/ folder: has sd-scripts finished?", abs, ExportOutputDir)
		}
		src.manifestAt = abs
	} else {
		if !strings.EqualFold(filepath.Ext(abs), ".safetensors") {
			return nil, invalidImport("%s is not a .safetensors LoRA file", abs)
		}
		paths, loraDirs = []string{abs}, []string{filepath.Dir(abs)}
		src.manifestAt = filepath.Dir(abs)
		if filepath.Base(src.manifestAt) == ExportOutputDir {
			src.manifestAt = filepath.Dir(src.manifestAt)
		}
	}
	if src.manifest, err = readManifest(src.manifestAt); err != nil {
		return nil, err
	}
	if src.prompts, err = readSamplePrompts(filepath.Join(src.manifestAt, ExportSamplePrompts)); err != nil {
		return nil, err
	}
	for _, d := range loraDirs {
		if fi, err := os.Stat(filepath.Join(d, "sample")); err == nil && fi.IsDir() {
			src.sampleDirs = append(src.sampleDirs, filepath.Join(d, "sample"))
		}
	}
	for _, p := range paths {
		l, err := readImportLoRA(p)
		if err != nil {
			return nil, err
		}
		src.files = append(src.files, l)
	}
	return src, nil
}

// importGroup is the files of one sd-scripts run: the same
// ss_training_started_at and ss_output_name.
type importGroup struct {
	src   *importSource
	files []importLoRA
}

// groupKey is the run a LoRA file belongs to.
func groupKey(l importLoRA) string {
	s, n := l.meta[metaStarted], l.meta["ss_output_name"]
	if s == "" && n == "" {
		return "file:" + l.path
	}
	return s + "\x00" + n
}

// metaInt, metaFloat read a number of metadata ("None" and "" are absent).
func metaInt(m map[string]string, k string) (int, bool) {
	v, err := strconv.Atoi(strings.TrimSpace(m[k]))
	return v, err == nil
}

func metaFloat(m map[string]string, k string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(m[k]), 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}

// metaTime reads an ss_training_*_at value (Unix seconds with a fraction).
func metaTime(m map[string]string, k string) time.Time {
	v, ok := metaFloat(m, k)
	if !ok || v <= 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// resolutionOf reads ss_resolution ("(1024, 1024)" or "1024"): the larger side.
func resolutionOf(m map[string]string) (int, bool) {
	v := strings.Trim(strings.TrimSpace(m["ss_resolution"]), "()[]")
	best, ok := 0, false
	for _, f := range strings.Split(v, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			best, ok = max(best, n), true
		}
	}
	return best, ok
}

// importConfig is the settings recorded with an imported run: the export's
// when it has a manifest, else the defaults with what the file's metadata
// says (sd-scripts' networks.lora trains our attn-mlp set); the file's
// ss_*/modelspec.* metadata is kept in Metadata either way.
func importConfig(src *importSource, out importLoRA, steps, epochs int) TrainConfig {
	cfg := DefaultTrainConfig()
	m := out.meta
	if src.manifest != nil {
		cfg = src.manifest.Config
	} else {
		cfg.Targets = "attn-mlp"
		if v, ok := metaInt(m, "ss_network_dim"); ok && v > 0 {
			cfg.Rank = v
		}
		if v, ok := metaFloat(m, "ss_network_alpha"); ok && v > 0 {
			cfg.Alpha = float32(v)
		}
		if v, ok := metaFloat(m, "ss_learning_rate"); ok && v > 0 {
			cfg.LR = v
		}
		if v, ok := metaInt(m, "ss_seed"); ok && v >= 0 {
			cfg.Seed = uint64(v)
		}
		if v, ok := resolutionOf(m); ok {
			cfg.Data.Resolution = v
		}
		if v, ok := metaInt(m, "ss_lr_warmup_steps"); ok && v >= 0 {
			cfg.WarmupSteps = v
		}
		switch s := m["ss_lr_scheduler"]; s {
		case "constant", "linear", "cosine":
			cfg.Scheduler = s
		case "constant_with_warmup":
			cfg.Scheduler = "constant"
		}
		if v, ok := metaInt(m, "ss_max_train_steps"); ok && v > 0 {
			cfg.MaxSteps = v
		} else {
			cfg.MaxSteps = steps
		}
		if epochs > 0 {
			cfg.Epochs = epochs
		}
	}
	cfg.Output = ""
	cfg.Metadata = map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, "ss_") || strings.HasPrefix(k, "sshs_") || strings.HasPrefix(k, "modelspec.") {
			cfg.Metadata[k] = v
		}
	}
	return cfg
}

// ImportRuns records what sd-scripts wrote as finished runs in the history,
// one per training session found (files of one ss_training_started_at and
// ss_output_name): the final LoRA as the output, the numbered ones as
// checkpoints (step from ss_steps), the sample images of sample/ with their
// prompt (from the export's sample_prompts.txt), step and seed. The files
// are hard-linked (else copied) into <data>/runs/<id>-<name>/, so the run
// keeps them when the export folder goes; the LoRA loads in generate as a
// run's own output does. Steps, epochs, rank, alpha, learning rate, dataset
// folders and tag frequency come from the files' ss_* metadata.
func (s *Studio) ImportRuns(req ImportRequest) ([]ImportedRun, error) {
	if len(req.Paths) == 0 {
		return nil, invalidImport("nothing to import: give an export folder or LoRA files")
	}
	var groups []*importGroup
	byKey := map[string]*importGroup{}
	seen := map[string]bool{}
	for _, p := range req.Paths {
		src, err := readImportSource(p)
		if err != nil {
			return nil, err
		}
		for _, l := range src.files {
			if seen[l.path] {
				continue
			}
			seen[l.path] = true
			k := groupKey(l)
			g := byKey[k]
			if g == nil {
				g = &importGroup{src: src}
				byKey[k] = g
				groups = append(groups, g)
			}
			g.files = append(g.files, l)
		}
	}
	var out []ImportedRun
	for _, g := range groups {
		r, err := s.importGroup(g, req)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// importSample is one sample image found for a run.
type importSample struct {
	path   string
	step   int
	epoch  bool
	prompt int
	seed   int64
}

// findSamples lists the sample images in dirs of a run of one of names
// (sd-scripts prefixes them with output_name; any name when names is empty).
func findSamples(dirs []string, names map[string]bool) ([]importSample, error) {
	var out []importSample
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		for _, e := range ents {
			m := sampleName.FindStringSubmatch(e.Name())
			if e.IsDir() || m == nil || (len(names) > 0 && !names[m[1]]) {
				continue
			}
			sm := importSample{path: filepath.Join(d, e.Name()), epoch: m[2] == "e"}
			sm.step, _ = strconv.Atoi(m[3])
			sm.prompt, _ = strconv.Atoi(m[4])
			if m[6] != "" {
				sm.seed, _ = strconv.ParseInt(m[6], 10, 64)
			}
			out = append(out, sm)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].step != out[j].step {
			return out[i].step < out[j].step
		}
		return out[i].path < out[j].path
	})
	return out, nil
}

// importGroup records one run.
func (s *Studio) importGroup(g *importGroup, req ImportRequest) (ImportedRun, error) {
	sort.Slice(g.files, func(i, j int) bool {
		if g.files[i].steps != g.files[j].steps {
			return g.files[i].steps < g.files[j].steps
		}
		return !g.files[i].final && g.files[j].final
	})
	// The output: the final file of the run, else its latest numbered one.
	oi := len(g.files) - 1
	for i, f := range g.files {
		if f.final {
			oi = i
		}
	}
	outFile := g.files[oi]
	m := outFile.meta
	steps := outFile.steps
	epoch, _ := metaInt(m, metaEpoch)
	name := req.Name
	if name == "" && g.src.manifest != nil {
		name = g.src.manifest.Name
	}
	if name == "" {
		name = m["ss_output_name"]
	}
	if name == "" || name == "None" {
		name = strings.TrimSuffix(filepath.Base(outFile.path), filepath.Ext(outFile.path))
	}
	total := steps
	if v, ok := metaInt(m, "ss_max_train_steps"); ok && v > total {
		total = v
	}
	if total < steps {
		total = steps
	}
	cfg := importConfig(g.src, outFile, steps, epoch)
	cj, err := configJSON(cfg)
	if err != nil {
		return ImportedRun{}, err
	}
	// configJSON drops Metadata (a trained run rebuilds it); an imported
	// run keeps the file's, its only record of how it was trained.
	var full map[string]any
	if err := json.Unmarshal([]byte(cj), &full); err != nil {
		return ImportedRun{}, err
	}
	full["metadata"] = cfg.Metadata
	full["imported_from"] = outFile.path
	b, err := json.Marshal(full)
	if err != nil {
		return ImportedRun{}, fmt.Errorf("import: settings: %w", err)
	}
	cj = string(b)

	dsPath, dsID, err := s.importDataset(g, req)
	if err != nil {
		return ImportedRun{}, err
	}
	model := m["ss_sd_model_name"]
	if g.src.manifest != nil && g.src.manifest.Model != "" {
		model = g.src.manifest.Model
	}
	modelName := m["ss_sd_model_name"]
	if modelName == "" {
		modelName = filepath.Base(model)
	}
	// The run's output_name: the metadata's, and the file's own name (a
	// file renamed after training, or written by another trainer).
	outNames := map[string]bool{strings.TrimSuffix(filepath.Base(outFile.path), filepath.Ext(outFile.path)): true}
	if n := m["ss_output_name"]; n != "" && n != "None" {
		outNames[n] = true
	}
	samples, err := findSamples(g.src.sampleDirs, outNames)
	if err != nil {
		return ImportedRun{}, err
	}

	// Files first, into a folder aside; the run is recorded once they are all there.
	runsDir := filepath.Join(s.dataDir, RunsDir)
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		return ImportedRun{}, fmt.Errorf("import: runs folder %s: %w", runsDir, err)
	}
	tmp, err := os.MkdirTemp(runsDir, ".import-")
	if err != nil {
		return ImportedRun{}, fmt.Errorf("import: runs folder %s: %w", runsDir, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	// Each file's name in the run folder: its own, numbered when two
	// folders of the import hold files of one name.
	names := map[string]bool{}
	inRun := make([]string, len(g.files))
	for i, f := range g.files {
		base := filepath.Base(f.path)
		stem, ext := strings.TrimSuffix(base, filepath.Ext(base)), filepath.Ext(base)
		for n := 2; names[base]; n++ {
			base = fmt.Sprintf("%s_%d%s", stem, n, ext)
		}
		names[base] = true
		inRun[i] = base
		if _, err := linkOrCopy(f.path, filepath.Join(tmp, base)); err != nil {
			return ImportedRun{}, err
		}
	}
	if len(samples) > 0 {
		if err := os.Mkdir(filepath.Join(tmp, "samples"), 0o755); err != nil {
			return ImportedRun{}, fmt.Errorf("import: %w", err)
		}
		for _, sm := range samples {
			if _, err := linkOrCopy(sm.path, filepath.Join(tmp, "samples", filepath.Base(sm.path))); err != nil {
				return ImportedRun{}, err
			}
		}
	}
	r, err := s.db.CreateImportedRun(storage.ImportedRun{
		NewRun: storage.NewRun{
			DatasetID: dsID, Name: name, DatasetPath: dsPath, BaseModel: model, ModelName: modelName,
			ModelHash: m["ss_new_sd_model_hash"], ConfigJSON: cj, StepsTotal: total,
		},
		StepsDone: steps, Started: metaTime(m, metaStarted), Finished: metaTime(m, metaFinished),
	})
	if err != nil {
		return ImportedRun{}, err
	}
	dir := filepath.Join(runsDir, fmt.Sprintf("%d-%s", r.ID, runName(name)))
	if err := os.Rename(tmp, dir); err != nil {
		s.db.UpdateRunStatus(r.ID, storage.RunFailed, "import: "+err.Error())
		return ImportedRun{}, fmt.Errorf("import: run folder %s: %w", dir, err)
	}
	done = true
	syncDir(runsDir)
	res := ImportedRun{ID: r.ID, Name: name, RunDir: dir, Steps: steps, Epoch: epoch, Samples: len(samples)}
	res.Rank, _ = metaInt(m, "ss_network_dim")
	res.Alpha, _ = metaFloat(m, "ss_network_alpha")
	res.LR, _ = metaFloat(m, "ss_learning_rate")
	if v := m["ss_dataset_dirs"]; v != "" {
		if err := json.Unmarshal([]byte(v), &res.Dirs); err != nil {
			return res, invalidImport("%s: metadata ss_dataset_dirs is not JSON: %v", outFile.path, err)
		}
	}
	if v := m["ss_tag_frequency"]; v != "" {
		if err := json.Unmarshal([]byte(v), &res.Tags); err != nil {
			return res, invalidImport("%s: metadata ss_tag_frequency is not JSON: %v", outFile.path, err)
		}
	}
	if err := s.db.SetRunDir(r.ID, dir); err != nil {
		return res, err
	}
	for i, f := range g.files {
		p := filepath.Join(dir, inRun[i])
		kind := storage.FileCheckpoint
		if i == oi {
			kind = storage.FileOutput
			res.Output = p
			if err := s.db.SetRunOutput(r.ID, p); err != nil {
				return res, err
			}
		} else {
			res.Checkpoints = append(res.Checkpoints, p)
		}
		if _, err := s.db.AddRunFile(storage.RunFile{RunID: r.ID, Kind: kind, Path: p, Step: f.steps}); err != nil {
			return res, err
		}
		if kind == storage.FileCheckpoint {
			if err := s.db.SetRunCheckpoint(r.ID, p, f.steps); err != nil {
				return res, err
			}
		}
	}
	for _, sm := range samples {
		step := sm.step
		if sm.epoch {
			// An epoch's samples: the step that epoch ended on, when known.
			step = 0
			if epoch > 0 {
				step = sm.step * steps / epoch
			}
		}
		prompt := ""
		if sm.prompt < len(g.src.prompts) {
			prompt = g.src.prompts[sm.prompt]
		}
		if _, err := s.db.AddSample(storage.Sample{RunID: r.ID, Step: step, Prompt: prompt, Seed: sm.seed,
			ImagePath: filepath.Join(dir, "samples", filepath.Base(sm.path))}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// importDataset is the dataset an imported run is recorded against: the
// request's folder, else the export's dataset, else its kohya view, else
// the LoRA's folder (sd-scripts' metadata names folders, not paths).
func (s *Studio) importDataset(g *importGroup, req ImportRequest) (string, int64, error) {
	cands := []string{req.Dataset}
	if g.src.manifest != nil {
		cands = append(cands, g.src.manifest.Dataset)
	}
	cands = append(cands, filepath.Join(g.src.manifestAt, ExportViewDir))
	for _, c := range cands {
		if c == "" {
			continue
		}
		abs, err := filepath.Abs(c)
		if err != nil {
			return "", 0, invalidImport("dataset %s: %v", c, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			if c == req.Dataset {
				return "", 0, invalidImport("dataset %s: no such folder", abs)
			}
			continue
		}
		layout := LayoutKohya
		if st, err := os.Stat(filepath.Join(abs, "images")); err == nil && st.IsDir() {
			layout = LayoutTutorial
		}
		id, err := s.datasetID(abs, layout)
		return abs, id, err
	}
	dir := filepath.Dir(g.files[0].path)
	id, err := s.datasetID(dir, LayoutKohya)
	return dir, id, err
}

// datasetID is the id of the dataset at root: the known one (its layout
// left as the studio's reader found it), else a new one of layout.
func (s *Studio) datasetID(root string, layout Layout) (int64, error) {
	if d, err := s.db.DatasetByRoot(root); err == nil {
		return d.ID, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return 0, err
	}
	d, err := s.db.EnsureDataset(root, string(layout))
	return d.ID, err
}
