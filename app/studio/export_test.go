package studio

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// decodeTOML parses a TOML file with a real parser (BurntSushi/toml).
func decodeTOML(t *testing.T, p string) map[string]any {
	t.Helper()
	var m map[string]any
	if _, err := toml.DecodeFile(p, &m); err != nil {
		b, _ := os.ReadFile(p)
		t.Fatalf("%s does not parse as TOML: %v\n%s", p, err, b)
	}
	return m
}

// flatTrainConfig flattens train_config.toml's tables as sd-scripts'
// read_config_from_file does: every key of every table is an option.
func flatTrainConfig(t *testing.T, p string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range decodeTOML(t, p) {
		if tbl, ok := v.(map[string]any); ok {
			for k2, v2 := range tbl {
				if _, dup := out[k2]; dup {
					t.Errorf("%s: option %s in two tables", p, k2)
				}
				out[k2] = v2
			}
			continue
		}
		out[k] = v
	}
	return out
}

// snapshot maps every file under root to its bytes.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExportTOMLHoldsSettings exports the same dataset under each setting
// and reads both TOML files back with a real parser: every sd-scripts option
// holds the setting's value.
func TestExportTOMLHoldsSettings(t *testing.T) {
	s := newStudio(t)
	ds := trainDataset(t)
	for _, tc := range []struct {
		name   string
		change func(c *TrainConfig)
		want   map[string]any // train_config.toml options
		subset map[string]any // every [[datasets.subsets]]
		data   map[string]any // [[datasets]] and [general]
		absent []string       // options that must not be written
	}{
		{name: "defaults", change: func(c *TrainConfig) {},
			want: map[string]any{
				"network_module": "networks.lora", "network_dim": int64(8), "network_alpha": 16.0, "network_train_unet_only": true,
				"learning_rate": 1e-4, "optimizer_type": "AdamW", "lr_scheduler": "constant", "lr_warmup_steps": int64(0),
				"max_train_epochs": int64(10), "max_train_steps": int64(50), "seed": int64(42), "gradient_checkpointing": true,
				"cache_latents": true, "cache_latents_to_disk": true, "cache_text_encoder_outputs": true, "save_model_as": "safetensors",
				"output_dir": "output", "save_every_n_steps": int64(500), "sample_every_n_steps": int64(500),
				"sample_prompts": "sample_prompts.txt", "mixed_precision": "fp16", "save_precision": "fp16",
				"max_grad_norm": 1.0, "gradient_accumulation_steps": int64(1),
				"optimizer_args": []any{"weight_decay=0.01", "betas=(0.9,0.999)", "eps=1e-08"},
			},
			subset: map[string]any{"caption_extension": ".txt", "keep_tokens": int64(0), "shuffle_caption": false, "flip_aug": false, "random_crop": false, "caption_dropout_rate": 0.0},
			data:   map[string]any{"resolution": int64(1024), "batch_size": int64(1), "enable_bucket": true, "min_bucket_reso": int64(256), "max_bucket_reso": int64(2048), "bucket_reso_steps": int64(64)},
			absent: []string{"min_snr_gamma", "noise_offset", "network_dropout"},
		},
		{name: "network", change: func(c *TrainConfig) { c.Rank, c.Alpha, c.Targets, c.Dropout = 32, 4.5, "attn-mlp", 0.1 },
			want: map[string]any{"network_dim": int64(32), "network_alpha": 4.5, "network_dropout": 0.10000000149011612}},
		{name: "optimizer", change: func(c *TrainConfig) {
			c.LR, c.Scheduler, c.WarmupSteps, c.MaxSteps, c.WeightDecay, c.GradAccum, c.MaxGradNorm = 3e-5, "cosine", 20, 700, 0.05, 4, 0.5
		},
			want:   map[string]any{"learning_rate": 3e-5, "lr_scheduler": "cosine", "lr_warmup_steps": int64(20), "max_train_steps": int64(700), "gradient_accumulation_steps": int64(4), "max_grad_norm": 0.5, "optimizer_args": []any{"weight_decay=0.05", "betas=(0.9,0.999)", "eps=1e-08"}},
			absent: []string{"max_train_epochs"}},
		{name: "constant with warmup", change: func(c *TrainConfig) { c.WarmupSteps = 10 },
			want: map[string]any{"lr_scheduler": "constant_with_warmup", "lr_warmup_steps": int64(10)}},
		{name: "objective", change: func(c *TrainConfig) { c.MinSNRGamma, c.NoiseOffset, c.Seed = 5, 0.0357, 1234567 },
			want: map[string]any{"min_snr_gamma": 5.0, "noise_offset": 0.0357, "seed": int64(1234567)}},
		{name: "memory and saving", change: func(c *TrainConfig) {
			c.GradientCheckpointing, c.SavePrecision, c.SaveEvery, c.SampleEvery = false, "fp32", 0, 0
		},
			want:   map[string]any{"gradient_checkpointing": false, "save_precision": "float"},
			absent: []string{"save_every_n_steps", "sample_every_n_steps", "sample_prompts"}},
		{name: "captions", change: func(c *TrainConfig) {
			c.Data.ShuffleTags, c.Data.KeepTags, c.Data.Flip, c.Data.CaptionDropout = true, 2, true, 0.15
		},
			want:   map[string]any{"cache_text_encoder_outputs": false, "cache_latents": true},
			subset: map[string]any{"shuffle_caption": true, "keep_tokens": int64(2), "flip_aug": true, "caption_dropout_rate": 0.15}},
		{name: "buckets", change: func(c *TrainConfig) {
			c.Data.Resolution, c.Data.MinSide, c.Data.MaxSide, c.Data.BucketStep, c.Batch = 768, 320, 1536, 32, 3
		},
			data: map[string]any{"resolution": int64(768), "min_bucket_reso": int64(320), "max_bucket_reso": int64(1536), "bucket_reso_steps": int64(32), "batch_size": int64(3)}},
		{name: "no buckets, random crop", change: func(c *TrainConfig) { c.Data.NoBuckets, c.Data.RandomCrop = true, true },
			want:   map[string]any{"cache_latents": false, "cache_latents_to_disk": false},
			subset: map[string]any{"random_crop": true},
			data:   map[string]any{"enable_bucket": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultTrainConfig()
			tc.change(&cfg)
			to := filepath.Join(t.TempDir(), "export")
			res, err := s.Export(ExportRequest{Dataset: ds, Model: "stabilityai/stable-diffusion-xl-base-1.0", Name: "my lora", Config: cfg, To: to})
			if err != nil {
				t.Fatal(err)
			}
			opts := flatTrainConfig(t, filepath.Join(to, ExportTrainConfig))
			if opts["pretrained_model_name_or_path"] != "stabilityai/stable-diffusion-xl-base-1.0" || opts["output_name"] != "my_lora" {
				t.Errorf("model %v, output_name %v", opts["pretrained_model_name_or_path"], opts["output_name"])
			}
			for k, want := range tc.want {
				if got, ok := opts[k]; !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("train_config.toml %s = %#v (present %v), want %#v", k, got, ok, want)
				}
			}
			for _, k := range tc.absent {
				if v, ok := opts[k]; ok {
					t.Errorf("train_config.toml %s = %#v, want it left out", k, v)
				}
			}
			if steps, ok := opts["max_train_steps"].(int64); !ok || int(steps) != res.Steps {
				t.Errorf("max_train_steps %v, result's steps %d", opts["max_train_steps"], res.Steps)
			}
			dc := decodeTOML(t, filepath.Join(to, ExportDatasetConfig))
			general, _ := dc["general"].(map[string]any)
			dss, _ := dc["datasets"].([]map[string]any)
			if len(dss) != 1 {
				t.Fatalf("datasets %#v", dc["datasets"])
			}
			for k, want := range tc.data {
				got, ok := dss[0][k]
				if !ok {
					got, ok = general[k]
				}
				if !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("dataset_config.toml %s = %#v, want %#v", k, got, want)
				}
			}
			subs, _ := dss[0]["subsets"].([]map[string]any)
			if len(subs) != 2 {
				t.Fatalf("subsets %#v", dss[0]["subsets"])
			}
			for _, sub := range subs {
				for k, want := range tc.subset {
					if got := sub[k]; !reflect.DeepEqual(got, want) {
						t.Errorf("subset %v: %s = %#v, want %#v", sub["image_dir"], k, got, want)
					}
				}
			}
		})
	}
}

