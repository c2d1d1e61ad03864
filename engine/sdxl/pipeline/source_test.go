package pipeline

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/lora"
	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/vae"
)

// teLoRA builds, in memory, a rank-2 LoRA on text_encoder's first q_proj
// and on text_encoder_2's first out_proj (alpha 4: scale 2).
func teLoRA(t *testing.T, src *sdxl.Source) *lora.LoRA {
	t.Helper()
	l := &lora.LoRA{Name: "te", Path: "te-test", Format: lora.FormatKohya, Layers: map[string]*lora.Layer{}}
	for i, target := range []struct{ comp, module string }{
		{sdxl.TextEncoder, "text_model.encoder.layers.0.self_attn.q_proj"},
		{sdxl.TextEncoder2, "text_model.encoder.layers.0.self_attn.out_proj"},
	} {
		ref, err := src.Tensor(target.comp, target.module+".weight")
		if err != nil {
			t.Fatal(err)
		}
		out, in, rank := ref.Shape[0], ref.Shape[1], 2
		layer := &lora.Layer{Component: target.comp, Module: target.module, Source: target.module,
			Rank: rank, In: in, Out: out, TargetShape: ref.Shape, Alpha: 4, HasAlpha: true,
			Down: make([]float32, rank*in), Up: make([]float32, out*rank)}
		for j := range layer.Down {
			layer.Down[j] = float32(math.Sin(float64(j*7+i))) * 0.5
		}
		for j := range layer.Up {
			layer.Up[j] = float32(math.Cos(float64(j*3+i))) * 0.25
		}
		l.Layers[layer.Key()] = layer
	}
	return l
}

