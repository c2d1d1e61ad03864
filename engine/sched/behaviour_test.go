package sched

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/rng"
)

// TestFromConfigFile loads the fixture model's own scheduler_config.json for
// every kind and checks Euler's schedule against the golden computed from the
// same config.
func TestFromConfigFile(t *testing.T) {
	root := fixtures.Root(t)
	path := filepath.Join(root, "model", "scheduler", "scheduler_config.json")
	for _, kind := range Kinds {
		s, err := FromConfigFile(path, kind, 25)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if n := len(s.Timesteps()); n != 25 {
			t.Errorf("%s: %d timesteps, want 25", kind, n)
		}
	}
	g := loadGoldens(t)
	s, err := FromConfigFile(path, "euler", 25)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, "euler timesteps from scheduler_config.json", s.Timesteps(), g.floats(t, "euler.timesteps_25"))
	checkRel(t, "euler sigmas from scheduler_config.json", to64(s.(sigmaser).Sigmas()), g.floats(t, "euler.sigmas_25"), 1e-6)
}

// TestSpacings checks timestep spacings the goldens do not cover against
// values diffusers 0.26.3 prints for the SDXL config (scaled_linear,
// 1000 training steps).
func TestSpacings(t *testing.T) {
	cases := []struct {
		kind, spacing string
		offset, steps int
		want          []float64
	}{
		{"euler", "trailing", 0, 4, []float64{999, 749, 499, 249}},
		{"euler_a", "trailing", 0, 4, []float64{999, 749, 499, 249}},
		{"dpmpp_2m", "trailing", 0, 4, []float64{999, 749, 499, 249}},
		{"ddpm", "trailing", 0, 4, []float64{999, 749, 499, 249}},
		// np.arange(1000, 0, -1000/6).round() = 1000, 833, 667, 500, 333, 167
		{"euler", "trailing", 0, 6, []float64{999, 832, 666, 499, 332, 166}},
		{"dpmpp_2m", "linspace", 0, 4, []float64{999, 749, 500, 250}},
		{"ddpm", "linspace", 0, 4, []float64{999, 666, 333, 0}},
		{"euler", "linspace", 0, 4, []float64{999, 666, 333, 0}},
		{"euler", "linspace", 0, 5, []float64{999, 749.25, 499.5, 249.75, 0}},
		{"ddpm", "leading", 1, 10, []float64{901, 801, 701, 601, 501, 401, 301, 201, 101, 1}},
		{"euler", "leading", 0, 4, []float64{750, 500, 250, 0}},
	}
	for _, c := range cases {
		cfg := SDXLConfig()
		cfg.TimestepSpacing, cfg.StepsOffset = c.spacing, c.offset
		s, err := New(c.kind, cfg, c.steps)
		if err != nil {
			t.Errorf("%s %s %d: %v", c.kind, c.spacing, c.steps, err)
			continue
		}
		checkExact(t, c.kind+" "+c.spacing, s.Timesteps(), c.want)
	}
	// init_noise_sigma: sqrt(σmax²+1) for leading, σmax otherwise
	for _, sp := range []string{"leading", "trailing", "linspace"} {
		cfg := SDXLConfig()
		cfg.TimestepSpacing = sp
		e, err := NewEuler(cfg, 10)
		if err != nil {
			t.Fatal(err)
		}
		max := float64(e.Sigmas()[0])
		want := max
		if sp == "leading" {
			want = float64(float32(math.Sqrt(float64(float32(max*max) + 1))))
		}
		if got := e.InitNoiseSigma(); math.Abs(got-want) > 1e-6*want {
			t.Errorf("%s: init_noise_sigma %v, want %v", sp, got, want)
		}
	}
}

