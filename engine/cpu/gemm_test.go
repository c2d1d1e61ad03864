package cpu

import (
	"math"
	"math/rand"
	"testing"
)

// naiveGemm is the triple loop gemm is checked against, in float64.
func naiveGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*n+j] = s
		}
	}
	return c
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestGemmGoAgainstNaive checks the portable kernel and the one this CPU
// uses (AVX2 assembly on amd64 with AVX2+FMA) on awkward sizes: edges of
// every tile, k across a kc block, n across an nc block.
func TestGemmGoAgainstNaive(t *testing.T) {
	kernels := []microKernel{kernelGo}
	if gemmKernel.name != kernelGo.name {
		kernels = append(kernels, gemmKernel)
	}
	for _, kern := range kernels {
		t.Run(kern.name, func(t *testing.T) { testGemm(t, kern) })
	}
}

func testGemm(t *testing.T, kern microKernel) {
	r := rand.New(rand.NewSource(1))
	for _, sz := range [][3]int{{1, 1, 1}, {7, 13, 33}, {65, 5, 300}, {130, 1030, 9}, {3, 2, 0}, {97, 17, 257}, {6, 16, 5}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, bm := randSlice(r, m*k+1), randSlice(r, k*n+1)
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				want := naiveGemm(ta, tb, m, n, k, a, lda, bm, ldb)
				c := randSlice(r, m*n)
				prev := append([]float32(nil), c...)
				for _, acc := range []bool{false, true} {
					if acc {
						copy(c, prev)
					}
					gemmWith(kern, ta, tb, m, n, k, a, lda, bm, ldb, acc, c, n)
					for i := range want {
						w := want[i]
						if acc {
							w += float64(prev[i])
						}
						if math.Abs(float64(c[i])-w) > 1e-4*(1+math.Sqrt(float64(k))) {
							t.Fatalf("%s m%d n%d k%d ta%v tb%v acc%v: c[%d]=%g want %g", kern.name, m, n, k, ta, tb, acc, i, c[i], w)
						}
					}
				}
			}
		}
	}
}

// BenchmarkGemmGo times the pure-Go sgemm with this CPU's kernel; run with
// -tags purego for the portable one.
func BenchmarkGemmGo(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	m, n, k := 1024, 640, 2560
	a, bm, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		gemmGo(false, false, m, n, k, a, k, bm, n, false, c, n)
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
