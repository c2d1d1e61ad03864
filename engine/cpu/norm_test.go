package cpu

import (
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/tensor"
)

// TestSegStats checks segStats against a two-pass float64 mean and biased
// variance on lengths that exercise the four-way unrolled loop and its tail.
func TestSegStats(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 1001} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(3 + rng.NormFloat64())
		}
		var s float64
		for _, v := range x {
			s += float64(v)
		}
		mean := s / float64(n)
		var q float64
		for _, v := range x {
			q += (float64(v) - mean) * (float64(v) - mean)
		}
		rstd := 1 / math.Sqrt(q/float64(n)+float64(float32(1e-5)))
		gm, gr := segStats(x, 1e-5)
		if math.Abs(gm-mean) > 1e-12*math.Abs(mean) || math.Abs(gr-rstd) > 1e-9*rstd {
			t.Errorf("n=%d: segStats = (%g, %g), want (%g, %g)", n, gm, gr, mean, rstd)
		}
	}
}

// BenchmarkGroupNorm times a VAE-sized GroupNorm (32 groups).
func BenchmarkGroupNorm(bm *testing.B) {
	b := New()
	const C, HW = 64, 256
	v := make([]float32, C*HW*HW)
	for i := range v {
		v[i] = float32(i%97) * 0.01
	}
	x, _ := b.Upload(v, tensor.Shape{1, C, HW, HW}, tensor.F32)
	g, _ := b.Upload(make([]float32, C), tensor.Shape{C}, tensor.F32)
	be, _ := b.Upload(make([]float32, C), tensor.Shape{C}, tensor.F32)
	for bm.Loop() {
		out, err := b.GroupNorm(x, g, be, 32, 1e-6)
		if err != nil {
			bm.Fatal(err)
		}
		out.Free()
	}
}