// TestKarrasRange checks DPM++ 2M Karras: the first sigma is the largest
// training sigma, the last before the final 0 the smallest, the sigmas fall
// strictly, and the config's sigma_min/sigma_max override the range.
func TestKarrasRange(t *testing.T) {
	d, err := NewDDPM(SDXLConfig(), 0)
	if err != nil {
		t.Fatal(err)
	}
	train := trainSigmas(d.AlphasCumprod())
	s, err := New("dpmpp_2m_karras", SDXLConfig(), 12)
	if err != nil {
		t.Fatal(err)
	}
	sig := s.(sigmaser).Sigmas()
	if sig[0] != train[len(train)-1] || sig[11] != train[0] || sig[12] != 0 {
		t.Fatalf("karras sigmas %v: want %v first, %v last, then 0", sig, train[len(train)-1], train[0])
	}
	for i := 1; i < len(sig); i++ {
		if !(sig[i] < sig[i-1]) {
			t.Fatalf("sigmas not strictly falling at %d: %v", i, sig)
		}
	}
	cfg := SDXLConfig()
	lo, hi := 0.1, 10.0
	cfg.SigmaMin, cfg.SigmaMax = &lo, &hi
	s, err = New("dpmpp_2m_karras", cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	sig = s.(sigmaser).Sigmas()
	if sig[0] != 10 || math.Abs(float64(sig[4])-0.1) > 1e-7 {
		t.Fatalf("sigma_min/sigma_max override ignored: %v", sig)
	}
	// Euler with use_karras_sigmas spans its own interpolated range.
	cfg = SDXLConfig()
	cfg.UseKarrasSigmas = true
	e, err := New("euler", cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := New("euler", SDXLConfig(), 10)
	ks, ps := e.(sigmaser).Sigmas(), plain.(sigmaser).Sigmas()
	if math.Abs(float64(ks[0]-ps[0])) > 1e-5 || math.Abs(float64(ks[9]-ps[9])) > 1e-6 || ks[5] == ps[5] {
		t.Fatalf("euler karras %v vs plain %v: same ends, different middle expected", ks, ps)
	}
}

// TestDDPMStep checks the sampler step against the textbook posterior
// (Ho et al. 2020, eq. 7) in float64: with x_t made by AddNoise and the model
// predicting the true noise, the step with zero noise is the posterior mean
// μ = √ᾱₚβ/(1−ᾱₜ)·x₀ + √α(1−ᾱₚ)/(1−ᾱₜ)·x_t (at the last step, x₀); noise is
// drawn for every t > 0, as diffusers does.
func TestDDPMStep(t *testing.T) {
	cfg := SDXLConfig()
	d, err := NewDDPM(cfg, 20)
	if err != nil {
		t.Fatal(err)
	}
	g := rng.New(11)
	x0 := g.Randn(64)
	for i := range x0 {
		x0[i] *= 0.5 // inside clip_sample's range either way
	}
	eps := g.Randn(64)
	acp := d.AlphasCumprod()
	ts := d.Timesteps()
	zeros := func(n int) []float32 { return make([]float32, n) }
	for _, i := range []int{0, 7, len(ts) - 1} {
		tt := int(ts[i])
		xt, err := d.AddNoise(x0, eps, []int{tt})
		if err != nil {
			t.Fatal(err)
		}
		called := false
		noise := func(n int) []float32 { called = true; return zeros(n) }
		got, err := d.Step(eps, xt, i, noise)
		if err != nil {
			t.Fatal(err)
		}
		at := float64(acp[tt])
		ap := 1.0
		if p := tt - 1000/20; p >= 0 {
			ap = float64(acp[p])
		}
		beta := 1 - at/ap
		worst := 0.0
		for k := range got {
			mu := math.Sqrt(ap)*beta/(1-at)*float64(x0[k]) + math.Sqrt(at/ap)*(1-ap)/(1-at)*float64(xt[k])
			worst = math.Max(worst, math.Abs(float64(got[k])-mu))
		}
		if worst > 2e-5 {
			t.Errorf("step %d (t=%d): max |got-μ| = %.3g", i, tt, worst)
		}
		if called != (tt > 0) {
			t.Errorf("step %d (t=%d): noise drawn = %v, diffusers draws it for t > 0", i, tt, called)
		}
	}
	v, err := d.Velocity(x0, eps, []int{500})
	if err != nil {
		t.Fatal(err)
	}
	a := float64(acp[500])
	for k := range v {
		want := math.Sqrt(a)*float64(eps[k]) - math.Sqrt(1-a)*float64(x0[k])
		if math.Abs(float64(v[k])-want) > 1e-6 {
			t.Fatalf("velocity[%d] = %v, want %v", k, v[k], want)
		}
	}
}

// TestPredictionTypes checks that v_prediction and sample are read and that
// a perfect model lands on x₀: for the Euler family x = x₀ + σ·ε, for
// DPM-Solver x = α·x₀ + σₜ·ε; the last step of every scheduler must return
// the model's x₀ (σ falls to 0).
func TestPredictionTypes(t *testing.T) {
	g := rng.New(5)
	x0 := g.Randn(32)
	eps := g.Randn(32)
	for _, kind := range []string{"euler", "dpmpp_2m", "dpmpp_2m_karras"} {
		for _, pt := range []string{"epsilon", "v_prediction", "sample"} {
			cfg := SDXLConfig()
			cfg.PredictionType = pt
			s, err := New(kind, cfg, 5)
			if err != nil {
				t.Fatal(err)
			}
			sig := s.(sigmaser).Sigmas()
			last := len(sig) - 2
			// run the steps before the last to set up DPM's history
			sample := make([]float32, len(x0))
			var out []float32
			for i := 0; i <= last; i++ {
				sg := float64(sig[i])
				alpha := 1 / math.Sqrt(sg*sg+1)
				mo := make([]float32, len(x0))
				for k := range sample {
					switch {
					case strings.HasPrefix(kind, "dpm"):
						sample[k] = float32(alpha*float64(x0[k]) + sg*alpha*float64(eps[k]))
					default:
						sample[k] = float32(float64(x0[k]) + sg*float64(eps[k]))
					}
					switch pt {
					case "epsilon":
						mo[k] = eps[k]
					case "v_prediction":
						mo[k] = float32(alpha*float64(eps[k]) - sg*alpha*float64(x0[k]))
					case "sample":
						mo[k] = x0[k]
					}
				}
				out, err = s.Step(mo, sample, i, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			worst := 0.0
			for k := range out {
				worst = math.Max(worst, math.Abs(float64(out[k]-x0[k])))
			}
			if worst > 1e-4 {
				t.Errorf("%s %s: last step max |x - x0| = %.3g", kind, pt, worst)
			}
		}
	}
}

// TestErrors checks that misuse is reported, not panicked.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "scheduler_config.json")
	if err := os.WriteFile(bad, []byte(`{"num_train_timesteps": "many"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromConfigFile(bad, "euler", 10); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad JSON: error %v should name %s", err, bad)
	}
	if _, err := FromConfigFile(filepath.Join(dir, "missing.json"), "euler", 10); err == nil {
		t.Error("missing file: no error")
	}
	// Python's -Infinity is accepted (lambda_min_clipped)
	inf := filepath.Join(dir, "inf.json")
	os.WriteFile(inf, []byte(`{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "lambda_min_clipped": -Infinity, "timestep_spacing": "leading", "steps_offset": 1, "note": "NaN -Infinity inside a string"}`), 0o644)
	if _, err := FromConfigFile(inf, "dpmpp_2m", 10); err != nil {
		t.Errorf("-Infinity config: %v", err)
	}
	cfg := SDXLConfig()
	if _, err := New("heun", cfg, 10); err == nil {
		t.Error("unknown kind: no error")
	}
	for _, steps := range []int{0, -1, 1001} {
		if _, err := New("euler", cfg, steps); err == nil {
			t.Errorf("%d steps: no error", steps)
		}
	}
	c2 := cfg
	c2.PredictionType = "flow"
	if _, err := New("euler", c2, 10); err == nil {
		t.Error("unknown prediction_type: no error")
	}
	c2 = cfg
	c2.BetaSchedule = "sigmoid"
	if _, err := New("dpmpp_2m", c2, 10); err == nil {
		t.Error("unknown beta_schedule: no error")
	}
	c2 = cfg
	c2.AlgorithmType = "sde-dpmsolver++"
	if _, err := New("dpmpp_2m", c2, 10); err == nil {
		t.Error("unsupported algorithm_type: no error")
	}

	x := make([]float32, 16)
	ea, _ := New("euler_a", cfg, 4)
	if _, err := ea.Step(x, x, 0, nil); err == nil {
		t.Error("euler_a without noise: no error")
	}
	if _, err := ea.Step(x, x, 0, func(n int) []float32 { return make([]float32, n-1) }); err == nil {
		t.Error("short noise: no error")
	}
	e, _ := New("euler", cfg, 4)
	if _, err := e.Step(x[:8], x, 0, nil); err == nil {
		t.Error("length mismatch: no error")
	}
	if _, err := e.Step(x, x, 4, nil); err == nil {
		t.Error("step index out of range: no error")
	}
	d, _ := New("dpmpp_2m", cfg, 4)
	if _, err := d.Step(x, x, 1, nil); err == nil {
		t.Error("dpm step 1 before step 0: no error")
	}
	if _, err := d.Step(x, x, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Step(x, x, 2, nil); err == nil {
		t.Error("dpm step skipped: no error")
	}
	dd, _ := NewDDPM(cfg, 0)
	if _, err := dd.AddNoise(x, x, []int{1000}); err == nil {
		t.Error("timestep 1000: no error")
	}
	if _, err := dd.AddNoise(x, x, []int{1, 2, 3}); err == nil {
		t.Error("16 values in 3 items: no error")
	}
}

// TestDPMRestart checks that step 0 restarts the multistep history: two runs
// of the same inputs give the same samples.
func TestDPMRestart(t *testing.T) {
	s, err := New("dpmpp_2m", SDXLConfig(), 6)
	if err != nil {
		t.Fatal(err)
	}
	g := rng.New(3)
	x := g.Randn(48)
	f := g.Randn(48)
	run := func() []float32 {
		sample := append([]float32(nil), x...)
		for i := range s.Timesteps() {
			mo := make([]float32, len(f))
			for k := range mo {
				mo[k] = 0.1*sample[k] + f[k]
			}
			sample, err = s.Step(mo, sample, i, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		return sample
	}
	a, b := run(), run()
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("second run differs at %d: %v vs %v", k, a[k], b[k])
		}
	}
}
