package sched

import (
	"fmt"
	"math"
)

// DDPM is diffusers' DDPMScheduler: the forward (noising) process that LoRA
// training samples from (AddNoise, Velocity), and the ancestral DDPM sampler.
type DDPM struct {
	cfg       Config
	betas     []float32 // (N,)
	acp       []float32 // (N,) alphas_cumprod
	timesteps []float64 // integers, sampling order
	stride    int       // N // inference steps: the previous timestep is t − stride
	clip      bool
	clipRange float32
	variance  string
}

// NewDDPM returns the DDPM scheduler. steps is the number of inference steps
// for sampling; 0 keeps diffusers' default schedule (all N training timesteps,
// N−1 down to 0), which is all training needs.
func NewDDPM(c Config, steps int) (*DDPM, error) {
	c = c.withDefaults()
	if err := c.validateCommon(); err != nil {
		return nil, fmt.Errorf("sched: ddpm: %v", err)
	}
	n := c.NumTrainTimesteps
	d := &DDPM{cfg: c, clip: true, clipRange: 1, variance: "fixed_small"}
	if c.ClipSample != nil {
		d.clip = *c.ClipSample
	}
	if c.ClipSampleRange != nil {
		d.clipRange = f32(*c.ClipSampleRange)
	}
	if c.VarianceType != "" {
		d.variance = c.VarianceType
	}
	if d.variance != "fixed_small" && d.variance != "fixed_large" {
		return nil, fmt.Errorf("sched: ddpm: variance_type %q is not supported (fixed_small or fixed_large)", d.variance)
	}
	if c.Thresholding {
		return nil, fmt.Errorf("sched: ddpm: thresholding is not supported")
	}
	var err error
	if d.betas, err = c.betas(); err != nil {
		return nil, fmt.Errorf("sched: ddpm: %v", err)
	}
	d.acp = alphasCumprod(d.betas)

	if steps == 0 {
		d.stride = 1
		for t := n - 1; t >= 0; t-- {
			d.timesteps = append(d.timesteps, float64(t))
		}
		return d, nil
	}
	if err := checkSteps("ddpm", steps, n); err != nil {
		return nil, err
	}
	d.stride = n / steps
	switch c.TimestepSpacing {
	case "linspace":
		v := numpyLinspace(0, float64(n-1), steps)
		for i := steps - 1; i >= 0; i-- {
			d.timesteps = append(d.timesteps, roundHalfEven(v[i]))
		}
	case "leading":
		for i := steps - 1; i >= 0; i-- {
			d.timesteps = append(d.timesteps, float64(i*d.stride+c.StepsOffset))
		}
	case "trailing":
		for _, v := range numpyArange(float64(n), 0, -float64(n)/float64(steps)) {
			d.timesteps = append(d.timesteps, roundHalfEven(v)-1)
		}
	}
	for _, t := range d.timesteps {
		if t < 0 || t >= float64(n) {
			return nil, fmt.Errorf("sched: ddpm: %d steps with %s spacing and steps_offset %d give timestep %g outside [0, %d)",
				steps, c.TimestepSpacing, c.StepsOffset, t, n)
		}
	}
	return d, nil
}

// Betas returns the float32 beta schedule (N values).
func (d *DDPM) Betas() []float32 { return append([]float32(nil), d.betas...) }

// AlphasCumprod returns ᾱ, the float32 cumulative product of 1 − β (N values).
func (d *DDPM) AlphasCumprod() []float32 { return append([]float32(nil), d.acp...) }

// Timesteps returns the integer timesteps in sampling order.
func (d *DDPM) Timesteps() []float64 { return append([]float64(nil), d.timesteps...) }

// InitNoiseSigma is 1.
func (d *DDPM) InitNoiseSigma() float64 { return 1 }

// ScaleModelInput returns sample unchanged.
func (d *DDPM) ScaleModelInput(sample []float32, stepIndex int) []float32 { return sample }

// perItem checks a batched call: x and noise hold len(timesteps) items of
// equal size, every timestep within [0, N). It returns the item size.
func (d *DDPM) perItem(name string, x, noise []float32, timesteps []int) (int, error) {
	b := len(timesteps)
	if b == 0 || len(x)%b != 0 {
		return 0, fmt.Errorf("sched: ddpm: %s: %d values do not split into %d items", name, len(x), b)
	}
	if len(noise) != len(x) {
		return 0, fmt.Errorf("sched: ddpm: %s: noise has %d values, sample %d", name, len(noise), len(x))
	}
	for _, t := range timesteps {
		if t < 0 || t >= len(d.acp) {
			return 0, fmt.Errorf("sched: ddpm: %s: timestep %d outside [0, %d)", name, t, len(d.acp))
		}
	}
	return len(x) / b, nil
}

