package cpu

import (
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/tensor"
)

// TestActForward checks the float32 activations against actF's float64 ones
// (within 2e-6 relative, ~16 float32 ulp) over [-100, 100], at the
// extremes and at ±Inf.
func TestActForward(t *testing.T) {
	var xs []float32
	for x := float32(-100); x < 100; x += 0.00917 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, -0, 1e-30, -1e-30, 3e38, -3e38, float32(math.Inf(1)), float32(math.Inf(-1)))
	for _, f := range []tensor.Act{tensor.SiLU, tensor.GELU, tensor.GELUTanh, tensor.QuickGELU} {
		got := make([]float32, len(xs))
		actForward(f, got, xs, nil)
		for i, x := range xs {
			want, _ := actF(f, float64(x))
			switch {
			case math.IsInf(float64(x), 0):
				if want != float64(got[i]) && !(want == 0 && got[i] == 0) && !math.IsNaN(want) {
					t.Errorf("%s(%g) = %g, want %g", f, x, got[i], want)
				}
			case math.Abs(float64(got[i])-want) > 2e-6*math.Max(math.Abs(want), 1e-3) && math.Abs(float64(got[i])-want) > 1e-12:
				t.Errorf("%s(%g) = %.9g, want %.9g", f, x, got[i], want)
			}
		}
	}
}

func BenchmarkActivation(bm *testing.B) {
	b := New()
	const n = 64 * 128 * 128
	v := make([]float32, n)
	rng := rand.New(rand.NewSource(1))
	for i := range v {
		v[i] = float32(3 * rng.NormFloat64())
	}
	x, _ := b.Upload(v, tensor.Shape{1, 64, 128, 128}, tensor.F32)
	for _, f := range []tensor.Act{tensor.SiLU, tensor.GELU, tensor.GELUTanh} {
		bm.Run(f.String(), func(bm *testing.B) {
			for bm.Loop() {
				out, err := b.Activation(x, f)
				if err != nil {
					bm.Fatal(err)
				}
				out.Free()
			}
		})
	}
}
