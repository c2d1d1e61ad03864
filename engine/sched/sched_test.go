package sched

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/rng"
	"lorastudio/engine/safetensors"
)

// goldens holds schedulers.json and schedulers.safetensors.
type goldens struct {
	json map[string]json.RawMessage
	st   *safetensors.File
}

func loadGoldens(t *testing.T) goldens {
	t.Helper()
	dir := filepath.Join(fixtures.Root(t), "goldens")
	data, err := os.ReadFile(filepath.Join(dir, "schedulers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldens
	if err := json.Unmarshal(nonFiniteToNull(data), &g.json); err != nil {
		t.Fatalf("schedulers.json: %v", err)
	}
	g.st, err = safetensors.Open(filepath.Join(dir, "schedulers.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.st.Close() })
	return g
}

// config parses the scheduler config stored under key (a config object, or
// an object with a "config" field).
func (g goldens) config(t *testing.T, key string) Config {
	t.Helper()
	raw, ok := g.json[key]
	if !ok {
		t.Fatalf("schedulers.json: no %q", key)
	}
	var wrapped struct {
		Config json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Config != nil {
		raw = wrapped.Config
	}
	c, err := ParseConfig(raw)
	if err != nil {
		t.Fatalf("schedulers.json %q: %v", key, err)
	}
	return c
}

func (g goldens) floats(t *testing.T, key string) []float64 {
	t.Helper()
	var v []float64
	if err := json.Unmarshal(g.json[key], &v); err != nil {
		t.Fatalf("schedulers.json %q: %v", key, err)
	}
	return v
}

func (g goldens) tensor(t *testing.T, name string) []float32 {
	t.Helper()
	v, err := g.st.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// int64s reads an int64 tensor.
func (g goldens) int64s(t *testing.T, name string) []int {
	t.Helper()
	info, ok := g.st.Tensor(name)
	if !ok {
		t.Fatalf("schedulers.safetensors: no %q", name)
	}
	if info.DType != "I64" {
		t.Fatalf("schedulers.safetensors %q: dtype %s, want I64", name, info.DType)
	}
	b, err := g.st.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(b)/8)
	for i := range out {
		out[i] = int(int64(binary.LittleEndian.Uint64(b[8*i:])))
	}
	return out
}

// errStats returns max |got−ref|, the largest relative error |got−ref|/|ref|
// over nonzero refs, and max |ref|.
func errStats(got, want []float64) (maxAbs, maxRel, maxRef float64) {
	for i := range got {
		d := math.Abs(got[i] - want[i])
		maxAbs = math.Max(maxAbs, d)
		if want[i] != 0 {
			maxRel = math.Max(maxRel, d/math.Abs(want[i]))
		} else if d != 0 {
			maxRel = math.Inf(1)
		}
		maxRef = math.Max(maxRef, math.Abs(want[i]))
	}
	return
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// checkExact requires equal timesteps.
func checkExact(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: [%d] = %v, want %v (all: got %v want %v)", what, i, got[i], want[i], got, want)
			return
		}
	}
}

// checkRel requires |got−ref| <= tol·|ref| elementwise (sigmas, alphas_cumprod).
func checkRel(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", what, len(got), len(want))
		return
	}
	maxAbs, maxRel, _ := errStats(got, want)
	if maxRel > tol {
		t.Errorf("%s: max abs err %.3g, max rel err %.3g > %g", what, maxAbs, maxRel, tol)
	}
}

// checkSample requires max|got−ref| <= 1e-5·max(1, max|ref|), the goldens'
// tolerance for step samples; it returns the errors for the log.
func checkSample(t *testing.T, what string, got, want []float32) (float64, float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", what, len(got), len(want))
		return math.Inf(1), math.Inf(1)
	}
	maxAbs, maxRel, maxRef := errStats(to64(got), to64(want))
	if tol := 1e-5 * math.Max(1, maxRef); maxAbs > tol {
		t.Errorf("%s: max abs err %.3g > %.3g (max rel err %.3g, max|ref| %.3g)", what, maxAbs, tol, maxRel, maxRef)
	}
	return maxAbs, maxRel
}

// kindOf maps a golden's name prefix to our scheduler kind and the
// schedulers.json key of its config.
func kindOf(prefix string) (kind, configKey string, ok bool) {
	switch prefix {
	case "dpm":
		return "dpmpp_2m", "dpm_config", true
	case "dpm_karras":
		return "dpmpp_2m_karras", "dpm_karras_config", true
	case "euler":
		return "euler", "base_config", true
	case "euler_a":
		return "euler_a", "base_config", true
	}
	return "", "", false
}

type sigmaser interface{ Sigmas() []float32 }

// TestScheduleGoldens checks every "<sched>.timesteps_<N>" / sigmas_<N> /
// init_noise_sigma_<N> list of schedulers.json.
func TestScheduleGoldens(t *testing.T) {
	g := loadGoldens(t)
	re := regexp.MustCompile(`^(\w+?)\.timesteps_(\d+)$`)
	var keys []string
	for k := range g.json {
		if re.MatchString(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatal("schedulers.json has no timesteps_<N> lists")
	}
	for _, k := range keys {
		m := re.FindStringSubmatch(k)
		prefix, steps := m[1], m[2]
		t.Run(prefix+"_"+steps, func(t *testing.T) {
			kind, cfgKey, ok := kindOf(prefix)
			if !ok {
				t.Fatalf("unknown scheduler prefix %q", prefix)
			}
			n, _ := strconv.Atoi(steps)
			s, err := New(kind, g.config(t, cfgKey), n)
			if err != nil {
				t.Fatal(err)
			}
			checkExact(t, "timesteps", s.Timesteps(), g.floats(t, k))
			checkRel(t, "sigmas", to64(s.(sigmaser).Sigmas()), g.floats(t, prefix+".sigmas_"+steps), 1e-6)
			if raw, ok := g.json[prefix+".init_noise_sigma_"+steps]; ok {
				var want float64
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
				checkRel(t, "init_noise_sigma", []float64{s.InitNoiseSigma()}, []float64{want}, 1e-6)
			}
		})
	}
}

// TestStepGoldens replays every step sequence of the goldens (objects of
// schedulers.json with num_inference_steps): starting from x_init ×
// init_noise_sigma, model_input = ScaleModelInput(sample), model_output =
// 0.1·model_input + fixed, sample = Step(...), each compared with the
// reference. The chain runs on our own samples, so errors would accumulate.
func TestStepGoldens(t *testing.T) {
	g := loadGoldens(t)
	xInit := g.tensor(t, "x_init")
	fixed := g.tensor(t, "fixed")
	var names []string
	for k, raw := range g.json {
		var probe struct {
			Steps *int `json:"num_inference_steps"`
		}
		if json.Unmarshal(raw, &probe) == nil && probe.Steps != nil {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("schedulers.json has no step sequences")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var meta struct {
				Steps     int       `json:"num_inference_steps"`
				Timesteps []float64 `json:"timesteps"`
				InitSigma float64   `json:"init_noise_sigma"`
				Sigmas    []float64 `json:"sigmas"`
				Seed      *uint64   `json:"generator_seed"`
			}
			if err := json.Unmarshal(g.json[name], &meta); err != nil {
				t.Fatal(err)
			}
			kind, cfgKey, ok := kindOf(strings.TrimRight(name, "0123456789"))
			if !ok {
				t.Fatalf("unknown scheduler %q", name)
			}
			s, err := New(kind, g.config(t, cfgKey), meta.Steps)
			if err != nil {
				t.Fatal(err)
			}
			checkExact(t, "timesteps", s.Timesteps(), meta.Timesteps)
			if _, ok := g.st.Tensor(name + ".timesteps"); ok {
				var want []float64
				if info, _ := g.st.Tensor(name + ".timesteps"); info.DType == "I64" {
					for _, v := range g.int64s(t, name+".timesteps") {
						want = append(want, float64(v))
					}
				} else {
					want = to64(g.tensor(t, name+".timesteps"))
				}
				checkExact(t, "timesteps tensor", s.Timesteps(), want)
			}
			checkRel(t, "sigmas", to64(s.(sigmaser).Sigmas()), to64(g.tensor(t, name+".sigmas")), 1e-6)
			checkRel(t, "init_noise_sigma", []float64{s.InitNoiseSigma()}, []float64{meta.InitSigma}, 1e-6)

			var noise func(int) []float32
			if meta.Seed != nil {
				noise = rng.New(*meta.Seed).Randn
			}
			sigma0 := float32(s.InitNoiseSigma())
			sample := make([]float32, len(xInit))
			for i, v := range xInit {
				sample[i] = v * sigma0
			}
			for i := range s.Timesteps() {
				in := s.ScaleModelInput(append([]float32(nil), sample...), i)
				a1, r1 := checkSample(t, fmt.Sprintf("step %d model_input", i), in, g.tensor(t, fmt.Sprintf("%s.step%d.model_input", name, i)))
				out := make([]float32, len(in))
				for k := range in {
					out[k] = float32(float32(0.1)*in[k]) + fixed[k]
				}
				sample, err = s.Step(out, sample, i, noise)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				a2, r2 := checkSample(t, fmt.Sprintf("step %d prev_sample", i), sample, g.tensor(t, fmt.Sprintf("%s.step%d.prev_sample", name, i)))
				t.Logf("step %d (t=%g): model_input max abs %.3g rel %.3g; prev_sample max abs %.3g rel %.3g", i, s.Timesteps()[i], a1, r1, a2, r2)
			}
		})
	}
}

// TestDDPMGoldens checks betas, alphas_cumprod and add_noise.
func TestDDPMGoldens(t *testing.T) {
	g := loadGoldens(t)
	d, err := NewDDPM(g.config(t, "ddpm"), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRel(t, "betas", to64(d.Betas()), to64(g.tensor(t, "ddpm.betas")), 1e-6)
	checkRel(t, "alphas_cumprod", to64(d.AlphasCumprod()), to64(g.tensor(t, "ddpm.alphas_cumprod")), 1e-6)
	ts := g.int64s(t, "ddpm.add_noise.timesteps")
	got, err := d.AddNoise(g.tensor(t, "ddpm.add_noise.sample"), g.tensor(t, "ddpm.add_noise.noise"), ts)
	if err != nil {
		t.Fatal(err)
	}
	a, r := checkSample(t, "add_noise", got, g.tensor(t, "ddpm.add_noise.out"))
	t.Logf("add_noise at timesteps %v: max abs %.3g rel %.3g", ts, a, r)
}
