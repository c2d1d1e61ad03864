package sched

import (
	"fmt"
	"lorastudio/engine/internal/fma"
	"math"
)

// This file holds the arrays every scheduler derives from its config, each
// computed in the precision diffusers computes it: betas and alphas_cumprod
// are float32 torch tensors, timestep spacings and interpolated sigmas are
// float64 numpy arrays, cast to float32 at the end.

// torchLinspace32 reproduces torch.linspace(start, end, steps,
// dtype=torch.float32) on the CPU bit for bit: start and end rounded to
// float32, a float32 step, the first half counted up from start and the
// second half down from end, produced in AVX2 vectors of 8 (two per loop
// iteration, each lane base + k·step) with a scalar tail. torch's kernel is
// compiled with FMA contraction, so base and lanes are fused multiply-adds
// (plain float32 arithmetic differs in 128 of SDXL's 1000 betas).
func torchLinspace32(start, end float64, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = f32(start)
		return out
	}
	s, e := f32(start), f32(end)
	step := (e - s) / float32(steps-1)
	half := steps / 2
	scalar := func(idx int) float32 {
		if idx < half {
			return fma.Float32(step, float32(idx), s)
		}
		return fma.Float32(-step, float32(steps-idx-1), e)
	}
	const vec = 8
	i := 0
	for ; i+2*vec <= steps; i += 2 * vec {
		for _, base := range []int{i, i + vec} {
			b := scalar(base)
			for k := 0; k < vec; k++ {
				out[base+k] = fma.Float32(float32(k), step, b)
			}
		}
	}
	for ; i < steps; i++ {
		out[i] = scalar(i)
	}
	return out
}

// betas returns the config's beta schedule as diffusers' float32 tensor.
func (c Config) betas() ([]float32, error) {
	n := c.NumTrainTimesteps
	if c.TrainedBetas != nil {
		out := make([]float32, n)
		for i, b := range c.TrainedBetas {
			out[i] = f32(b)
		}
		return out, nil
	}
	switch c.BetaSchedule {
	case "linear":
		return torchLinspace32(c.BetaStart, c.BetaEnd, n), nil
	case "scaled_linear":
		// linspace(sqrt(b0), sqrt(b1), n) ** 2, all float32
		b := torchLinspace32(math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd), n)
		for i := range b {
			b[i] *= b[i]
		}
		return b, nil
	case "squaredcos_cap_v2":
		// betas_for_alpha_bar with the cosine alpha_bar, float64, then float32
		alphaBar := func(t float64) float64 {
			v := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return v * v
		}
		out := make([]float32, n)
		for i := range out {
			t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
			out[i] = f32(math.Min(1-alphaBar(t2)/alphaBar(t1), 0.999))
		}
		return out, nil
	}
	return nil, fmt.Errorf("beta_schedule %q: want linear, scaled_linear or squaredcos_cap_v2", c.BetaSchedule)
}

// alphasCumprod returns torch.cumprod(1 - betas) in float32; torch's CPU
// cumprod accumulates float32 inputs in float64.
func alphasCumprod(betas []float32) []float32 {
	out := make([]float32, len(betas))
	acc := 1.0
	for i, b := range betas {
		acc *= float64(1 - b)
		out[i] = f32(acc)
	}
	return out
}

// trainSigmas returns ((1 - acp) / acp) ** 0.5 as diffusers' float32 tensor:
// the noise level of every training timestep, ascending.
func trainSigmas(acp []float32) []float32 {
	out := make([]float32, len(acp))
	for i, a := range acp {
		out[i] = sqrt32((1 - a) / a)
	}
	return out
}

// numpyArange returns np.arange(start, stop, step) for float64: its length is
// ceil((stop-start)/step) and element i is start + i·delta, where numpy's
// fill uses delta = (start+step) − start.
func numpyArange(start, stop, step float64) []float64 {
	n := int(math.Ceil((stop - start) / step))
	if n <= 0 {
		return nil
	}
	out := make([]float64, n)
	out[0] = start
	if n > 1 {
		out[1] = start + step
		delta := out[1] - start
		for i := 2; i < n; i++ {
			out[i] = start + float64(i)*delta
		}
	}
	return out
}

