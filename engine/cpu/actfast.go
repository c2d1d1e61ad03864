package cpu

import (
	"math"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/tensor"
)

// actForward writes f(src[i]) into dst[i] in float32, times h[i] when h is
// not nil (GEGLU's h·f(g)): SiLU, QuickGELU and GELUTanh through expf (a
// few ulp), GELU through geluf. The vector kernels of package asm do what
// this CPU allows (all of it with AVX-512, the leading multiple of 8 with
// AVX2, none with -tags purego or off amd64); actScalar does the rest.
func actForward(f tensor.Act, dst, src, h []float32) {
	dst = dst[:len(src)]
	k := 0
	switch f {
	case tensor.SiLU:
		k = asm.XSigmoid(dst, src, h, 1, 0)
	case tensor.QuickGELU:
		k = asm.XSigmoid(dst, src, h, 1.702, 0)
	case tensor.GELUTanh:
		k = asm.XSigmoid(dst, src, h, geluTanhK, 0.044715)
	case tensor.GELU:
		k = asm.GELU(dst, src, h)
	}
	actScalar(f, dst[k:], src[k:])
	if h != nil {
		for i := k; i < len(dst); i++ {
			dst[i] *= h[i]
		}
	}
}

// geluTanhK is 2√(2/π): x/2 (1 + tanh u) = x σ(2u), u = √(2/π)(x + 0.044715 x³).
const geluTanhK = 2 * 0.7978845608028654

// actScalar is actForward's portable Go code, without h.
func actScalar(f tensor.Act, dst, src []float32) {
	dst = dst[:len(src)]
	switch f {
	case tensor.SiLU:
		for i, x := range src {
			dst[i] = x / (1 + expf(-x))
		}
	case tensor.QuickGELU:
		for i, x := range src {
			dst[i] = x / (1 + expf(-1.702*x))
		}
	case tensor.GELUTanh:
		for i, x := range src {
			dst[i] = x / (1 + expf(-geluTanhK*(x+0.044715*x*x*x)))
		}
	case tensor.GELU:
		for i, x := range src {
			dst[i] = geluf(x)
		}
	default:
		for i, x := range src {
			y, _ := actF(f, float64(x))
			dst[i] = float32(y)
		}
	}
}

// geluf is x Φ(x) = x (1 - erfc(x/√2)/2) in float32, with erfc from the
// Chebyshev fit erfc(z) ≈ t·exp(-z² + P(t)), t = 1/(1 + z/2), fractional
// error below 1.2e-7 for z >= 0 (Numerical Recipes' erfcc); for x < 0 it
// uses Φ(x) = erfc(|x|/√2)/2 directly, so the small tail keeps its
// relative accuracy. Within 1.5e-6 of the float64 GELU relative to
// max(|y|, 1e-3).
func geluf(x float32) float32 {
	xb := math.Float32bits(x)
	z := math.Float32frombits(xb&^(1<<31)) * 0.70710678
	t := 1 / (1 + 0.5*z)
	p := float32(0.17087277)
	p = p*t - 0.82215223
	p = p*t + 1.48851587
	p = p*t - 1.13520398
	p = p*t + 0.27886807
	p = p*t - 0.18628806
	p = p*t + 0.09678418
	p = p*t + 0.37409196
	p = p*t + 1.00002368
	p = p*t - 1.26551223
	e := 0.5 * t * expf(p-z*z)
	// Φ is 1-e for x >= 0 and e for x < 0, picked by a sign mask, not a
	// branch that random signs would mispredict.
	neg := uint32(int32(xb) >> 31)
	return x * math.Float32frombits(math.Float32bits(1-e)&^neg|math.Float32bits(e)&neg)
}
