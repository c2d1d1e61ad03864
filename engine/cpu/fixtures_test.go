package cpu

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"lorastudio/engine/half"
	"lorastudio/engine/internal/fixtures"
	"math"
	"os"
	"path/filepath"
	"testing"

	"lorastudio/engine/tensor"
)

// readSafetensors reads the F32 and I64 tensors of a safetensors file as
// float64, with their shapes (a minimal reader, enough for goldens).
func readSafetensors(path string) (map[string][]float64, map[string][]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(raw) < 8 {
		return nil, nil, fmt.Errorf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(raw)
	if 8+n > uint64(len(raw)) {
		return nil, nil, fmt.Errorf("%s: header length %d past the end", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		return nil, nil, fmt.Errorf("%s: header: %v", path, err)
	}
	body := raw[8+n:]
	vals, shapes := map[string][]float64{}, map[string][]int{}
	for k, v := range hdr {
		if k == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %v", path, k, err)
		}
		if e.Offsets[1] > int64(len(body)) || e.Offsets[0] > e.Offsets[1] {
			return nil, nil, fmt.Errorf("%s: %s: offsets %v past the data", path, k, e.Offsets)
		}
		b := body[e.Offsets[0]:e.Offsets[1]]
		var out []float64
		switch e.DType {
		case "F32":
			for i := 0; i+4 <= len(b); i += 4 {
				out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))))
			}
		case "F16":
			for i := 0; i+2 <= len(b); i += 2 {
				out = append(out, float64(half.Float16ToFloat32(binary.LittleEndian.Uint16(b[i:]))))
			}
		case "I64":
			for i := 0; i+8 <= len(b); i += 8 {
				out = append(out, float64(int64(binary.LittleEndian.Uint64(b[i:]))))
			}
		default:
			continue
		}
		vals[k], shapes[k] = out, e.Shape
	}
	return vals, shapes, nil
}

// TestTimestepEmbeddingGolden checks TimestepEmbedding against the UNet's
// time_proj and add_time_proj outputs recorded from diffusers (flip_sin_to_cos
// true, shift 0), with widths read from the golden shapes.
func TestTimestepEmbeddingGolden(t *testing.T) {
	path := filepath.Join(fixtures.Root(t), "goldens", "unet.safetensors")
	vals, shapes, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	b := New()
	for _, c := range []struct{ in, out string }{
		{"case0.timestep", "case0.hook.time_proj"},
		{"case0.time_ids", "case0.hook.add_time_proj"},
	} {
		in, want := vals[c.in], vals[c.out]
		if in == nil || want == nil {
			t.Fatalf("%s: %s or %s missing", path, c.in, c.out)
		}
		dim := shapes[c.out][len(shapes[c.out])-1]
		tt, err := b.Upload(f32s(in), tensor.Shape{len(in)}, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		emb, err := b.TimestepEmbedding(tt, dim, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Download(emb)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, golden has %d", c.out, len(got), len(want))
		}
		for i := range want {
			if d := math.Abs(float64(got[i]) - want[i]); d > 2e-6 {
				t.Fatalf("%s[%d] = %g, diffusers gave %g (|diff| %g)", c.out, i, got[i], want[i], d)
			}
		}
		tensor.FreeAll(tt, emb)
	}
}

func f32s(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, e := range v {
		o[i] = float32(e)
	}
	return o
}

// TestUNetOpsGolden runs single ops of the tiny UNet on their recorded inputs
// and the checkpoint's fp16 weights and compares with diffusers' outputs:
// conv_in, conv_norm_out (GroupNorm, 32 groups, eps from config.json),
// conv_act (SiLU) and conv_out.
func TestUNetOpsGolden(t *testing.T) {
	root := fixtures.Root(t)
	g, gs, err := readSafetensors(filepath.Join(root, "goldens", "unet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	w, ws, err := readSafetensors(filepath.Join(root, "model", "unet", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		NormEps       float32 `json:"norm_eps"`
		NormNumGroups int     `json:"norm_num_groups"`
		ConvInKernel  int     `json:"conv_in_kernel"`
		ConvOutKernel int     `json:"conv_out_kernel"`
	}
	raw, err := os.ReadFile(filepath.Join(root, "model", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	b := New()
	up := func(vals map[string][]float64, shapes map[string][]int, key string, dt tensor.DType) *tensor.Tensor {
		t.Helper()
		v, ok := vals[key]
		if !ok {
			t.Fatalf("%s missing", key)
		}
		x, err := b.Upload(f32s(v), shapes[key], dt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Free() })
		return x
	}
	check := func(name string, got *tensor.Tensor, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer got.Free()
		gv, err := b.Download(got)
		if err != nil {
			t.Fatal(err)
		}
		wv := g[want]
		if !got.Shape().Equal(gs[want]) {
			t.Fatalf("%s: shape %s, diffusers %v", name, got.Shape(), gs[want])
		}
		var maxd, maxw float64
		for i := range wv {
			maxd = math.Max(maxd, math.Abs(float64(gv[i])-wv[i]))
			maxw = math.Max(maxw, math.Abs(wv[i]))
		}
		if maxd > 1e-4*math.Max(1, maxw) {
			t.Errorf("%s vs diffusers %s: max |diff| %g (max |want| %g)", name, want, maxd, maxw)
		}
	}
	pad := func(k int) tensor.Conv2DParams { return tensor.ConvParams(1, (k-1)/2) }

	out, err := b.Conv2D(up(g, gs, "case0.sample", tensor.F32), up(w, ws, "conv_in.weight", tensor.F16), up(w, ws, "conv_in.bias", tensor.F32), pad(cfg.ConvInKernel))
	check("conv_in", out, err, "case0.hook.conv_in")
	out, err = b.GroupNorm(up(g, gs, "case0.hook.up_blocks.2", tensor.F32), up(w, ws, "conv_norm_out.weight", tensor.F32), up(w, ws, "conv_norm_out.bias", tensor.F32), cfg.NormNumGroups, cfg.NormEps)
	check("conv_norm_out", out, err, "case0.hook.conv_norm_out")
	out, err = b.Activation(up(g, gs, "case0.hook.conv_norm_out", tensor.F32), tensor.SiLU)
	check("conv_act", out, err, "case0.hook.conv_act")
	out, err = b.Conv2D(up(g, gs, "case0.hook.conv_act", tensor.F32), up(w, ws, "conv_out.weight", tensor.F16), up(w, ws, "conv_out.bias", tensor.F32), pad(cfg.ConvOutKernel))
	check("conv_out", out, err, "case0.hook.conv_out")
}
