package sdxl

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
)

// TestParamsMatchRealManifest derives every component's parameter list from
// the real SDXL base configs and compares it, name by name, shape by shape and
// in order, with the manifest taken from the reference's own module tree.
func TestParamsMatchRealManifest(t *testing.T) {
	cfg := manifestConfig(t)
	var m diffusersManifest
	readJSON(t, filepath.Join(fixtures.Manifest(t), "manifest_diffusers.json"), &m)
	var total int64
	for _, comp := range Components {
		ps, err := ComponentParams(cfg, comp)
		if err != nil {
			t.Fatal(err)
		}
		want := m.Components[comp]
		if len(want) == 0 {
			t.Fatalf("manifest has no %s tensors", comp)
		}
		for i := 0; i < max(len(ps), len(want)); i++ {
			switch {
			case i >= len(ps):
				t.Fatalf("%s: derived list ends at %d; manifest goes on with %s", comp, i, want[i].Name)
			case i >= len(want):
				t.Fatalf("%s: derived list has extra %s at %d", comp, ps[i].Name, i)
			case ps[i].Name != want[i].Name || !reflect.DeepEqual(ps[i].Shape, want[i].Shape):
				t.Fatalf("%s[%d]: derived %s %v, manifest %s %v", comp, i, ps[i].Name, ps[i].Shape, want[i].Name, want[i].Shape)
			}
		}
		if got := CountParams(ps); got != m.ParamCounts[comp] {
			t.Errorf("%s: %d parameters, manifest %d", comp, got, m.ParamCounts[comp])
		}
		if len(ps) != m.TensorCounts[comp] {
			t.Errorf("%s: %d tensors, manifest %d", comp, len(ps), m.TensorCounts[comp])
		}
		total += CountParams(ps)
	}
	// The counts the fixtures README states for the real checkpoints.
	want := map[string]int64{UNet: 2567463684, VAE: 83653863, TextEncoder: 123060480, TextEncoder2: 694659840}
	for comp, n := range want {
		ps, _ := ComponentParams(cfg, comp)
		if got := CountParams(ps); got != n {
			t.Errorf("%s: %d parameters, want %d", comp, got, n)
		}
	}
	if total != 3468837867 {
		t.Errorf("total %d parameters, want 3468837867", total)
	}
}

// TestParamsMatchTinyFiles compares the derived lists for the tiny model's
// configs with the tensors its files hold (none missing, none left over).
func TestParamsMatchTinyFiles(t *testing.T) {
	dir := filepath.Join(fixtures.Root(t), "model")
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range Components {
		ps, err := ComponentParams(cfg, comp)
		if err != nil {
			t.Fatal(err)
		}
		path, err := componentFile(dir, comp)
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, n := range f.Names() {
			names[n] = true
		}
		for _, p := range ps {
			info, ok := f.Tensor(p.Name)
			if !ok {
				t.Errorf("%s: %s missing from %s", comp, p.Name, path)
				continue
			}
			if !reflect.DeepEqual(info.Shape, p.Shape) {
				t.Errorf("%s: %s is %v in the file, derived %v", comp, p.Name, info.Shape, p.Shape)
			}
			delete(names, p.Name)
		}
		if len(names) > 0 {
			t.Errorf("%s: file tensors not derived from the config: %v", comp, names)
		}
		f.Close()
	}
}

func TestDefaultConfigIsSDXLBase(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.UNet, SDXLBaseUNet()) {
		t.Errorf("embedded unet config\n%+v\nconstructor\n%+v", cfg.UNet, SDXLBaseUNet())
	}
	if !reflect.DeepEqual(cfg.VAE, SDXLBaseVAE()) {
		t.Errorf("embedded vae config %+v, constructor %+v", cfg.VAE, SDXLBaseVAE())
	}
	if !reflect.DeepEqual(cfg.TextEncoder, SDXLBaseTextEncoder()) {
		t.Errorf("embedded text_encoder config %+v, constructor %+v", cfg.TextEncoder, SDXLBaseTextEncoder())
	}
	if !reflect.DeepEqual(cfg.TextEncoder2, SDXLBaseTextEncoder2()) {
		t.Errorf("embedded text_encoder_2 config %+v, constructor %+v", cfg.TextEncoder2, SDXLBaseTextEncoder2())
	}
	if !reflect.DeepEqual(cfg.Scheduler, SDXLBaseScheduler()) {
		t.Errorf("embedded scheduler config\n%+v\nconstructor\n%+v", cfg.Scheduler, SDXLBaseScheduler())
	}
	if !cfg.Index.ForceZerosForEmptyPrompt || cfg.Index.Components[TextEncoder2] != [2]string{"transformers", "CLIPTextModelWithProjection"} {
		t.Errorf("model index %+v", cfg.Index)
	}
	if !reflect.DeepEqual(cfg, SDXLBase()) {
		t.Errorf("DefaultConfig %+v\nSDXLBase %+v", cfg, SDXLBase())
	}
	// The embedded files are the manifest's own.
	if m := manifestConfig(t); !reflect.DeepEqual(m.UNet, cfg.UNet) || !reflect.DeepEqual(m.TextEncoder2, cfg.TextEncoder2) {
		t.Error("embedded configs differ from the manifest's configs/")
	}
}

