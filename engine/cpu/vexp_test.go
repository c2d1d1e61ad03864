package cpu

import (
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/tensor"
)

// eachVecISA runs f once per vector ISA of package asm this CPU has
// (AVX-512, then AVX2 with AVX-512 switched off), logging the ones it
// lacks, and restores the choice afterwards.
func eachVecISA(t *testing.T, f func(t *testing.T)) {
	avx512, avx2 := asm.VexpAVX512, asm.VexpAVX2
	defer func() { asm.VexpAVX512, asm.VexpAVX2 = avx512, avx2 }()
	if avx512 {
		t.Run("avx512", f)
	} else {
		t.Log("no AVX-512 kernels on this CPU/build: skipped")
	}
	asm.VexpAVX512 = false
	if avx2 {
		t.Run("avx2", f)
	} else {
		t.Log("no AVX2 kernels on this CPU/build: skipped")
	}
}

// vexpInputs is a sweep over [-100, 100] plus the edges of expf's range,
// signed zeros, subnormals, huge values, infinities and NaN.
func vexpInputs() []float32 {
	xs := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 1.2e-38, -1.2e-38, 1e-30, -1e-30,
		-87.4, -87.33654, -87.336, -87.3, 88.7, 88.72283, 88.7229, 88.8, -88.8, 89, -89, -100.5, 150,
		3e38, -3e38, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0.5, -0.5, 1, -1}
	for x := float32(-100); x < 100; x += 0.0137 {
		xs = append(xs, x)
	}
	return xs
}

// sameSpecial reports whether got and want agree where want is exactly
// representable as a class: both NaN, equal infinities, or zeros of the
// same sign. ok is false when want is an ordinary nonzero number.
func sameSpecial(got, want float32) (same, ok bool) {
	switch {
	case want != want:
		return got != got, true
	case math.IsInf(float64(want), 0) || want == 0:
		return math.Float32bits(got) == math.Float32bits(want), true
	}
	return false, false
}

func ulpDiff(a, b float32) int64 {
	ia, ib := int64(int32(math.Float32bits(a))), int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

// TestVecExp checks asm.ExpSum against expf element by element (within 2
// ulp, exact on 0, +Inf and NaN) and its sum against the float64 sum of
// its outputs.
func TestVecExp(t *testing.T) {
	eachVecISA(t, func(t *testing.T) {
		xs := vexpInputs()
		for _, ab := range [][2]float32{{1, 0}, {0.5, -3}} {
			a, b := ab[0], ab[1]
			got := make([]float32, len(xs))
			k, sum := asm.ExpSum(got, xs, a, b)
			if k < len(xs)&^7 {
				t.Fatalf("ExpSum did %d of %d elements", k, len(xs))
			}
			var s float64
			for i, x := range xs[:k] {
				want := expf(a*x + b)
				s += float64(got[i])
				if same, ok := sameSpecial(got[i], want); ok && !same || !ok && ulpDiff(got[i], want) > 2 {
					t.Errorf("exp(%g·%g + %g) = %g, expf gives %g", a, x, b, got[i], want)
				}
			}
			if !(sum == s || math.Abs(sum-s) <= 1e-12*math.Abs(s) || math.IsNaN(s) && math.IsNaN(sum)) {
				t.Errorf("ExpSum sum %g, outputs sum to %g", sum, s)
			}
		}
		// In place, finite inputs: a finite sum.
		x := []float32{-1, 0, 1, 2, -200, 50, 3, 4, 5}
		k, sum := asm.ExpSum(x, x, 1, 0)
		var s float64
		for _, v := range x[:k] {
			s += float64(v)
		}
		if x[1] != 1 || x[4] != 0 || math.Abs(sum-s) > 1e-9*s {
			t.Errorf("in place: %v, sum %g want %g", x, sum, s)
		}
	})
}

// TestVecTails runs every kernel on lengths 0..33 at an unaligned offset
// and checks the count it reports, its results against the Go code and
// that it writes nothing past that count.
func TestVecTails(t *testing.T) {
	eachVecISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(7))
		const sentinel = float32(-12345)
		for n := 0; n <= 33; n++ {
			src := make([]float32, n+2)
			h := make([]float32, n+2)
			for i := range src {
				src[i] = float32(4 * rng.NormFloat64())
				h[i] = float32(rng.NormFloat64())
			}
			x, hx := src[1:1+n], h[1:1+n]
			fresh := func() []float32 {
				d := make([]float32, n+2)
				for i := range d {
					d[i] = sentinel
				}
				return d
			}
			// close(got, want) is the accuracy asked of each kernel.
			ulps := func(u int64) func(got, want float32) bool {
				return func(got, want float32) bool { return ulpDiff(got, want) <= u }
			}
			check := func(name string, k int, d []float32, want func(i int) float32, close func(got, want float32) bool) {
				t.Helper()
				if k > n || k < n&^7 {
					t.Fatalf("%s n=%d: did %d", name, n, k)
				}
				if d[0] != sentinel {
					t.Errorf("%s n=%d: wrote before the start", name, n)
				}
				for i := k + 1; i < len(d); i++ {
					if d[i] != sentinel {
						t.Errorf("%s n=%d: wrote element %d past %d", name, n, i-1, k)
					}
				}
				for i := 0; i < k; i++ {
					if w := want(i); !close(d[1+i], w) {
						t.Errorf("%s n=%d [%d] x=%g: %g, want %g", name, n, i, x[i], d[1+i], w)
					}
				}
			}
			d := fresh()
			k, _ := asm.ExpSum(d[1:1+n], x, 1, 0)
			check("exp", k, d, func(i int) float32 { return expf(x[i]) }, ulps(2))

			d = fresh()
			k = asm.XSigmoid(d[1:1+n], x, hx, 1, 0)
			check("silu·h", k, d, func(i int) float32 { return x[i] / (1 + expf(-x[i])) * hx[i] }, ulps(4))

			// GELU against the float64 one, to geluf's documented 1.5e-6 of
			// max(|y|, 1e-3): for x < -4 the fused p - z² of the vector code
			// and the rounded one of geluf differ by a few 1e-6 relative.
			d = fresh()
			k = asm.GELU(d[1:1+n], x, nil)
			check("gelu", k, d, func(i int) float32 { y, _ := actF(tensor.GELU, float64(x[i])); return float32(y) },
				func(got, want float32) bool {
					return math.Abs(float64(got-want)) <= 1.5e-6*math.Max(math.Abs(float64(want)), 1e-3)
				})

			d = fresh()
			copy(d[1:1+n], x)
			k = asm.Scale(d[1:1+n], 0.37)
			if k > n || k < n&^7 || d[0] != sentinel || d[n+1] != sentinel {
				t.Fatalf("scale n=%d: did %d, wrote outside", n, k)
			}
			for i := range x {
				want := x[i]
				if i < k {
					want *= 0.37
				}
				if d[1+i] != want {
					t.Errorf("scale n=%d [%d]: %g, want %g (did %d)", n, i, d[1+i], want, k)
				}
			}

			k, m := asm.Max(x)
			want := float32(math.Inf(-1))
			for _, v := range x[:k] {
				want = max(want, v)
			}
			if k > n || k < n&^7 || m != want {
				t.Errorf("max n=%d: did %d, got %g want %g", n, k, m, want)
			}
		}
	})
}

