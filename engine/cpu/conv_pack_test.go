package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/half"
	"lorastudio/engine/tensor"
)

// convPackCases are conv geometries with odd sizes: 3×3 at stride 1 and 2,
// asymmetric padding, 1×1 pointwise, strided and padded, images from 1×1 up.
var convPackCases = []struct {
	Cin, H, W, K int
	p            tensor.Conv2DParams
}{
	{3, 37, 29, 3, tensor.ConvParams(1, 1)},
	{5, 1, 1, 3, tensor.ConvParams(1, 1)},
	{5, 2, 7, 3, tensor.ConvParams(2, 1)},
	{64, 13, 9, 3, tensor.ConvParams(2, 1)},
	{3, 17, 32, 3, tensor.ConvParams(2, 1)},
	{5, 11, 6, 3, tensor.Conv2DParams{Stride: 1, PadTop: 2, PadRight: 1}},
	{3, 9, 14, 3, tensor.Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1}},
	{64, 5, 33, 1, tensor.ConvParams(1, 0)},
	{5, 12, 7, 1, tensor.ConvParams(2, 0)},
	{3, 7, 5, 1, tensor.ConvParams(1, 1)},
	{5, 20, 3, 3, tensor.ConvParams(1, 0)},
}

// convGeomFor is the geometry Conv2D derives for one image of case c.
func convGeomFor(t *testing.T, Cin, H, W, Cout, K int, p tensor.Conv2DParams) convGeom {
	t.Helper()
	os, err := tensor.Conv2DShape(tensor.Shape{1, Cin, H, W}, tensor.Shape{Cout, Cin, K, K}, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return convGeom{N: 1, Cin: Cin, H: H, W: W, Cout: Cout, KH: K, KW: K, Ho: os[2], Wo: os[3],
		S: p.StrideOr1(), PT: p.PadTop, PL: p.PadLeft}
}

// TestConvPackBMatchesIm2col checks that the implicit packing (fillBand,
// then packB from the band) gives exactly the panels packB makes from
// im2colRows' column matrix, for several panel
// widths nr (the kernels' 4, 16, 32 and uneven 6), pixel chunks that start
// and end mid-row, and k and column windows that end mid-panel.
func TestConvPackBMatchesIm2col(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, c := range convPackCases {
		g := convGeomFor(t, c.Cin, c.H, c.W, 1, c.K, c.p)
		x := make([]float32, c.Cin*c.H*c.W)
		for i := range x {
			x[i] = float32(i + 1)
		}
		for _, nr := range []int{4, 6, 16, 32} {
			for trial := 0; trial < 6; trial++ {
				p0 := rng.Intn(g.hw())
				p1 := p0 + 1 + rng.Intn(g.hw()-p0)
				n := p1 - p0
				// The band is sized for chunks of n pixels, and starts out
				// NaN so that rows fillBand leaves unset would show.
				bd := g.band(n)
				band := make([]float32, c.Cin*bd.hb*bd.wp)
				for i := range band {
					band[i] = float32(math.NaN())
				}
				g.fillBand(bd, band, x, p0, p1)
				col := make([]float32, g.ckk()*n)
				im2colRows(g, x, col, p0, p1, 0, g.ckk())
				pc := rng.Intn(g.ckk())
				kc := 1 + rng.Intn(g.ckk()-pc)
				jc := rng.Intn(n)
				nc := 1 + rng.Intn(n-jc)
				size := (nc + nr - 1) / nr * nr * kc
				want := make([]float32, size)
				packB(want, col, n, false, pc, kc, jc, nc, nr)
				got := make([]float32, size)
				for i := range got {
					got[i] = float32(math.NaN())
				}
				g.packB(got, band, bd, g.rowOffsets(bd), p0, pc, kc, jc, nc, nr)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("Cin %d %dx%d k%d %+v nr %d pixels [%d,%d) rows [%d,+%d) cols [%d,+%d): element %d got %g, want %g",
							c.Cin, c.H, c.W, c.K, c.p, nr, p0, p1, pc, kc, jc, nc, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestConv2DImplicit checks Conv2D against the direct sum on the default,
// pure-Go and portable-kernel backends (the implicit GEMM and, under
// -tags openblas, im2col with OpenBLAS) for two images, Cout 1, 7 and 33,
// F32 and F16 weights, with and without bias.
func TestConv2DImplicit(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for ci, c := range convPackCases {
		const N = 2
		Cout := []int{1, 7, 33}[ci%3]
		dt := []tensor.DType{tensor.F32, tensor.F16}[ci%2]
		withBias := ci%4 < 2
		xv, wv := randVals(rng, N*c.Cin*c.H*c.W), storedAs(dt, randVals(rng, Cout*c.Cin*c.K*c.K))
		var bv []float32
		if withBias {
			bv = randVals(rng, Cout)
		}
		want, Ho, Wo := directConv(xv, wv, bv, N, c.Cin, c.H, c.W, Cout, c.K, c.K, c.p)
		tol := 1e-4 * math.Sqrt(float64(c.Cin*c.K*c.K))
		for _, be := range convBackends() {
			name := fmt.Sprintf("%s/%dx%dx%dx%d_to_%d_k%d_%+v_%s_bias%v", be.name, N, c.Cin, c.H, c.W, Cout, c.K, c.p, dt, withBias)
			t.Run(name, func(t *testing.T) {
				got, gs := runConv(t, be.b, xv, tensor.Shape{N, c.Cin, c.H, c.W}, wv, tensor.Shape{Cout, c.Cin, c.K, c.K}, dt, bv, c.p)
				checkConv(t, got, gs, want, tensor.Shape{N, Cout, Ho, Wo}, tol)
			})
		}
	}
}

// randVals returns n standard normal values.
func randVals(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// storedAs rounds v in place to what dtype dt stores, so that a reference
// computed from v uses the weight the backend reads.
func storedAs(dt tensor.DType, v []float32) []float32 {
	for i, x := range v {
		switch dt {
		case tensor.F16:
			v[i] = half.Float16ToFloat32(half.Float32ToFloat16(x))
		case tensor.BF16:
			v[i] = half.BFloat16ToFloat32(half.Float32ToBFloat16(x))
		}
	}
	return v
}

// convBackends are the CPU backends the conv tests compare: as built, the
// pure-Go sgemm, the portable micro-kernel, and OpenBLAS forced (its
// im2col path, under -tags openblas; otherwise the Go one again).
func convBackends() []struct {
	name string
	b    *Backend
} {
	return []struct {
		name string
		b    *Backend
	}{{"default", New()}, {"purego", NewPureGo()}, {"portable", &Backend{pureGo: true, portable: true}}, {"openblas", &Backend{blas: true}}}
}

// runConv runs Conv2D on b for x (xs), w (ws, stored as dt) and bias bv
// (none when nil) and returns the output with its shape.
func runConv(t *testing.T, b *Backend, xv []float32, xs tensor.Shape, wv []float32, ws tensor.Shape, dt tensor.DType, bv []float32, p tensor.Conv2DParams) ([]float32, tensor.Shape) {
	t.Helper()
	x, err := b.Upload(xv, xs, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.Upload(wv, ws, dt)
	if err != nil {
		t.Fatal(err)
	}
	var bias *tensor.Tensor
	if bv != nil {
		if bias, err = b.Upload(bv, tensor.Shape{len(bv)}, tensor.F32); err != nil {
			t.Fatal(err)
		}
	}
	defer tensor.FreeAll(x, w, bias)
	out, err := b.Conv2D(x, w, bias, p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	got, err := b.Download(out)
	if err != nil {
		t.Fatal(err)
	}
	return got, out.Shape()
}

// checkConv fails t unless the output (got, of shape gs) has shape ws and
// every element within tol of want; it returns the largest difference.
func checkConv(t *testing.T, got []float32, gs tensor.Shape, want []float64, ws tensor.Shape, tol float64) float64 {
	t.Helper()
	if !gs.Equal(ws) {
		t.Fatalf("shape %s, want %s", gs, ws)
	}
	worst := 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		if !(d <= tol) {
			t.Fatalf("element %d: got %g, want %g (tolerance %g)", i, got[i], want[i], tol)
		}
		worst = max(worst, d)
	}
	return worst
}

// TestConvSplit checks the pixel chunking: chunks cover each image's pixels
// exactly, are no wider than asked, and their count over the batch is a
// multiple of the workers where that was rounded.
func TestConvSplit(t *testing.T) {
	for _, c := range []struct{ N, hw, chunk, nr int }{
		{1, 4096, 2048, 32}, {1, 256, 2048, 32}, {2, 256, 2048, 32}, {1, 65536, 2048, 16},
		{1, 37 * 29, 2048, 32}, {3, 1, 2048, 4}, {1, 1, 2048, 32}, {2, 1023, 256, 6},
	} {
		g := convGeom{N: c.N, Ho: 1, Wo: c.hw}
		chunk, perImage := g.split(c.chunk, c.nr)
		if chunk < 1 || chunk > c.chunk || (perImage-1)*chunk >= c.hw || perImage*chunk < c.hw {
			t.Errorf("N %d, %d pixels, chunk %d: got chunk %d × %d per image", c.N, c.hw, c.chunk, chunk, perImage)
		}
	}
}
