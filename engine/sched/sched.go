// Package sched holds the diffusion schedulers of LoRA Studio — DDPM (the
// training noise), Euler, Euler ancestral and DPM-Solver++ 2M with and without
// Karras sigmas — written to agree step for step with diffusers v0.26.3.
//
// The schedulers work on flat []float32 latents (any shape, row-major). The
// schedule arrays are computed in the precision diffusers uses (float64 numpy
// arrays cast to float32 tensors) and each step's tensor math is done in
// float32 in diffusers' order of operations, so the steps match the
// reference's own numbers to rounding.
//
// A sampling loop, as diffusers' pipelines run it (one generator for the
// initial latents and for every step's noise; float32 products throughout):
//
//	s, err := sched.FromConfigFile("model/scheduler/scheduler_config.json", "euler_a", 30)
//	g := rng.New(seed)
//	x := g.Randn(n) // n = latent elements, (B, 4, H/8, W/8)
//	sigma := float32(s.InitNoiseSigma())
//	for i := range x {
//		x[i] *= sigma
//	}
//	for i, t := range s.Timesteps() {
//		in := s.ScaleModelInput(append([]float32(nil), x...), i)
//		eps := unet(in, t) // with classifier-free guidance applied
//		if x, err = s.Step(eps, x, i, g.Randn); err != nil {
//			return err
//		}
//	}
package sched

import (
	"fmt"
	"strings"
)

// Scheduler is one sampling schedule (a diffusers scheduler after
// set_timesteps). Steps are addressed by their index into Timesteps and must
// be taken in order, starting at 0 (step 0 restarts a multistep solver).
type Scheduler interface {
	// Timesteps returns the model timesteps of the steps, in sampling order
	// (integers for DPM-Solver and DDPM, float32 values for the Euler family).
	Timesteps() []float64
	// InitNoiseSigma returns the factor the initial Gaussian noise is
	// multiplied by (diffusers' init_noise_sigma).
	InitNoiseSigma() float64
	// ScaleModelInput scales sample in place for the model at step stepIndex
	// and returns it (diffusers' scale_model_input).
	ScaleModelInput(sample []float32, stepIndex int) []float32
	// Step takes the model's output at step stepIndex and the current sample
	// and returns the sample for the next step (a new slice). noise draws n
	// standard normal values (rng.Generator.Randn); ancestral samplers call it,
	// the others may receive nil.
	Step(modelOutput, sample []float32, stepIndex int, noise func(n int) []float32) ([]float32, error)
}

// Kinds lists the scheduler names New accepts.
var Kinds = []string{"ddpm", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras"}

// New returns the scheduler named kind for a config, set up for steps
// inference steps:
//
//	ddpm             DDPMScheduler
//	euler            EulerDiscreteScheduler (Karras sigmas when the config says so)
//	euler_a          EulerAncestralDiscreteScheduler
//	dpmpp_2m         DPMSolverMultistepScheduler (dpmsolver++, order 2), use_karras_sigmas false
//	dpmpp_2m_karras  the same with use_karras_sigmas true
func New(kind string, cfg Config, steps int) (Scheduler, error) {
	cfg = cfg.withDefaults()
	var (
		s   Scheduler
		err error
	)
	switch strings.ToLower(kind) {
	case "ddpm":
		s, err = NewDDPM(cfg, steps)
	case "euler":
		s, err = NewEuler(cfg, steps)
	case "euler_a":
		s, err = NewEulerAncestral(cfg, steps)
	case "dpmpp_2m":
		cfg.UseKarrasSigmas = false
		s, err = NewDPMSolver(cfg, steps)
	case "dpmpp_2m_karras":
		cfg.UseKarrasSigmas = true
		s, err = NewDPMSolver(cfg, steps)
	default:
		return nil, fmt.Errorf("sched: unknown scheduler %q (want one of %s)", kind, strings.Join(Kinds, ", "))
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// FromConfigFile reads a scheduler_config.json and returns New(kind, config,
// steps); errors name the file.
func FromConfigFile(path, kind string, steps int) (Scheduler, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	s, err := New(kind, cfg, steps)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return s, nil
}

// checkStep validates a step call's index and lengths.
func checkStep(name string, modelOutput, sample []float32, stepIndex, steps int) error {
	if stepIndex < 0 || stepIndex >= steps {
		return fmt.Errorf("sched: %s: step index %d out of range [0, %d)", name, stepIndex, steps)
	}
	if len(modelOutput) != len(sample) {
		return fmt.Errorf("sched: %s: model output has %d values, sample %d", name, len(modelOutput), len(sample))
	}
	return nil
}

// checkSteps validates the number of inference steps against the config.
func checkSteps(name string, steps, train int) error {
	if steps < 1 || steps > train {
		return fmt.Errorf("sched: %s: %d inference steps: want 1..%d (num_train_timesteps)", name, steps, train)
	}
	return nil
}

// drawNoise calls noise(n) and checks its length.
func drawNoise(name string, noise func(int) []float32, n int) ([]float32, error) {
	if noise == nil {
		return nil, fmt.Errorf("sched: %s: this step needs a noise source", name)
	}
	z := noise(n)
	if len(z) != n {
		return nil, fmt.Errorf("sched: %s: noise source gave %d values, want %d", name, len(z), n)
	}
	return z, nil
}
