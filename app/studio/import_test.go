package studio

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"lorastudio/engine/lora"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// fixtureLoRA opens the fixture model's config and its kohya LoRA.
func fixtureLoRA(t *testing.T) (sdxl.Config, *lora.LoRA) {
	t.Helper()
	src, err := sdxl.OpenSource(filepath.Join(fixtureDir(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := lora.Open(filepath.Join(fixtureDir(t), "lora", "kohya_sgm_names.safetensors"), src.Config())
	if err != nil {
		t.Fatal(err)
	}
	return src.Config(), l
}

// sameLayers compares two LoRAs' layers value by value (within fp16).
func sameLayers(t *testing.T, got, want *lora.LoRA) {
	t.Helper()
	if !reflect.DeepEqual(got.Keys(), want.Keys()) {
		t.Fatalf("layers %v, want %v", got.Keys(), want.Keys())
	}
	for k, w := range want.Layers {
		g := got.Layers[k]
		if g.Rank != w.Rank || g.Scale() != w.Scale() {
			t.Errorf("%s: rank %d scale %v, want %d %v", k, g.Rank, g.Scale(), w.Rank, w.Scale())
		}
		for i := range w.Down {
			if d := g.Down[i] - w.Down[i]; d > 1e-3 || d < -1e-3 {
				t.Fatalf("%s down[%d] = %v, want %v", k, i, g.Down[i], w.Down[i])
			}
		}
	}
}

// TestImportSDScriptsRun writes what sd-scripts leaves in an output folder —
// a final LoRA and a numbered one with sd-scripts' ss_* metadata (written
// with engine/lora's kohya writer), sample images under sample/ — and checks
// the run the import records: its fields, files, samples and settings.
func TestImportSDScriptsRun(t *testing.T) {
	s := newStudio(t)
	cfg, fix := fixtureLoRA(t)
	var rank int
	var alpha float32
	for _, l := range fix.Layers {
		rank, alpha = l.Rank, l.Alpha
		break
	}
	dir := t.TempDir()
	dirs := `{"10_cat": {"n_repeats": 10, "img_count": 20}, "1_style": {"n_repeats": 1, "img_count": 5}}`
	tags := `{"10_cat": {"sks cat": 20, "grass": 3}, "1_style": {"flat colors": 5}}`
	meta := func(steps, epoch int) map[string]string {
		return map[string]string{
			"ss_steps": strconv.Itoa(steps), "ss_epoch": strconv.Itoa(epoch), "ss_network_dim": strconv.Itoa(rank),
			"ss_network_alpha": strconv.FormatFloat(float64(alpha), 'g', -1, 32), "ss_learning_rate": "0.0002",
			"ss_dataset_dirs": dirs, "ss_tag_frequency": tags, "ss_output_name": "mychar",
			"ss_training_started_at": "1700000000.5", "ss_training_finished_at": strconv.Itoa(1700000000 + steps),
			"ss_max_train_steps": "1200", "ss_sd_model_name": "sd_xl_base_1.0.safetensors", "ss_seed": "7",
			"ss_resolution": "(1024, 1024)", "ss_lr_scheduler": "cosine", "ss_network_module": "networks.lora",
		}
	}
	for _, f := range []struct {
		name         string
		steps, epoch int
	}{{"mychar-step00000600.safetensors", 600, 3}, {"mychar.safetensors", 1200, 6}} {
		if err := lora.WriteKohya(filepath.Join(dir, f.name), fix, cfg, safetensors.F16, meta(f.steps, f.epoch)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, ExportSamplePrompts), []byte("# comment\n\na red cat --w 1024 --h 1024 --d 42\nflat colors, cat --d 43 --n blurry\n"), 0o644)
	for _, n := range []string{"mychar_000600_00_20260101120000_42.png", "mychar_000600_01_20260101120001_43.png", "mychar_e000006_00_20260101130000_42.png", "other_000600_00_20260101120000_1.png"} {
		writePNG(t, filepath.Join(dir, "sample", n), 8, 8, 1)
	}

	runs, err := s.ImportRuns(ImportRequest{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("imported %d runs, want 1", len(runs))
	}
	ir := runs[0]
	if ir.Name != "mychar" || ir.Steps != 1200 || ir.Epoch != 6 || ir.Rank != rank || ir.Alpha != float64(alpha) || ir.LR != 0.0002 || ir.Samples != 3 {
		t.Errorf("imported run %+v", ir)
	}
	if ir.Dirs["10_cat"] != (DirStats{Repeats: 10, Images: 20}) || ir.Tags["1_style"]["flat colors"] != 5 || ir.Tags["10_cat"]["sks cat"] != 20 {
		t.Errorf("dataset folders %v, tags %v", ir.Dirs, ir.Tags)
	}
	d, err := s.Run(ir.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != RunDone || d.StepsDone != 1200 || d.StepsTotal != 1200 || d.Name != "mychar" || d.ModelName != "sd_xl_base_1.0.safetensors" ||
		d.OutputPath != filepath.Join(d.RunDir, "mychar.safetensors") || d.DatasetPath != dir {
		t.Errorf("run row %+v", d.Run)
	}
	if !d.StartedAt.Equal(time.Unix(1700000000, 5e8)) || !d.FinishedAt.Equal(time.Unix(1700001200, 0)) {
		t.Errorf("times %v – %v, want the metadata's", d.StartedAt, d.FinishedAt)
	}
	if filepath.Dir(d.RunDir) != filepath.Join(s.DataDir(), RunsDir) || !strings.HasPrefix(filepath.Base(d.RunDir), strconv.FormatInt(d.ID, 10)+"-") {
		t.Errorf("run folder %s", d.RunDir)
	}
	kinds := map[string]int{}
	for _, f := range d.Files {
		kinds[string(f.Kind)+"@"+strconv.Itoa(f.Step)]++
		if _, err := os.Stat(f.Path); err != nil || filepath.Dir(f.Path) != d.RunDir {
			t.Errorf("file %s: %v", f.Path, err)
		}
	}
	if !reflect.DeepEqual(kinds, map[string]int{"checkpoint@600": 1, "output@1200": 1}) {
		t.Errorf("files %v", kinds)
	}
	type smp struct {
		step   int
		prompt string
		seed   int64
	}
	var got []smp
	for _, sm := range d.Samples {
		got = append(got, smp{sm.Step, sm.Prompt, sm.Seed})
		if _, err := os.Stat(sm.ImagePath); err != nil || !strings.HasPrefix(sm.ImagePath, d.RunDir) {
			t.Errorf("sample %s: %v", sm.ImagePath, err)
		}
	}
	want := []smp{{600, "a red cat", 42}, {600, "flat colors, cat", 43}, {1200, "a red cat", 42}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("samples %+v, want %+v", got, want)
	}
	var settings struct {
		Rank      int               `json:"rank"`
		Alpha     float32           `json:"alpha"`
		LR        float64           `json:"lr"`
		Seed      uint64            `json:"seed"`
		Targets   string            `json:"targets"`
		Scheduler string            `json:"scheduler"`
		MaxSteps  int               `json:"max_steps"`
		Data      struct{ Res int } `json:"-"`
		Metadata  map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(d.ConfigJSON), &settings); err != nil {
		t.Fatal(err)
	}
	if settings.Rank != rank || settings.Alpha != alpha || settings.LR != 0.0002 || settings.Seed != 7 || settings.Targets != "attn-mlp" ||
		settings.Scheduler != "cosine" || settings.MaxSteps != 1200 || settings.Metadata["ss_tag_frequency"] != tags {
		t.Errorf("settings %s", d.ConfigJSON)
	}
	sums, err := s.Runs()
	if err != nil || len(sums) != 1 || len(sums[0].Outputs) != 1 || sums[0].Outputs[0].Path != d.OutputPath {
		t.Errorf("runs list %+v, %v", sums, err)
	}
	back, err := lora.Open(d.OutputPath, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sameLayers(t, back, fix)

	// Bad input: a file that is no LoRA, a folder with no LoRA files.
	notLoRA := filepath.Join(t.TempDir(), "model.safetensors")
	safetensors.Write(notLoRA, []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int{1}, Data: make([]byte, 4)}}, nil)
	empty := t.TempDir()
	for _, p := range []string{notLoRA, empty, filepath.Join(empty, "missing.safetensors")} {
		if _, err := s.ImportRuns(ImportRequest{Paths: []string{p}}); !errors.Is(err, ErrInvalidImport) || !strings.Contains(err.Error(), p) {
			t.Errorf("import %s: %v, want ErrInvalidImport naming it", p, err)
		}
	}
	if sums, _ := s.Runs(); len(sums) != 1 {
		t.Errorf("a refused import recorded a run: %d runs", len(sums))
	}
}

// TestExportImportRoundTrip trains a LoRA with our trainer, exports the same
// settings, puts the LoRA where sd-scripts writes its output (standing in
// for the cluster run) and imports the export folder: the run carries the
// export's dataset, model and settings, and its LoRA is the trained one.
func TestExportImportRoundTrip(t *testing.T) {
	s := newStudio(t)
	model := filepath.Join(fixtureDir(t), "model")
	ds := trainDataset(t)
	cfg := tinyTrainConfig()
	cfg.MaxSteps, cfg.SaveEvery = 2, 0
	p, err := s.PlanTrain(TrainRequest{Dataset: ds, Model: model, Name: "round trip", Device: "cpu", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Train(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "export")
	// The cluster run samples (ours did not, to stay fast); prompts default
	// to the dataset's first captions as the trainer's do.
	ecfg := cfg
	ecfg.SampleEvery = 2
	ex, err := s.Export(ExportRequest{Dataset: ds, Model: model, Name: "round trip", Config: ecfg, To: to, NumProcesses: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Steps != 2 {
		t.Errorf("export plans %d steps, want 2", ex.Steps)
	}
	opts := flatTrainConfig(t, filepath.Join(to, ExportTrainConfig))
	name := opts["output_name"].(string)
	outDir := filepath.Join(to, opts["output_dir"].(string))
	os.MkdirAll(outDir, 0o755)
	b, err := os.ReadFile(res.Output)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outDir, name+".safetensors"), b, 0o644)
	writePNG(t, filepath.Join(outDir, "sample", name+"_000002_00_20260101120000_1.png"), 8, 8, 2)

	runs, err := s.ImportRuns(ImportRequest{Paths: []string{to}})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Steps != 2 || runs[0].Rank != cfg.Rank || runs[0].Samples != 1 {
		t.Fatalf("imported %+v", runs)
	}
	d, err := s.Run(runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	absModel, _ := filepath.Abs(model)
	if d.Name != "round trip" || d.DatasetPath != p.root || d.BaseModel != absModel || d.Status != RunDone || d.StepsDone != 2 {
		t.Errorf("run row %+v", d.Run)
	}
	if len(d.Samples) != 1 || d.Samples[0].Prompt != "a dog" || d.Samples[0].Step != 2 || d.Samples[0].Seed != 1 {
		t.Errorf("samples %+v", d.Samples)
	}
	var got TrainConfig
	if err := json.Unmarshal([]byte(d.ConfigJSON), &got); err != nil {
		t.Fatal(err)
	}
	if got.Rank != cfg.Rank || got.Alpha != cfg.Alpha || got.Data.Resolution != 64 || got.MaxSteps != 2 {
		t.Errorf("settings %s", d.ConfigJSON)
	}
	src, err := sdxl.OpenSource(model)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	trained, err := lora.Open(res.Output, src.Config())
	if err != nil {
		t.Fatal(err)
	}
	back, err := lora.Open(d.OutputPath, src.Config())
	if err != nil {
		t.Fatal(err)
	}
	sameLayers(t, back, trained)
	if sums, err := s.Runs(); err != nil || len(sums) != 2 {
		t.Errorf("runs %d (%v), want the trained and the imported", len(sums), err)
	}
}
