package vae

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/nn"
	"lorastudio/engine/rng"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// golden is the open goldens/vae.safetensors.
type golden struct {
	t *testing.T
	f *safetensors.File
}

func openGolden(t *testing.T) *golden {
	f, err := safetensors.Open(filepath.Join(fixtures.Root(t), "goldens", "vae.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &golden{t: t, f: f}
}

// get returns a golden tensor's values and shape.
func (g *golden) get(name string) ([]float32, tensor.Shape) {
	g.t.Helper()
	info, ok := g.f.Tensor(name)
	if !ok {
		g.t.Fatalf("%s: no tensor %s", g.f.Path(), name)
	}
	d, err := g.f.Float32(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return d, tensor.Shape(info.Shape)
}

// upload puts a golden tensor on b.
func (g *golden) upload(b tensor.Backend, name string) *tensor.Tensor {
	g.t.Helper()
	d, s := g.get(name)
	x, err := b.Upload(d, s, tensor.F32)
	if err != nil {
		g.t.Fatal(err)
	}
	return x
}

// maxErr returns max|got-ref| and max|ref|.
func maxErr(got, ref []float32) (float64, float64) {
	var e, m float64
	for i := range ref {
		e = max(e, math.Abs(float64(got[i])-float64(ref[i])))
		m = max(m, math.Abs(float64(ref[i])))
	}
	return e, m
}

// tolerance is the goldens README's: max|got-ref| <= 2e-4 · max(1, max|ref|).
const tolerance = 2e-4

// check compares got (shape gs) with the golden name within the tolerance and
// returns the error measured.
func (g *golden) check(name string, got []float32, gs tensor.Shape) float64 {
	g.t.Helper()
	ref, rs := g.get(name)
	if !gs.Equal(rs) {
		g.t.Errorf("%s: shape %v, want %v", name, gs, rs)
		return math.Inf(1)
	}
	e, m := maxErr(got, ref)
	if e > tolerance*max(1, m) || math.IsNaN(e) {
		g.t.Errorf("%s: max|got-ref| = %.3g, want <= %.3g (max|ref| %.3g)", name, e, tolerance*max(1, m), m)
	}
	return e
}

// sampleSeed finds the golden latent sample and the seed it was drawn
// with, which its name carries: encode.sample_seed<seed>.
func (g *golden) sampleSeed() (string, uint64) {
	g.t.Helper()
	var found []string
	var seed uint64
	for _, n := range g.f.Names() {
		digits, ok := strings.CutPrefix(n, "encode.sample_seed")
		if !ok {
			continue
		}
		s, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			g.t.Fatalf("%s: tensor %s: the seed is not a number: %v", g.f.Path(), n, err)
		}
		found, seed = append(found, n), s
	}
	if len(found) != 1 {
		g.t.Fatalf("%s: want one encode.sample_seed<seed> tensor, found %v", g.f.Path(), found)
	}
	return found[0], seed
}

// loadTiny loads the fixture VAE through the model source (the diffusers folder).
func loadTiny(t *testing.T, b tensor.Backend) *AutoencoderKL {
	t.Helper()
	src, err := sdxl.OpenSource(filepath.Join(fixtures.Root(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, err := FromSource(b, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// hookRecorder returns a Hook that downloads every module output.
func hookRecorder(t *testing.T, b tensor.Backend, into map[string][]float32, shapes map[string]tensor.Shape) Hook {
	return func(name string, x *tensor.Tensor) error {
		d, err := b.Download(x)
		if err != nil {
			return err
		}
		into[name], shapes[name] = d, x.Shape()
		return nil
	}
}

// testDecode decodes the golden latent on b and checks the output and every
// hooked intermediate the goldens hold.
func testDecode(t *testing.T, b tensor.Backend) {
	g := openGolden(t)
	m := loadTiny(t, b)
	got, shapes := map[string][]float32{}, map[string]tensor.Shape{}
	m.Hook = hookRecorder(t, b, got, shapes)
	z := g.upload(b, "decode.input")
	defer z.Free()
	out, err := m.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	d, err := b.Download(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s decode.output: max err %.3g", b.Name(), g.check("decode.output", d, out.Shape()))
	n := 0
	for _, name := range g.f.Names() {
		mod, ok := strings.CutPrefix(name, "decode.hook.")
		if !ok {
			continue
		}
		n++
		if got[mod] == nil {
			t.Errorf("no hook output for %s", mod)
			continue
		}
		t.Logf("%s %s: max err %.3g", b.Name(), name, g.check(name, got[mod], shapes[mod]))
	}
	if n == 0 {
		t.Fatal("the goldens hold no decode.hook.* tensors")
	}
}

func TestDecodeCPU(t *testing.T) { testDecode(t, cpu.New()) }

// testEncode encodes the golden image on b and checks the distribution, the
// seeded sample and every hooked intermediate.
func testEncode(t *testing.T, b tensor.Backend) {
	g := openGolden(t)
	m := loadTiny(t, b)
	got, shapes := map[string][]float32{}, map[string]tensor.Shape{}
	m.Hook = hookRecorder(t, b, got, shapes)
	x := g.upload(b, "encode.input")
	defer x.Free()
	dist, err := m.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s encode.mean: max err %.3g", b.Name(), g.check("encode.mean", dist.Mean, dist.Shape))
	t.Logf("%s encode.logvar: max err %.3g", b.Name(), g.check("encode.logvar", dist.LogVar, dist.Shape))
	t.Logf("%s encode.std: max err %.3g", b.Name(), g.check("encode.std", dist.Std, dist.Shape))
	name, seed := g.sampleSeed()
	sample := dist.Sample(rng.New(seed))
	t.Logf("%s %s: max err %.3g", b.Name(), name, g.check(name, sample, dist.Shape))
	n := 0
	for _, name := range g.f.Names() {
		mod, ok := strings.CutPrefix(name, "encode.hook.")
		if !ok {
			continue
		}
		n++
		if got[mod] == nil {
			t.Errorf("no hook output for %s", mod)
			continue
		}
		t.Logf("%s %s: max err %.3g", b.Name(), name, g.check(name, got[mod], shapes[mod]))
	}
	if n == 0 {
		t.Fatal("the goldens hold no encode.hook.* tensors")
	}
}

func TestEncodeCPU(t *testing.T) { testEncode(t, cpu.New()) }

func TestDecodeGL(t *testing.T) { testDecode(t, gltest.Backend(t)) }

func TestEncodeGL(t *testing.T) { testEncode(t, gltest.Backend(t)) }

// TestLoadPaths loads the fixture VAE from the vae folder and from the
// single-file checkpoint (Stability layout) and checks both decode like the
// diffusers folder.
func TestLoadPaths(t *testing.T) {
	b := cpu.New()
	root := fixtures.Root(t)
	g := openGolden(t)
	z := g.upload(b, "decode.input")
	defer z.Free()
	ref, _ := g.get("decode.output")
	dir, err := OpenDir(b, filepath.Join(root, "model", "vae"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Free()
	src, err := sdxl.OpenSource(filepath.Join(root, "sdxl-tiny.safetensors"), sdxl.WithConfigDir(filepath.Join(root, "model")))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	single, err := FromSource(b, src)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Free()
	for name, m := range map[string]*AutoencoderKL{"vae folder": dir, "single file": single} {
		if m.ScalingFactor() != float32(src.Config().VAE.ScalingFactor) {
			t.Errorf("%s: scaling factor %g", name, m.ScalingFactor())
		}
		out, err := m.Decode(z)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		e, mx := maxErr(download(t, out), ref)
		out.Free()
		if e > tolerance*max(1, mx) {
			t.Errorf("%s: decode max err %.3g", name, e)
		}
	}
}

// TestLoadStrict: a missing key, an extra key and a wrong shape each fail
// the load with the key's name, and free what was loaded.
func TestLoadStrict(t *testing.T) {
	root := fixtures.Root(t)
	cfg, err := ReadConfig(filepath.Join(root, "model", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(root, "model", "vae", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	full := nn.MapSource{}
	for _, name := range f.Names() {
		info, _ := f.Tensor(name)
		d, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		full[name] = nn.HostTensor{Shape: info.Shape, DType: nn.StoredDType(string(info.DType)), Data: d}
	}
	// a 4-D weight deep in the decoder, named as the file names it
	var key string
	for _, name := range f.Names() {
		if info, _ := f.Tensor(name); strings.HasPrefix(name, "decoder.up_blocks.") && strings.HasSuffix(name, ".conv2.weight") && len(info.Shape) == 4 {
			key = name
			break
		}
	}
	if key == "" {
		t.Fatalf("%s has no 4-D decoder.up_blocks.*.conv2.weight", f.Path())
	}
	cases := map[string]func(nn.MapSource){
		"missing": func(s nn.MapSource) { delete(s, key) },
		"unused": func(s nn.MapSource) {
			s["decoder.extra.weight"] = nn.HostTensor{Shape: []int{1}, DType: tensor.F32, Data: []float32{0}}
		},
		"shape": func(s nn.MapSource) {
			h := s[key]
			h.Shape = []int{h.Shape[0], h.Shape[1], 1, h.Shape[2] * h.Shape[3]}
			s[key] = h
		},
	}
	for name, mutate := range cases {
		src := nn.MapSource{}
		for k, v := range full {
			src[k] = v
		}
		mutate(src)
		b := cpu.New()
		_, err := Load(b, cfg, src)
		want := key
		if name == "unused" {
			want = "decoder.extra.weight"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one naming %s", name, err, want)
		}
		if in := b.Memory().InUse; in != 0 {
			t.Errorf("%s: a failed load leaves %d B on the device", name, in)
		}
	}
	b := cpu.New()
	m, err := Load(b, cfg, full)
	if err != nil {
		t.Fatal(err)
	}
	m.Free()
	if in := b.Memory().InUse; in != 0 {
		t.Errorf("Free leaves %d B on the device", in)
	}
}

// TestNoLeaks: encode, decode and their tiled forms leave nothing on the
// device but their results, and bad inputs are errors.
func TestNoLeaks(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	g := openGolden(t)
	x := g.upload(b, "encode.input")
	z := g.upload(b, "decode.input")
	defer tensor.FreeAll(x, z)
	base := b.Memory().InUse
	tl := smallTiling(m)
	if tl.SampleSize >= x.Dim(2) && tl.SampleSize >= x.Dim(3) {
		t.Fatalf("the smallest tiles, %d px, do not split the %v golden image", tl.SampleSize, x.Shape())
	}
	if _, err := m.Encode(x); err != nil {
		t.Fatal(err)
	}
	if _, err := m.EncodeTiled(x, tl); err != nil {
		t.Fatal(err)
	}
	for _, dec := range []func(*tensor.Tensor) (*tensor.Tensor, error){m.Decode, func(z *tensor.Tensor) (*tensor.Tensor, error) { return m.DecodeTiled(z, tl) }} {
		out, err := dec(z)
		if err != nil {
			t.Fatal(err)
		}
		out.Free()
	}
	if in := b.Memory().InUse; in != base {
		t.Errorf("%d B left on the device after encode/decode", in-base)
	}
	// one row more than a whole number of latents
	bad, err := b.Zeros(tensor.Shape{1, x.Dim(1), x.Dim(2) + 1, x.Dim(3)}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Free()
	if _, err := m.Encode(bad); err == nil || !strings.Contains(err.Error(), "divisible") {
		t.Errorf("encode of a %v image: %v", bad.Shape(), err)
	}
	if _, err := m.Decode(x); err == nil {
		t.Error("decode of a 3-channel tensor succeeded")
	}
}

// TestReadConfig reads the fixture config and rejects a broken one.
func TestReadConfig(t *testing.T) {
	root := fixtures.Root(t)
	cfg, err := ReadConfig(filepath.Join(root, "model", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := sdxl.LoadConfig(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScalingFactor != full.VAE.ScalingFactor || len(cfg.BlockOutChannels) != len(full.VAE.BlockOutChannels) || cfg.SampleSize != full.VAE.SampleSize {
		t.Errorf("ReadConfig %+v, sdxl.LoadConfig %+v", cfg, full.VAE)
	}
	bad := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(bad, []byte(`{"block_out_channels": [32], "in_channels": 3}`), 0o644)
	if _, err := ReadConfig(bad); err == nil || !strings.Contains(err.Error(), "latent_channels") || !strings.Contains(err.Error(), bad) {
		t.Errorf("incomplete config: %v", err)
	}
}

// TestTiledGL: tiled encode and decode on GL agree with the CPU's and leave
// nothing behind on either device.
func TestTiledGL(t *testing.T) {
	gl := gltest.Backend(t)
	c := cpu.New()
	g := openGolden(t)
	var dec [2][]float32
	var mean [2][]float32
	for i, b := range []tensor.Backend{c, gl} {
		m := loadTiny(t, b)
		tl := smallTiling(m)
		base := b.Memory().InUse
		z := g.upload(b, "decode.input")
		out, err := m.DecodeTiled(z, tl)
		if err != nil {
			t.Fatalf("%s: %v", b.Name(), err)
		}
		dec[i] = download(t, out)
		x := g.upload(b, "encode.input")
		d, err := m.EncodeTiled(x, tl)
		if err != nil {
			t.Fatalf("%s: %v", b.Name(), err)
		}
		mean[i] = d.Mean
		tensor.FreeAll(z, out, x)
		if in := b.Memory().InUse; in != base {
			t.Errorf("%s: %d B left on the device", b.Name(), in-base)
		}
	}
	for name, p := range map[string][2][]float32{"decode": dec, "encode mean": mean} {
		e, mx := maxErr(p[1], p[0])
		t.Logf("tiled %s gl vs cpu: max err %.3g", name, e)
		if e > tolerance*max(1, mx) {
			t.Errorf("tiled %s: gl differs from cpu by %.3g", name, e)
		}
	}
}

// TestBatch encodes and decodes a batch of two copies of the golden inputs:
// each image of the batch matches the goldens (the moments are split per
// image into mean and log-variance).
func TestBatch(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	g := openGolden(t)
	two := func(name string) *tensor.Tensor {
		x := g.upload(b, name)
		defer x.Free()
		y, err := b.Concat(0, x, x)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	x, z := two("encode.input"), two("decode.input")
	defer tensor.FreeAll(x, z)
	d, err := m.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	img := download(t, out)
	out.Free()
	half := func(v []float32, i int) []float32 { return v[i*len(v)/2 : (i+1)*len(v)/2] }
	for i := range 2 {
		one := tensor.Shape{1, d.Shape[1], d.Shape[2], d.Shape[3]}
		g.check("encode.mean", half(d.Mean, i), one)
		g.check("encode.logvar", half(d.LogVar, i), one)
		g.check("encode.std", half(d.Std, i), one)
		os := out.Shape()
		g.check("decode.output", half(img, i), tensor.Shape{1, os[1], os[2], os[3]})
	}
}
