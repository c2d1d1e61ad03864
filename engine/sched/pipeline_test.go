package sched

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/rng"
	"lorastudio/engine/safetensors"
)

// pipelineRun is one whole-pipeline golden run (pipeline_*.json, or one of
// the runs nested in pipeline_lora.json).
type pipelineRun struct {
	Scheduler       string          `json:"scheduler"`
	SchedulerClass  string          `json:"scheduler_class"`
	SchedulerConfig json.RawMessage `json:"scheduler_config"`
	Steps           int             `json:"steps"`
	Guidance        float64         `json:"guidance"`
	Seed            *uint64         `json:"seed"`
	Timesteps       []float64       `json:"timesteps"`
	LatentShape     []int           `json:"latent_shape"`
	CFG             bool            `json:"do_classifier_free_guidance"`
}

// kindForClass maps a diffusers scheduler class to our kind.
func kindForClass(class string, c Config) (string, error) {
	switch class {
	case "DPMSolverMultistepScheduler":
		if c.UseKarrasSigmas {
			return "dpmpp_2m_karras", nil
		}
		return "dpmpp_2m", nil
	case "EulerDiscreteScheduler":
		return "euler", nil
	case "EulerAncestralDiscreteScheduler":
		return "euler_a", nil
	case "DDPMScheduler":
		return "ddpm", nil
	}
	return "", fmt.Errorf("no scheduler kind for class %q", class)
}

// TestPipelineStart replays the start of every whole-pipeline golden: the
// initial latents are torch.randn(latent shape, Generator.manual_seed(seed))
// × init_noise_sigma, the first UNet input is scale_model_input of them
// (doubled for classifier-free guidance), and step 0 with the golden UNet
// output after guidance gives latents_after_step0. This is the contract the
// text-to-image pipeline builds on.
func TestPipelineStart(t *testing.T) {
	dir := filepath.Join(fixtures.Root(t), "goldens")
	files, err := filepath.Glob(filepath.Join(dir, "pipeline_*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no pipeline_*.json in %s (%v)", dir, err)
	}
	checked := 0
	for _, jf := range files {
		data, err := os.ReadFile(jf)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(nonFiniteToNull(data), &top); err != nil {
			t.Fatalf("%s: %v", jf, err)
		}
		st, err := safetensors.Open(strings.TrimSuffix(jf, ".json") + ".safetensors")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		// the run itself, or runs nested under keys that prefix their tensors
		runs := map[string]json.RawMessage{"": data}
		for k, raw := range top {
			if len(raw) > 0 && raw[0] == '{' && k != "scheduler_config" {
				runs[k+"."] = raw
			}
		}
		var prefixes []string
		for p := range runs {
			prefixes = append(prefixes, p)
		}
		sort.Strings(prefixes)
		for _, prefix := range prefixes {
			var run pipelineRun
			if json.Unmarshal(nonFiniteToNull(runs[prefix]), &run) != nil || run.Seed == nil || run.SchedulerConfig == nil {
				continue
			}
			if _, ok := st.Tensor(prefix + "raw_randn"); !ok {
				continue
			}
			name := filepath.Base(jf)
			if prefix != "" {
				name += ":" + strings.TrimSuffix(prefix, ".")
			}
			t.Run(name, func(t *testing.T) {
				checkPipelineStart(t, st, prefix, run)
			})
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no pipeline run with raw_randn found")
	}
}

func checkPipelineStart(t *testing.T, st *safetensors.File, prefix string, run pipelineRun) {
	get := func(name string) []float32 {
		t.Helper()
		v, err := st.Float32(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cfg, err := ParseConfig(run.SchedulerConfig)
	if err != nil {
		t.Fatal(err)
	}
	kind, err := kindForClass(run.SchedulerClass, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(kind, cfg, run.Steps)
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, "timesteps", s.Timesteps(), run.Timesteps)

	n := 1
	for _, d := range run.LatentShape {
		n *= d
	}
	g := rng.New(*run.Seed)
	raw := g.Randn(n)
	if want := get("raw_randn"); !equal32(raw, want) {
		a, _, _ := errStats(to64(raw), to64(want))
		t.Fatalf("raw_randn differs (max abs %.3g)", a)
	}
	sigma := float32(s.InitNoiseSigma())
	latents := make([]float32, n)
	for i, v := range raw {
		latents[i] = v * sigma
	}
	if want := get("init_latents"); !equal32(latents, want) {
		a, _, _ := errStats(to64(latents), to64(want))
		t.Errorf("init_latents differ (max abs %.3g)", a)
	}

	in := s.ScaleModelInput(append([]float32(nil), latents...), 0)
	x := get("first_unet_call.x")
	copies := len(x) / n
	if copies*n != len(x) || (run.CFG && copies != 2) {
		t.Fatalf("first_unet_call.x has %d values for latents of %d (cfg %v)", len(x), n, run.CFG)
	}
	for c := 0; c < copies; c++ {
		checkSample(t, fmt.Sprintf("first UNet input, copy %d", c), x[c*n:(c+1)*n], in)
	}

	out := get("first_unet_call.out")
	guided := out[:n]
	if copies == 2 {
		// noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
		guided = make([]float32, n)
		gs := float32(run.Guidance)
		for i := range guided {
			u, c := out[i], out[n+i]
			guided[i] = u + float32(gs*(c-u))
		}
	}
	next, err := s.Step(guided, latents, 0, g.Randn)
	if err != nil {
		t.Fatal(err)
	}
	a, r := checkSample(t, "latents_after_step0", next, get("latents_after_step0"))
	t.Logf("%s: randn and init latents exact; step 0 max abs %.3g rel %.3g", kind, a, r)
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(float64(a[i])) && math.IsNaN(float64(b[i]))) {
			return false
		}
	}
	return true
}
