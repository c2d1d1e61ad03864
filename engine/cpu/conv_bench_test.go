package cpu

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"lorastudio/engine/tensor"
)

// BenchmarkSDXLConv times the forward 3×3 convs that dominate SDXL at small
// resolutions on the pure-Go sgemm (NewPureGo, so -tags openblas measures
// the same path): the VAE decoder's 512/256/128-channel convs at a 256²
// image (batch 1) and the UNet's 640/1280-channel ones at a 256² latent
// batch of 2, with F16 weights and a bias as the models have, as Winograd
// F(2×2, 3×3) (what Conv2D picks for them) and as the direct implicit GEMM. It reports
// GFLOP/s of the wall clock and of the process's user CPU time per op
// divided by GOMAXPROCS (user-GFLOP/s), which a loaded machine disturbs less.
//
//	go test -run '^$' -bench SDXLConv -benchtime 5x ./engine/cpu/
func BenchmarkSDXLConv(bm *testing.B) {
	g := rand.New(rand.NewPCG(1, 2))
	randn := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(g.NormFloat64())
		}
		return v
	}
	for _, algo := range []struct {
		name string
		b    *Backend
	}{{"winograd", NewPureGo()}, {"direct", &Backend{pureGo: true, direct: true}}} {
		bm.Run(algo.name, func(bm *testing.B) { benchSDXLConv(bm, algo.b, randn) })
	}
}

// benchSDXLConv is BenchmarkSDXLConv on one backend.
func benchSDXLConv(bm *testing.B, b *Backend, randn func(int) []float32) {
	for _, s := range []struct{ n, c, hw int }{
		{1, 512, 64}, {1, 256, 128}, {1, 128, 256}, {2, 640, 32}, {2, 1280, 16},
	} {
		x, _ := b.Upload(randn(s.n*s.c*s.hw*s.hw), tensor.Shape{s.n, s.c, s.hw, s.hw}, tensor.F32)
		w, _ := b.Upload(randn(s.c*s.c*9), tensor.Shape{s.c, s.c, 3, 3}, tensor.F16)
		bias, _ := b.Upload(randn(s.c), tensor.Shape{s.c}, tensor.F32)
		flop := 2 * float64(s.n*s.c*s.hw*s.hw) * float64(s.c*9)
		bm.Run(fmt.Sprintf("3x3_%dx%d_%dx%d_n%d", s.c, s.c, s.hw, s.hw, s.n), func(bm *testing.B) {
			u0 := userNs()
			for bm.Loop() {
				out, err := b.Conv2D(x, w, bias, tensor.ConvParams(1, 1))
				if err != nil {
					bm.Fatal(err)
				}
				out.Free()
			}
			bm.ReportMetric(flop*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
			if u := userNs() - u0; u > 0 {
				bm.ReportMetric(flop*float64(bm.N)*float64(runtime.GOMAXPROCS(0))/float64(u), "user-GFLOP/s")
			}
		})
		tensor.FreeAll(x, w, bias)
	}
}
