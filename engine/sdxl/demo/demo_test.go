package demo_test

import (
	"bytes"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/clip"
	"lorastudio/engine/cpu"
	"lorastudio/engine/rng"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/demo"
	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
	"lorastudio/engine/unet"
	"lorastudio/engine/vae"
)

// written is one demo folder shared by the tests (writing takes a second).
var written string

func demoDir(t *testing.T) string {
	t.Helper()
	if written == "" {
		dir, err := os.MkdirTemp("", "demo-test")
		if err != nil {
			t.Fatal(err)
		}
		if err := demo.Write(dir); err != nil {
			t.Fatal(err)
		}
		written = dir
	}
	return written
}

func TestMain(m *testing.M) {
	code := m.Run()
	if written != "" {
		os.RemoveAll(written)
	}
	os.Exit(code)
}

// readTree returns every file of dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteIsDeterministic(t *testing.T) {
	a := readTree(t, demoDir(t))
	dir := t.TempDir()
	if err := demo.Write(dir); err != nil {
		t.Fatal(err)
	}
	b := readTree(t, dir)
	want := []string{
		"DEMO.txt", "model_index.json", "scheduler/scheduler_config.json",
		"text_encoder/config.json", "text_encoder/model.safetensors",
		"text_encoder_2/config.json", "text_encoder_2/model.safetensors",
		"tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
		"tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
		"unet/config.json", "unet/diffusion_pytorch_model.safetensors",
		"vae/config.json", "vae/diffusion_pytorch_model.safetensors",
	}
	var names []string
	for k := range a {
		names = append(names, k)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	total := 0
	for k, v := range a {
		total += len(v)
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between two writes", k)
		}
	}
	t.Logf("demo folder: %d files, %.1f MiB", len(a), float64(total)/(1<<20))
	if total > 32<<20 {
		t.Errorf("demo folder is %d bytes; it should stay small", total)
	}
	if !strings.Contains(string(a["DEMO.txt"]), "RANDOM WEIGHTS") || !strings.Contains(string(a["model_index.json"]), demo.Name) {
		t.Error("the folder does not say it is a demo with random weights")
	}
}

func TestOpensAsSDXL(t *testing.T) {
	dir := demoDir(t)
	s, err := sdxl.OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	cfg := s.Config()
	base := sdxl.SDXLBase()
	if cfg.UNet.SampleSize*8 != 1024 || cfg.VAE.SampleSize != 1024 || cfg.VAE.ScalingFactor != 0.13025 || cfg.UNet.AdditionEmbedType != "text_time" {
		t.Errorf("not SDXL-shaped: unet sample %d, vae sample %d, scaling %g, addition %q", cfg.UNet.SampleSize, cfg.VAE.SampleSize, cfg.VAE.ScalingFactor, cfg.UNet.AdditionEmbedType)
	}
	if cfg.UNet.CrossAttentionDimAt(0) != cfg.TextEncoder.HiddenSize+cfg.TextEncoder2.HiddenSize {
		t.Errorf("cross_attention_dim %d, want the text encoders' %d+%d", cfg.UNet.CrossAttentionDimAt(0), cfg.TextEncoder.HiddenSize, cfg.TextEncoder2.HiddenSize)
	}
	if cfg.TextEncoder.VocabSize != base.TextEncoder.VocabSize || len(cfg.UNet.BlockOutChannels) != len(base.UNet.BlockOutChannels) ||
		cfg.VAE.LatentChannels != 4 || cfg.Scheduler.ClassName != base.Scheduler.ClassName || cfg.Scheduler.TimestepSpacing != "leading" {
		t.Errorf("structure differs from SDXL base: %+v", cfg)
	}
	for _, comp := range sdxl.Components {
		r, err := s.Tensor(comp, s.Params(comp)[0].Name)
		if err != nil {
			t.Fatal(err)
		}
		if r.DType != "F16" {
			t.Errorf("%s stored as %s, want F16", comp, r.DType)
		}
	}
}

func TestTokenizersMatchEmbedded(t *testing.T) {
	dir := demoDir(t)
	for _, c := range []struct {
		folder string
		cfg    tokenizer.Config
	}{
		{"tokenizer", tokenizer.DefaultConfig()},
		{"tokenizer_2", tokenizer.Config{Pad: "!"}},
	} {
		got, err := tokenizer.FromDir(filepath.Join(dir, c.folder))
		if err != nil {
			t.Fatal(err)
		}
		want, err := tokenizer.Embedded(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.VocabSize() != want.VocabSize() || got.Pad() != want.Pad() || got.BOS() != want.BOS() || got.EOS() != want.EOS() {
			t.Errorf("%s: vocab %d pad %d bos %d eos %d, embedded %d %d %d %d", c.folder,
				got.VocabSize(), got.Pad(), got.BOS(), got.EOS(), want.VocabSize(), want.Pad(), want.BOS(), want.EOS())
		}
		for _, p := range []string{"a photo of an astronaut riding a horse on mars", "Café <|endoftext|> naïve 日本語 don't!!", ""} {
			g, w := got.EncodePadded(p, 77), want.EncodePadded(p, 77)
			if !slices.Equal(g, w) {
				t.Errorf("%s: %q → %v, embedded tokenizer gives %v", c.folder, p, g, w)
			}
		}
	}
}

func finiteSpread(t *testing.T, what string, v []float32) (std float64) {
	t.Helper()
	var sum, sq float64
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("%s: element %d is %g", what, i, x)
		}
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	mean := sum / float64(len(v))
	std = math.Sqrt(sq/float64(len(v)) - mean*mean)
	if std < 1e-3 {
		t.Errorf("%s: std %g — degenerate output", what, std)
	}
	return std
}