// TestExportView checks the kohya-layout view of both dataset layouts:
// every image (the same bytes, hard-linked) with its caption on one line
// beside it, in an N_name folder whose N is the subset's num_repeats; the
// dataset folder is left as it was; a second export replaces the view.
func TestExportView(t *testing.T) {
	s := newStudio(t)
	kohya := trainDataset(t)
	writePNG(t, filepath.Join(kohya, "2_cats", "deep", "d.png"), 64, 48, 9)
	os.WriteFile(filepath.Join(kohya, "2_cats", "deep", "d.txt"), []byte("line one\nline \"two\"\n"), 0o644)
	tutorial := t.TempDir()
	for i, n := range []string{"x", "y"} {
		writePNG(t, filepath.Join(tutorial, "images", n+".png"), 64, 64, i+20)
		mkdirs(t, filepath.Join(tutorial, "captions", n+".txt"))
		os.WriteFile(filepath.Join(tutorial, "captions", n+".txt"), []byte("a caption of "+n+"\n"), 0o644)
	}
	for _, tc := range []struct {
		name, dataset string
		want          map[string]map[string]string // view folder → image → caption
		repeats       map[string]int64
	}{
		{"kohya", kohya, map[string]map[string]string{
			"2_cats": {"a.png": "sks cat, sitting, grass", "b.png": "sks cat, grass", "d.png": "line one line \"two\""},
			"1_dogs": {"c.png": "a dog"},
		}, map[string]int64{"2_cats": 2, "1_dogs": 1}},
		{"tutorial", tutorial, map[string]map[string]string{
			"1_images": {"x.png": "a caption of x", "y.png": "a caption of y"},
		}, map[string]int64{"1_images": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, tc.dataset)
			to := filepath.Join(t.TempDir(), "export")
			res, err := s.Export(ExportRequest{Dataset: tc.dataset, Model: "/cluster/sdxl.safetensors", Config: DefaultTrainConfig(), To: to})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(snapshot(t, tc.dataset), before) {
				t.Error("the export changed the dataset folder")
			}
			n := 0
			for dir, imgs := range tc.want {
				for img, caption := range imgs {
					n++
					p := filepath.Join(to, ExportViewDir, dir, img)
					got, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					var src string
					for q, b := range before {
						if filepath.Base(q) == img {
							src = q
							if b != string(got) {
								t.Errorf("%s differs from %s", p, q)
							}
						}
					}
					a, _ := os.Stat(p)
					b, _ := os.Stat(src)
					if !os.SameFile(a, b) {
						t.Errorf("%s is not a hard link of %s", p, src)
					}
					c, err := os.ReadFile(strings.TrimSuffix(p, ".png") + ".txt")
					if err != nil || string(c) != caption+"\n" {
						t.Errorf("caption of %s: %q (%v), want %q", p, c, err, caption)
					}
				}
			}
			if res.Images != n || res.Linked != n || res.Copied != 0 {
				t.Errorf("result: %d images, %d linked, %d copied; want %d linked", res.Images, res.Linked, res.Copied, n)
			}
			subs := decodeTOML(t, filepath.Join(to, ExportDatasetConfig))["datasets"].([]map[string]any)[0]["subsets"].([]map[string]any)
			got := map[string]int64{}
			for _, sub := range subs {
				dir := sub["image_dir"].(string)
				if st, err := os.Stat(filepath.Join(to, dir)); err != nil || !st.IsDir() {
					t.Errorf("image_dir %s is not a folder of the export", dir)
				}
				got[strings.TrimPrefix(dir, ExportViewDir+"/")] = sub["num_repeats"].(int64)
			}
			if !reflect.DeepEqual(got, tc.repeats) {
				t.Errorf("subsets' repeats %v, want %v", got, tc.repeats)
			}
			// A second export with a different folder set replaces the view whole.
			stale := filepath.Join(to, ExportViewDir, "9_stale")
			os.Mkdir(stale, 0o755)
			if _, err := s.Export(ExportRequest{Dataset: tc.dataset, Model: "/cluster/sdxl.safetensors", Config: DefaultTrainConfig(), To: to}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a folder of the old view survived the new export: %v", err)
			}
			if !reflect.DeepEqual(snapshot(t, tc.dataset), before) {
				t.Error("re-exporting changed the dataset folder")
			}
		})
	}
}