// TestVecActivations checks actForward (vector kernels plus Go tail)
// against actScalar on the edge inputs, with and without GEGLU's h: within
// 2e-6 of max(|y|, 1e-3) relative (as TestActForward against float64),
// and exact on the special values.
func TestVecActivations(t *testing.T) {
	eachVecISA(t, func(t *testing.T) {
		xs := vexpInputs()
		rng := rand.New(rand.NewSource(5))
		h := make([]float32, len(xs))
		for i := range h {
			h[i] = float32(rng.NormFloat64())
		}
		for _, f := range []tensor.Act{tensor.SiLU, tensor.GELU, tensor.GELUTanh, tensor.QuickGELU} {
			for _, hh := range [][]float32{nil, h} {
				got, want := make([]float32, len(xs)), make([]float32, len(xs))
				actForward(f, got, xs, hh)
				actScalar(f, want, xs)
				for i, x := range xs {
					if hh != nil {
						want[i] *= hh[i]
					}
					if same, ok := sameSpecial(got[i], want[i]); ok {
						if !same {
							t.Errorf("%s(%g) h=%v: %g, Go gives %g", f, x, hh != nil, got[i], want[i])
						}
						continue
					}
					if d := math.Abs(float64(got[i]) - float64(want[i])); d > 2e-6*math.Max(math.Abs(float64(want[i])), 1e-3) {
						t.Errorf("%s(%g) h=%v: %.9g, Go gives %.9g", f, x, hh != nil, got[i], want[i])
					}
				}
			}
		}
	})
}

// TestVecSoftmax checks softmaxRow against a float64 softmax on rows of
// 1..33, 1000 and 1024 elements: relative error within 1e-6.
func TestVecSoftmax(t *testing.T) {
	eachVecISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(9))
		for _, n := range append([]int{1024, 1000}, func() []int {
			var s []int
			for n := 1; n <= 33; n++ {
				s = append(s, n)
			}
			return s
		}()...) {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(5 * rng.NormFloat64())
			}
			y := make([]float32, n)
			softmaxRow(y, x)
			// The reference takes x - max in float32 as softmaxRow does (its
			// rounding alone moves exp(-20) by up to 1e-6 relative).
			m := float32(math.Inf(-1))
			for _, v := range x {
				m = max(m, v)
			}
			var s float64
			for _, v := range x {
				s += math.Exp(float64(v - m))
			}
			for i, v := range x {
				want := math.Exp(float64(v-m)) / s
				if math.Abs(float64(y[i])-want) > 1e-6*want {
					t.Fatalf("softmax n=%d [%d]: %g, want %g", n, i, y[i], want)
				}
			}
		}
	})
}
