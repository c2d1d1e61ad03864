package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

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
	for _, c := range cases {
		xv, wv := randVals(rng, c.N*c.Cin*c.H*c.W), storedAs(c.dt, randVals(rng, c.Cout*c.Cin*9))
		var bv []float32
		if c.bias {
			bv = randVals(rng, c.Cout)
		}
		g := convGeomFor(t, c.Cin, c.H, c.W, c.Cout, 3, c.p)
		g.N = c.N
		if !g.winograd() {
			t.Fatalf("case %+v does not take the Winograd path", c)
		}
		want, Ho, Wo := directConv(xv, wv, bv, c.N, c.Cin, c.H, c.W, c.Cout, 3, 3, c.p)
		// Winograd's sums differ from the direct ones only in rounding.
		tol := 1e-5 * math.Sqrt(float64(c.Cin*9))
		for _, be := range convBackends() {
			if be.b.convBLAS() {
				continue // OpenBLAS takes the im2col path
			}
			name := fmt.Sprintf("%s/%dx%dx%dx%d_to_%d_%+v_%s_bias%v", be.name, c.N, c.Cin, c.H, c.W, c.Cout, c.p, c.dt, c.bias)
			t.Run(name, func(t *testing.T) {
				got, gs := runConv(t, be.b, xv, tensor.Shape{c.N, c.Cin, c.H, c.W}, wv, tensor.Shape{c.Cout, c.Cin, 3, 3}, c.dt, bv, c.p)
				worst := checkConv(t, got, gs, want, tensor.Shape{c.N, c.Cout, Ho, Wo}, tol)
				t.Logf("worst difference %.3g", worst)
			})
		}
	}
}

// TestWinogradChunks checks the tile chunking Conv2D asks splitChunks for:
// chunks cover the tiles exactly and are no wider than winogradChunk.
func TestWinogradChunks(t *testing.T) {
	for _, tiles := range []int{1, 31, 128, 129, 256, 1000, 16384} {
		for _, nr := range []int{4, 16, 32} {
			chunk, chunks := splitChunks(tiles, 1, winogradChunk, nr)
			if chunk < 1 || chunk > winogradChunk || (chunks-1)*chunk >= tiles || chunks*chunk < tiles {
				t.Errorf("%d tiles, nr %d: %d chunks of %d do not cover them exactly", tiles, nr, chunks, chunk)
			}
		}
	}
}
