package sched

import "fmt"

// eulerBase is what Euler and Euler ancestral share: the schedule (diffusers'
// set_timesteps of EulerDiscreteScheduler) and the input scaling.
type eulerBase struct {
	cfg       Config
	timesteps []float64 // float32 values
	sigmas    []float32 // len(timesteps)+1, the last 0
	initSigma float32
}

// eulerTimesteps returns the Euler family's timesteps for a spacing, as the
// float32 values diffusers computes (in float64 here).
func eulerTimesteps(c Config, steps int) []float64 {
	n := c.NumTrainTimesteps
	ts := make([]float64, steps)
	switch c.TimestepSpacing {
	case "linspace":
		// np.linspace(0, N-1, steps, dtype=float32)[::-1]
		for i, v := range numpyLinspace(0, float64(n-1), steps) {
			ts[i] = float64(f32(v))
		}
		reverse(ts)
	case "leading":
		// (arange(steps) * (N // steps)).round()[::-1] as float32, + steps_offset
		ratio := n / steps
		for i := range ts {
			ts[steps-1-i] = float64(f32(float64(i*ratio)) + float32(c.StepsOffset))
		}
	case "trailing":
		// np.arange(N, 0, -N/steps).round() as float32, - 1
		a := numpyArange(float64(n), 0, -float64(n)/float64(steps))
		ts = ts[:0]
		for _, v := range a {
			ts = append(ts, float64(f32(roundHalfEven(v))-1))
		}
	}
	return ts
}

// newEulerBase computes the Euler schedule for steps inference steps.
func newEulerBase(name string, c Config, steps int, karras bool) (eulerBase, error) {
	if err := c.validateCommon(); err != nil {
		return eulerBase{}, fmt.Errorf("sched: %s: %v", name, err)
	}
	if err := checkSteps(name, steps, c.NumTrainTimesteps); err != nil {
		return eulerBase{}, err
	}
	if c.InterpolationType != "" && c.InterpolationType != "linear" {
		return eulerBase{}, fmt.Errorf("sched: %s: interpolation_type %q is not supported (linear only)", name, c.InterpolationType)
	}
	if c.TimestepType != "" && c.TimestepType != "discrete" {
		return eulerBase{}, fmt.Errorf("sched: %s: timestep_type %q is not supported (discrete only)", name, c.TimestepType)
	}
	betas, err := c.betas()
	if err != nil {
		return eulerBase{}, fmt.Errorf("sched: %s: %v", name, err)
	}
	train := trainSigmas(alphasCumprod(betas))
	ts := eulerTimesteps(c, steps)
	sig := interpSigmas(ts, train)
	if karras {
		lo, hi := c.karrasRange(sig[len(sig)-1], sig[0])
		sig = karrasSigmas(lo, hi, steps)
		ls := logSigmas(train)
		for i, s := range sig {
			ts[i] = float64(f32(sigmaToT(s, ls)))
		}
	}
	b := eulerBase{cfg: c, timesteps: ts, sigmas: make([]float32, len(sig)+1)}
	var maxSigma float32
	for i, s := range sig {
		b.sigmas[i] = f32(s)
		if b.sigmas[i] > maxSigma {
			maxSigma = b.sigmas[i]
		}
	}
	// init_noise_sigma: max sigma for linspace/trailing, sqrt(max²+1) for leading
	b.initSigma = maxSigma
	if c.TimestepSpacing == "leading" {
		b.initSigma = sqrt32(maxSigma*maxSigma + 1)
	}
	return b, nil
}

// Timesteps returns the model timesteps in sampling order.
func (b *eulerBase) Timesteps() []float64 { return append([]float64(nil), b.timesteps...) }

// Sigmas returns the noise level of every step plus the final 0.
func (b *eulerBase) Sigmas() []float32 { return append([]float32(nil), b.sigmas...) }

// InitNoiseSigma returns the initial noise scale.
func (b *eulerBase) InitNoiseSigma() float64 { return float64(b.initSigma) }

// ScaleModelInput divides sample in place by sqrt(σ²+1) for step stepIndex
// (an index out of range leaves it unchanged; Step reports that as an error).
func (b *eulerBase) ScaleModelInput(sample []float32, stepIndex int) []float32 {
	if stepIndex < 0 || stepIndex >= len(b.timesteps) {
		return sample
	}
	s := b.sigmas[stepIndex]
	d := sqrt32(s*s + 1)
	for i := range sample {
		sample[i] /= d
	}
	return sample
}

