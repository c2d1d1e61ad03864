package studio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"lorastudio/engine/train/dataset"
)

// The files an export writes into its folder.
const (
	ExportDatasetConfig = "dataset_config.toml" // sd-scripts' --dataset_config
	ExportTrainConfig   = "train_config.toml"   // sd-scripts' --config_file
	ExportSamplePrompts = "sample_prompts.txt"  // sd-scripts' --sample_prompts
	ExportLaunch        = "launch.sh"           // accelerate launch … sdxl_train_network.py
	ExportReadme        = "README.txt"
	ExportManifest      = "lorastudio_export.json" // what import reads back: dataset, model, settings
	ExportViewDir       = "dataset"                // the kohya-layout view of the dataset
	ExportOutputDir     = "output"                 // sd-scripts' output_dir (LoRA files, sample/)
)

// exportViewMarker marks a view folder as written by an export, so a new
// export may replace it and never replaces a folder it did not write.
const exportViewMarker = ".lorastudio-export-view"

// ErrInvalidExport marks an export request that cannot be carried out.
var ErrInvalidExport = errors.New("invalid export request")

// invalidExport wraps a message in ErrInvalidExport.
func invalidExport(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidExport, fmt.Sprintf(format, a...))
}

// ExportRequest is a training run to hand to kohya's sd-scripts under
// accelerate: the same dataset, model and settings as a TrainRequest, the
// folder to write and the shape of the cluster.
type ExportRequest struct {
	Dataset string // the dataset folder (either layout, kohya N_name repeats)
	// Model is the base model as sd-scripts will open it: a local path is
	// made absolute; a path that does not exist here (the cluster's path, a
	// Hugging Face repo id) is written as given. "" takes the configured model.
	Model            string
	Name             string // the run's name: sd-scripts' output_name ("" = the dataset folder's name)
	AllowUncaptioned bool   // export images without a caption (sd-scripts trains them on an empty one)
	Config           TrainConfig
	To               string // the export folder (made if missing)
	// NumProcesses is accelerate's --num_processes: processes (GPUs) over
	// all machines (0 = 1); NumMachines, MachineRank, MainProcessIP and
	// MainProcessPort describe a multi-machine launch (NumMachines 0 = 1).
	NumProcesses    int
	NumMachines     int
	MachineRank     int
	MainProcessIP   string
	MainProcessPort int    // 0 = 29500
	MixedPrecision  string // accelerate/sd-scripts mixed_precision: fp16 (default), bf16 or no
}

// ExportSubset is one folder of the kohya-layout view: one
// [[datasets.subsets]] of dataset_config.toml.
type ExportSubset struct {
	Dir     string // the view folder, relative to the export folder ("dataset/10_cat")
	Source  string // the dataset folder it mirrors ("10_cat", "images", or the dataset's name)
	Repeats int
	Images  int
}

// ExportResult is what an export wrote.
type ExportResult struct {
	Dir         string   // the export folder, absolute
	Model       string   // pretrained_model_name_or_path as written
	Files       []string // the configuration files written, absolute
	Subsets     []ExportSubset
	Images      int            // images in the view
	Linked      int            // of them hard-linked to the dataset's files
	Copied      int            // of them copied (the export folder is on another file system)
	Skipped     []SkippedImage // unreadable images left out
	Uncaptioned []string       // images exported without a caption
	Steps       int            // optimizer steps of one process (max_train_steps)
	// Notes are the settings sd-scripts cannot reproduce exactly, each
	// saying what the export writes instead; the CLI prints them and
	// README.txt lists them.
	Notes []string
}

// exportManifestFile is lorastudio_export.json: what an import needs to
// record the run as it was planned.
type exportManifestFile struct {
	Version      int         `json:"version"`
	Dataset      string      `json:"dataset"`
	Model        string      `json:"model"`
	Name         string      `json:"name"`
	NumProcesses int         `json:"num_processes"`
	NumMachines  int         `json:"num_machines"`
	Config       TrainConfig `json:"config"`
}

// exportImage is one image of the view.
type exportImage struct {
	src, caption string
	hasCaption   bool
}

// exportGroup is one subset being built.
type exportGroup struct {
	ExportSubset
	images []exportImage
	stems  map[string]bool
}

// kohyaFolder matches a kohya repeat folder name: N_name.
var kohyaFolder = regexp.MustCompile(`^([0-9]+)_(.+)$`)

