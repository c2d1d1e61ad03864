package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/optest"
	"lorastudio/engine/tensor"
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

// cpuKernels are the micro-kernels this CPU can run: the portable one and
// the assembly ones its instruction set allows.
func cpuKernels() []microKernel {
	kernels := []microKernel{kernelGo}
	if asm.HaveAVX2 {
		kernels = append(kernels, kernelAVX2)
	}
	if asm.HaveAVX512 {
		kernels = append(kernels, kernelAVX512)
	}
	return kernels
}

// TestGemmGoAgainstNaive checks every kernel this CPU can run (the portable
// one, AVX2 and AVX-512 assembly on amd64 CPUs that have them) on awkward
// sizes: edges of every tile, k across a kc block.
func TestGemmGoAgainstNaive(t *testing.T) {
	if gemmKernel.name != cpuKernels()[len(cpuKernels())-1].name {
		t.Fatalf("gemmKernel is %s, want the widest this CPU runs", gemmKernel.name)
	}
	for _, kern := range cpuKernels() {
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

// TestGemmAVX512AgainstPortable checks the AVX-512 kernel directly against
// the portable one on sizes that are no multiple of its 12×32 tile (every
// edge-tile path), k across a kc block, both layouts of each operand, with
// and without acc; and with an F16 B converted while packing (gemmHalfB) and
// a packed F16 A (gemmPackedA, Conv2D's path).
func TestGemmAVX512AgainstPortable(t *testing.T) {
	if !asm.HaveAVX512 {
		t.Skip("this CPU (or build) has no AVX-512F: the AVX-512 kernel is not used here")
	}
	be512 := &Backend{pureGo: true, kern: &kernelAVX512}
	beGo := &Backend{pureGo: true, portable: true}
	r := rand.New(rand.NewSource(4))
	for _, sz := range [][3]int{{13, 45, 300}, {25, 33, 257}, {11, 31, 3}, {12, 32, 1}, {1, 65, 7}, {109, 97, 513}, {24, 64, 256}} {
		m, n, k := sz[0], sz[1], sz[2]
		tol := 1e-4 * (1 + math.Sqrt(float64(k)))
		check := func(what string, got, want []float32) {
			t.Helper()
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > tol {
					t.Fatalf("%s m%d n%d k%d: c[%d]=%g, portable %g", what, m, n, k, i, got[i], want[i])
				}
			}
		}
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, bm := randSlice(r, m*k), randSlice(r, k*n)
				bh, _ := halfOperand(bm, tensor.F16)
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				prev := randSlice(r, m*n)
				for _, acc := range []bool{false, true} {
					what := fmt.Sprintf("ta%v tb%v acc%v", ta, tb, acc)
					got, want := append([]float32(nil), prev...), append([]float32(nil), prev...)
					gemmWith(kernelAVX512, ta, tb, m, n, k, a, lda, bm, ldb, acc, got, n)
					gemmWith(kernelGo, ta, tb, m, n, k, a, lda, bm, ldb, acc, want, n)
					check("gemm "+what, got, want)

					copy(got, prev)
					copy(want, prev)
					be512.gemmHalfB(ta, tb, m, n, k, a, lda, bh, tensor.F16, ldb, acc, got, n)
					beGo.gemmHalfB(ta, tb, m, n, k, a, lda, bh, tensor.F16, ldb, acc, want, n)
					check("gemmHalfB f16 "+what, got, want)
				}
			}
		}
		ah, av := halfOperand(randSlice(r, m*k), tensor.F16)
		bm := randSlice(r, k*n)
		got, want := make([]float32, m*n), make([]float32, m*n)
		for _, be := range []struct {
			b *Backend
			c []float32
		}{{be512, got}, {beGo, want}} {
			pa, done := packAHalf(be.b.kernel(), m, k, av, ah, tensor.F16)
			be.b.gemmPackedA(pa, n, bm, n, false, false, be.c, n)
			done()
		}
		check("gemmPackedA f16", got, want)
	}
}

// TestBLASAgainstPureGo runs the op table on OpenBLAS against the pure-Go
// sgemm, so that the BLAS path stays tested on CPUs where New() prefers Go.
func TestBLASAgainstPureGo(t *testing.T) {
	if !haveBLAS {
		t.Skip("built without -tags openblas")
	}
	optest.RunAgainst(t, &Backend{blas: true}, NewPureGo())
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

// BenchmarkGemmKernels times the sgemm on the bench suite's matmul shapes
// (and a small one) with each micro-kernel this CPU can run and, with -tags
// openblas, OpenBLAS. Besides wall GFLOP/s it reports user-GFLOP/s, the
// flops per second of user CPU time (getrusage; with GOMAXPROCS=1 a loaded
// machine disturbs it less than the wall clock, but OpenBLAS threads that
// spin while waiting inflate theirs). Interleave runs of separate processes
// to compare.
func BenchmarkGemmKernels(b *testing.B) {
	kernels := []microKernel{}
	if asm.HaveAVX2 {
		kernels = append(kernels, kernelAVX2)
	}
	if asm.HaveAVX512 {
		kernels = append(kernels, kernelAVX512)
	}
	for _, s := range [][3]int{{4096, 1280, 1280}, {1024, 640, 2560}, {2048, 320, 320}} {
		m, n, k := s[0], s[1], s[2]
		r := rand.New(rand.NewSource(1))
		a, bm, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, strings.ReplaceAll(name, " ", "_")), func(b *testing.B) {
				u0 := userNs()
				for i := 0; i < b.N; i++ {
					f()
				}
				flops := 2 * float64(m*n*k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(flops/float64(userNs()-u0), "user-GFLOP/s")
			})
		}
		for _, kern := range kernels {
			run(kern.name, func() { gemmWith(kern, false, false, m, n, k, a, k, bm, n, false, c, n) })
		}
		if haveBLAS {
			run("openblas", func() { blasSgemm(false, false, m, n, k, a, k, bm, n, false, c, n) })
		}
	}
}