// predictOriginal returns the denoised estimate x₀ at noise level sigma:
// epsilon x − σ·ε; v_prediction v·(−σ/√(σ²+1)) + x/(σ²+1); sample the output.
func (b *eulerBase) predictOriginal(modelOutput, sample []float32, sigma float32) []float32 {
	x0 := make([]float32, len(sample))
	switch b.cfg.PredictionType {
	case "epsilon":
		for i := range x0 {
			x0[i] = sample[i] - float32(sigma*modelOutput[i])
		}
	case "v_prediction":
		c1 := -sigma / sqrt32(sigma*sigma+1)
		c2 := sigma*sigma + 1
		for i := range x0 {
			x0[i] = float32(modelOutput[i]*c1) + sample[i]/c2
		}
	default: // sample
		copy(x0, modelOutput)
	}
	return x0
}

// Euler is diffusers' EulerDiscreteScheduler, SDXL's default: a first-order
// (Euler) step of the probability-flow ODE in σ (s_churn 0, no added noise).
type Euler struct {
	eulerBase
}

// NewEuler returns the Euler scheduler for steps inference steps; the config's
// use_karras_sigmas selects Karras sigmas.
func NewEuler(c Config, steps int) (*Euler, error) {
	b, err := newEulerBase("euler", c.withDefaults(), steps, c.UseKarrasSigmas)
	if err != nil {
		return nil, err
	}
	return &Euler{b}, nil
}

// Step takes an Euler step from σᵢ to σᵢ₊₁: d = (x − x₀)/σᵢ, x + d·(σᵢ₊₁ − σᵢ).
// diffusers draws (and, with s_churn 0, discards) one randn per step from the
// pipeline's generator; when noise is non-nil it is called the same way so
// the generator's stream stays in step with diffusers.
func (e *Euler) Step(modelOutput, sample []float32, stepIndex int, noise func(n int) []float32) ([]float32, error) {
	if err := checkStep("euler", modelOutput, sample, stepIndex, len(e.timesteps)); err != nil {
		return nil, err
	}
	sigma := e.sigmas[stepIndex]
	x0 := e.predictOriginal(modelOutput, sample, sigma)
	if noise != nil {
		if _, err := drawNoise("euler", noise, len(sample)); err != nil {
			return nil, err
		}
	}
	dt := e.sigmas[stepIndex+1] - sigma
	out := make([]float32, len(sample))
	for i := range out {
		d := (sample[i] - x0[i]) / sigma
		out[i] = sample[i] + float32(d*dt)
	}
	return out, nil
}

// EulerAncestral is diffusers' EulerAncestralDiscreteScheduler: each step
// goes down to σ_down by Euler and adds fresh noise of size σ_up, with
// σ_up = √(σₜ²(σₛ²−σₜ²)/σₛ²) and σ_down = √(σₜ²−σ_up²).
type EulerAncestral struct {
	eulerBase
}

// NewEulerAncestral returns the Euler ancestral scheduler for steps inference
// steps (diffusers 0.26 has no Karras option for it).
func NewEulerAncestral(c Config, steps int) (*EulerAncestral, error) {
	c = c.withDefaults()
	if c.UseKarrasSigmas {
		return nil, fmt.Errorf("sched: euler_a: use_karras_sigmas is not supported")
	}
	b, err := newEulerBase("euler_a", c, steps, false)
	if err != nil {
		return nil, err
	}
	return &EulerAncestral{b}, nil
}

// Step takes one ancestral step; it draws len(sample) normals from noise
// (one torch.randn of the latent shape, as diffusers does each step).
func (e *EulerAncestral) Step(modelOutput, sample []float32, stepIndex int, noise func(n int) []float32) ([]float32, error) {
	if err := checkStep("euler_a", modelOutput, sample, stepIndex, len(e.timesteps)); err != nil {
		return nil, err
	}
	sigma := e.sigmas[stepIndex]
	x0 := e.predictOriginal(modelOutput, sample, sigma)
	from, to := sigma, e.sigmas[stepIndex+1]
	up := sqrt32(to * to * (from*from - to*to) / (from * from))
	down := sqrt32(to*to - up*up)
	dt := down - sigma
	z, err := drawNoise("euler_a", noise, len(sample))
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(sample))
	for i := range out {
		d := (sample[i] - x0[i]) / sigma
		out[i] = sample[i] + float32(d*dt)
		out[i] += float32(z[i] * up)
	}
	return out, nil
}