// AddNoise returns √ᾱₜ·original + √(1−ᾱₜ)·noise (diffusers' add_noise), with
// one timestep per batch item: original and noise are (B, ...) with
// B = len(timesteps).
func (d *DDPM) AddNoise(original, noise []float32, timesteps []int) ([]float32, error) {
	m, err := d.perItem("add_noise", original, noise, timesteps)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(original))
	for b, t := range timesteps {
		sa := sqrt32(d.acp[t])
		sb := sqrt32(1 - d.acp[t])
		for i := b * m; i < (b+1)*m; i++ {
			out[i] = float32(sa*original[i]) + float32(sb*noise[i])
		}
	}
	return out, nil
}

// Velocity returns the v-prediction target √ᾱₜ·noise − √(1−ᾱₜ)·sample
// (diffusers' get_velocity), one timestep per batch item.
func (d *DDPM) Velocity(sample, noise []float32, timesteps []int) ([]float32, error) {
	m, err := d.perItem("velocity", sample, noise, timesteps)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(sample))
	for b, t := range timesteps {
		sa := sqrt32(d.acp[t])
		sb := sqrt32(1 - d.acp[t])
		for i := b * m; i < (b+1)*m; i++ {
			out[i] = float32(sa*noise[i]) - float32(sb*sample[i])
		}
	}
	return out, nil
}

// Step takes the DDPM posterior step from timestep t to t − N/steps: x₀ from
// the model output (clipped when clip_sample), the posterior mean
// (√ᾱₚβₜ/(1−ᾱₜ))·x₀ + (√αₜ(1−ᾱₚ)/(1−ᾱₜ))·x, plus σ·z for t > 0, with the
// fixed_small variance (1−ᾱₚ)/(1−ᾱₜ)·βₜ (clamped at 1e-20) or fixed_large βₜ.
// noise is called (len(sample) values) at every step with t > 0, as diffusers
// draws it.
func (d *DDPM) Step(modelOutput, sample []float32, stepIndex int, noise func(n int) []float32) ([]float32, error) {
	if err := checkStep("ddpm", modelOutput, sample, stepIndex, len(d.timesteps)); err != nil {
		return nil, err
	}
	t := int(d.timesteps[stepIndex])
	prev := t - d.stride
	at := d.acp[t]
	ap := float32(1)
	if prev >= 0 {
		ap = d.acp[prev]
	}
	bt, bp := 1-at, 1-ap
	curAlpha := at / ap
	curBeta := 1 - curAlpha

	x0 := make([]float32, len(sample))
	switch d.cfg.PredictionType {
	case "epsilon":
		sb, sa := sqrt32(bt), sqrt32(at)
		for i := range x0 {
			x0[i] = (sample[i] - float32(sb*modelOutput[i])) / sa
		}
	case "v_prediction":
		sa, sb := sqrt32(at), sqrt32(bt)
		for i := range x0 {
			x0[i] = float32(sa*sample[i]) - float32(sb*modelOutput[i])
		}
	default:
		copy(x0, modelOutput)
	}
	if d.clip {
		for i, v := range x0 {
			x0[i] = float32(math.Max(math.Min(float64(v), float64(d.clipRange)), -float64(d.clipRange)))
		}
	}
	cOrig := sqrt32(ap) * curBeta / bt
	cCur := sqrt32(curAlpha) * bp / bt
	out := make([]float32, len(sample))
	for i := range out {
		out[i] = float32(cOrig*x0[i]) + float32(cCur*sample[i])
	}
	if t > 0 {
		z, err := drawNoise("ddpm", noise, len(sample))
		if err != nil {
			return nil, err
		}
		v := curBeta
		if d.variance == "fixed_small" {
			v = bp / bt * curBeta
			if v < 1e-20 {
				v = 1e-20
			}
		}
		std := sqrt32(v)
		for i := range out {
			out[i] += float32(std * z[i])
		}
	}
	return out, nil
}
