package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"syscall"
	"testing"

	"lorastudio/engine/half"
	"lorastudio/engine/rng"
	"lorastudio/engine/tensor"
)

// userNs returns the process's user CPU time so far in nanoseconds.
func userNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano()
}

// BenchmarkSDXLWeightOps times one attention projection (x (4096, 640) ·
// Wᵀ with W (640, 640), as nn.Linear calls it) and one 3×3 conv (x (1, 640,
// 64, 64), w (640, 640, 3, 3)) at SDXL base's real sizes (its 1024² UNet,
// second down block), with the weight F32 and F16, on the default sgemm and
// on the pure-Go one. Besides ns/op it reports user-ns/op, the process's
// user CPU time per op (getrusage), which a loaded machine disturbs less
// than the wall clock; run with -benchmem to see the bytes each op allocates.
func BenchmarkSDXLWeightOps(bm *testing.B) {
	g := rng.New(1)
	for _, be := range []struct {
		name string
		b    *Backend
	}{{"default", New()}, {"purego", NewPureGo()}} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
			b := be.b
			x, _ := b.Upload(g.Randn(4096*640), tensor.Shape{4096, 640}, tensor.F32)
			w, _ := b.Upload(g.Randn(640*640), tensor.Shape{640, 640}, dt)
			bm.Run(fmt.Sprintf("linear_4096x640x640_%s_%s", dt, be.name), func(bm *testing.B) {
				u0 := userNs()
				for bm.Loop() {
					out, err := b.MatMul(x, w, nil, false, true)
					if err != nil {
						bm.Fatal(err)
					}
					out.Free()
				}
				bm.ReportMetric(float64(userNs()-u0)/float64(bm.N), "user-ns/op")
			})
			tensor.FreeAll(x, w)
			xc, _ := b.Upload(g.Randn(640*64*64), tensor.Shape{1, 640, 64, 64}, tensor.F32)
			wc, _ := b.Upload(g.Randn(640*640*9), tensor.Shape{640, 640, 3, 3}, dt)
			bm.Run(fmt.Sprintf("conv3x3_640x64x64_%s_%s", dt, be.name), func(bm *testing.B) {
				u0 := userNs()
				for bm.Loop() {
					out, err := b.Conv2D(xc, wc, nil, tensor.ConvParams(1, 1))
					if err != nil {
						bm.Fatal(err)
					}
					out.Free()
				}
				bm.ReportMetric(float64(userNs()-u0)/float64(bm.N), "user-ns/op")
			})
			tensor.FreeAll(xc, wc)
		}
	}
}

// TestUnpackHalfAllPatterns converts every fp16 and bf16 bit pattern in one
// run (F16C's path where the CPU has it) and one at a time (the table's
// path) and compares each with engine/half's exact conversion.
func TestUnpackHalfAllPatterns(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
		ref := half.Float16ToFloat32
		if dt == tensor.BF16 {
			ref = half.BFloat16ToFloat32
		}
		bulk := make([]float32, len(src))
		unpackHalf(bulk, src, dt)
		one := make([]float32, 1)
		for i, h := range src {
			unpackHalf(one, src[i:i+1], dt)
			want := ref(h)
			for _, got := range []float32{bulk[i], one[0]} {
				if math.IsNaN(float64(want)) {
					if !math.IsNaN(float64(got)) {
						t.Fatalf("%s %#04x: %g, want NaN", dt, h, got)
					}
					continue
				}
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("%s %#04x: %g (%#08x), want %g (%#08x)", dt, h, got, math.Float32bits(got), want, math.Float32bits(want))
				}
			}
		}
	}
}

// halfOperand packs v as dt and returns the words and the values they hold.
func halfOperand(v []float32, dt tensor.DType) ([]uint16, []float32) {
	h := make([]uint16, len(v))
	tensor.Pack(h, v, dt)
	r := make([]float32, len(v))
	tensor.Unpack(r, h, dt)
	return h, r
}

// gemmBackends are the CPU sgemm paths a packed weight takes: the default
// (OpenBLAS with -tags openblas, else this CPU's kernel), the pure-Go sgemm
// with this CPU's kernel and with the portable one.
func gemmBackends() map[string]*Backend {
	return map[string]*Backend{"default": New(), "purego": NewPureGo(), "portable": {pureGo: true, portable: true}}
}

