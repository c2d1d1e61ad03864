package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lorastudio/engine/cpu"
	"lorastudio/engine/device"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/rng"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sched"
	"lorastudio/engine/sdxl/pipeline"
	"lorastudio/engine/tensor"
)

// run is one golden pipeline call (pipeline_*.json or one run nested in
// pipeline_lora.json).
type run struct {
	Prompt          string    `json:"prompt"`
	Negative        *string   `json:"negative_prompt"`
	SchedulerClass  string    `json:"scheduler_class"`
	Steps           int       `json:"steps"`
	Guidance        float64   `json:"guidance"`
	Height          int       `json:"height"`
	Width           int       `json:"width"`
	Seed            uint64    `json:"seed"`
	Timesteps       []float64 `json:"timesteps"`
	PNG             string    `json:"png"`
	LatentShape     []int     `json:"latent_shape"`
	SchedulerConfig struct {
		UseKarrasSigmas bool `json:"use_karras_sigmas"`
	} `json:"scheduler_config"`
}

// request turns a golden run into a Request.
func (r run) request(t *testing.T) pipeline.Request {
	t.Helper()
	var sampler string
	switch r.SchedulerClass {
	case "DPMSolverMultistepScheduler":
		sampler = "dpmpp_2m"
		if r.SchedulerConfig.UseKarrasSigmas {
			sampler = "dpmpp_2m_karras"
		}
	case "EulerDiscreteScheduler":
		sampler = "euler"
	case "EulerAncestralDiscreteScheduler":
		sampler = "euler_a"
	default:
		t.Fatalf("no sampler for scheduler class %q", r.SchedulerClass)
	}
	return pipeline.Request{Prompt: r.Prompt, Negative: r.Negative, Steps: r.Steps, Guidance: r.Guidance,
		Sampler: sampler, Width: r.Width, Height: r.Height, Seed: r.Seed}
}

// golden is one run with its tensors (names under prefix).
type golden struct {
	name   string
	run    run
	f      *safetensors.File
	prefix string
}

func (g *golden) tensor(t *testing.T, name string) []float32 {
	t.Helper()
	v, err := g.f.Float32(g.prefix + name)
	if err != nil {
		t.Fatalf("%s: %s: %v", g.f.Path(), g.prefix+name, err)
	}
	return v
}

// readJSON reads a golden JSON file (the reference writes -Infinity).
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.NewReplacer("-Infinity", "null", "Infinity", "null", "NaN", "null").Replace(string(data)))
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func openTensors(t *testing.T, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// plainGoldens returns every pipeline_*.json describing one run
// (pipeline_a, _b and _c in the public set).
func plainGoldens(t *testing.T) []*golden {
	t.Helper()
	dir := fixtures.Path(t, "goldens")
	files, err := filepath.Glob(filepath.Join(dir, "pipeline_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*golden
	for _, jf := range files {
		if strings.HasSuffix(jf, "pipeline_lora.json") {
			continue
		}
		g := &golden{name: strings.TrimSuffix(filepath.Base(jf), ".json")}
		readJSON(t, jf, &g.run)
		g.f = openTensors(t, strings.TrimSuffix(jf, ".json")+".safetensors")
		out = append(out, g)
	}
	if len(out) == 0 {
		t.Fatalf("no pipeline_*.json goldens in %s", dir)
	}
	return out
}

// loraGoldens returns the runs of pipeline_lora.json keyed by LoRA weight.
func loraGoldens(t *testing.T) map[float32]*golden {
	t.Helper()
	jf := fixtures.Path(t, "goldens", "pipeline_lora.json")
	var top map[string]json.RawMessage
	readJSON(t, jf, &top)
	f := openTensors(t, strings.TrimSuffix(jf, ".json")+".safetensors")
	out := map[float32]*golden{}
	for key, raw := range top {
		var r struct {
			run
			Extra struct {
				CrossAttention struct {
					Scale *float32 `json:"scale"`
				} `json:"cross_attention_kwargs"`
			} `json:"extra_kwargs"`
		}
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &r) != nil || r.Extra.CrossAttention.Scale == nil {
			continue
		}
		out[*r.Extra.CrossAttention.Scale] = &golden{name: "pipeline_lora:" + key, run: r.run, f: f, prefix: key + "."}
	}
	if len(out) < 2 {
		t.Fatalf("%s: want runs at two LoRA scales, found %d", jf, len(out))
	}
	return out
}

// maxAbs returns the largest |a-b| and the largest |b|.
func maxAbs(a, b []float32) (diff, ref float64) {
	for i := range a {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		ref = max(ref, math.Abs(float64(b[i])))
	}
	return diff, ref
}

// checkLatents compares with the latents tolerance, 1e-3·max(1, max|ref|).
func checkLatents(t *testing.T, what string, got, ref []float32) float64 {
	t.Helper()
	if len(got) != len(ref) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(ref))
	}
	d, r := maxAbs(got, ref)
	if tol := 1e-3 * max(1, r); d > tol || math.IsNaN(d) {
		t.Errorf("%s: max abs error %.3g > %.3g (max|ref| %.3g)", what, d, tol, r)
	}
	return d
}

