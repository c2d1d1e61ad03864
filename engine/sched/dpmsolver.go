package sched

import (
	"fmt"
	"math"
)

// DPMSolver is diffusers' DPMSolverMultistepScheduler with algorithm
// dpmsolver++ — "DPM++ 2M" at solver order 2, "DPM++ 2M Karras" with Karras
// sigmas. Each step converts the model output to a data prediction x₀ and
// takes a first-order step, or a second-order multistep (midpoint or Heun
// solver type) using the previous step's x₀. The first step is first order,
// and so is the last when lower_order_final holds with fewer than 15 steps,
// euler_at_final is set, or final_sigmas_type is zero (SDXL's case).
type DPMSolver struct {
	cfg             Config
	order           int
	solverType      string
	lowerOrderFinal bool
	eulerAtFinal    bool
	finalZero       bool

	timesteps []float64 // integers
	sigmas    []float32 // len(timesteps)+1

	// multistep state: the x₀ predictions of the last steps (newest last)
	// and how many lower-order steps have been taken; next is the index the
	// next Step call must have.
	outputs   [][]float32
	lowerNums int
	next      int
}

// NewDPMSolver returns the DPM-Solver++ multistep scheduler for steps
// inference steps (config defaults: solver_order 2, dpmsolver++, midpoint,
// lower_order_final true, final_sigmas_type zero).
func NewDPMSolver(c Config, steps int) (*DPMSolver, error) {
	c = c.withDefaults()
	name := "dpmpp_2m"
	if c.UseKarrasSigmas {
		name = "dpmpp_2m_karras"
	}
	if err := c.validateCommon(); err != nil {
		return nil, fmt.Errorf("sched: %s: %v", name, err)
	}
	if err := checkSteps(name, steps, c.NumTrainTimesteps); err != nil {
		return nil, err
	}
	d := &DPMSolver{cfg: c, order: 2, solverType: "midpoint", lowerOrderFinal: true, eulerAtFinal: c.EulerAtFinal, finalZero: true}
	if c.SolverOrder != nil {
		d.order = *c.SolverOrder
	}
	if d.order != 1 && d.order != 2 {
		return nil, fmt.Errorf("sched: %s: solver_order %d is not supported (1 or 2)", name, d.order)
	}
	if c.AlgorithmType != "" && c.AlgorithmType != "dpmsolver++" {
		return nil, fmt.Errorf("sched: %s: algorithm_type %q is not supported (dpmsolver++ only)", name, c.AlgorithmType)
	}
	if c.SolverType != "" {
		d.solverType = c.SolverType
	}
	if d.solverType != "midpoint" && d.solverType != "heun" {
		return nil, fmt.Errorf("sched: %s: solver_type %q: want midpoint or heun", name, d.solverType)
	}
	if c.LowerOrderFinal != nil {
		d.lowerOrderFinal = *c.LowerOrderFinal
	}
	switch c.FinalSigmasType {
	case "", "zero":
	case "sigma_min":
		d.finalZero = false
	default:
		return nil, fmt.Errorf("sched: %s: final_sigmas_type %q: want zero or sigma_min", name, c.FinalSigmasType)
	}
	if c.UseLuLambdas {
		return nil, fmt.Errorf("sched: %s: use_lu_lambdas is not supported", name)
	}
	if c.Thresholding {
		return nil, fmt.Errorf("sched: %s: thresholding is not supported", name)
	}

	betas, err := c.betas()
	if err != nil {
		return nil, fmt.Errorf("sched: %s: %v", name, err)
	}
	acp := alphasCumprod(betas)
	n := c.NumTrainTimesteps

	// last_timestep: N minus the number of (ascending) lambdas below
	// lambda_min_clipped (torch.searchsorted on the flipped lambda_t).
	last := n
	if c.LambdaMinClipped != nil {
		clipped := 0
		for i := n - 1; i >= 0; i-- {
			a := sqrt32(acp[i])
			s := sqrt32(1 - acp[i])
			if float64(log32(a)-log32(s)) < *c.LambdaMinClipped {
				clipped++
			}
		}
		last = n - clipped
	}

	var ts []float64
	switch c.TimestepSpacing {
	case "linspace":
		v := numpyLinspace(0, float64(last-1), steps+1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, roundHalfEven(v[i]))
		}
	case "leading":
		ratio := last / (steps + 1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, float64(i*ratio+c.StepsOffset))
		}
	case "trailing":
		for _, v := range numpyArange(float64(last), 0, -float64(n)/float64(steps)) {
			ts = append(ts, math.Trunc(roundHalfEven(v))-1)
		}
	}

	train := trainSigmas(acp)
	var sig []float64
	if c.UseKarrasSigmas {
		lo, hi := c.karrasRange(float64(train[0]), float64(train[n-1]))
		sig = karrasSigmas(lo, hi, steps)
		ls := logSigmas(train)
		ts = ts[:0]
		for _, s := range sig {
			ts = append(ts, roundHalfEven(sigmaToT(s, ls)))
		}
	} else {
		sig = interpSigmas(ts, train)
	}
	d.timesteps = ts
	d.sigmas = make([]float32, len(sig)+1)
	for i, s := range sig {
		d.sigmas[i] = f32(s)
	}
	if !d.finalZero {
		d.sigmas[len(sig)] = train[0]
	}
	return d, nil
}