func upload(t *testing.T, b tensor.Backend, v []float32, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := b.Upload(v, shape, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestComponentsRun loads every component of the written folder on the CPU
// and runs one forward each: the text encoders on a prompt, the UNet on a
// noise latent, the VAE decoder on it; outputs are finite and not constant.
func TestComponentsRun(t *testing.T) {
	dir := demoDir(t)
	b := cpu.New()
	defer b.Close()
	enc, err := clip.OpenEncoders(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	pos, neg, err := enc.Encode("a watercolor fox in the snow", nil)
	enc.Free()
	if err != nil {
		t.Fatal(err)
	}
	defer pos.Free()
	defer neg.Free()
	emb, err := b.Download(pos.Embeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prompt_embeds %v std %.3f", pos.Embeds.Shape(), finiteSpread(t, "prompt_embeds", emb))
	pooled, err := b.Download(pos.Pooled)
	if err != nil {
		t.Fatal(err)
	}
	finiteSpread(t, "pooled", pooled)

	s, err := sdxl.OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := unet.FromSource(b, s)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Free()
	const side = 16 // a 128x128 image
	noise := rng.New(0).Randn(4 * side * side)
	x := upload(t, b, noise, 1, 4, side, side)
	ids := upload(t, b, []float32{128, 128, 0, 0, 128, 128}, 1, 6)
	defer tensor.FreeAll(x, ids)
	eps, err := u.Forward(x, []float32{999}, pos.Embeds, pos.Pooled, ids)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := b.Download(eps)
	eps.Free()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unet output std %.3f", finiteSpread(t, "unet output", ev))

	v, err := vae.FromSource(b, s)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Free()
	lat := make([]float32, len(noise))
	for i := range noise {
		lat[i] = noise[i] / v.ScalingFactor()
	}
	z := upload(t, b, lat, 1, 4, side, side)
	defer z.Free()
	img, err := v.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	iv, err := b.Download(img)
	img.Free()
	if err != nil {
		t.Fatal(err)
	}
	std := finiteSpread(t, "decoded image", iv)
	lo, hi := slices.Min(iv), slices.Max(iv)
	t.Logf("decoded image std %.3f, range [%.2f, %.2f]", std, lo, hi)
	if std < 0.02 {
		t.Errorf("decoded image std %.4f: nearly a constant colour", std)
	}
}

func TestEnsure(t *testing.T) {
	data := t.TempDir()
	p, err := demo.Ensure(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(data, "models", demo.DirName); p != want {
		t.Fatalf("Ensure = %s, want %s", p, want)
	}
	entries, _ := os.ReadDir(filepath.Join(data, "models"))
	if len(entries) != 1 {
		t.Errorf("models/ holds %d entries after Ensure, want only the demo folder (no temporary left)", len(entries))
	}
	// A second call returns the existing folder without rewriting it.
	mark := filepath.Join(p, "unet", "config.json")
	old, _ := os.Stat(mark)
	p2, err := demo.Ensure(data)
	if err != nil || p2 != p {
		t.Fatalf("second Ensure = %s, %v", p2, err)
	}
	if st, _ := os.Stat(mark); !st.ModTime().Equal(old.ModTime()) {
		t.Error("second Ensure rewrote the folder")
	}
	// A damaged folder is replaced by a whole one.
	if err := os.Remove(filepath.Join(p, "vae", "diffusion_pytorch_model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if p3, err := demo.Ensure(data); err != nil || p3 != p {
		t.Fatalf("Ensure after damage = %s, %v", p3, err)
	}
	s, err := sdxl.OpenSource(p)
	if err != nil {
		t.Fatalf("the replaced folder does not open: %v", err)
	}
	s.Close()
	got, want := readTree(t, p), readTree(t, demoDir(t))
	for k := range want {
		if !bytes.Equal(got[k], want[k]) {
			t.Errorf("%s differs from demo.Write's", k)
		}
	}
	entries, _ = os.ReadDir(filepath.Join(data, "models"))
	if len(entries) != 1 {
		t.Errorf("models/ holds %d entries after a repair, want 1", len(entries))
	}
}

func TestEnsureUnwritable(t *testing.T) {
	data := t.TempDir()
	// models is a file: nothing can be written under it.
	if err := os.WriteFile(filepath.Join(data, "models"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Ensure(data); err == nil || !strings.Contains(err.Error(), "models") {
		t.Fatalf("Ensure under a file = %v, want an error naming models", err)
	}
}
