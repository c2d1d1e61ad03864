package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/tensor"
)

// directConv is Conv2D by its definition, in float64.
func directConv(x, w, bias []float32, N, Cin, H, W, Cout, KH, KW int, p tensor.Conv2DParams) ([]float64, int, int) {
	S := p.StrideOr1()
	Ho := (H+p.PadTop+p.PadBottom-KH)/S + 1
	Wo := (W+p.PadLeft+p.PadRight-KW)/S + 1
	out := make([]float64, N*Cout*Ho*Wo)
	for n := 0; n < N; n++ {
		for co := 0; co < Cout; co++ {
			for oh := 0; oh < Ho; oh++ {
				for ow := 0; ow < Wo; ow++ {
					s := 0.0
					if bias != nil {
						s = float64(bias[co])
					}
					for c := 0; c < Cin; c++ {
						for i := 0; i < KH; i++ {
							for j := 0; j < KW; j++ {
								ih, iw := oh*S-p.PadTop+i, ow*S-p.PadLeft+j
								if ih >= 0 && ih < H && iw >= 0 && iw < W {
									s += float64(x[((n*Cin+c)*H+ih)*W+iw]) * float64(w[((co*Cin+c)*KH+i)*KW+j])
								}
							}
						}
					}
					out[((n*Cout+co)*Ho+oh)*Wo+ow] = s
				}
			}
		}
	}
	return out, Ho, Wo
}

// TestConv2DChunks checks Conv2D against the direct sum on shapes whose
// im2col spans several pixel chunks that start and end mid-row, with
// padding, stride 2, several images and a pointwise conv over >2048 pixels,
// and its backward by the adjoint identity.
func TestConv2DChunks(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	cases := []struct {
		N, Cin, H, W, Cout, K int
		p                     tensor.Conv2DParams
		bias                  bool
	}{
		{1, 40, 37, 29, 7, 3, tensor.ConvParams(1, 1), true},
		{2, 64, 23, 31, 5, 3, tensor.Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1}, true},
		{3, 6, 50, 45, 9, 1, tensor.ConvParams(1, 0), false},
		{1, 3, 61, 67, 4, 3, tensor.ConvParams(1, 1), true},
		{2, 130, 9, 11, 3, 3, tensor.Conv2DParams{Stride: 1, PadTop: 2, PadLeft: 0, PadBottom: 0, PadRight: 2}, false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%dx%dx%d_k%d_s%d", c.N, c.Cin, c.H, c.W, c.K, c.p.StrideOr1()), func(t *testing.T) {
			b := New()
			rnd := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return v
			}
			xv, wv := rnd(c.N*c.Cin*c.H*c.W), rnd(c.Cout*c.Cin*c.K*c.K)
			x, err := b.Upload(xv, tensor.Shape{c.N, c.Cin, c.H, c.W}, tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			w, err := b.Upload(wv, tensor.Shape{c.Cout, c.Cin, c.K, c.K}, tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			var bv []float32
			var bias *tensor.Tensor
			if c.bias {
				bv = rnd(c.Cout)
				if bias, err = b.Upload(bv, tensor.Shape{c.Cout}, tensor.F32); err != nil {
					t.Fatal(err)
				}
			}
			out, err := b.Conv2D(x, w, bias, c.p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Download(out)
			if err != nil {
				t.Fatal(err)
			}
			want, Ho, Wo := directConv(xv, wv, bv, c.N, c.Cin, c.H, c.W, c.Cout, c.K, c.K, c.p)
			if s := out.Shape(); !s.Equal(tensor.Shape{c.N, c.Cout, Ho, Wo}) {
				t.Fatalf("shape %s, want %v", s, []int{c.N, c.Cout, Ho, Wo})
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-4*math.Sqrt(float64(c.Cin*c.K*c.K)) {
					t.Fatalf("element %d: got %g, want %g", i, got[i], want[i])
				}
			}
			// The backward is the adjoint: with y = conv(x, w) and no bias,
			// <dout, y> = <x, dx> = <w, dw>.
			gv := rnd(len(want))
			dout, err := b.Upload(gv, out.Shape(), tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			dx, dw, _, err := b.Conv2DBackward(dout, x, w, c.p, tensor.GradX|tensor.GradW)
			if err != nil {
				t.Fatal(err)
			}
			dxv, _ := b.Download(dx)
			dwv, _ := b.Download(dw)
			var yDot, xDot, wDot float64
			for i := range want {
				y := want[i]
				if c.bias {
					y -= float64(bv[i/(Ho*Wo)%c.Cout])
				}
				yDot += float64(gv[i]) * y
			}
			for i := range xv {
				xDot += float64(xv[i]) * float64(dxv[i])
			}
			for i := range wv {
				wDot += float64(wv[i]) * float64(dwv[i])
			}
			tol := 1e-4 * math.Sqrt(float64(len(want)*c.Cin*c.K*c.K))
			if math.Abs(xDot-yDot) > tol || math.Abs(wDot-yDot) > tol {
				t.Fatalf("<dout, y> = %g, <x, dx> = %g, <w, dw> = %g", yDot, xDot, wDot)
			}
		})
	}
}

// BenchmarkConv2D times the demo model's conv shapes: 3x3 at few channels
// over large images (the VAE decoder) and a 1x1.
func BenchmarkConv2D(bm *testing.B) {
	for _, c := range []struct{ Cin, HW, Cout, K int }{{32, 256, 32, 3}, {64, 128, 64, 3}, {128, 32, 128, 3}, {64, 64, 128, 1}} {
		bm.Run(fmt.Sprintf("c%d_%dx%d_k%d", c.Cin, c.HW, c.HW, c.K), func(bm *testing.B) {
			b := New()
			x, _ := b.Upload(make([]float32, c.Cin*c.HW*c.HW), tensor.Shape{1, c.Cin, c.HW, c.HW}, tensor.F32)
			w, _ := b.Upload(make([]float32, c.Cout*c.Cin*c.K*c.K), tensor.Shape{c.Cout, c.Cin, c.K, c.K}, tensor.F32)
			for bm.Loop() {
				out, err := b.Conv2D(x, w, nil, tensor.ConvParams(1, c.K/2))
				if err != nil {
					bm.Fatal(err)
				}
				out.Free()
			}
		})
	}
}

// BenchmarkConv2DBackward times dx and dw of a 3x3 conv at few channels
// over a large image.
func BenchmarkConv2DBackward(bm *testing.B) {
	b := New()
	x, _ := b.Upload(make([]float32, 32*128*128), tensor.Shape{1, 32, 128, 128}, tensor.F32)
	w, _ := b.Upload(make([]float32, 32*32*9), tensor.Shape{32, 32, 3, 3}, tensor.F32)
	dout, _ := b.Upload(make([]float32, 32*128*128), tensor.Shape{1, 32, 128, 128}, tensor.F32)
	for bm.Loop() {
		dx, dw, _, err := b.Conv2DBackward(dout, x, w, tensor.ConvParams(1, 1), tensor.GradX|tensor.GradW)
		if err != nil {
			bm.Fatal(err)
		}
		tensor.FreeAll(dx, dw)
	}
}