// TestExportRefuses checks the requests an export refuses, each naming the
// folder at fault, with nothing written into the dataset.
func TestExportRefuses(t *testing.T) {
	s := newStudio(t)
	ds := trainDataset(t)
	theirs := t.TempDir()
	os.MkdirAll(filepath.Join(theirs, ExportViewDir), 0o755)
	os.WriteFile(filepath.Join(theirs, ExportViewDir, "keep.txt"), []byte("mine"), 0o644)
	uncaptioned := trainDataset(t)
	os.Remove(filepath.Join(uncaptioned, "1_dogs", "c.txt"))
	cfg := DefaultTrainConfig()
	for _, tc := range []struct {
		name string
		req  ExportRequest
		want string
	}{
		{"inside the dataset", ExportRequest{Dataset: ds, Model: "m", Config: cfg, To: filepath.Join(ds, "out")}, ds},
		{"a dataset folder that is not a view", ExportRequest{Dataset: ds, Model: "m", Config: cfg, To: theirs}, filepath.Join(theirs, ExportViewDir)},
		{"uncaptioned", ExportRequest{Dataset: uncaptioned, Model: "m", Config: cfg, To: t.TempDir()}, filepath.Join(uncaptioned, "1_dogs", "c.png")},
		{"no model", ExportRequest{Dataset: ds, Config: cfg, To: t.TempDir()}, "--model"},
		{"machines without an address", ExportRequest{Dataset: ds, Model: "m", Config: cfg, To: t.TempDir(), NumProcesses: 4, NumMachines: 2}, "main-process-ip"},
		{"rank out of range", ExportRequest{Dataset: ds, Model: "m", Config: cfg, To: t.TempDir(), NumProcesses: 4, NumMachines: 2, MachineRank: 2, MainProcessIP: "10.0.0.1"}, "machine-rank 2"},
		{"bad setting", ExportRequest{Dataset: ds, Model: "m", Config: func() TrainConfig { c := cfg; c.Rank = 0; return c }(), To: t.TempDir()}, "rank 0"},
		{"a prompt sd-scripts would split", ExportRequest{Dataset: ds, Model: "m", Config: func() TrainConfig {
			c := cfg
			c.SamplePrompts = []string{"a cat --w 5"}
			return c
		}(), To: t.TempDir()}, "a cat --w 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, ds)
			_, err := s.Export(tc.req)
			if !errors.Is(err, ErrInvalidExport) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalidExport naming %q", err, tc.want)
			}
			if !reflect.DeepEqual(snapshot(t, ds), before) {
				t.Error("the dataset changed")
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(theirs, ExportViewDir, "keep.txt")); string(b) != "mine" {
		t.Error("a folder the export did not write was touched")
	}
	// Allowed, an uncaptioned image gets no caption file (sd-scripts then
	// trains it on an empty caption).
	to := t.TempDir()
	res, err := s.Export(ExportRequest{Dataset: uncaptioned, Model: "m", Config: cfg, To: to, AllowUncaptioned: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Uncaptioned) != 1 {
		t.Errorf("uncaptioned %v", res.Uncaptioned)
	}
	if _, err := os.Stat(filepath.Join(to, ExportViewDir, "1_dogs", "c.png")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(to, ExportViewDir, "1_dogs", "c.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("caption file of an uncaptioned image: %v", err)
	}
}

// TestExportLaunchAndPrompts checks launch.sh for one and several machines
// and that sample_prompts.txt reads back, as sd-scripts reads it, to the
// prompts with their size, seed, steps and scale.
func TestExportLaunchAndPrompts(t *testing.T) {
	s := newStudio(t)
	ds := trainDataset(t)
	cfg := DefaultTrainConfig()
	cfg.SamplePrompts = []string{"a \"quoted\" cat\\", "#tag first", "two\nlines"}
	cfg.SampleSize, cfg.SampleSeed, cfg.SampleSteps, cfg.SampleGuidance = 512, 7, 30, 6.5
	to := t.TempDir()
	res, err := s.Export(ExportRequest{Dataset: ds, Model: "m", Config: cfg, To: to, NumProcesses: 16, NumMachines: 2, MachineRank: 1, MainProcessIP: "10.1.2.3", MixedPrecision: "bf16"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(to, ExportLaunch))
	launch := string(b)
	for _, want := range []string{"accelerate launch", "--num_processes 16", "--multi_gpu", "--num_machines 2", "MACHINE_RANK=\"${MACHINE_RANK:-1}\"",
		"--machine_rank \"$MACHINE_RANK\"", "--main_process_ip '10.1.2.3'", "--main_process_port 29500", "--mixed_precision bf16",
		"sdxl_train_network.py\"", "--config_file train_config.toml", "--dataset_config dataset_config.toml"} {
		if !strings.Contains(launch, want) {
			t.Errorf("launch.sh lacks %q:\n%s", want, launch)
		}
	}
	if st, _ := os.Stat(filepath.Join(to, ExportLaunch)); st.Mode().Perm()&0o111 == 0 {
		t.Errorf("launch.sh mode %v: not executable", st.Mode())
	}
	prompts, err := readSamplePrompts(filepath.Join(to, ExportSamplePrompts))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a \"quoted\" cat\\", "#tag first", "two lines"}; !reflect.DeepEqual(prompts, want) {
		t.Errorf("prompts read back %q, want %q", prompts, want)
	}
	b, _ = os.ReadFile(filepath.Join(to, ExportSamplePrompts))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" && l[0] != '#' {
			lines = append(lines, l)
		}
	}
	for i, l := range lines {
		want := " --w 512 --h 512 --d " + []string{"7", "8", "9"}[i] + " --s 30 --l 6.5"
		if !strings.HasSuffix(l, want) {
			t.Errorf("prompt line %q lacks %q", l, want)
		}
	}
	if opts := flatTrainConfig(t, filepath.Join(to, ExportTrainConfig)); opts["mixed_precision"] != "bf16" {
		t.Errorf("mixed_precision %v", opts["mixed_precision"])
	}
	// One machine, one GPU: no multi-GPU flags.
	to1 := t.TempDir()
	if _, err := s.Export(ExportRequest{Dataset: ds, Model: "m", Config: DefaultTrainConfig(), To: to1}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(to1, ExportLaunch))
	if !strings.Contains(string(b), "--num_processes 1") || strings.Contains(string(b), "--multi_gpu") || strings.Contains(string(b), "--num_machines") {
		t.Errorf("single-GPU launch.sh:\n%s", b)
	}
	readme, _ := os.ReadFile(filepath.Join(to, ExportReadme))
	if len(res.Notes) == 0 || !bytes.Contains(readme, []byte(res.Notes[0])) || !bytes.Contains(readme, []byte("lorastudio train import")) {
		t.Errorf("README.txt lacks the notes %q or the import:\n%s", res.Notes, readme)
	}
	files := append([]string(nil), res.Files...)
	sort.Strings(files)
	if len(files) != 6 {
		t.Errorf("files %v", files)
	}
}

// TestEncodeTOMLStrings round-trips strings with every kind of character
// that needs escaping through the encoder and a real parser.
func TestEncodeTOMLStrings(t *testing.T) {
	vals := []string{"", "plain", `back\slash`, `"quoted"`, "tab\tnew\nline\r", "bell\x07 del\x7f", "ünïcödé ✓ 日本", "'single'", `C:\models\sdxl.safetensors`}
	var kvs []tomlKV
	for i, v := range vals {
		kvs = append(kvs, tomlKV{Key: "k" + string(rune('a'+i)), Value: v})
	}
	kvs = append(kvs, tomlKV{Key: "list", Value: vals}, tomlKV{Key: "f", Value: 2.0}, tomlKV{Key: "g", Value: 1e-8})
	doc, err := encodeTOML("header", []tomlTable{{Header: "[t]", Keys: kvs}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	if _, err := toml.Decode(doc, &m); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	for i, v := range vals {
		if got := m["t"]["k"+string(rune('a'+i))]; got != v {
			t.Errorf("string %q read back as %q", v, got)
		}
	}
	if m["t"]["f"] != 2.0 || m["t"]["g"] != 1e-8 {
		t.Errorf("floats read back as %#v, %#v", m["t"]["f"], m["t"]["g"])
	}
	if _, err := encodeTOML("", []tomlTable{{Keys: []tomlKV{{Key: "bad key", Value: 1}}}}); err == nil {
		t.Error("a key with a space was written bare")
	}
	if _, err := encodeTOML("", []tomlTable{{Keys: []tomlKV{{Key: "x", Value: "\xff"}}}}); err == nil {
		t.Error("invalid UTF-8 was written")
	}
}

// TestExportCopiesOrFollowsLinks checks the view of a dataset whose image is
// a relative symbolic link: linked, the view holds the target's file (not a
// dangling link); when hard links fail (another file system), the view
// holds copies of the same bytes.
func TestExportCopiesOrFollowsLinks(t *testing.T) {
	s := newStudio(t)
	ds := trainDataset(t)
	elsewhere := filepath.Join(t.TempDir(), "e.png")
	writePNG(t, elsewhere, 64, 64, 7)
	rel, err := filepath.Rel(filepath.Join(ds, "1_dogs"), elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rel, filepath.Join(ds, "1_dogs", "e.png")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	os.WriteFile(filepath.Join(ds, "1_dogs", "e.txt"), []byte("linked"), 0o644)

	to := t.TempDir()
	res, err := s.Export(ExportRequest{Dataset: ds, Model: "m", Config: DefaultTrainConfig(), To: to})
	if err != nil {
		t.Fatal(err)
	}
	view := filepath.Join(to, ExportViewDir, "1_dogs", "e.png")
	st, err := os.Lstat(view)
	if err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("view of a linked image: %v, mode %v", err, st.Mode())
	}
	target, _ := os.Stat(elsewhere)
	if !os.SameFile(st, target) || res.Linked != 4 {
		t.Errorf("the view's image is not the link's target (%d linked)", res.Linked)
	}

	hardLink = func(string, string) error { return &os.LinkError{Op: "link", Err: errors.New("cross-device link")} }
	defer func() { hardLink = os.Link }()
	to2 := t.TempDir()
	res, err = s.Export(ExportRequest{Dataset: ds, Model: "m", Config: DefaultTrainConfig(), To: to2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 4 || res.Linked != 0 {
		t.Errorf("%d copied, %d linked; want 4 copies", res.Copied, res.Linked)
	}
	for _, p := range []string{filepath.Join("1_dogs", "e.png"), filepath.Join("2_cats", "a.png")} {
		got, err := os.ReadFile(filepath.Join(to2, ExportViewDir, p))
		src := elsewhere
		if !strings.HasSuffix(p, "e.png") {
			src = filepath.Join(ds, p)
		}
		orig, _ := os.ReadFile(src)
		a, _ := os.Stat(filepath.Join(to2, ExportViewDir, p))
		b, _ := os.Stat(src)
		if err != nil || !bytes.Equal(got, orig) || os.SameFile(a, b) {
			t.Errorf("copy %s: %v, same bytes %v, same file %v", p, err, bytes.Equal(got, orig), os.SameFile(a, b))
		}
	}
}
