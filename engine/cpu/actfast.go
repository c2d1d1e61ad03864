package cpu

import "lorastudio/engine/tensor"

// actForward writes f(src[i]) into dst[i] in float32. SiLU, QuickGELU and
// GELUTanh go through expf (a few ulp), GELU through actF's float64 erf.
func actForward(f tensor.Act, dst, src []float32) {
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
		// x/2 (1 + tanh u) = x σ(2u), u = √(2/π)(x + 0.044715 x³).
		const k2 = 2 * 0.7978845608028654
		for i, x := range src {
			dst[i] = x / (1 + expf(-k2*(x+0.044715*x*x*x)))
		}
	default:
		for i, x := range src {
			y, _ := actF(f, float64(x))
			dst[i] = float32(y)
		}
	}
}
