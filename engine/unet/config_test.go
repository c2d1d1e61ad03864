package unet_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// otherConfig is a UNet unlike the fixture's in every dimension the config
// controls: four blocks, eight groups, per-block num_attention_heads,
// transformer depths with an explicit reverse list, mixed block types, one
// resnet per down block, a 1x1 conv_out and its own embedding widths.
func otherConfig(t *testing.T) sdxl.UNetConfig {
	t.Helper()
	cfg, err := sdxl.LoadConfig(filepath.Join(fixtures.Root(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.UNet
	c.InChannels, c.OutChannels = 3, 5
	c.BlockOutChannels = []int{16, 24, 32, 40}
	c.NormNumGroups = 8
	c.LayersPerBlock = 1
	c.DownBlockTypes = []string{"CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"}
	c.UpBlockTypes = []string{"CrossAttnUpBlock2D", "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}
	c.NumAttentionHeads = sdxl.IntOrList{2, 3, 4, 5}
	c.AttentionHeadDim = sdxl.IntOrList{7} // ignored when num_attention_heads is set
	c.TransformerLayersPerBlock = sdxl.IntOrList{1, 1, 2, 1}
	c.ReverseTransformerLayersPerBlock = sdxl.IntOrList{2, 1, 3, 1}
	c.CrossAttentionDim = sdxl.IntOrList{20}
	c.AdditionTimeEmbedDim = 6
	c.ProjectionClassEmbeddingsInputDim = 12 + 6*6
	c.ConvOutKernel = 1
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// randomWeights returns every parameter sdxl.UNetParams lists for cfg, with
// small random values (norm scales near 1).
func randomWeights(t *testing.T, cfg sdxl.UNetConfig, seed uint64) nn.MapSource {
	t.Helper()
	ps, err := sdxl.UNetParams(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	src := nn.MapSource{}
	for _, p := range ps {
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		a := 0.1
		if len(p.Shape) >= 2 {
			a = 1 / math.Sqrt(float64(n/p.Shape[0]))
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(a * (2*r.Float64() - 1))
			if len(p.Shape) == 1 && filepath.Ext(p.Name) == ".weight" {
				v[i] += 1 // group/layer norm scale
			}
		}
		src[p.Name] = nn.HostTensor{Shape: p.Shape, DType: tensor.F32, Data: v}
	}
	return src
}

func randomTensor(t *testing.T, b tensor.Backend, r *rand.Rand, shape ...int) *tensor.Tensor {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	x, err := b.Upload(v, shape, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// otherForward loads the other config with the same random weights on b
// and returns its output on the same random inputs (batch 2, 13x22: not a
// multiple of Factor 8, so downsamplers round up and upsamplers crop).
func otherForward(t *testing.T, b tensor.Backend) ([]float32, tensor.Shape) {
	t.Helper()
	cfg := otherConfig(t)
	m, err := unet.Load(b, cfg, randomWeights(t, cfg, 7))
	if err != nil {
		t.Fatalf("load the other config's parameters: %v", err)
	}
	defer m.Free()
	r := rand.New(rand.NewPCG(11, 2))
	x := randomTensor(t, b, r, 2, cfg.InChannels, 13, 22)
	ctx := randomTensor(t, b, r, 2, 9, cfg.CrossAttentionDim.At(0))
	text := randomTensor(t, b, r, 2, m.TextEmbedsDim())
	ids, err := b.Upload([]float32{64, 96, 0, 0, 64, 96, 128, 192, 8, 16, 128, 192}, tensor.Shape{2, 6}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer tensor.FreeAll(x, ctx, text, ids)
	hooked := map[string]tensor.Shape{}
	m.Hook = func(name string, h *tensor.Tensor) { hooked[name] = h.Shape() }
	out, err := m.Forward(x, []float32{999, 17.5}, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	for name, want := range map[string]tensor.Shape{
		"down_blocks.0":                    {2, 16, 7, 11},
		"down_blocks.2":                    {2, 32, 2, 3},
		"down_blocks.3":                    {2, 40, 2, 3},
		"mid_block":                        {2, 40, 2, 3},
		"up_blocks.0":                      {2, 40, 4, 6},
		"up_blocks.1.attentions.0.input":   nil, // UpBlock2D: no attentions
		"up_blocks.1":                      {2, 32, 7, 11},
		"up_blocks.3":                      {2, 16, 13, 22},
		"add_embedding.input":              {2, cfg.ProjectionClassEmbeddingsInputDim},
		"add_time_proj":                    {12, 6},
		"up_blocks.2.resnets.1.input":      {2, 24 + 16, 7, 11},
		"down_blocks.2.attentions.0.input": {2, 32, 4, 6},
	} {
		if len(want) == 0 {
			if _, ok := hooked[name]; ok {
				t.Errorf("hooked %s, which this config does not have", name)
			}
			continue
		}
		if !hooked[name].Equal(want) {
			t.Errorf("%s: shape %s, want %s", name, hooked[name], want)
		}
	}
	if want := (tensor.Shape{2, cfg.OutChannels, 13, 22}); !out.Shape().Equal(want) {
		t.Fatalf("output %s, want %s", out.Shape(), want)
	}
	v, err := b.Download(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			t.Fatalf("output[%d] = %g", i, f)
		}
	}
	return v, out.Shape()
}

// TestOtherConfig builds a UNet of another shape from the parameter list
// engine/sdxl derives independently from the config (so every key the
// config implies is read, and no other), runs it, and checks GL against CPU.
func TestOtherConfig(t *testing.T) {
	ref, shape := otherForward(t, cpu.New())
	t.Run("gl", func(t *testing.T) {
		got, gotShape := otherForward(t, gltest.Backend(t))
		compare(t, "other config on gl vs cpu", got, gotShape, ref, shape)
	})
}

// TestLinears checks that Linears names every matrix weight the config
// implies (engine/sdxl's independent parameter list), each with its shape,
// for the fixture config and another.
func TestLinears(t *testing.T) {
	cfgAll, err := sdxl.LoadConfig(filepath.Join(fixtures.Root(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []sdxl.UNetConfig{cfgAll.UNet, otherConfig(t)} {
		b := cpu.New()
		src := randomWeights(t, cfg, 3)
		m, err := unet.Load(b, cfg, src)
		if err != nil {
			t.Fatal(err)
		}
		ls := m.Linears()
		want := 0
		for name, p := range src {
			module, ok := strings.CutSuffix(name, ".weight")
			if !ok || len(p.Shape) != 2 {
				continue
			}
			want++
			l, ok := ls[module]
			if !ok {
				t.Errorf("Linears lacks %s", module)
				continue
			}
			if !l.Weight.Shape().Equal(p.Shape) {
				t.Errorf("%s: weight %s, want %v", module, l.Weight.Shape(), p.Shape)
			}
		}
		if len(ls) != want || want == 0 {
			t.Errorf("Linears has %d entries, the config implies %d matrix weights", len(ls), want)
		}
		m.Free()
	}
}
