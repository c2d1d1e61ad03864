package sdxl

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"lorastudio/engine/safetensors"
)

func TestInspectTinyBothForms(t *testing.T) {
	dir, single := tinyPaths(t)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(single, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "diffusers" || s.Format != "single-file" {
		t.Errorf("formats %q %q", d.Format, s.Format)
	}
	var total int64
	for _, comp := range Components {
		ps, err := ComponentParams(cfg, comp)
		if err != nil {
			t.Fatal(err)
		}
		dc, sc := d.Components[comp], s.Components[comp]
		if dc.Params != CountParams(ps) || dc.Tensors != len(ps) {
			t.Errorf("%s: %d params in %d tensors, config gives %d in %d", comp, dc.Params, dc.Tensors, CountParams(ps), len(ps))
		}
		// Both forms hold the same fp16 data: every number agrees.
		if dc != sc {
			t.Errorf("%s: diffusers %+v, single file %+v", comp, dc, sc)
		}
		if dc.DType != "F16" || dc.Bytes != 2*dc.Params || dc.DeviceBytesF16 != 2*dc.Params || dc.DeviceBytesF32 != 4*dc.Params {
			t.Errorf("%s: %+v", comp, dc)
		}
		total += dc.Params
	}
	if d.Total.Params != total || d.Total.DType != "F16" {
		t.Errorf("total %+v, want %d params", d.Total, total)
	}
	// File sizes: the folder's four weight files; the single file itself.
	st, err := os.Stat(single)
	if err != nil {
		t.Fatal(err)
	}
	if s.FileBytes != st.Size() || d.FileBytes <= d.Total.Bytes || s.FileBytes <= s.Total.Bytes {
		t.Errorf("file bytes: folder %d (tensors %d), single %d (size %d)", d.FileBytes, d.Total.Bytes, s.FileBytes, st.Size())
	}
	if want := cfg.UNet.SampleSize << (len(cfg.VAE.BlockOutChannels) - 1); d.Resolution != want {
		t.Errorf("resolution %d, want %d", d.Resolution, want)
	}
	if !strings.Contains(s.Config, "given") || !strings.Contains(d.Config, dir) {
		t.Errorf("config sources %q %q", d.Config, s.Config)
	}

	// The JSON form the CLI prints.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Format     string `json:"format"`
		Components map[string]struct {
			Params int64  `json:"params"`
			DType  string `json:"dtype"`
			Bytes  int64  `json:"bytes"`
			F16    int64  `json:"device_bytes_fp16"`
			F32    int64  `json:"device_bytes_fp32"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j.Format != "diffusers" || len(j.Components) != 4 || j.Components["text_encoder_2"].Params != d.Components[TextEncoder2].Params || j.Components["unet"].DType != "F16" || j.Components["vae"].F32 == 0 {
		t.Errorf("json %s", b)
	}

	text := d.Text()
	for _, want := range []string{"format      diffusers", "unet", "text_encoder_2", "total", "F16", groupDigits(d.Components[UNet].Params)} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

// TestInfoRealSizes checks the sizes Info reports for the real SDXL base
// from the derived parameter lists.
func TestInfoRealSizes(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{UNet: 2567463684, VAE: 83653863, TextEncoder: 123060480, TextEncoder2: 694659840}
	for comp, n := range want {
		ps, err := ComponentParams(cfg, comp)
		if err != nil {
			t.Fatal(err)
		}
		ci := paramInfo(ps)
		if ci.Params != n || ci.DeviceBytesF16 != 2*n || ci.DeviceBytesF32 != 4*n {
			t.Errorf("%s: %+v, want %d params", comp, ci, n)
		}
	}
	if got := groupDigits(2567463684); got != "2,567,463,684" {
		t.Errorf("groupDigits %q", got)
	}
	if got := humanBytes(2 * 2567463684); got != "4.78 GiB" {
		t.Errorf("humanBytes %q", got)
	}
}

func TestInspectErrors(t *testing.T) {
	dir, single := tinyPaths(t)
	// The tiny file under SDXL base sizes names the first mismatching key.
	if _, err := Inspect(single); err == nil || !strings.Contains(err.Error(), "model.diffusion_model.input_blocks.0.0.weight") {
		t.Errorf("tiny file as SDXL base: %v", err)
	}
	// An unknown key fails Inspect, naming it.
	extra := rewrite(t, single, func(ts []safetensors.Tensor) []safetensors.Tensor {
		return append(ts, safetensors.Tensor{Name: "lora_unet_down.alpha", DType: "F16", Shape: []int{1}, Data: make([]byte, 2)})
	})
	if _, err := Inspect(extra, WithConfigDir(dir)); err == nil || !strings.Contains(err.Error(), "lora_unet_down.alpha") {
		t.Errorf("unknown key: %v", err)
	}
}
