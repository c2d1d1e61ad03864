package storage

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestDatasetsAndImages(t *testing.T) {
	db := openTest(t)
	if _, err := db.EnsureDataset("relative/dir", "x"); err == nil {
		t.Error("EnsureDataset accepted a relative root")
	}
	before := time.Now()
	d1, err := db.EnsureDataset("/data/cats/", "sidecar-txt")
	if err != nil {
		t.Fatal(err)
	}
	if d1.Root != "/data/cats" || d1.Layout != "sidecar-txt" || d1.CreatedAt.Before(before.Add(-time.Second)) || d1.CreatedAt.Location() != time.UTC {
		t.Errorf("EnsureDataset = %+v", d1)
	}
	d2, err := db.EnsureDataset("/data/cats", "kohya-folders")
	if err != nil {
		t.Fatal(err)
	}
	if d2.ID != d1.ID || d2.Layout != "kohya-folders" || !d2.CreatedAt.Equal(d1.CreatedAt) {
		t.Errorf("second EnsureDataset = %+v, want id %d with the new layout and the first time", d2, d1.ID)
	}
	d3, err := db.EnsureDataset("/data/dogs", "sidecar-txt")
	if err != nil || d3.ID == d1.ID {
		t.Fatalf("EnsureDataset dogs = %+v, %v", d3, err)
	}
	all, err := db.Datasets()
	if err != nil || len(all) != 2 {
		t.Errorf("Datasets = %+v, %v", all, err)
	}
	if _, err := db.DatasetByID(999); !errors.Is(err, ErrNotFound) {
		t.Errorf("DatasetByID(999): %v", err)
	}

	im, err := db.EnsureImage(d1.ID, "a/1.png", "h1", 512, 768)
	if err != nil {
		t.Fatal(err)
	}
	im2, err := db.EnsureImage(d1.ID, "a/1.png", "h2", 1024, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if im2.ID != im.ID || im2.Hash != "h2" || im2.Width != 1024 || im2.Height != 1024 {
		t.Errorf("EnsureImage update = %+v", im2)
	}
	same, err := db.EnsureImage(d3.ID, "a/1.png", "h3", 8, 8)
	if err != nil || same.ID == im.ID {
		t.Errorf("same rel in another dataset = %+v, %v; want a separate image", same, err)
	}
	got, err := db.ImageByRel(d1.ID, "a/1.png")
	if err != nil || got != im2 {
		t.Errorf("ImageByRel = %+v, %v; want %+v", got, err, im2)
	}
	if _, err := db.ImageByRel(d1.ID, "missing.png"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ImageByRel(missing): %v", err)
	}
	if _, err := db.EnsureImage(d1.ID, "", "h", 1, 1); err == nil {
		t.Error("EnsureImage accepted an empty path")
	}
	if _, err := db.EnsureImage(424242, "x.png", "h", 1, 1); err == nil {
		t.Error("EnsureImage accepted a missing dataset")
	}
	if _, err := db.EnsureImage(d1.ID, "0.png", "h0", 1, 1); err != nil {
		t.Fatal(err)
	}
	ims, err := db.Images(d1.ID)
	if err != nil || len(ims) != 2 || ims[0].Rel != "0.png" || ims[1].Rel != "a/1.png" {
		t.Errorf("Images = %+v, %v", ims, err)
	}
}

func TestSettings(t *testing.T) {
	db := openTest(t)
	if _, ok, err := db.Setting("theme"); ok || err != nil {
		t.Errorf("missing setting: ok=%v err=%v", ok, err)
	}
	for _, v := range []string{"dark", "light", ""} {
		if err := db.SetSetting("theme", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := db.Setting("theme"); !ok || err != nil || got != v {
			t.Errorf("Setting = %q %v %v, want %q", got, ok, err, v)
		}
	}
	if err := db.DeleteSetting("theme"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Setting("theme"); ok {
		t.Error("setting still there after DeleteSetting")
	}
	type window struct {
		W, H int
		Max  bool
	}
	if err := db.SetSettingJSON("window", window{1280, 800, true}); err != nil {
		t.Fatal(err)
	}
	var w window
	if ok, err := db.SettingJSON("window", &w); !ok || err != nil || w != (window{1280, 800, true}) {
		t.Errorf("SettingJSON = %+v %v %v", w, ok, err)
	}
	if err := db.SetSetting("bad", "{not json"); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.SettingJSON("bad", &w); !ok || err == nil {
		t.Errorf("SettingJSON of bad JSON: ok=%v err=%v", ok, err)
	}

	if _, ok, err := db.LastDataset(); ok || err != nil {
		t.Errorf("LastDataset unset: ok=%v err=%v", ok, err)
	}
	ds, err := db.EnsureDataset("/data/x", "sidecar-txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetLastDataset(ds.ID); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := db.LastDataset(); !ok || err != nil || id != ds.ID {
		t.Errorf("LastDataset = %d %v %v", id, ok, err)
	}
	if err := db.SetLastDataset(9999); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db.LastDataset(); ok || err != nil {
		t.Errorf("LastDataset of a vanished dataset: ok=%v err=%v, want not ok", ok, err)
	}
	// Settings survive reopening the file.
	path := db.Path()
	if err := db.SetSetting("persist", "yes"); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if v, ok, err := db2.Setting("persist"); v != "yes" || !ok || err != nil {
		t.Errorf("after reopen: %q %v %v", v, ok, err)
	}
}

func TestRuns(t *testing.T) {
	db := openTest(t)
	ds, err := db.EnsureDataset("/data/x", "sidecar-txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRun(NewRun{DatasetID: ds.ID, BaseModel: "sdxl", ConfigJSON: "{bad", OutputPath: "/out/a.safetensors"}); err == nil {
		t.Error("CreateRun accepted invalid JSON")
	}
	if _, err := db.CreateRun(NewRun{DatasetID: 9999, BaseModel: "sdxl", ConfigJSON: "{}", OutputPath: "/out/a.safetensors"}); err == nil {
		t.Error("CreateRun accepted a missing dataset")
	}
	cfg := `{"rank":16,"alpha":8,"lr":0.0001,"note":"猫 'quoted'"}`
	r, err := db.CreateRun(NewRun{DatasetID: ds.ID, BaseModel: "/models/sdxl-base", ConfigJSON: cfg, OutputPath: "/out/a.safetensors"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != RunQueued || r.ConfigJSON != cfg || !r.StartedAt.IsZero() || !r.FinishedAt.IsZero() || r.CreatedAt.IsZero() {
		t.Errorf("new run = %+v", r)
	}
	if err := db.UpdateRunStatus(r.ID, RunRunning, ""); err != nil {
		t.Fatal(err)
	}
	r1, _ := db.Run(r.ID)
	if r1.Status != RunRunning || r1.StartedAt.IsZero() || !r1.FinishedAt.IsZero() {
		t.Errorf("running run = %+v", r1)
	}
	if err := db.SetRunCheckpoint(r.ID, "/ckpt/step-100", 100); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRunStatus(r.ID, RunStopped, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateRunStatus(r.ID, RunRunning, ""); err != nil { // resumed
		t.Fatal(err)
	}
	if err := db.UpdateRunStatus(r.ID, RunFailed, "out of memory at step 120"); err != nil {
		t.Fatal(err)
	}
	r2, err := db.Run(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Status != RunFailed || r2.Error != "out of memory at step 120" || !r2.StartedAt.Equal(r1.StartedAt) ||
		r2.FinishedAt.Before(r2.StartedAt) || r2.CheckpointPath != "/ckpt/step-100" || r2.CheckpointStep != 100 || !r2.Status.Finished() {
		t.Errorf("failed run = %+v (first start %v)", r2, r1.StartedAt)
	}
	if err := db.UpdateRunStatus(r.ID, RunStatus("exploded"), ""); err == nil {
		t.Error("UpdateRunStatus accepted an unknown status")
	}
	if err := db.UpdateRunStatus(9999, RunDone, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateRunStatus of a missing run: %v", err)
	}
	if err := db.SetRunCheckpoint(9999, "x", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetRunCheckpoint of a missing run: %v", err)
	}
	if _, err := db.Run(9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run(9999): %v", err)
	}
	r3, err := db.CreateRun(NewRun{DatasetID: ds.ID, BaseModel: "sdxl", ConfigJSON: "{}", OutputPath: "/out/b.safetensors"})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := db.Runs(0)
	if err != nil || len(runs) != 2 || runs[0].ID != r3.ID {
		t.Errorf("Runs(0) = %+v, %v", runs, err)
	}
	if runs, _ := db.Runs(1); len(runs) != 1 {
		t.Errorf("Runs(1) gave %d", len(runs))
	}

	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for step, loss := range []float64{0.9, 0.7, 0.5} {
		if err := db.AddMetric(Metric{RunID: r.ID, Step: step + 1, Loss: loss, LR: 1e-4, Time: at.Add(time.Duration(step) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	// A resumed run repeats step 2: the new numbers replace the old.
	if err := db.AddMetric(Metric{RunID: r.ID, Step: 2, Loss: 0.65, LR: 5e-5}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMetric(Metric{RunID: 9999, Step: 1, Loss: 1, LR: 1}); err == nil {
		t.Error("AddMetric accepted a missing run")
	}
	ms, err := db.Metrics(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].Step != 1 || ms[0].Loss != 0.9 || ms[1].Loss != 0.65 || ms[1].LR != 5e-5 || ms[2].Step != 3 {
		t.Errorf("Metrics = %+v", ms)
	}
	if !ms[0].Time.Equal(at) || ms[0].Time.Location() != time.UTC {
		t.Errorf("metric time %v, want %v in UTC (nanoseconds kept)", ms[0].Time, at)
	}
	if ms, _ := db.Metrics(r3.ID); len(ms) != 0 {
		t.Errorf("another run's metrics: %+v", ms)
	}

	s1, err := db.AddSample(Sample{RunID: r.ID, Step: 100, Prompt: "a photo of sks cat", Seed: -1 << 62, ImagePath: "/samples/100-0.png"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSample(Sample{RunID: r.ID, Step: 50, Prompt: "p", Seed: 42, ImagePath: "/samples/50-0.png"}); err != nil {
		t.Fatal(err)
	}
	ss, err := db.Samples(r.ID)
	if err != nil || len(ss) != 2 || ss[0].Step != 50 || ss[1] != s1 || s1.ID == 0 || s1.CreatedAt.IsZero() {
		t.Errorf("Samples = %+v, %v (added %+v)", ss, err, s1)
	}
}

func TestGenerationsAndCache(t *testing.T) {
	db := openTest(t)
	empty, neg := "", "blurry, lowres"
	base := Generation{Model: "/models/sdxl", LorasJSON: `[{"path":"/l/cat.safetensors","weight":0.8}]`, Prompt: "a cat, 猫",
		Sampler: "dpmpp_2m_karras", Steps: 30, CFG: 7.5, Width: 1024, Height: 768, Seed: 1234567890123, Device: "gl:llvmpipe",
		OutputPath: "/gallery/1.png", DurationMS: 4321, CacheKey: "abc"}
	var added []Generation
	for i, n := range []*string{nil, &empty, &neg} {
		g := base
		g.Negative = n
		g.OutputPath = filepath.Join("/gallery", string(rune('a'+i))+".png")
		out, err := db.AddGeneration(g)
		if err != nil {
			t.Fatal(err)
		}
		added = append(added, out)
	}
	if _, err := db.AddGeneration(Generation{Model: "m", LorasJSON: "[oops", OutputPath: "/x.png"}); err == nil {
		t.Error("AddGeneration accepted invalid LoRA JSON")
	}
	noLoras, err := db.AddGeneration(Generation{Model: "m", Prompt: "p", Sampler: "euler", Steps: 1, CFG: 1, Width: 8, Height: 8, OutputPath: "/y.png"})
	if err != nil || noLoras.LorasJSON != "[]" {
		t.Errorf("AddGeneration without LoRAs = %+v, %v", noLoras, err)
	}
	gs, err := db.Generations(0)
	if err != nil || len(gs) != 4 {
		t.Fatalf("Generations(0) = %d, %v", len(gs), err)
	}
	if gs[0].ID != noLoras.ID || gs[3].ID != added[0].ID {
		t.Errorf("Generations not newest first: %d ... %d", gs[0].ID, gs[3].ID)
	}
	g0, g1, g2 := gs[3], gs[2], gs[1]
	if g0.Negative != nil {
		t.Errorf("nil negative came back as %q", *g0.Negative)
	}
	if g1.Negative == nil || *g1.Negative != "" {
		t.Errorf("empty negative came back as %v (must stay distinct from none)", g1.Negative)
	}
	if g2.Negative == nil || *g2.Negative != neg {
		t.Errorf("negative = %v", g2.Negative)
	}
	want := base
	want.ID, want.Negative, want.OutputPath, want.CreatedAt = g2.ID, g2.Negative, g2.OutputPath, g2.CreatedAt
	if g2 != want {
		t.Errorf("generation round trip:\n got %+v\nwant %+v", g2, want)
	}
	if g, err := db.Generation(g2.ID); err != nil || g.OutputPath != g2.OutputPath {
		t.Errorf("Generation(id) = %+v, %v", g, err)
	}
	if _, err := db.Generation(9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Generation(9999): %v", err)
	}
	if gs, _ := db.Generations(2); len(gs) != 2 || gs[0].ID != noLoras.ID {
		t.Errorf("Generations(2) = %+v", gs)
	}

	if _, ok, err := db.CacheGet("abc"); ok || err != nil {
		t.Errorf("CacheGet on an empty cache: ok=%v err=%v", ok, err)
	}
	if err := db.CachePut("", "/x.png"); err == nil {
		t.Error("CachePut accepted an empty key")
	}
	if err := db.CachePut("abc", "/gallery/a.png"); err != nil {
		t.Fatal(err)
	}
	if err := db.CachePut("def", "/gallery/b.png"); err != nil {
		t.Fatal(err)
	}
	e1, ok, err := db.CacheGet("abc")
	if err != nil || !ok || e1.OutputPath != "/gallery/a.png" || e1.Hits != 1 || e1.LastUsed.Before(e1.CreatedAt) {
		t.Fatalf("first CacheGet = %+v %v %v", e1, ok, err)
	}
	e2, _, _ := db.CacheGet("abc")
	if e2.Hits != 2 || e2.LastUsed.Before(e1.LastUsed) {
		t.Errorf("second CacheGet = %+v", e2)
	}
	es, err := db.CacheEntries()
	if err != nil || len(es) != 2 || es[0].Key != "def" || es[1].Key != "abc" {
		t.Errorf("CacheEntries (least recently used first) = %+v, %v", es, err)
	}
	if err := db.CachePut("abc", "/gallery/c.png"); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := db.CacheGet("abc"); e.OutputPath != "/gallery/c.png" || e.Hits != 1 {
		t.Errorf("CacheGet after replacing = %+v", e)
	}
	if err := db.CacheDelete("abc"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.CacheGet("abc"); ok {
		t.Error("key still cached after CacheDelete")
	}
	if err := db.CacheDelete("never"); err != nil {
		t.Errorf("CacheDelete of a missing key: %v", err)
	}
}

// TestDeletingADatasetCascades: images, their revisions and batches go with the dataset,
// while runs of it keep the dataset from being deleted (their history matters).
func TestDeletingADatasetCascades(t *testing.T) {
	db := openTest(t)
	ds, im := newImage(t, db, "/data/gone", "a.png")
	b, err := db.BeginBatch(ds.ID, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveCaption(im.ID, "x", OriginBulk, b.ID, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	run, err := db.CreateRun(NewRun{DatasetID: ds.ID, BaseModel: "m", ConfigJSON: "{}", OutputPath: "/o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.sql.Exec(`DELETE FROM datasets WHERE id = ?`, ds.ID); err == nil {
		t.Error("deleting a dataset with runs succeeded")
	}
	if _, err := db.sql.Exec(`DELETE FROM runs WHERE id = ?`, run.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.sql.Exec(`DELETE FROM datasets WHERE id = ?`, ds.ID); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"images", "caption_revisions", "caption_batches"} {
		var n int
		if err := db.sql.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows left (%v)", table, n, err)
		}
	}
}

// TestRunProgressAndFiles covers what schema 5 added: the run's identity fields, progress,
// seconds per step, run files and the summaries `runs list` prints.
func TestRunProgressAndFiles(t *testing.T) {
	db := openTest(t)
	ds, err := db.EnsureDataset("/data/cats", "kohya")
	if err != nil {
		t.Fatal(err)
	}
	a, err := db.CreateRun(NewRun{DatasetID: ds.ID, Name: "cats", DatasetPath: "/data/cats", BaseModel: "/m/base",
		ModelName: "base", ModelHash: "beef", ConfigJSON: `{"rank":4}`, OutputPath: "/out/cats.safetensors", StepsTotal: 6})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "cats" || a.DatasetPath != "/data/cats" || a.ModelName != "base" || a.ModelHash != "beef" || a.StepsTotal != 6 || a.StepsDone != 0 {
		t.Errorf("new run = %+v", a)
	}
	if _, err := db.CreateRun(NewRun{DatasetID: ds.ID, BaseModel: "m", ConfigJSON: "{}", StepsTotal: -1}); err == nil {
		t.Error("CreateRun accepted -1 planned steps")
	}
	if err := db.SetRunDir(a.ID, "/d/runs/1-cats"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRunOutput(a.ID, "/out/cats2.safetensors"); err != nil {
		t.Fatal(err)
	}
	if r, err := db.Run(a.ID); err != nil || r.OutputPath != "/out/cats2.safetensors" || r.RunDir != "/d/runs/1-cats" {
		t.Errorf("run after SetRunDir and SetRunOutput = %+v, %v", r, err)
	}
	if err := db.SetRunDir(9999, "/x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetRunDir of a missing run: %v", err)
	}
	b, err := db.CreateRun(NewRun{DatasetID: ds.ID, Name: "dogs", BaseModel: "m", ConfigJSON: "{}", StepsTotal: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Steps recorded out of order (a resume repeats steps): steps done follows the last
	// recorded step, the last loss the highest step.
	for _, m := range []Metric{{Step: 1, Loss: 0.5, Seconds: 2}, {Step: 3, Loss: 0.25, Seconds: 1.5}, {Step: 2, Loss: 0.375, Seconds: 1}} {
		m.RunID, m.LR = a.ID, 1e-4
		if err := db.AddMetric(m); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := db.Metrics(a.ID)
	if err != nil || len(ms) != 3 || ms[0].Seconds != 2 || ms[2].Seconds != 1.5 {
		t.Errorf("Metrics = %+v, %v", ms, err)
	}
	if err := db.SetRunSteps(a.ID, 3, 8); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRunSteps(a.ID, -1, 8); err == nil {
		t.Error("SetRunSteps accepted -1 steps done")
	}
	for _, f := range []RunFile{
		{Kind: FileCheckpoint, Path: "/d/runs/1-cats/cats-000002.safetensors", Step: 2},
		{Kind: FileState, Path: "/d/runs/1-cats/checkpoints/state-000002", Step: 2},
		{Kind: FileOutput, Path: "/out/cats.safetensors", Step: 3},
	} {
		f.RunID = a.ID
		if _, err := db.AddRunFile(f); err != nil {
			t.Fatal(err)
		}
	}
	// The same checkpoint written again (after a resume) replaces its row.
	again, err := db.AddRunFile(RunFile{RunID: a.ID, Kind: FileCheckpoint, Path: "/d/runs/1-cats/cats-000002.safetensors", Step: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddRunFile(RunFile{RunID: a.ID, Kind: "model", Path: "/x"}); err == nil {
		t.Error("AddRunFile accepted an unknown kind")
	}
	if _, err := db.AddRunFile(RunFile{RunID: a.ID, Kind: FileOutput}); err == nil {
		t.Error("AddRunFile accepted an empty path")
	}
	if _, err := db.AddRunFile(RunFile{RunID: 9999, Kind: FileOutput, Path: "/x"}); err == nil {
		t.Error("AddRunFile accepted a missing run")
	}
	files, err := db.RunFiles(a.ID)
	if err != nil || len(files) != 3 || files[0].Kind != FileCheckpoint || files[0].ID != again.ID || files[2].Kind != FileOutput || files[2].Step != 3 {
		t.Errorf("RunFiles = %+v, %v", files, err)
	}
	if err := db.UpdateRunStatus(a.ID, RunDone, ""); err != nil {
		t.Fatal(err)
	}

	sums, err := db.RunSummaries(0)
	if err != nil || len(sums) != 2 {
		t.Fatalf("RunSummaries = %+v, %v", sums, err)
	}
	if sums[0].ID != b.ID || sums[0].LastLoss != nil || len(sums[0].Outputs) != 0 || sums[0].Name != "dogs" {
		t.Errorf("newest summary = %+v", sums[0])
	}
	s := sums[1]
	if s.ID != a.ID || s.Status != RunDone || s.StepsDone != 3 || s.StepsTotal != 8 || s.RunDir != "/d/runs/1-cats" ||
		s.LastLoss == nil || *s.LastLoss != 0.25 || len(s.Outputs) != 1 || s.Outputs[0].Path != "/out/cats.safetensors" {
		t.Errorf("older summary = %+v", s)
	}
	if one, err := db.RunSummaries(1); err != nil || len(one) != 1 || one[0].ID != b.ID {
		t.Errorf("RunSummaries(1) = %+v, %v", one, err)
	}
	// Deleting a run removes its files' rows with it.
	if _, err := db.sql.Exec(`DELETE FROM runs WHERE id = ?`, a.ID); err != nil {
		t.Fatal(err)
	}
	if files, err := db.RunFiles(a.ID); err != nil || len(files) != 0 {
		t.Errorf("files of a deleted run: %+v, %v", files, err)
	}
}