// exportResolved is p with its symbolic links resolved (p when that fails).
func exportResolved(p string) string {
	if r, err := realPath(p); err == nil {
		return r
	}
	return p
}

// Export writes the folder that trains req on several GPUs with kohya's
// sd-scripts under accelerate: dataset_config.toml, train_config.toml,
// sample_prompts.txt, launch.sh, README.txt, lorastudio_export.json and a
// kohya-layout view of the dataset (dataset/N_name/ folders of hard links
// where the file system allows, else copies, each image's caption beside
// it). The dataset's own folder is only read. Every file is written
// atomically; the view is built aside and swapped in whole. Errors about the
// request wrap ErrInvalidExport and name the file at fault.
func (s *Studio) Export(req ExportRequest) (*ExportResult, error) {
	cfg := req.Config
	if err := cfg.Validate(); err != nil {
		return nil, invalidExport("%v", strings.TrimPrefix(err.Error(), "train: "))
	}
	if cfg.Seed > math.MaxInt64 {
		return nil, invalidExport("seed %d: sd-scripts takes a seed up to %d", cfg.Seed, int64(math.MaxInt64))
	}
	if req.Dataset == "" {
		return nil, invalidExport("no dataset folder given")
	}
	if req.To == "" {
		return nil, invalidExport("no export folder given")
	}
	if req.NumProcesses == 0 {
		req.NumProcesses = 1
	}
	if req.NumMachines == 0 {
		req.NumMachines = 1
	}
	if req.MainProcessPort == 0 {
		req.MainProcessPort = 29500
	}
	if req.MixedPrecision == "" {
		req.MixedPrecision = "fp16"
	}
	switch {
	case req.NumProcesses < 1:
		return nil, invalidExport("num-processes %d: want 1 or more", req.NumProcesses)
	case req.NumMachines < 1:
		return nil, invalidExport("num-machines %d: want 1 or more", req.NumMachines)
	case req.NumProcesses < req.NumMachines:
		return nil, invalidExport("num-processes %d is fewer than num-machines %d (accelerate counts the processes of all machines)", req.NumProcesses, req.NumMachines)
	case req.MachineRank < 0 || req.MachineRank >= req.NumMachines:
		return nil, invalidExport("machine-rank %d: want 0..%d", req.MachineRank, req.NumMachines-1)
	case req.NumMachines > 1 && req.MainProcessIP == "":
		return nil, invalidExport("%d machines need --main-process-ip (the address of machine rank 0)", req.NumMachines)
	case req.MainProcessPort < 1 || req.MainProcessPort > 65535:
		return nil, invalidExport("main-process-port %d: want 1..65535", req.MainProcessPort)
	}
	if req.MainProcessIP != "" && net.ParseIP(req.MainProcessIP) == nil && !hostName.MatchString(req.MainProcessIP) {
		return nil, invalidExport("main-process-ip %q is neither an IP address nor a host name", req.MainProcessIP)
	}
	switch req.MixedPrecision {
	case "fp16", "bf16", "no":
	default:
		return nil, invalidExport("mixed-precision %q: want fp16, bf16 or no", req.MixedPrecision)
	}

	model, err := s.exportModel(req.Model)
	if err != nil {
		return nil, err
	}
	to, err := filepath.Abs(req.To)
	if err != nil {
		return nil, invalidExport("export folder %s: %v", req.To, err)
	}
	ds, err := s.OpenDataset(req.Dataset)
	if err != nil {
		return nil, invalidExport("%v", err)
	}
	root := ds.Root()
	if rt, rr := exportResolved(to), exportResolved(root); within(rr, rt) || within(rt, rr) {
		return nil, invalidExport("export folder %s and dataset %s overlap: export to a folder outside the dataset", to, root)
	}
	if req.Name == "" {
		req.Name = filepath.Base(root)
	}
	name := runName(req.Name)

	res := &ExportResult{Dir: to, Model: model}
	groups, imgs, err := exportGroups(ds, root, req.AllowUncaptioned, res)
	if err != nil {
		return nil, err
	}
	if len(cfg.SamplePrompts) == 0 && cfg.SampleEvery > 0 {
		// The trainer's default sample prompts: the first two captions.
		for _, im := range imgs {
			if im.Caption != "" && len(cfg.SamplePrompts) < 2 {
				cfg.SamplePrompts = append(cfg.SamplePrompts, im.Caption)
			}
		}
	}
	rep, err := dataset.Inspect(imgs, cfg.Data, cfg.Batch, nil)
	if err != nil {
		return nil, invalidExport("dataset %s: %v", root, strings.TrimPrefix(err.Error(), "dataset: "))
	}
	res.Steps = cfg.MaxSteps
	if res.Steps == 0 {
		res.Steps = (cfg.Epochs*rep.StepsPerEpoch + cfg.GradAccum - 1) / cfg.GradAccum
	}

	if err := os.MkdirAll(to, 0o755); err != nil {
		return nil, invalidExport("export folder %s cannot be made: %v", to, errors.Unwrap(err))
	}
	if err := buildView(to, groups, res); err != nil {
		return nil, err
	}
	for _, g := range groups {
		res.Subsets = append(res.Subsets, g.ExportSubset)
	}
	res.Notes = exportNotes(cfg, req)

	prompts, err := samplePromptsText(cfg)
	if err != nil {
		return nil, err
	}
	dcfg, err := datasetConfigTOML(cfg, res.Subsets)
	if err != nil {
		return nil, err
	}
	tcfg, err := trainConfigTOML(cfg, req, model, name, res)
	if err != nil {
		return nil, err
	}
	man, err := json.MarshalIndent(exportManifestFile{
		Version: 1, Dataset: root, Model: model, Name: req.Name,
		NumProcesses: req.NumProcesses, NumMachines: req.NumMachines, Config: withoutMetadata(cfg),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export manifest: %w", err)
	}
	files := []struct {
		name string
		data string
		perm os.FileMode
	}{
		{ExportDatasetConfig, dcfg, 0o644},
		{ExportTrainConfig, tcfg, 0o644},
		{ExportSamplePrompts, prompts, 0o644},
		{ExportLaunch, launchScript(req), 0o755},
		{ExportReadme, exportReadme(req, name, res), 0o644},
		{ExportManifest, string(man) + "\n", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(to, f.name)
		if err := writeFileAtomic(p, []byte(f.data), f.perm); err != nil {
			return nil, err
		}
		// writeFileAtomic keeps an existing file's mode: launch.sh must run.
		if err := os.Chmod(p, f.perm); err != nil {
			return nil, fmt.Errorf("export %s: %w", p, err)
		}
		res.Files = append(res.Files, p)
	}
	return res, nil
}

// hostName matches a DNS host name (letters, digits, '-', dots).
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// withoutMetadata is cfg without the kohya metadata map (rebuilt by a run).
func withoutMetadata(cfg TrainConfig) TrainConfig {
	cfg.Metadata = nil
	return cfg
}

// exportModel resolves the base model for sd-scripts: "" is the configured
// model (the demo model has random weights, so it cannot be exported); a
// path that exists here is made absolute; anything else is kept as written
// (a path on the cluster, or a Hugging Face repo id sd-scripts downloads).
func (s *Studio) exportModel(model string) (string, error) {
	if model == "" {
		m, ok, err := s.ConfiguredModel()
		if err != nil {
			return "", err
		}
		if !ok {
			return "", invalidExport("no model: pass --model (an SDXL checkpoint or diffusers folder as the cluster sees it, or a Hugging Face repo id); the demo model cannot be trained by sd-scripts")
		}
		model = m
	}
	if _, err := os.Stat(model); err == nil {
		abs, err := filepath.Abs(model)
		if err != nil {
			return "", invalidExport("model %s: %v", model, err)
		}
		return abs, nil
	}
	return model, nil
}

// exportGroups reads the dataset into the view's subsets: one per dataset
// folder (a kohya N_name folder keeps its name and N; the tutorial's images/
// and the root of a flat kohya dataset become 1_<dataset name>), with the
// training images engine/train would see (for the step count).
func exportGroups(ds *Dataset, root string, allowUncaptioned bool, res *ExportResult) ([]*exportGroup, []dataset.Image, error) {
	byKey := map[string]*exportGroup{}
	var groups []*exportGroup
	var imgs []dataset.Image
	usedDirs := map[string]bool{}
	for _, it := range ds.Items() {
		if it.Err != nil {
			res.Skipped = append(res.Skipped, SkippedImage{Path: it.ImagePath, Reason: it.Err.Error()})
			continue
		}
		caption := strings.TrimSpace(it.Caption)
		has := it.CaptionErr == nil && it.HasCaption && caption != ""
		if !has {
			res.Uncaptioned = append(res.Uncaptioned, it.ImagePath)
			caption = ""
		}
		reps := max(it.Repeats, 1)
		src := datasetDir(root, it.Rel)
		key := strconv.Itoa(reps) + "\x00" + src
		g := byKey[key]
		if g == nil {
			dir := src
			if m := kohyaFolder.FindStringSubmatch(src); m == nil || m[1] != strconv.Itoa(reps) {
				dir = fmt.Sprintf("%d_%s", reps, runName(src))
			}
			base := dir
			for i := 2; usedDirs[strings.ToLower(dir)]; i++ {
				dir = fmt.Sprintf("%s_%d", base, i)
			}
			usedDirs[strings.ToLower(dir)] = true
			g = &exportGroup{ExportSubset: ExportSubset{Dir: ExportViewDir + "/" + dir, Source: src, Repeats: reps}, stems: map[string]bool{}}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.images = append(g.images, exportImage{src: it.ImagePath, caption: caption, hasCaption: has})
		g.Images++
		imgs = append(imgs, dataset.Image{Path: it.ImagePath, Caption: caption, Repeats: reps})
	}
	if len(imgs) == 0 {
		if len(res.Skipped) > 0 {
			return nil, nil, invalidExport("dataset %s: none of its %d images can be read (first: %s: %s)", root, len(res.Skipped), res.Skipped[0].Path, res.Skipped[0].Reason)
		}
		return nil, nil, invalidExport("dataset %s holds no images (png, jpeg or webp)", root)
	}
	if n := len(res.Uncaptioned); n > 0 && !allowUncaptioned {
		return nil, nil, invalidExport("dataset %s: %d of %d images have no caption: %s; %s",
			root, n, len(imgs), someOf(res.Uncaptioned), allowUncaptionedHint)
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].Dir < groups[j].Dir })
	return groups, imgs, nil
}

// viewCaption is a caption as sd-scripts reads it back: it takes only the
// first line of a caption file, so line breaks become spaces (CLIP's
// tokenizer folds white space the same way).
func viewCaption(c string) string { return strings.Join(strings.Fields(c), " ") }

// buildView writes the kohya-layout view into a fresh folder beside the
// old one and swaps it in: a folder left from an earlier export is replaced
// whole, a folder the export did not write is refused.
func buildView(to string, groups []*exportGroup, res *ExportResult) (err error) {
	final := filepath.Join(to, ExportViewDir)
	if st, serr := os.Lstat(final); serr == nil {
		if !st.IsDir() {
			return invalidExport("%s exists and is not a folder an export wrote; export to another folder", final)
		}
		if _, merr := os.Stat(filepath.Join(final, exportViewMarker)); merr != nil {
			return invalidExport("%s exists and was not written by an export; export to another folder (it is never overwritten)", final)
		}
	}
	tmp, err := os.MkdirTemp(to, ".dataset-tmp-")
	if err != nil {
		return invalidExport("export folder %s cannot be written: %v", to, errors.Unwrap(err))
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for _, g := range groups {
		dir := filepath.Join(tmp, filepath.Base(filepath.FromSlash(g.Dir)))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("export view %s: %w", dir, err)
		}
		for _, im := range g.images {
			ext := filepath.Ext(im.src)
			stem := strings.TrimSuffix(filepath.Base(im.src), ext)
			base := stem
			// Two images of one stem (a.png, a.jpg) would share a.txt.
			for i := 2; g.stems[strings.ToLower(stem)]; i++ {
				stem = fmt.Sprintf("%s_%d", base, i)
			}
			g.stems[strings.ToLower(stem)] = true
			dst := filepath.Join(dir, stem+ext)
			linked, err := linkOrCopy(im.src, dst)
			if err != nil {
				return err
			}
			if linked {
				res.Linked++
			} else {
				res.Copied++
			}
			res.Images++
			if im.hasCaption {
				// No caption file for an uncaptioned image: sd-scripts then
				// trains it on an empty caption (no class_tokens are set).
				if err := writeFileAtomic(filepath.Join(dir, stem+".txt"), []byte(viewCaption(im.caption)+"\n"), 0o644); err != nil {
					return err
				}
			}
		}
	}
	if err := writeFileAtomic(filepath.Join(tmp, exportViewMarker), []byte("written by lorastudio train export; replaced by the next export\n"), 0o644); err != nil {
		return err
	}
	old := ""
	if _, serr := os.Lstat(final); serr == nil {
		old = final + ".old-" + filepath.Base(tmp)
		if err := os.Rename(final, old); err != nil {
			return fmt.Errorf("export view %s: %w", final, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if old != "" {
			os.Rename(old, final)
		}
		return fmt.Errorf("export view %s: %w", final, err)
	}
	syncDir(to)
	if old != "" {
		// Links and copies only: removing them leaves the dataset's files.
		os.RemoveAll(old)
	}
	return nil
}

// hardLink is os.Link; a test makes it fail to exercise the copy.
var hardLink = os.Link

// linkOrCopy makes dst the content of src: a hard link when the file system
// allows one, else a copy written atomically. It reports whether it linked.
// A symbolic link is followed first: Linux would link the link itself, and
// a relative one would dangle from dst's folder.
func linkOrCopy(src, dst string) (bool, error) {
	if r, err := filepath.EvalSymlinks(src); err == nil {
		src = r
	}
	if err := hardLink(src, dst); err == nil {
		return true, nil
	}
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("export: image %s: %w", src, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("export: copy of %s: %w", src, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		return false, fmt.Errorf("export: copying %s to %s: %w", src, dst, err)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("export: copying %s to %s: %w", src, dst, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("export: copying %s to %s: %w", src, dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return false, fmt.Errorf("export: copying %s to %s: %w", src, dst, err)
	}
	ok = true
	return false, nil
}

// sampleSide is the side of the sample images: SampleSize, else the resolution.
func sampleSide(cfg TrainConfig) int {
	if cfg.SampleSize > 0 {
		return cfg.SampleSize
	}
	return cfg.Data.Resolution
}

// samplePromptsText is sample_prompts.txt in sd-scripts' prompt format: one
// prompt a line with --w, --h (the sample size), --d (the seed: prompt i
// uses SampleSeed+i, as our trainer does), --s (steps) and --l (CFG
// scale); --n (negative prompt) only when one is set, as ours has none.
func samplePromptsText(cfg TrainConfig) (string, error) {
	var b strings.Builder
	b.WriteString("# sample prompts written by lorastudio train export (sd-scripts format: --w --h --d seed --s steps --l cfg --n negative)\n")
	side := sampleSide(cfg)
	for i, p := range cfg.SamplePrompts {
		line := viewCaption(p)
		if line == "" {
			return "", invalidExport("sample prompt %d is empty", i+1)
		}
		if strings.Contains(" "+line, " --") {
			return "", invalidExport("sample prompt %q holds \" --\", which sd-scripts reads as the start of an option", p)
		}
		if strings.HasPrefix(line, "#") {
			// sd-scripts skips lines whose first character is '#' and
			// strips the rest: a leading space keeps the prompt.
			line = " " + line
		}
		fmt.Fprintf(&b, "%s --w %d --h %d --d %d --s %d --l %s\n", line, side, side, cfg.SampleSeed+uint64(i), cfg.SampleSteps,
			strconv.FormatFloat(cfg.SampleGuidance, 'g', -1, 64))
	}
	return b.String(), nil
}

// datasetConfigTOML is dataset_config.toml: the buckets in [general], the
// resolution and batch in [[datasets]], one [[datasets.subsets]] per view
// folder with its repeats and the caption settings.
func datasetConfigTOML(cfg TrainConfig, subsets []ExportSubset) (string, error) {
	d := cfg.Data
	tables := []tomlTable{
		{Header: "[general]", Keys: []tomlKV{
			{Key: "enable_bucket", Value: !d.NoBuckets},
			{Key: "min_bucket_reso", Value: d.MinSide},
			{Key: "max_bucket_reso", Value: d.MaxSide},
			{Key: "bucket_reso_steps", Value: d.BucketStep},
			{Key: "bucket_no_upscale", Value: false, Comment: "images are scaled to cover their bucket, as LoRA Studio does"},
		}},
		{Header: "[[datasets]]", Keys: []tomlKV{
			{Key: "resolution", Value: d.Resolution},
			{Key: "batch_size", Value: cfg.Batch, Comment: "per process: the effective batch is batch_size x gradient_accumulation_steps x num_processes"},
		}},
	}
	for _, s := range subsets {
		tables = append(tables, tomlTable{Header: "  [[datasets.subsets]]", Comment: fmt.Sprintf("from the dataset's %s", s.Source), Keys: []tomlKV{
			{Key: "image_dir", Value: s.Dir},
			{Key: "num_repeats", Value: s.Repeats},
			{Key: "caption_extension", Value: ".txt"},
			{Key: "keep_tokens", Value: d.KeepTags},
			{Key: "shuffle_caption", Value: d.ShuffleTags},
			{Key: "flip_aug", Value: d.Flip},
			{Key: "random_crop", Value: d.RandomCrop},
			{Key: "caption_dropout_rate", Value: d.CaptionDropout},
		}})
	}
	out, err := encodeTOML("dataset_config.toml written by lorastudio train export: sd-scripts' --dataset_config.\nPaths are relative to this folder; launch.sh runs from it.", tables)
	if err != nil {
		return "", fmt.Errorf("export %s: %w", ExportDatasetConfig, err)
	}
	return out, nil
}

// schedulerName is sd-scripts' lr_scheduler for ours: its "constant"
// ignores warm-up, so a warmed-up constant schedule is constant_with_warmup.
func schedulerName(cfg TrainConfig) string {
	if cfg.Scheduler == "constant" && cfg.WarmupSteps > 0 {
		return "constant_with_warmup"
	}
	return cfg.Scheduler
}

// staticCaptions reports whether every sample's caption is its file's text,
// unchanged (no shuffle, no dropout): then text-encoder outputs can be cached.
func staticCaptions(cfg TrainConfig) bool {
	return !cfg.Data.ShuffleTags && cfg.Data.CaptionDropout == 0
}

// trainConfigTOML is train_config.toml for --config_file (sd-scripts
// flattens its tables, so every key is one of its command-line options).
func trainConfigTOML(cfg TrainConfig, req ExportRequest, model, name string, res *ExportResult) (string, error) {
	savePrecision := "fp16"
	if cfg.SavePrecision == "fp32" {
		savePrecision = "float"
	}
	netComment := "the kohya set: every Linear of the UNet's transformer blocks (attention, proj_in/proj_out, feed-forward) = our attn-mlp"
	if cfg.Targets != "attn-mlp" {
		netComment += fmt.Sprintf("\nour targets %q have no networks.lora option: sd-scripts trains this larger set (see README.txt)", cfg.Targets)
	}
	network := []tomlKV{
		{Key: "network_module", Value: "networks.lora", Comment: netComment},
		{Key: "network_dim", Value: cfg.Rank},
		{Key: "network_alpha", Value: float64(cfg.Alpha)},
		{Key: "network_args", Value: []string{}, Comment: "no conv_dim: LoRA on the Linear layers only, as LoRA Studio trains"},
		{Key: "network_train_unet_only", Value: true, Comment: "LoRA Studio trains the UNet only"},
	}
	if cfg.Dropout > 0 {
		network = append(network, tomlKV{Key: "network_dropout", Value: float64(cfg.Dropout),
			Comment: "sd-scripts drops the rank-r hidden, LoRA Studio (peft) the adapter input"})
	}
	optimizer := []tomlKV{
		{Key: "optimizer_type", Value: "AdamW"},
		{Key: "optimizer_args", Value: []string{
			"weight_decay=" + strconv.FormatFloat(cfg.WeightDecay, 'g', -1, 64),
			"betas=(" + strconv.FormatFloat(cfg.Beta1, 'g', -1, 64) + "," + strconv.FormatFloat(cfg.Beta2, 'g', -1, 64) + ")",
			"eps=" + strconv.FormatFloat(cfg.Eps, 'g', -1, 64),
		}},
		{Key: "learning_rate", Value: cfg.LR},
		{Key: "lr_scheduler", Value: schedulerName(cfg)},
		{Key: "lr_warmup_steps", Value: cfg.WarmupSteps},
		{Key: "max_grad_norm", Value: cfg.MaxGradNorm},
		{Key: "gradient_accumulation_steps", Value: cfg.GradAccum},
	}
	training := []tomlKV{
		{Key: "max_train_steps", Value: res.Steps, Comment: "optimizer steps; each one sees batch_size x num_processes images"},
	}
	if cfg.MaxSteps == 0 {
		training = append(training, tomlKV{Key: "max_train_epochs", Value: cfg.Epochs, Comment: "the run is given in epochs: sd-scripts derives max_train_steps from them (fewer steps on more GPUs)"})
	}
	training = append(training,
		tomlKV{Key: "seed", Value: int64(cfg.Seed)},
		tomlKV{Key: "mixed_precision", Value: req.MixedPrecision},
		tomlKV{Key: "gradient_checkpointing", Value: cfg.GradientCheckpointing},
		tomlKV{Key: "sdpa", Value: true},
		tomlKV{Key: "no_half_vae", Value: true, Comment: "SDXL's VAE overflows in fp16"},
		tomlKV{Key: "cache_latents", Value: !cfg.Data.RandomCrop},
		tomlKV{Key: "cache_latents_to_disk", Value: !cfg.Data.RandomCrop, Comment: "latents are cached unless crops are random (sd-scripts cannot cache those)"},
		tomlKV{Key: "cache_text_encoder_outputs", Value: staticCaptions(cfg), Comment: "only when captions are not shuffled or dropped"},
	)
	if cfg.MinSNRGamma > 0 {
		training = append(training, tomlKV{Key: "min_snr_gamma", Value: cfg.MinSNRGamma})
	}
	if cfg.NoiseOffset > 0 {
		training = append(training, tomlKV{Key: "noise_offset", Value: cfg.NoiseOffset})
	}
	saving := []tomlKV{
		{Key: "output_dir", Value: ExportOutputDir},
		{Key: "output_name", Value: name},
		{Key: "save_model_as", Value: "safetensors"},
		{Key: "save_precision", Value: savePrecision},
		{Key: "training_comment", Value: "exported by LoRA Studio (lorastudio train export)"},
	}
	if cfg.SaveEvery > 0 {
		saving = append(saving, tomlKV{Key: "save_every_n_steps", Value: cfg.SaveEvery})
	}
	tables := []tomlTable{
		{Header: "[model]", Keys: []tomlKV{{Key: "pretrained_model_name_or_path", Value: model}}},
		{Header: "[network]", Keys: network},
		{Header: "[optimizer]", Keys: optimizer},
		{Header: "[training]", Keys: training},
		{Header: "[saving]", Keys: saving},
	}
	if cfg.SampleEvery > 0 && len(cfg.SamplePrompts) > 0 {
		tables = append(tables, tomlTable{Header: "[sampling]", Keys: []tomlKV{
			{Key: "sample_every_n_steps", Value: cfg.SampleEvery},
			{Key: "sample_prompts", Value: ExportSamplePrompts},
			{Key: "sample_sampler", Value: "dpmsolver++", Comment: "LoRA Studio samples with DPM-Solver++"},
		}})
	}
	out, err := encodeTOML("train_config.toml written by lorastudio train export: sd-scripts' --config_file.\nsd-scripts reads the keys of every table as its command-line options.", tables)
	if err != nil {
		return "", fmt.Errorf("export %s: %w", ExportTrainConfig, err)
	}
	return out, nil
}

// exportNotes lists the settings of cfg that sd-scripts cannot reproduce
// exactly, each with what the export writes instead.
func exportNotes(cfg TrainConfig, req ExportRequest) []string {
	var n []string
	if cfg.Targets != "attn-mlp" {
		n = append(n, fmt.Sprintf("targets %q: networks.lora has no option to limit LoRA to these modules; sd-scripts trains every Linear of the transformer blocks (our attn-mlp: attention, proj_in, proj_out, feed-forward), a larger LoRA", cfg.Targets))
	}
	if cfg.Init == "gaussian" {
		n = append(n, "init gaussian: networks.lora always starts as kohya does (down kaiming-uniform, up zeros)")
	}
	if cfg.Dropout > 0 {
		n = append(n, fmt.Sprintf("dropout %v: written as network_dropout, which sd-scripts applies to the rank-r hidden, not to the adapter input", cfg.Dropout))
	}
	if req.NumProcesses > 1 {
		n = append(n, fmt.Sprintf("%d processes: each step trains batch %d on every process (effective batch %d); the learning rate is not scaled", req.NumProcesses, cfg.Batch, cfg.Batch*cfg.GradAccum*req.NumProcesses))
	}
	if cfg.Data.RandomCrop {
		n = append(n, "random crop: sd-scripts cannot cache latents of random crops, so latent caching is off")
	}
	n = append(n, "noise, timesteps, data order and sample images come from sd-scripts' own random streams: the same seed does not give LoRA Studio's run bit for bit")
	return n
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// launchScript is launch.sh: accelerate launch of sdxl_train_network.py
// from the export folder, with the processes and machines of req. On a
// multi-machine run every machine runs it with its own MACHINE_RANK.
func launchScript(req ExportRequest) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("# Written by lorastudio train export. Run it from anywhere; it works in its own folder.\n")
	b.WriteString("# SD_SCRIPTS is your kohya-ss/sd-scripts checkout (its Python environment active).\n")
	b.WriteString("set -eu\n")
	b.WriteString("cd \"$(dirname \"$0\")\"\n")
	b.WriteString(": \"${SD_SCRIPTS:?set SD_SCRIPTS to your kohya-ss/sd-scripts checkout}\"\n")
	args := []string{"accelerate launch", fmt.Sprintf("--num_processes %d", req.NumProcesses)}
	if req.NumProcesses > 1 {
		args = append(args, "--multi_gpu") // DDP, one process per GPU
	}
	if req.NumMachines > 1 {
		fmt.Fprintf(&b, "# %d machines: run this script on each one with MACHINE_RANK=0..%d (0 on %s).\n", req.NumMachines, req.NumMachines-1, req.MainProcessIP)
		fmt.Fprintf(&b, "MACHINE_RANK=\"${MACHINE_RANK:-%d}\"\n", req.MachineRank)
		args = append(args, fmt.Sprintf("--num_machines %d", req.NumMachines), "--machine_rank \"$MACHINE_RANK\"",
			"--main_process_ip "+shellQuote(req.MainProcessIP), fmt.Sprintf("--main_process_port %d", req.MainProcessPort))
	}
	args = append(args, "--mixed_precision "+req.MixedPrecision,
		"\"$SD_SCRIPTS/sdxl_train_network.py\"",
		"--config_file "+ExportTrainConfig,
		"--dataset_config "+ExportDatasetConfig)
	b.WriteString("exec " + strings.Join(args, " \\\n  ") + "\n")
	return b.String()
}

// exportReadme is README.txt: how to run the export and bring its LoRA back.
func exportReadme(req ExportRequest, name string, res *ExportResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "LoRA Studio export of run %q for kohya's sd-scripts under accelerate\n\n", name)
	fmt.Fprintf(&b, "Dataset: %s (%d images in %d folders, under %s/)\n", req.Dataset, res.Images, len(res.Subsets), ExportViewDir)
	fmt.Fprintf(&b, "Model:   %s\n", res.Model)
	fmt.Fprintf(&b, "Steps:   %d (one process)\n\n", res.Steps)
	b.WriteString(`1. Copy this folder to the machine(s) with the GPUs (the files under dataset/
   are hard links or copies of your images; copy them as files, e.g. rsync -a).
   If the model path above does not exist there, edit pretrained_model_name_or_path
   in train_config.toml.
2. Install kohya-ss/sd-scripts and run "accelerate config" once (or rely on the
   flags launch.sh passes), then:
       SD_SCRIPTS=/path/to/sd-scripts ./launch.sh
`)
	if req.NumMachines > 1 {
		fmt.Fprintf(&b, "   On each of the %d machines, with its rank (0 on %s):\n       MACHINE_RANK=<rank> SD_SCRIPTS=/path/to/sd-scripts ./launch.sh\n", req.NumMachines, req.MainProcessIP)
	}
	fmt.Fprintf(&b, `3. sd-scripts writes the LoRA files to %s/ (%s.safetensors, and
   %s-stepNNNNNNNN.safetensors every save_every_n_steps) and sample images to
   %s/sample/.
4. Bring the run back into LoRA Studio's history (copy the folder back first):
       lorastudio train import <this folder>
   The run shows in "lorastudio runs list" and its LoRA loads in generate.

Files:
  dataset_config.toml  datasets and subsets (--dataset_config)
  train_config.toml    every training option (--config_file)
  sample_prompts.txt   sample prompts (--sample_prompts)
  launch.sh            the accelerate launch line
  lorastudio_export.json  what "train import" reads back (dataset, model, settings)
`, ExportOutputDir, name, name, ExportOutputDir)
	if len(res.Notes) > 0 {
		b.WriteString("\nWhat does not carry over exactly:\n")
		for _, n := range res.Notes {
			b.WriteString("  - " + n + "\n")
		}
	}
	return b.String()
}