// Timesteps returns the (integer) model timesteps in sampling order.
func (d *DPMSolver) Timesteps() []float64 { return append([]float64(nil), d.timesteps...) }

// Sigmas returns the noise level of every step plus the final one.
func (d *DPMSolver) Sigmas() []float32 { return append([]float32(nil), d.sigmas...) }

// InitNoiseSigma is 1: DPM-Solver works on the variance-preserving sample.
func (d *DPMSolver) InitNoiseSigma() float64 { return 1 }

// ScaleModelInput returns sample unchanged (the model sees the VP sample).
func (d *DPMSolver) ScaleModelInput(sample []float32, stepIndex int) []float32 { return sample }

// alphaSigma converts a noise level σ to the VP pair α = 1/√(σ²+1), σₜ = σ·α.
func alphaSigma(sigma float32) (alpha, sigmaT float32) {
	alpha = 1 / sqrt32(sigma*sigma+1)
	return alpha, sigma * alpha
}

// lambda is log α − log σₜ (the half log-SNR); +Inf at σ = 0.
func lambda(alpha, sigmaT float32) float32 { return log32(alpha) - log32(sigmaT) }

// Step takes step stepIndex. Steps must come in order; stepIndex 0 starts a
// new run (clearing the multistep history). noise is not used.
func (d *DPMSolver) Step(modelOutput, sample []float32, stepIndex int, noise func(n int) []float32) ([]float32, error) {
	steps := len(d.timesteps)
	if err := checkStep("dpmpp_2m", modelOutput, sample, stepIndex, steps); err != nil {
		return nil, err
	}
	if stepIndex == 0 {
		d.outputs, d.lowerNums, d.next = nil, 0, 0
	}
	if stepIndex != d.next {
		return nil, fmt.Errorf("sched: dpmpp_2m: step %d called after step %d: steps must be taken in order from 0", stepIndex, d.next-1)
	}
	lowerFinal := stepIndex == steps-1 && (d.eulerAtFinal || (d.lowerOrderFinal && steps < 15) || d.finalZero)
	// (diffusers' lower_order_second lowers a third-order step to second
	// order; with order ≤ 2 it changes nothing.)

	x0 := d.dataPrediction(modelOutput, sample, d.sigmas[stepIndex])
	d.outputs = append(d.outputs, x0)
	if len(d.outputs) > d.order {
		d.outputs = d.outputs[len(d.outputs)-d.order:]
	}

	var out []float32
	if d.order == 1 || d.lowerNums < 1 || lowerFinal {
		out = d.firstOrder(x0, sample, stepIndex)
	} else {
		out = d.secondOrder(sample, stepIndex)
	}
	if d.lowerNums < d.order {
		d.lowerNums++
	}
	d.next = stepIndex + 1
	return out, nil
}

