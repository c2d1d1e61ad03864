package gl

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"lorastudio/engine/bench"
	"lorastudio/engine/tensor"
)

// benchOp times f on b's device with inputs of the given shapes; flops is
// the useful work of one call, reported as GFLOP/s.
func benchOp(bm *testing.B, flops float64, shapes []tensor.Shape, f func(g *Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error)) {
	g := newTestBackend(bm)
	r := rand.New(rand.NewSource(1))
	var in []*tensor.Tensor
	for _, s := range shapes {
		v := make([]float32, s.Numel())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		t, err := g.Upload(v, s, tensor.F32)
		if err != nil {
			bm.Fatal(err)
		}
		in = append(in, t)
	}
	defer tensor.FreeAll(in...)
	run := func() {
		outs, err := f(g, in)
		if err != nil {
			bm.Fatal(err)
		}
		if err := g.Sync(); err != nil {
			bm.Fatal(err)
		}
		tensor.FreeAll(outs...)
	}
	run() // compile the kernel outside the timing
	bm.ResetTimer()
	for i := 0; i < bm.N; i++ {
		run()
	}
	bm.ReportMetric(bm.Elapsed().Seconds()*1e3/float64(bm.N), "ms")
	bm.ReportMetric(flops*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func one(t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

func BenchmarkMatMul(bm *testing.B) {
	for _, s := range [][3]int{{256, 256, 256}, {1024, 640, 640}} {
		m, k, n := s[0], s[1], s[2]
		bm.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(bm *testing.B) {
			benchOp(bm, 2*float64(m*k*n), []tensor.Shape{{m, k}, {k, n}}, func(g *Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				return one(g.MatMul(in[0], in[1], nil, false, false))
			})
		})
	}
}

func BenchmarkConv3x3(bm *testing.B) {
	const c, hw = 64, 64
	benchOp(bm, 2*float64(c*c*9*hw*hw), []tensor.Shape{{1, c, hw, hw}, {c, c, 3, 3}}, func(g *Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return one(g.Conv2D(in[0], in[1], nil, tensor.ConvParams(1, 1)))
	})
}

func BenchmarkAttention(bm *testing.B) {
	const h, n, d = 2, 1024, 64
	benchOp(bm, 4*float64(h*n*n*d), []tensor.Shape{{1, h, n, d}, {1, h, n, d}, {1, h, n, d}}, func(g *Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		o, l, err := g.Attention(in[0], in[1], in[2], 0.125, false)
		return []*tensor.Tensor{o, l}, err
	})
}

func BenchmarkGroupNorm(bm *testing.B) {
	const c, hw = 320, 64
	benchOp(bm, 8*float64(c*hw*hw), []tensor.Shape{{1, c, hw, hw}, {c}, {c}}, func(g *Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		return one(g.GroupNorm(in[0], in[1], in[2], 32, 1e-5))
	})
}

// BenchmarkSuite runs engine/bench's op suite (the SDXL-sized shapes that
// `lorastudio bench ops` reports) on GL, one sub-benchmark a case. It is
// heavy on llvmpipe (minutes); scripts/gpu-check.sh runs it on real GPUs.
func BenchmarkSuite(bm *testing.B) {
	g := newTestBackend(bm)
	for _, c := range bench.Suite() {
		bm.Run(c.Op+"/"+c.Shape, func(bm *testing.B) {
			r, err := c.Run(g, bench.Options{MinTime: time.Second, MaxRuns: 10})
			if err != nil {
				bm.Fatal(err)
			}
			bm.ReportMetric(r.Ms, "ms")
			bm.ReportMetric(r.GFlops, "GFLOP/s")
			bm.ReportMetric(r.GBps, "GB/s")
		})
	}
}