// TestGemmHalfB checks the sgemm with an F16/BF16 B converted while packing
// against the triple loop on the values B holds, on sizes that cut every
// tile and block edge, both layouts of each operand, with and without acc.
func TestGemmHalfB(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for name, be := range gemmBackends() {
		for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
			for _, sz := range [][3]int{{1, 1, 1}, {7, 13, 33}, {65, 5, 300}, {130, 1030, 9}, {97, 17, 257}, {6, 16, 5}, {12, 33, 513}} {
				m, n, k := sz[0], sz[1], sz[2]
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						a := randSlice(r, m*k)
						bh, bv := halfOperand(randSlice(r, k*n), dt)
						lda, ldb := k, n
						if ta {
							lda = m
						}
						if tb {
							ldb = k
						}
						want := naiveGemm(ta, tb, m, n, k, a, lda, bv, ldb)
						prev := randSlice(r, m*n)
						for _, acc := range []bool{false, true} {
							c := append([]float32(nil), prev...)
							be.gemmHalfB(ta, tb, m, n, k, a, lda, bh, dt, ldb, acc, c, n)
							for i := range want {
								w := want[i]
								if acc {
									w += float64(prev[i])
								}
								if math.Abs(float64(c[i])-w) > 1e-4*(1+math.Sqrt(float64(k))) {
									t.Fatalf("%s %s m%d n%d k%d ta%v tb%v acc%v: c[%d]=%g want %g", name, dt, m, n, k, ta, tb, acc, i, c[i], w)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestGemmPackedA checks a weight A packed once (F32, F16, BF16) and reused
// by two sgemm calls on different B, against the triple loop.
func TestGemmPackedA(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for name, be := range gemmBackends() {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
			for _, sz := range [][3]int{{1, 1, 1}, {7, 13, 33}, {101, 40, 600}, {320, 300, 2880}, {6, 16, 5}} {
				m, n, k := sz[0], sz[1], sz[2]
				av := randSlice(r, m*k)
				var ah []uint16
				if dt != tensor.F32 {
					ah, av = halfOperand(av, dt)
				}
				pa, done := packAHalf(be.kernel(), m, k, av, ah, dt)
				for _, tb := range []bool{false, true} {
					bm := randSlice(r, k*n)
					ldb := n
					if tb {
						ldb = k
					}
					want := naiveGemm(false, tb, m, n, k, av, k, bm, ldb)
					c := randSlice(r, m*n)
					be.gemmPackedA(pa, n, bm, ldb, tb, false, c, n)
					for i := range want {
						if math.Abs(float64(c[i])-want[i]) > 1e-4*(1+math.Sqrt(float64(k))) {
							t.Fatalf("%s %s m%d n%d k%d tb%v: c[%d]=%g want %g", name, dt, m, n, k, tb, i, c[i], want[i])
						}
					}
				}
				done()
			}
		}
	}
}

// TestPackedWeightOps runs MatMul (both layouts of b) and Conv2D (3×3 and
// 1×1) with an F16/BF16 weight on every sgemm path and compares each with
// the same op on an F32 weight holding the same values.
func TestPackedWeightOps(t *testing.T) {
	g := rng.New(4)
	for name, be := range gemmBackends() {
		for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
			check := func(what string, half, full *tensor.Tensor) {
				t.Helper()
				hv, err := be.Download(half)
				must(t, err)
				fv, err := be.Download(full)
				must(t, err)
				for i := range fv {
					if d := math.Abs(float64(hv[i] - fv[i])); d > 1e-4*(1+math.Abs(float64(fv[i]))) {
						t.Fatalf("%s %s %s: [%d] %g, with the f32 weight %g", name, dt, what, i, hv[i], fv[i])
					}
				}
				tensor.FreeAll(half, full)
			}
			x, err := be.Upload(g.Randn(2*37*70), tensor.Shape{2, 37, 70}, tensor.F32) // (2, 37, 70)
			must(t, err)
			for _, tb := range []bool{false, true} {
				ws := tensor.Shape{70, 45}
				if tb {
					ws = tensor.Shape{45, 70}
				}
				_, vals := halfOperand(g.Randn(70*45), dt)
				wh, err := be.Upload(vals, ws, dt)
				must(t, err)
				wf, err := be.Upload(vals, ws, tensor.F32)
				must(t, err)
				oh, err := be.MatMul(x, wh, nil, false, tb)
				must(t, err)
				of, err := be.MatMul(x, wf, nil, false, tb)
				must(t, err)
				check(fmt.Sprintf("matmul transB=%v", tb), oh, of)
				dout, err := be.Upload(g.Randn(2*37*45), tensor.Shape{2, 37, 45}, tensor.F32) // (2, 37, 45)
				must(t, err)
				dh, _, _, err := be.MatMulBackward(dout, x, wh, false, tb, tensor.GradX)
				must(t, err)
				df, _, _, err := be.MatMulBackward(dout, x, wf, false, tb, tensor.GradX)
				must(t, err)
				check(fmt.Sprintf("matmul backward dx transB=%v", tb), dh, df)
				must(t, tensor.FreeAll(wh, wf, dout))
			}
			must(t, x.Free())
			xc, err := be.Upload(g.Randn(2*19*11*13), tensor.Shape{2, 19, 11, 13}, tensor.F32) // (2, 19, 11, 13)
			must(t, err)
			for _, kk := range []int{3, 1} {
				_, vals := halfOperand(g.Randn(23*19*kk*kk), dt)
				wh, err := be.Upload(vals, tensor.Shape{23, 19, kk, kk}, dt)
				must(t, err)
				wf, err := be.Upload(vals, tensor.Shape{23, 19, kk, kk}, tensor.F32)
				must(t, err)
				bias, err := be.Upload(g.Randn(23), tensor.Shape{23}, tensor.F32)
				must(t, err)
				p := tensor.ConvParams(1, kk/2)
				oh, err := be.Conv2D(xc, wh, bias, p)
				must(t, err)
				of, err := be.Conv2D(xc, wf, bias, p)
				must(t, err)
				check(fmt.Sprintf("conv %dx%d", kk, kk), oh, of)
				must(t, tensor.FreeAll(wh, wf, bias))
			}
			must(t, xc.Free())
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestScratchReuseAndBound checks that a returned scratch slice is handed
// out again, that one over the bound is not kept, and that the kept bytes
// never exceed it.
func TestScratchReuseAndBound(t *testing.T) {
	scratch.mu.Lock()
	saved, savedHeld, savedKeep := scratch.free, scratch.held, scratchKeepBytes
	scratch.free, scratch.held, scratchKeepBytes = nil, 0, 1000
	scratch.mu.Unlock()
	defer func() {
		scratch.mu.Lock()
		scratch.free, scratch.held, scratchKeepBytes = saved, savedHeld, savedKeep
		scratch.mu.Unlock()
	}()
	a, doneA := getScratch(100) // 400 bytes
	doneA()
	b, doneB := getScratch(50)
	if &a[0] != &b[0] || len(b) != 50 {
		t.Fatalf("a kept 100-float slice was not reused for 50 (len %d)", len(b))
	}
	c, doneC := getScratch(120) // a second slice while b is out
	doneB()
	doneC()
	if scratch.held != 4*(100+120) {
		t.Errorf("kept %d bytes, want %d", scratch.held, 4*(100+120))
	}
	big, doneBig := getScratch(300) // 1200 bytes: over the bound
	doneBig()
	for _, f := range scratch.free {
		if &f[:1][0] == &big[0] {
			t.Error("a slice over the bound was kept")
		}
	}
	d, doneD := getScratch(200) // 800 bytes: kept by dropping the smaller ones
	doneD()
	if scratch.held > scratchKeepBytes {
		t.Errorf("kept %d bytes over the bound %d", scratch.held, scratchKeepBytes)
	}
	e, doneE := getScratch(150)
	defer doneE()
	if &e[0] != &d[0] {
		t.Error("the 200-float slice, kept last, was not reused")
	}
	_ = c
}