// TestMergedWeights checks the LoRA-merging source: a targeted parameter
// reads as F32 with W + weight·scale·Up·Down, every other parameter passes
// through with its stored dtype and values, fp16 bits included.
func TestMergedWeights(t *testing.T) {
	src, err := sdxl.OpenSource(fixtures.Path(t, "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l := teLoRA(t, src)
	inner := src.Weights(sdxl.TextEncoder)
	if got := withLoRAs(src.Weights(sdxl.UNet), sdxl.UNet, []appliedLoRA{{l, 1}}); got != (src.Weights(sdxl.UNet)) {
		t.Errorf("a component no LoRA targets is wrapped: %T", got)
	}
	m := withLoRAs(inner, sdxl.TextEncoder, []appliedLoRA{{l, 0.5}, {l, 0.25}})
	if !slices.Equal(m.Names(), inner.Names()) {
		t.Error("names differ from the wrapped source")
	}
	const target = "text_model.encoder.layers.0.self_attn.q_proj.weight"
	shape, dt, ok := m.Lookup(target)
	if !ok || dt != tensor.F32 {
		t.Fatalf("%s: Lookup gave %v %v %v, want F32", target, shape, dt, ok)
	}
	w0, _ := inner.Float32(target)
	got, err := m.Float32(target)
	if err != nil {
		t.Fatal(err)
	}
	layer := l.Layers[lora.LayerKey(sdxl.TextEncoder, "text_model.encoder.layers.0.self_attn.q_proj")]
	delta := layer.Delta() // scale·Up·Down
	for i := range got {
		want := w0[i] + 0.75*delta[i]
		if d := math.Abs(float64(got[i] - want)); d > 1e-6*(1+math.Abs(float64(want))) {
			t.Fatalf("%s[%d] = %g, want %g", target, i, got[i], want)
		}
	}
	const other = "text_model.encoder.layers.0.self_attn.k_proj.weight"
	_, dtIn, _ := inner.Lookup(other)
	if _, dt, _ := m.Lookup(other); dt != dtIn || dt != tensor.F16 {
		t.Errorf("%s: dtype %v, want the stored %v (F16)", other, dt, dtIn)
	}
	a, _ := inner.Float32(other)
	b, _ := m.Float32(other)
	if !slices.Equal(a, b) {
		t.Errorf("%s: values changed by a LoRA that does not target it", other)
	}
	h, err := m.(nn.Float16Source).Float16Bits(other)
	if hin, _ := inner.(nn.Float16Source).Float16Bits(other); err != nil || !slices.Equal(h, hin) {
		t.Errorf("%s: fp16 bits not passed through (%v)", other, err)
	}
}

// TestTextEncoderLoRA writes a text-encoder LoRA as a kohya file and checks
// it reaches the generation: at weight 0 the latents are those without a
// LoRA, bit for bit; at weight 1 they move.
func TestTextEncoderLoRA(t *testing.T) {
	model := fixtures.Path(t, "model")
	src, err := sdxl.OpenSource(model)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "te.safetensors")
	if err := lora.WriteKohya(path, teLoRA(t, src), src.Config(), safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	src.Close()
	req := Request{Prompt: "a photo of a cat", Steps: 2, Guidance: 5, Sampler: "euler", Width: 64, Height: 64, Seed: 9}
	gen := func(opts Options) []float32 {
		t.Helper()
		p, err := Load(cpu.New(), model, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		lat, err := p.GenerateLatents(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return lat.Data
	}
	base := gen(Options{})
	zero := gen(Options{LoRAs: []LoRASpec{{Path: path, Weight: 0}}})
	one := gen(Options{LoRAs: []LoRASpec{{Path: path, Weight: 1}}})
	if !slices.Equal(base, zero) {
		t.Error("a text-encoder LoRA at weight 0 changed the latents")
	}
	diff := 0.0
	for i := range base {
		diff = max(diff, math.Abs(float64(base[i]-one[i])))
	}
	if diff < 1e-3 {
		t.Errorf("a text-encoder LoRA at weight 1 moved the latents by only %.3g", diff)
	}
}

// TestTiledDecode checks that DecodeLatents tiles when one pass would
// exceed the tensor limit: the image is then exactly vae.DecodeTiled's with
// TilingWithin's tiles, and differs from the whole decode (so the tiled
// path ran). How close tiles come to the whole decode is a property of the
// VAE, not of the pipeline: a tiny random VAE's receptive field and its
// global mid-block attention span its tiles, so no bound holds for every
// fixture set; engine/vae/tiling_large_test.go asserts closeness on a VAE
// whose tiles are wide against its receptive field. Here it is logged.
func TestTiledDecode(t *testing.T) {
	b := cpu.New()
	p, err := Load(b, fixtures.Path(t, "model"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	lat := widestGoldenLatents(t)
	whole, err := p.DecodeLatents(lat)
	if err != nil {
		t.Fatal(err)
	}
	H, W := lat.Shape[2]*p.vae.Factor(), lat.Shape[3]*p.vae.Factor()
	p.tensorLimit = vae.LargestActivation(p.cfg.VAE, max(H, W)) - 1
	tiling, err := vae.TilingWithin(p.cfg.VAE, p.tensorLimit)
	if err != nil {
		t.Fatal(err)
	}
	if tiling.SampleSize >= max(H, W) {
		t.Fatalf("tiling %+v does not split a %dx%d image", tiling, W, H)
	}
	tiled, err := p.DecodeLatents(lat)
	if err != nil {
		t.Fatal(err)
	}
	z := make([]float32, len(lat.Data))
	for i, v := range lat.Data {
		z[i] = v / p.vae.ScalingFactor()
	}
	zt, _ := b.Upload(z, lat.Shape, tensor.F32)
	defer zt.Free()
	ref, err := p.vae.DecodeTiled(zt, tiling)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Free()
	rv, _ := b.Download(ref)
	var maxDiff, sumDiff float64
	for y := range H {
		for x := range W {
			for c := range 3 {
				want := min(max(rv[(c*H+y)*W+x]/2+0.5, 0), 1)
				if got := tiled[(y*W+x)*3+c]; got != want {
					t.Fatalf("tiled pixel (%d, %d, %d) = %g, want DecodeTiled's %g", x, y, c, got, want)
				}
				d := math.Abs(float64(tiled[(y*W+x)*3+c] - whole[(y*W+x)*3+c]))
				maxDiff, sumDiff = max(maxDiff, d), sumDiff+d
			}
		}
	}
	if maxDiff == 0 {
		t.Errorf("the tiled decode (tiles of %d px) equals the whole decode of a %dx%d image: it did not tile", tiling.SampleSize, W, H)
	}
	t.Logf("tiles of %d px: tiled vs whole decode max %.3g, mean %.3g", tiling.SampleSize, maxDiff, sumDiff/float64(H*W*3))
}

// widestGoldenLatents returns the final latents of the plain pipeline
// golden (goldens/pipeline_*.safetensors) with the widest image, the one
// cut into the most tiles.
func widestGoldenLatents(t *testing.T) *Latents {
	t.Helper()
	files, err := filepath.Glob(fixtures.Path(t, "goldens", "pipeline_*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var best *Latents
	for _, path := range files {
		st, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		info, ok := st.Tensor("final_latents") // absent from pipeline_lora's, whose names carry the run
		if ok && len(info.Shape) == 4 && (best == nil || info.Shape[2]*info.Shape[3] > best.Shape[2]*best.Shape[3]) {
			data, err := st.Float32("final_latents")
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			best = &Latents{Data: data, Shape: tensor.Shape(info.Shape)}
		}
		st.Close()
	}
	if best == nil {
		t.Fatalf("no goldens/pipeline_*.safetensors holds final_latents (%d files)", len(files))
	}
	return best
}

// TestTokenizers checks where a pipeline finds its tokenizers: a diffusers
// folder's own, a single file's config folder's, else CLIP's embedded
// vocabulary with the second tokenizer padding with "!" — all giving the
// same ids for the fixture model (its tokenizers are built from that
// vocabulary).
func TestTokenizers(t *testing.T) {
	model := fixtures.Path(t, "model")
	folder, err := sdxl.OpenSource(model)
	if err != nil {
		t.Fatal(err)
	}
	defer folder.Close()
	single, err := sdxl.OpenSource(fixtures.Path(t, "sdxl-tiny.safetensors"), sdxl.WithConfigDir(model))
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	const prompt = "a photo of a cat, Blurry   watermark"
	var ids [3][2][]int
	for i, c := range []struct {
		src *sdxl.Source
		dir string
	}{{folder, ""}, {single, model}, {single, ""}} {
		t1, t2, err := openTokenizers(c.src, c.dir)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = [2][]int{t1.EncodePadded(prompt, 77), t2.EncodePadded(prompt, 77)}
		if t2.Pad() != 0 || t1.Pad() != t1.EOS() {
			t.Errorf("case %d: pads %d and %d, want EOS (%d) and 0 (\"!\")", i, t1.Pad(), t2.Pad(), t1.EOS())
		}
	}
	for i := 1; i < 3; i++ {
		if !slices.Equal(ids[i][0], ids[0][0]) || !slices.Equal(ids[i][1], ids[0][1]) {
			t.Errorf("case %d: ids differ from the diffusers folder's tokenizers", i)
		}
	}
}
