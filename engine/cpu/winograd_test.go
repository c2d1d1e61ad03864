package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/half"
	"lorastudio/engine/tensor"
)

// TestConv2DWinograd checks the Winograd F(2×2, 3×3) path against the direct
// sum on the shapes that take it: odd image sizes (tiles sticking out of the
// output), asymmetric and no padding, chunks spanning images, more input
// channels than one k block (gemmKC), output channels that fill no whole
// register panel, F32/F16/BF16 weights, with and without bias, on every
// micro-kernel.
func TestConv2DWinograd(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	cases := []struct {
		N, Cin, H, W, Cout int
		p                  tensor.Conv2DParams
		dt                 tensor.DType
		bias               bool
	}{
		{1, 64, 32, 32, 64, tensor.ConvParams(1, 1), tensor.F32, true},
		{2, 70, 21, 23, 67, tensor.ConvParams(1, 1), tensor.F16, true},
		{3, 64, 29, 13, 80, tensor.Conv2DParams{Stride: 1, PadTop: 2, PadRight: 1}, tensor.BF16, false},
		{1, 300, 35, 33, 70, tensor.ConvParams(1, 0), tensor.F16, true},
		{2, 96, 13, 41, 64, tensor.ConvParams(1, 1), tensor.F32, false},
	}
	backends := []struct {
		name string
		b    *Backend
	}{{"default", New()}, {"purego", NewPureGo()}, {"portable", &Backend{pureGo: true, portable: true}}}
	for _, c := range cases {
		xv, wv := rnd(c.N*c.Cin*c.H*c.W), rnd(c.Cout*c.Cin*9)
		for i, v := range wv {
			// The reference uses the weight as the dtype stores it.
			switch c.dt {
			case tensor.F16:
				wv[i] = half.Float16ToFloat32(half.Float32ToFloat16(v))
			case tensor.BF16:
				wv[i] = half.BFloat16ToFloat32(half.Float32ToBFloat16(v))
			}
		}
		var bv []float32
		if c.bias {
			bv = rnd(c.Cout)
		}
		g := convGeomFor(t, c.Cin, c.H, c.W, c.Cout, 3, c.p)
		g.N = c.N
		if !g.winograd() {
			t.Fatalf("case %+v does not take the Winograd path", c)
		}
		want, Ho, Wo := directConv(xv, wv, bv, c.N, c.Cin, c.H, c.W, c.Cout, 3, 3, c.p)
		// Winograd's sums differ from the direct ones only in rounding.
		tol := 1e-5 * math.Sqrt(float64(c.Cin*9))
		for _, be := range backends {
			if be.b.useBLAS() {
				continue // OpenBLAS takes the im2col path
			}
			name := fmt.Sprintf("%s/%dx%dx%dx%d_to_%d_%+v_%s_bias%v", be.name, c.N, c.Cin, c.H, c.W, c.Cout, c.p, c.dt, c.bias)
			t.Run(name, func(t *testing.T) {
				b := be.b
				x, err := b.Upload(xv, tensor.Shape{c.N, c.Cin, c.H, c.W}, tensor.F32)
				if err != nil {
					t.Fatal(err)
				}
				w, err := b.Upload(wv, tensor.Shape{c.Cout, c.Cin, 3, 3}, c.dt)
				if err != nil {
					t.Fatal(err)
				}
				var bias *tensor.Tensor
				if c.bias {
					if bias, err = b.Upload(bv, tensor.Shape{c.Cout}, tensor.F32); err != nil {
						t.Fatal(err)
					}
				}
				defer tensor.FreeAll(x, w, bias)
				out, err := b.Conv2D(x, w, bias, c.p)
				if err != nil {
					t.Fatal(err)
				}
				defer out.Free()
				if s := out.Shape(); !s.Equal(tensor.Shape{c.N, c.Cout, Ho, Wo}) {
					t.Fatalf("shape %s, want %v", s, []int{c.N, c.Cout, Ho, Wo})
				}
				got, err := b.Download(out)
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for i := range want {
					d := math.Abs(float64(got[i]) - want[i])
					if !(d <= tol) {
						t.Fatalf("element %d: got %g, want %g (tolerance %g)", i, got[i], want[i], tol)
					}
					worst = max(worst, d)
				}
				t.Logf("worst difference %.3g", worst)
			})
		}
	}
}

// TestWinogradChunks checks the tile chunking: chunks cover the tiles
// exactly, are no wider than winogradChunk, and their count is a multiple of
// the workers where it was rounded.
func TestWinogradChunks(t *testing.T) {
	for _, tiles := range []int{1, 31, 128, 129, 256, 1000, 16384} {
		for _, nr := range []int{4, 16, 32} {
			chunk, chunks := winogradChunks(tiles, nr)
			if chunk < 1 || chunk > winogradChunk || (chunks-1)*chunk >= tiles || chunks*chunk < tiles {
				t.Errorf("%d tiles, nr %d: %d chunks of %d do not cover them exactly", tiles, nr, chunks, chunk)
			}
		}
	}
}