// numpyLinspace returns np.linspace(start, stop, num) in float64: element i is
// i·step + start with step = (stop−start)/(num−1), the last exactly stop.
func numpyLinspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	if num == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(num-1)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[num-1] = stop
	return out
}

// reverse reverses a slice in place and returns it.
func reverse[T any](s []T) []T {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

// numpyInterp is np.interp(x, xp, fp) for increasing xp: linear between the
// neighbours, clamped to fp's ends outside xp's range.
func numpyInterp(x float64, xp, fp []float64) float64 {
	n := len(xp)
	if x <= xp[0] {
		return fp[0]
	}
	if x >= xp[n-1] {
		return fp[n-1]
	}
	// the last j with xp[j] <= x
	lo, hi := 0, n-1
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if xp[mid] <= x {
			lo = mid
		} else {
			hi = mid
		}
	}
	if x == xp[lo] {
		return fp[lo]
	}
	slope := (fp[lo+1] - fp[lo]) / (xp[lo+1] - xp[lo])
	return slope*(x-xp[lo]) + fp[lo]
}

// interpSigmas interpolates the float32 training sigmas at (fractional)
// timesteps, as np.interp(timesteps, arange(len(sigmas)), sigmas) does in
// float64.
func interpSigmas(ts []float64, sigmas []float32) []float64 {
	xp := make([]float64, len(sigmas))
	fp := make([]float64, len(sigmas))
	for i, s := range sigmas {
		xp[i], fp[i] = float64(i), float64(s)
	}
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = numpyInterp(t, xp, fp)
	}
	return out
}

// karrasSigmas returns the Karras et al. (2022) noise levels between
// sigmaMax and sigmaMin with rho 7, in float64, as diffusers'
// _convert_to_karras: (max^(1/ρ) + ramp·(min^(1/ρ) − max^(1/ρ)))^ρ with
// ramp = linspace(0, 1, n).
func karrasSigmas(sigmaMin, sigmaMax float64, n int) []float64 {
	const rho = 7.0
	ramp := numpyLinspace(0, 1, n)
	minInv := math.Pow(sigmaMin, 1/rho)
	maxInv := math.Pow(sigmaMax, 1/rho)
	out := make([]float64, n)
	for i, r := range ramp {
		out[i] = math.Pow(maxInv+r*(minInv-maxInv), rho)
	}
	return out
}

// karrasRange picks the Karras range: the config's sigma_min / sigma_max
// when set, else the given defaults.
func (c Config) karrasRange(defMin, defMax float64) (float64, float64) {
	lo, hi := defMin, defMax
	if c.SigmaMin != nil {
		lo = *c.SigmaMin
	}
	if c.SigmaMax != nil {
		hi = *c.SigmaMax
	}
	return lo, hi
}

// logSigmas is np.log of the float32 training sigmas (a float32 array).
func logSigmas(sigmas []float32) []float32 {
	out := make([]float32, len(sigmas))
	for i, s := range sigmas {
		out[i] = log32(s)
	}
	return out
}

// sigmaToT maps a noise level back to a fractional training timestep by
// linear interpolation in log-sigma (diffusers' _sigma_to_t): the bracket is
// the last log-sigma not above log(sigma), clipped to the table, and the
// weight is clipped to [0, 1].
func sigmaToT(sigma float64, logSig []float32) float64 {
	ls := math.Log(math.Max(sigma, 1e-10))
	low := 0
	for i, v := range logSig {
		if ls-float64(v) >= 0 {
			low = i
		}
	}
	if low > len(logSig)-2 {
		low = len(logSig) - 2
	}
	lo, hi := float64(logSig[low]), float64(logSig[low+1])
	w := (lo - ls) / (lo - hi)
	w = math.Min(math.Max(w, 0), 1)
	return (1-w)*float64(low) + w*float64(low+1)
}

// roundHalfEven is numpy's round (ties to even).
func roundHalfEven(x float64) float64 { return math.RoundToEven(x) }
