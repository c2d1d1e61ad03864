package nn_test

import (
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// TestUNetBlocksGolden runs a UNet down block's first ResnetBlock2D and
// first Transformer2DModel, with the fixture UNet's weights, on the inputs
// the reference recorded with forward hooks, and compares the outputs
// (tolerance 2e-4 · max(1, max|ref|), the UNet goldens').
func TestUNetBlocksGolden(t *testing.T) {
	t.Run("cpu", func(t *testing.T) { unetBlocks(t, cpu.New()) })
	t.Run("gl", func(t *testing.T) {
		b := gltest.Backend(t)
		unetBlocks(t, b)
	})
}

func unetBlocks(t *testing.T, b tensor.Backend) {
	root := fixtures.Root(t)
	cfgAll, err := sdxl.LoadConfig(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgAll.UNet
	g, err := safetensors.Open(filepath.Join(root, "goldens", "unet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	w, err := safetensors.Open(filepath.Join(root, "model", "unet", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	upload := func(name string) *tensor.Tensor {
		info, ok := g.Tensor(name)
		if !ok {
			t.Fatalf("golden %s missing", name)
		}
		v, err := g.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		x, err := b.Upload(v, info.Shape, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	check := func(got *tensor.Tensor, name string) {
		t.Helper()
		info, _ := g.Tensor(name)
		ref, err := g.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shape().Equal(info.Shape) {
			t.Fatalf("%s: shape %s, golden %v", name, got.Shape(), info.Shape)
		}
		v, _ := b.Download(got)
		var worst, refMax float64
		for i := range v {
			refMax = math.Max(refMax, math.Abs(float64(ref[i])))
			if d := math.Abs(float64(v[i] - ref[i])); d > worst || math.IsNaN(d) {
				worst = d
			}
		}
		tol := 2e-4 * math.Max(1, refMax)
		if !(worst <= tol) {
			t.Errorf("%s on %s: max|got-ref| %.3g > %.3g", name, b.Name(), worst, tol)
		} else {
			t.Logf("%s on %s: max|got-ref| %.3g (tolerance %.3g)", name, b.Name(), worst, tol)
		}
	}
	// the down block with hooks on its first resnet and attention
	re := regexp.MustCompile(`^(case\d+)\.hook\.down_blocks\.(\d+)\.attentions\.0\.input$`)
	var cs string
	blk := -1
	for _, n := range g.Names() {
		if m := re.FindStringSubmatch(n); m != nil {
			cs, blk = m[1], atoi(t, m[2])
			break
		}
	}
	if blk < 0 {
		t.Fatal("the UNet goldens hook no down block attention")
	}
	pre := cs + ".hook.down_blocks." + strconv.Itoa(blk)
	loader := nn.NewLoader(b, nn.FileSource(w))
	s := loader.Root().Sub("down_blocks").Index(blk)
	in := cfg.BlockOutChannels[max(blk-1, 0)]
	out := cfg.BlockOutChannels[blk]

	res, err := nn.LoadResnetBlock2D(s.Sub("resnets").Index(0), nn.ResnetBlock2DConfig{
		In: in, Out: out, TembChannels: cfg.TimeEmbedDim(), Groups: cfg.NormNumGroups, Eps: float32(cfg.NormEps),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Free()
	// time_embedding and add_embedding from their recorded inputs
	tdim := cfg.TimeEmbedDim()
	for _, e := range []struct{ name, input string }{
		{"time_embedding", cs + ".hook.time_proj"},
		{"add_embedding", cs + ".hook.add_embedding.input"},
	} {
		x := upload(e.input)
		emb, err := nn.LoadTimestepEmbedding(loader.Root().Sub(e.name), x.Dim(1), tdim)
		if err != nil {
			t.Fatal(err)
		}
		y, err := emb.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		check(y, cs+".hook."+e.name)
		tensor.FreeAll(x, y)
		emb.Free()
	}
	// the resnets' temb is time_embedding(t) + add_embedding(text, time ids)
	te, ae := upload(cs+".hook.time_embedding"), upload(cs+".hook.add_embedding")
	temb, err := b.Binary(tensor.Add, te, ae)
	if err != nil {
		t.Fatal(err)
	}
	tensor.FreeAll(te, ae)
	// a plain DownBlock2D (resnets, then Downsample2D) from conv_in's output
	if cfg.DownBlockTypes[0] == "DownBlock2D" {
		h := upload(cs + ".hook.conv_in")
		c0 := cfg.BlockOutChannels[0]
		s0 := loader.Root().Sub("down_blocks").Index(0)
		for i := range cfg.LayersPerBlock {
			r, err := nn.LoadResnetBlock2D(s0.Sub("resnets").Index(i), nn.ResnetBlock2DConfig{
				In: c0, Out: c0, TembChannels: tdim, Groups: cfg.NormNumGroups, Eps: float32(cfg.NormEps),
			})
			if err != nil {
				t.Fatal(err)
			}
			next, err := r.Forward(h, temb)
			r.Free()
			if err != nil {
				t.Fatal(err)
			}
			h.Free()
			h = next
		}
		d, err := nn.LoadDownsample2D(s0.Sub("downsamplers").Index(0), c0, c0, cfg.DownsamplePadding)
		if err != nil {
			t.Fatal(err)
		}
		y, err := d.Forward(h)
		if err != nil {
			t.Fatal(err)
		}
		check(y, cs+".hook.down_blocks.0")
		tensor.FreeAll(h, y)
		d.Free()
	}
	x := upload(pre + ".resnets.0.input")
	y, err := res.Forward(x, temb)
	if err != nil {
		t.Fatal(err)
	}
	check(y, pre+".resnets.0")
	tensor.FreeAll(x, temb, y)

	heads := cfg.AttentionHeadDim.At(blk) // diffusers: attention_head_dim is the head count
	if len(cfg.NumAttentionHeads) > 0 {
		heads = cfg.NumAttentionHeads.At(blk)
	}
	tr, err := nn.LoadTransformer2D(s.Sub("attentions").Index(0), nn.Transformer2DConfig{
		Channels: out, Heads: heads, HeadDim: out / heads, Depth: cfg.TransformerDepth(blk),
		ContextDim: cfg.CrossAttentionDimAt(blk), Groups: cfg.NormNumGroups, LinearProjection: cfg.UseLinearProjection, Eps: 1e-5,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Free()
	x, ctx := upload(pre+".attentions.0.input"), upload(cs+".encoder_hidden_states")
	y, err = tr.Forward(x, ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(y, pre+".attentions.0")
	tensor.FreeAll(x, ctx, y)
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
