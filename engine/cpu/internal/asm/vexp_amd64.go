//go:build amd64 && !purego

package asm

import (
	"math"

	"golang.org/x/sys/cpu"
)

// VexpAVX512 and VexpAVX2 choose the code behind the exp-family functions
// below (ExpSum, Max, Scale, XSigmoid, GELU): 16-lane AVX-512 (F and DQ)
// for all n elements, else 8-lane AVX2/FMA for the leading multiple of 8,
// else none. They start as what this CPU supports; tests clear VexpAVX512
// to reach the AVX2 code.
var (
	VexpAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ
	VexpAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX
)

// vlen is how many of n elements the vector code takes.
func vlen(n int) int {
	switch {
	case VexpAVX512:
		return n
	case VexpAVX2:
		return n &^ 7
	}
	return 0
}

// ExpSum writes exp(a·src[i] + b) into dst[i] (a·src[i] + b fused, then
// exp as package cpu's expf: within a few ulp, 0 below -87.34, +Inf above
// 88.72, NaN kept) for the first k elements, and returns k and the float64
// sum of those outputs. dst may be src. The caller does elements k.. in Go.
func ExpSum(dst, src []float32, a, b float32) (k int, sum float64) {
	k = vlen(len(src))
	if k == 0 {
		return 0, 0
	}
	_ = dst[k-1]
	if VexpAVX512 {
		return k, expSum512(&dst[0], &src[0], k, a, b)
	}
	return k, expSum256(&dst[0], &src[0], k, a, b)
}

// Max returns k and the largest of x[:k] (-Inf when k is 0). A NaN in x
// may or may not win, unlike Go's max; callers pass data whose NaNs show
// up downstream anyway (a softmax row with a NaN sums to NaN).
func Max(x []float32) (k int, m float32) {
	k = vlen(len(x))
	switch {
	case k == 0:
		return 0, float32(math.Inf(-1))
	case VexpAVX512:
		return k, max512(&x[0], k)
	}
	return k, max256(&x[0], k)
}

// Scale multiplies x[:k] by a in place and returns k.
func Scale(x []float32, a float32) (k int) {
	k = vlen(len(x))
	switch {
	case k == 0:
	case VexpAVX512:
		scale512(&x[0], k, a)
	default:
		scale256(&x[0], k, a)
	}
	return k
}

// XSigmoid writes x·σ(k·(x + c·x³)) for x = src[i] into dst[i], times h[i]
// when h is not nil, for the first n elements and returns n: SiLU is
// k = 1, c = 0; QuickGELU k = 1.702; the tanh GELU k = 2√(2/π),
// c = 0.044715. σ(u) is 1/(1 + exp(-u)) with exp as in ExpSum.
func XSigmoid(dst, src, h []float32, k, c float32) (n int) {
	n, hp := elementwiseArgs(dst, src, h)
	if n == 0 {
		return 0
	}
	if VexpAVX512 {
		xsigmoid512(&dst[0], &src[0], hp, n, -k, c)
	} else {
		xsigmoid256(&dst[0], &src[0], hp, n, -k, c)
	}
	return n
}

// GELU writes x·Φ(x) for x = src[i] into dst[i], times h[i] when h is not
// nil, for the first n elements and returns n. Φ is package cpu's geluf
// form: erfc(|x|/√2)/2 by the Chebyshev fit t·exp(P(t) - z²) (within
// 1.5e-6 of the exact GELU relative to max(|y|, 1e-3)).
func GELU(dst, src, h []float32) (n int) {
	n, hp := elementwiseArgs(dst, src, h)
	if n == 0 {
		return 0
	}
	if VexpAVX512 {
		gelu512(&dst[0], &src[0], hp, n)
	} else {
		gelu256(&dst[0], &src[0], hp, n)
	}
	return n
}

//go:noescape
func expSum512(dst, src *float32, n int, a, b float32) (sum float64)

//go:noescape
func max512(x *float32, n int) (m float32)

//go:noescape
func scale512(x *float32, n int, a float32)

//go:noescape
func xsigmoid512(dst, src, h *float32, n int, nk, c float32)

//go:noescape
func gelu512(dst, src, h *float32, n int)

//go:noescape
func expSum256(dst, src *float32, n int, a, b float32) (sum float64)

//go:noescape
func max256(x *float32, n int) (m float32)

//go:noescape
func scale256(x *float32, n int, a float32)

//go:noescape
func xsigmoid256(dst, src, h *float32, n int, nk, c float32)

//go:noescape
func gelu256(dst, src, h *float32, n int)

// elementwiseArgs returns how many leading elements of src the kernels take
// (vlen) and h's data pointer (nil without h), after checking that dst and
// h hold that many: the bounds the assembly relies on.
func elementwiseArgs(dst, src, h []float32) (n int, hp *float32) {
	n = vlen(len(src))
	if n == 0 {
		return 0, nil
	}
	_ = dst[n-1]
	if h != nil {
		_ = h[n-1]
		hp = &h[0]
	}
	return n, hp
}