// dataPrediction turns the model output into x₀ (convert_model_output for
// dpmsolver++): epsilon (x − σₜ·ε)/α; v_prediction α·x − σₜ·v; sample as is.
func (d *DPMSolver) dataPrediction(modelOutput, sample []float32, sigma float32) []float32 {
	alpha, sigmaT := alphaSigma(sigma)
	x0 := make([]float32, len(sample))
	switch d.cfg.PredictionType {
	case "epsilon":
		for i := range x0 {
			x0[i] = (sample[i] - float32(sigmaT*modelOutput[i])) / alpha
		}
	case "v_prediction":
		for i := range x0 {
			x0[i] = float32(alpha*sample[i]) - float32(sigmaT*modelOutput[i])
		}
	default:
		copy(x0, modelOutput)
	}
	return x0
}

// firstOrder is DPM-Solver++(1) from σₛ = σᵢ to σₜ = σᵢ₊₁ with h = λₜ − λₛ:
// x = (σₜ/σₛ)·x − α_t·(e^(−h) − 1)·x₀.
func (d *DPMSolver) firstOrder(x0, sample []float32, i int) []float32 {
	alphaT, sigmaT := alphaSigma(d.sigmas[i+1])
	alphaS, sigmaS := alphaSigma(d.sigmas[i])
	h := lambda(alphaT, sigmaT) - lambda(alphaS, sigmaS)
	a := sigmaT / sigmaS
	b := alphaT * (exp32(-h) - 1)
	out := make([]float32, len(sample))
	for k := range out {
		out[k] = float32(a*sample[k]) - float32(b*x0[k])
	}
	return out
}

// secondOrder is the DPM-Solver++(2M) multistep update from σₛ₀ = σᵢ to
// σₜ = σᵢ₊₁ using the x₀ of this step (m0) and of the last (m1, at σₛ₁):
// r0 = h₀/h, D0 = m0, D1 = (m0 − m1)/r0, and
// midpoint: x = (σₜ/σₛ₀)·x − α_t(e^(−h)−1)·D0 − ½·α_t(e^(−h)−1)·D1
// heun:     x = (σₜ/σₛ₀)·x − α_t(e^(−h)−1)·D0 + α_t((e^(−h)−1)/h + 1)·D1.
func (d *DPMSolver) secondOrder(sample []float32, i int) []float32 {
	alphaT, sigmaT := alphaSigma(d.sigmas[i+1])
	alphaS0, sigmaS0 := alphaSigma(d.sigmas[i])
	alphaS1, sigmaS1 := alphaSigma(d.sigmas[i-1])
	lt := lambda(alphaT, sigmaT)
	ls0 := lambda(alphaS0, sigmaS0)
	ls1 := lambda(alphaS1, sigmaS1)
	m0, m1 := d.outputs[len(d.outputs)-1], d.outputs[len(d.outputs)-2]
	h := lt - ls0
	h0 := ls0 - ls1
	r0 := h0 / h
	invR0 := 1 / r0
	a := sigmaT / sigmaS0
	em1 := exp32(-h) - 1
	b := alphaT * em1
	var c float32
	if d.solverType == "midpoint" {
		c = -(0.5 * b)
	} else {
		c = alphaT * (em1/h + 1)
	}
	out := make([]float32, len(sample))
	for k := range out {
		d1 := float32(invR0 * (m0[k] - m1[k]))
		out[k] = float32(a*sample[k]) - float32(b*m0[k]) + float32(c*d1)
	}
	return out
}