// TestLoadConfigTiny loads the fixture model's configs: each field checked
// here is the value its config.json holds.
func TestLoadConfigTiny(t *testing.T) {
	dir := filepath.Join(fixtures.Root(t), "model")
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	var vae struct {
		ScalingFactor float64 `json:"scaling_factor"`
	}
	var te1, te2 struct {
		HiddenAct string `json:"hidden_act"`
	}
	var sched struct {
		TimestepSpacing   string `json:"timestep_spacing"`
		NumTrainTimesteps int    `json:"num_train_timesteps"`
	}
	readJSON(t, filepath.Join(dir, "vae", "config.json"), &vae)
	readJSON(t, filepath.Join(dir, "text_encoder", "config.json"), &te1)
	readJSON(t, filepath.Join(dir, "text_encoder_2", "config.json"), &te2)
	readJSON(t, filepath.Join(dir, "scheduler", "scheduler_config.json"), &sched)
	if cfg.UNet.LayersPerBlock <= 0 || len(cfg.UNet.BlockOutChannels) == 0 || vae.ScalingFactor == 0 || cfg.VAE.ScalingFactor != vae.ScalingFactor {
		t.Errorf("unet %+v vae %+v (vae/config.json scaling_factor %v)", cfg.UNet, cfg.VAE, vae.ScalingFactor)
	}
	if cfg.TextEncoder.HiddenAct != te1.HiddenAct || cfg.TextEncoder2.HiddenAct != te2.HiddenAct || !cfg.TextEncoder2.WithProjection() || cfg.TextEncoder.WithProjection() {
		t.Errorf("text encoders %+v %+v (hidden_act %q, %q)", cfg.TextEncoder, cfg.TextEncoder2, te1.HiddenAct, te2.HiddenAct)
	}
	if sched.TimestepSpacing == "" || cfg.Scheduler.Raw["timestep_spacing"] != sched.TimestepSpacing || cfg.Scheduler.NumTrainTimesteps != sched.NumTrainTimesteps {
		t.Errorf("scheduler %+v (scheduler_config.json %+v)", cfg.Scheduler, sched)
	}
}

func TestIntOrList(t *testing.T) {
	var c UNetConfig
	if err := decodeStrict("x.json", []byte(`{"transformer_layers_per_block": 3, "attention_head_dim": [1,2], "num_attention_heads": null}`), nil, &c); err != nil {
		t.Fatal(err)
	}
	if c.TransformerLayersPerBlock.At(0) != 3 || c.TransformerLayersPerBlock.At(2) != 3 || c.AttentionHeadDim.At(1) != 2 || c.NumAttentionHeads != nil {
		t.Errorf("%+v", c)
	}
	if err := decodeStrict("x.json", []byte(`{"transformer_layers_per_block": "three"}`), nil, &c); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("bad value: %v", err)
	}
}

// TestConfigErrors checks that a bad config names its file and the field.
func TestConfigErrors(t *testing.T) {
	base := mustEmbedded("unet.json")
	cases := []struct {
		name, edit, want string
	}{
		{"missing field", `"layers_per_block": 2,`, "missing required field(s) layers_per_block"},
		{"null field", `"cross_attention_dim": 2048`, "missing required field(s) cross_attention_dim"},
		{"unknown block", `"DownBlock2D"`, `down_block_types[0] "SimpleDownBlock2D"`},
		{"not sdxl", `"addition_embed_type": "text_time"`, `addition_embed_type "text"`},
		{"list length", `"transformer_layers_per_block": [`, "transformer_layers_per_block has 4 values for 3 blocks"},
	}
	repl := map[string]string{
		"missing field": ``,
		"null field":    `"cross_attention_dim": null`,
		"unknown block": `"SimpleDownBlock2D"`,
		"not sdxl":      `"addition_embed_type": "text"`,
		"list length":   `"transformer_layers_per_block": [7, `,
	}
	for _, c := range cases {
		s := strings.Replace(string(base), c.edit, repl[c.name], 1)
		if s == string(base) {
			t.Fatalf("%s: edit %q did not apply", c.name, c.edit)
		}
		_, err := parseConfigs(func(key string) (string, []byte, error) {
			if key == UNet {
				return "dir/unet/config.json", []byte(s), nil
			}
			files := map[string]string{"model_index": "model_index.json", VAE: "vae.json",
				TextEncoder: "text_encoder.json", TextEncoder2: "text_encoder_2.json", "scheduler": "scheduler.json"}
			return files[key], mustEmbedded(files[key]), nil
		})
		if err == nil || !strings.Contains(err.Error(), "dir/unet/config.json") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming dir/unet/config.json and %q", c.name, err, c.want)
		}
	}
	// A missing file is named.
	_, err := LoadConfig(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "model_index.json") {
		t.Errorf("empty folder: %v", err)
	}
}

func ExampleUNetParams() {
	ps, _ := UNetParams(SDXLBaseUNet())
	fmt.Println(len(ps), CountParams(ps), ps[0].Name, ps[0].Shape)
	// Output: 1680 2567463684 conv_in.weight [320 4 3 3]
}
