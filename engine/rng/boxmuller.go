package rng

import (
	"lorastudio/engine/internal/fma"
	"math"
)

// This file reproduces, lane by lane, the float32 Box–Muller of torch's AVX2
// randn kernel (normal_fill_16_AVX2). torch takes its logarithm, sine and
// cosine there from avx_mathfun.h: Cephes' single-precision polynomials,
// compiled with FMA contraction (GCC's default -ffp-contract=fast), so a
// product whose only use is an addition is fused into it. The functions below
// follow the same operations in the same order, with fused multiply-adds where
// that compiler fuses them, which makes the result bit-exact rather than
// merely close.

// Cephes logf coefficients (the polynomial for log(1+x) − x + x²/2 on
// [√½−1, √2−1]) and ln 2 split in two parts.
const (
	logP0    = float32(7.0376836292e-2)
	logP1    = float32(-1.1514610310e-1)
	logP2    = float32(1.1676998740e-1)
	logP3    = float32(-1.2420140846e-1)
	logP4    = float32(1.4249322787e-1)
	logP5    = float32(-1.6668057665e-1)
	logP6    = float32(2.0000714765e-1)
	logP7    = float32(-2.4999993993e-1)
	logP8    = float32(3.3333331174e-1)
	logQ1    = float32(-2.12194440e-4)
	logQ2    = float32(0.693359375)
	sqrtHalf = float32(0.707106781186547524)
)

// Cephes sinf/cosf: 4/π, π/4 split in three parts, and the two polynomials.
const (
	fourOverPi = float32(1.27323954473516)
	dp1        = float32(0.78515625)
	dp2        = float32(2.4187564849853515625e-4)
	dp3        = float32(3.77489497744594108e-8)
	sinC0      = float32(-1.9515295891e-4)
	sinC1      = float32(8.3321608736e-3)
	sinC2      = float32(-1.6666654611e-1)
	cosC0      = float32(2.443315711809948e-5)
	cosC1      = float32(-1.388731625493765e-3)
	cosC2      = float32(4.166664568298827e-2)
)

// mul32 is an unfused float32 product (the conversion forbids fusion).
func mul32(a, b float32) float32 { return float32(a * b) }

// cephesLog is avx_mathfun's log256_ps for one lane, x > 0.
func cephesLog(x float32) float32 {
	if x < math.SmallestNonzeroFloat32*(1<<23) { // below the smallest normal
		x = math.SmallestNonzeroFloat32 * (1 << 23)
	}
	bits := math.Float32bits(x)
	// exponent: x = m · 2^(e) with m in [0.5, 1)
	e := float32(int32(bits>>23)-127) + 1
	m := math.Float32frombits(bits&^0x7f800000 | math.Float32bits(0.5))
	// fold m into [√½, √2) around 1
	var keep float32
	if m < sqrtHalf {
		keep = m
		e -= 1
	}
	m = m - 1
	m = m + keep
	z := mul32(m, m)
	y := fma.Float32(logP0, m, logP1)
	y = fma.Float32(y, m, logP2)
	y = fma.Float32(y, m, logP3)
	y = fma.Float32(y, m, logP4)
	y = fma.Float32(y, m, logP5)
	y = fma.Float32(y, m, logP6)
	y = fma.Float32(y, m, logP7)
	y = fma.Float32(y, m, logP8)
	y = mul32(y, m)
	// y·z + e·q1: the first product (y·z) is the one fused
	y = fma.Float32(y, z, mul32(e, logQ1))
	// y − z/2 (z·0.5 is exact)
	y = fma.Float32(-z, 0.5, y)
	r := m + y
	return fma.Float32(e, logQ2, r)
}

// cephesSinCos is avx_mathfun's sincos256_ps for one lane, x ≥ 0.
func cephesSinCos(x float32) (sin, cos float32) {
	// octant: j = trunc(x·4/π) rounded up to even
	j := int32(mul32(x, fourOverPi))
	j = (j + 1) &^ 1
	y := float32(j)
	sinNeg := j&4 != 0
	cosNeg := (j-2)&4 == 0
	polySin := j&2 == 0 // sine from the sine polynomial in these octants

	// x − y·π/4 in three parts ("extended precision modular arithmetic")
	x = fma.Float32(y, -dp1, x)
	x = fma.Float32(y, -dp2, x)
	x = fma.Float32(y, -dp3, x)

	z := mul32(x, x)
	c := fma.Float32(cosC0, z, cosC1)
	c = fma.Float32(c, z, cosC2)
	c = mul32(c, z)
	c = fma.Float32(c, z, -(z * 0.5)) // c·z − z/2, the product fused
	c = c + 1

	s := fma.Float32(sinC0, z, sinC1)
	s = fma.Float32(s, z, sinC2)
	s = mul32(s, z)
	s = fma.Float32(s, x, x)

	if polySin {
		sin, cos = s, c
	} else {
		sin, cos = c, s
	}
	if sinNeg {
		sin = -sin
	}
	if cosNeg {
		cos = -cos
	}
	return sin, cos
}