// runGolden generates one golden run on p from its seed alone and checks
// every step's latents, the final latents, the image and the PNG.
func runGolden(t *testing.T, p *pipeline.Pipeline, g *golden) {
	t.Helper()
	req := g.run.request(t)
	ls := g.latentShape(t)
	on := p.Backend().Name()
	var steps [][]float32
	calls := 0
	start := time.Now()
	lat, err := p.GenerateLatents(context.Background(), req, func(pr pipeline.Progress) {
		calls++
		if pr.Step != calls || pr.Steps != req.Steps {
			t.Errorf("%s: progress %d/%d at call %d, want %d/%d", g.name, pr.Step, pr.Steps, calls, calls, req.Steps)
		}
		if pr.Preview == nil || pr.Preview.Bounds().Dx() != ls[3] || pr.Preview.Bounds().Dy() != ls[2] {
			t.Errorf("%s: step %d: preview %v, want the latents' %dx%d", g.name, pr.Step, pr.Preview, ls[3], ls[2])
		}
		steps = append(steps, append([]float32(nil), pr.Latents...))
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", g.name, on, err)
	}
	perStep := time.Since(start).Seconds() / float64(req.Steps)
	if calls != req.Steps {
		t.Errorf("%s: progress called %d times, want %d", g.name, calls, req.Steps)
	}
	worst := 0.0
	for i, x := range steps {
		worst = max(worst, checkLatents(t, fmt.Sprintf("%s on %s: latents_after_step%d", g.name, on, i), x, g.tensor(t, fmt.Sprintf("latents_after_step%d", i))))
	}
	fin := checkLatents(t, g.name+" on "+on+": final_latents", lat.Data, g.tensor(t, "final_latents"))
	if !lat.Shape.Equal(ls) {
		t.Errorf("%s: latents shape %s, want the golden's %s", g.name, lat.Shape, ls)
	}

	img, err := p.DecodeLatents(lat)
	if err != nil {
		t.Fatal(err)
	}
	ref := g.tensor(t, "image")
	if len(img) != len(ref) {
		t.Fatalf("%s: image has %d values, want %d", g.name, len(img), len(ref))
	}
	d, _ := maxAbs(img, ref)
	if d > 2e-3 || math.IsNaN(d) {
		t.Errorf("%s on %s: image max abs error %.3g > 2e-3", g.name, on, d)
	}
	lsb := checkPNG(t, g, img, req)
	t.Logf("%s on %s: %.3f s/step; max abs error: steps %.2e, final latents %.2e, image %.2e, PNG %d LSB", g.name, on, perStep, worst, fin, d, lsb)
}

// latentShape is the golden run's latent_shape, (1, C, H/f, W/f).
func (g *golden) latentShape(t *testing.T) tensor.Shape {
	t.Helper()
	if len(g.run.LatentShape) != 4 {
		t.Fatalf("%s: latent_shape %v, want 4 dimensions", g.name, g.run.LatentShape)
	}
	return tensor.Shape(g.run.LatentShape)
}

// sameRequest reports whether two golden runs ask for the same generation.
func sameRequest(t *testing.T, a, b run) bool {
	ra, rb := a.request(t), b.request(t)
	if (ra.Negative == nil) != (rb.Negative == nil) || (ra.Negative != nil && *ra.Negative != *rb.Negative) {
		return false
	}
	ra.Negative, rb.Negative = nil, nil
	return ra == rb
}

// checkPNG converts the image to 8 bits and compares it with the golden PNG
// (±1 LSB); it returns the largest difference.
func checkPNG(t *testing.T, g *golden, img []float32, req pipeline.Request) int {
	t.Helper()
	got, err := pipeline.ToNRGBA(img, req.Width, req.Height)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fixtures.Path(t, "goldens", g.run.PNG))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", g.run.PNG, err)
	}
	if want.Bounds() != got.Bounds() {
		t.Fatalf("%s: image %v, want %v", g.run.PNG, got.Bounds(), want.Bounds())
	}
	worst := 0
	for y := range req.Height {
		for x := range req.Width {
			r, gg, b, _ := want.At(x, y).RGBA()
			o := got.PixOffset(x, y)
			for c, w := range []uint32{r >> 8, gg >> 8, b >> 8} {
				worst = max(worst, absInt(int(got.Pix[o+c])-int(w)))
			}
		}
	}
	if worst > 1 {
		t.Errorf("%s: PNG differs by %d LSB (want ≤ 1)", g.run.PNG, worst)
	}
	return worst
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func load(t *testing.T, b tensor.Backend, path string, opts pipeline.Options) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Load(b, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestGoldens reproduces pipeline_a/b/c from the seed number alone, from the
// diffusers folder, on CPU and GL.
func TestGoldens(t *testing.T) {
	for _, kind := range []string{"cpu", "gl"} {
		t.Run(kind, func(t *testing.T) {
			b := backend(t, kind)
			p := load(t, b, fixtures.Path(t, "model"), pipeline.Options{})
			for _, g := range plainGoldens(t) {
				t.Run(g.name, func(t *testing.T) { runGolden(t, p, g) })
			}
		})
	}
}

func backend(t *testing.T, kind string) tensor.Backend {
	if kind == "gl" {
		return gltest.Backend(t)
	}
	return cpu.New()
}

// TestLoRAGoldens reproduces the kohya LoRA pipeline at weight 1 and 0.5
// (diffusers' cross_attention_kwargs scale) on CPU and GL.
func TestLoRAGoldens(t *testing.T) {
	runs := loraGoldens(t)
	for _, kind := range []string{"cpu", "gl"} {
		t.Run(kind, func(t *testing.T) {
			b := backend(t, kind)
			weights := slices.Sorted(maps.Keys(runs))
			slices.Reverse(weights)
			for _, w := range weights {
				g := runs[w]
				t.Run(fmt.Sprint("weight", w), func(t *testing.T) {
					p := load(t, b, fixtures.Path(t, "model"), pipeline.Options{LoRAs: []pipeline.LoRASpec{
						{Path: fixtures.Path(t, "lora", "kohya_sgm_names.safetensors"), Weight: w},
					}})
					runGolden(t, p, g)
				})
			}
		})
	}
}

// TestSingleFile reproduces a golden from the single-file checkpoint sized
// by the diffusers folder's configs.
func TestSingleFile(t *testing.T) {
	gs := plainGoldens(t)
	p := load(t, cpu.New(), fixtures.Path(t, "sdxl-tiny.safetensors"), pipeline.Options{ConfigDir: fixtures.Path(t, "model")})
	runGolden(t, p, gs[0])
}

// TestInitialLatents checks prepare_latents against the goldens: randn
// from the seed × the sampler's init_noise_sigma.
func TestInitialLatents(t *testing.T) {
	for _, g := range plainGoldens(t) {
		req := g.run.request(t)
		s, err := sched.FromConfigFile(fixtures.Path(t, "model", "scheduler", "scheduler_config.json"), req.Sampler, req.Steps)
		if err != nil {
			t.Fatal(err)
		}
		got := pipeline.InitialLatents(rng.New(req.Seed), g.latentShape(t), s.InitNoiseSigma())
		if d, _ := maxAbs(got, g.tensor(t, "init_latents")); d > 1e-6 {
			t.Errorf("%s: init_latents max abs error %.3g > 1e-6", g.name, d)
		}
	}
}

// TestCancel cancels a generation from its first progress callback: it
// stops before the next step, returns the context's error and leaves the
// backend's memory at its post-load level; Close then frees the rest.
func TestCancel(t *testing.T) {
	for _, kind := range []string{"cpu", "gl"} {
		t.Run(kind, func(t *testing.T) {
			b := backend(t, kind)
			before := b.Memory().InUse
			p, err := pipeline.Load(b, fixtures.Path(t, "model"), pipeline.Options{})
			if err != nil {
				t.Fatal(err)
			}
			loaded := b.Memory().InUse
			if loaded <= before {
				t.Fatalf("loading held no memory (%d → %d bytes)", before, loaded)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := plainGoldens(t)[0].run.request(t)
			calls := 0
			img, err := p.Generate(ctx, req, func(pipeline.Progress) {
				calls++
				cancel()
			})
			if !errors.Is(err, context.Canceled) || img != nil {
				t.Fatalf("cancelled generation returned %v, %v; want context.Canceled", img, err)
			}
			if calls != 1 {
				t.Errorf("%d steps ran after cancelling at the first, want 0", calls-1)
			}
			if got := b.Memory().InUse; got != loaded {
				t.Errorf("after cancelling, %d bytes in use, want the post-load %d", got, loaded)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if got := b.Memory().InUse; got != before {
				t.Errorf("after Close, %d bytes in use, want %d as before Load", got, before)
			}
			if _, err := p.Generate(context.Background(), req, nil); err == nil {
				t.Error("Generate after Close succeeded")
			}
		})
	}
}

// TestGenerate runs the whole Generate on CPU: its 8-bit image is the
// golden PNG within 1 LSB, the memory in use returns to its post-load level,
// and the LoRA changes the image well beyond the tolerance.
func TestGenerate(t *testing.T) {
	b := cpu.New()
	p := load(t, b, fixtures.Path(t, "model"), pipeline.Options{})
	loaded := b.Memory().InUse
	// the plain golden the LoRA goldens share their settings with
	lrs := loraGoldens(t)
	lr := lrs[slices.Max(slices.Collect(maps.Keys(lrs)))]
	var gb *golden
	for _, g := range plainGoldens(t) {
		if sameRequest(t, g.run, lr.run) {
			gb = g
		}
	}
	if gb == nil {
		t.Fatalf("no plain pipeline golden has the settings of %s", lr.name)
	}
	req := gb.run.request(t)
	img, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Memory().InUse; got != loaded {
		t.Errorf("after Generate, %d bytes in use, want the post-load %d", got, loaded)
	}
	f, err := os.Open(fixtures.Path(t, "goldens", gb.run.PNG))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if want.Bounds() != img.Bounds() {
		t.Fatalf("image %v, want %v", img.Bounds(), want.Bounds())
	}
	worst := 0
	for y := range req.Height {
		for x := range req.Width {
			r, g, bb, _ := want.At(x, y).RGBA()
			o := img.PixOffset(x, y)
			for c, w := range []uint32{r >> 8, g >> 8, bb >> 8} {
				worst = max(worst, absInt(int(img.Pix[o+c])-int(w)))
			}
			if img.Pix[o+3] != 255 {
				t.Fatalf("pixel (%d, %d) alpha %d, want 255", x, y, img.Pix[o+3])
			}
		}
	}
	if worst > 1 {
		t.Errorf("Generate's image differs from %s by %d LSB", gb.run.PNG, worst)
	}
	// the LoRA run shares gb's settings: the LoRA must matter
	d, r := maxAbs(lr.tensor(t, "final_latents"), gb.tensor(t, "final_latents"))
	if d < 10*1e-3*max(1, r) {
		t.Errorf("the LoRA golden's final latents differ from %s's by only %.3g: the LoRA test cannot tell a merge from none", gb.name, d)
	}
}

// TestBadRequests checks the errors for sizes, steps and samplers.
func TestBadRequests(t *testing.T) {
	p := load(t, cpu.New(), fixtures.Path(t, "model"), pipeline.Options{})
	ok := pipeline.Request{Prompt: "a cat", Steps: 2, Guidance: 5, Sampler: "euler", Width: 64, Height: 64, Seed: 1}
	cases := []struct {
		name string
		edit func(*pipeline.Request)
		want string
	}{
		{"odd width", func(r *pipeline.Request) { r.Width = 65 }, "multiples of 8"},
		{"odd height", func(r *pipeline.Request) { r.Height = 60 }, "multiples of 8"},
		{"zero size", func(r *pipeline.Request) { r.Width = 0 }, "multiples of 8"},
		{"no steps", func(r *pipeline.Request) { r.Steps = 0 }, "at least 1"},
		{"unknown sampler", func(r *pipeline.Request) { r.Sampler = "heun" }, `sampler "heun"`},
		{"guidance NaN", func(r *pipeline.Request) { r.Guidance = math.NaN() }, "guidance"},
	}
	for _, c := range cases {
		req := ok
		c.edit(&req)
		called := false
		_, err := p.Generate(context.Background(), req, func(pipeline.Progress) { called = true })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if called {
			t.Errorf("%s: progress was called", c.name)
		}
	}
	// the same request, valid, runs (the checks are not simply failing everything),
	// also at a multiple of 8 whose latent the UNet cannot halve evenly (72 → 9)
	for _, w := range []int{64, 72} {
		req := ok
		req.Width = w
		calls := 0
		img, err := p.Generate(context.Background(), req, func(pipeline.Progress) { calls++ })
		if err != nil || img == nil || calls != req.Steps {
			t.Fatalf("valid %dx%d request: %v (image %v, %d progress calls)", req.Width, req.Height, err, img != nil, calls)
		}
		if b := img.Bounds(); b.Dx() != req.Width || b.Dy() != req.Height {
			t.Fatalf("valid request: image %v, want %dx%d", b, req.Width, req.Height)
		}
	}
}

// TestLoadErrors checks that a missing model or LoRA is a clear error.
func TestLoadErrors(t *testing.T) {
	b := cpu.New()
	if _, err := pipeline.Load(b, filepath.Join(t.TempDir(), "missing"), pipeline.Options{}); err == nil {
		t.Error("Load of a missing model succeeded")
	}
	missing := filepath.Join(t.TempDir(), "nope.safetensors")
	_, err := pipeline.Load(b, fixtures.Path(t, "model"), pipeline.Options{LoRAs: []pipeline.LoRASpec{{Path: missing, Weight: 1}}})
	if err == nil || !strings.Contains(err.Error(), "nope.safetensors") {
		t.Errorf("missing LoRA: error %v, want one naming the file", err)
	}
	if got := b.Memory().InUse; got != 0 {
		t.Errorf("failed loads left %d bytes in use", got)
	}
}

// TestDefaultRequest checks the tutorial's defaults.
func TestDefaultRequest(t *testing.T) {
	r := pipeline.DefaultRequest()
	if r.Steps != 25 || r.Guidance != 7 || r.Width != 1024 || r.Height != 1024 || r.Sampler != "dpmpp_2m" || r.Negative != nil {
		t.Errorf("DefaultRequest() = %+v", r)
	}
}

// BenchmarkGenerate times whole generations of the fixture model with
// classifier-free guidance (batch 2) on $LORASTUDIO_DEVICE (default auto)
// and reports seconds per sampling step and for the decode.
func BenchmarkGenerate(b *testing.B) {
	be, err := device.Open("")
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	p, err := pipeline.Load(be, fixtures.Path(b, "model"), pipeline.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, size := range []int{64, 256} {
		b.Run(fmt.Sprintf("%s/%dx%d", be.Name(), size, size), func(b *testing.B) {
			req := pipeline.Request{Prompt: "a photo of a cat", Steps: 4, Guidance: 7, Sampler: "dpmpp_2m", Width: size, Height: size, Seed: 1}
			var sampling, decode time.Duration
			for b.Loop() {
				start := time.Now()
				lat, err := p.GenerateLatents(context.Background(), req, nil)
				if err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if _, err := p.DecodeLatents(lat); err != nil {
					b.Fatal(err)
				}
				sampling, decode = sampling+mid.Sub(start), decode+time.Since(mid)
			}
			b.ReportMetric(sampling.Seconds()/float64(b.N*req.Steps), "s/step")
			b.ReportMetric(decode.Seconds()/float64(b.N), "s/decode")
		})
	}
}

// TestNegativePrompt checks diffusers' negative-prompt semantics: nil (no
// negative prompt) gives the zero conditioning of force_zeros_for_empty_prompt,
// an explicit "" is encoded, and the two generations differ; at guidance 1
// the negative prompt is not used at all.
func TestNegativePrompt(t *testing.T) {
	p := load(t, cpu.New(), fixtures.Path(t, "model"), pipeline.Options{})
	if !p.Config().Index.ForceZerosForEmptyPrompt {
		t.Fatal("the fixture model should set force_zeros_for_empty_prompt")
	}
	gen := func(neg *string, guidance float64) []float32 {
		t.Helper()
		req := pipeline.Request{Prompt: "a photo of a cat", Negative: neg, Steps: 2, Guidance: guidance, Sampler: "euler", Width: 64, Height: 64, Seed: 5}
		lat, err := p.GenerateLatents(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return lat.Data
	}
	empty, other := "", "blurry"
	none, enc := gen(nil, 5), gen(&empty, 5)
	if d, _ := maxAbs(none, enc); d < 1e-4 {
		t.Errorf("negative prompt nil and \"\" give latents within %.3g: \"\" was not encoded", d)
	}
	if a, b := gen(nil, 1), gen(&other, 1); !slices.Equal(a, b) {
		t.Error("at guidance 1 the negative prompt changed the latents")
	}
}
