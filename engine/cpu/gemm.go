package cpu

import (
	"sync"

	"lorastudio/engine/tensor"
)

// gemm computes C = op(A)·op(B) (+ C when acc) for row-major matrices, like
// cblas_sgemm with alpha 1 and beta 0 or 1: op(A) is (m, k), op(B) is (k, n),
// C is (m, n) with row stride ldc. A is stored (m, k) with row stride lda, or
// (k, m) when transA; B is stored (k, n) with row stride ldb, or (n, k) when
// transB. It uses OpenBLAS when the backend may, otherwise gemmGo.
func (b *Backend) gemm(transA, transB bool, m, n, k int, a []float32, lda int, bm []float32, ldb int, acc bool, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if b.useBLAS() {
		blasSgemm(transA, transB, m, n, k, a, lda, bm, ldb, acc, c, ldc)
		return
	}
	gemmWith(b.kernel(), transA, transB, m, n, k, a, lda, bm, ldb, acc, c, ldc)
}

// kernel returns the micro-kernel the pure-Go sgemm of b uses.
func (b *Backend) kernel() microKernel {
	if b.kern != nil {
		return *b.kern
	}
	if b.portable {
		return kernelGo
	}
	return gemmKernel
}

// gemmHalfB is gemm with B given as 16-bit words of dtype dt (F16/BF16, a
// packed weight). The pure-Go sgemm converts B block by block while packing
// it; OpenBLAS gets op(B) unpacked into kept scratch (getScratch).
func (b *Backend) gemmHalfB(transA, transB bool, m, n, k int, a []float32, lda int, bh []uint16, dt tensor.DType, ldb int, acc bool, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if b.useBLAS() {
		// op(B)'s storage spans (rows-1)*ldb + cols words.
		rows, cols := k, n
		if transB {
			rows, cols = n, k
		}
		span := 0
		if rows > 0 && cols > 0 {
			span = (rows-1)*ldb + cols
		}
		bw, done := getScratch(span)
		defer done()
		unpackHalf(bw, bh[:span], dt)
		blasSgemm(transA, transB, m, n, k, a, lda, bw, ldb, acc, c, ldc)
		return
	}
	kern := b.kernel()
	gemmCore(kern, m, n, k,
		func(ap []float32, ic, mc, pc, kc int) []float32 {
			packA(kern, ap, a, lda, transA, ic, mc, pc, kc)
			return ap
		},
		func(bp []float32, pc, kc, jc, nc int) { packBHalf(bp, bh, dt, ldb, transB, pc, kc, jc, nc, kern.nr) },
		acc, c, ldc)
}

// packedA is a whole (m, k) matrix A packed once into the mr-row panels of
// every kc block: block pc (the k offset) starts at pc*mPad and holds
// ceil(m/mr) panels of kc×mr, so the panels of rows [ic, ic+mc) of that block
// start at pc*mPad + ic*kc (ic a multiple of mr). Conv2D packs its weight so
// once per call and every pixel chunk's sgemm reads it.
type packedA struct {
	m, k, mPad int
	mr         int
	p          []float32
}

// packAHalf packs the weight A (m, k), F32 in a or F16/BF16 in ah, into
// the panels of kern (see packedA), converting while packing. Call done
// when the panels are no longer read.
func packAHalf(kern microKernel, m, k int, a []float32, ah []uint16, dt tensor.DType) (pa packedA, done func()) {
	mr := kern.mr
	pa = packedA{m: m, k: k, mPad: (m + mr - 1) / mr * mr, mr: mr}
	pa.p, done = getScratch(pa.mPad * k)
	panels := pa.mPad / mr
	parallelFor(panels, mr*k, func(lo, hi int) {
		var row [gemmKC]float32
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			for p := lo; p < hi; p++ {
				dst := pa.p[pc*pa.mPad+p*mr*kc : pc*pa.mPad+(p+1)*mr*kc]
				for r := 0; r < mr; r++ {
					i := p*mr + r
					switch {
					case i >= m:
						for kk := 0; kk < kc; kk++ {
							dst[kk*mr+r] = 0
						}
						continue
					case ah != nil:
						unpackHalf(row[:kc], ah[i*k+pc:i*k+pc+kc], dt)
					default:
						copy(row[:kc], a[i*k+pc:i*k+pc+kc])
					}
					for kk, v := range row[:kc] {
						dst[kk*mr+r] = v
					}
				}
			}
		}
	})
	return pa, done
}

// gemmPackedA is gemm for C (m, n) = A·op(B) (+ C when acc) with A
// packed by packAHalf for b's kernel. OpenBLAS is not used: callers on
// the BLAS path pass an unpacked A to gemm instead.
func (b *Backend) gemmPackedA(pa packedA, n int, bm []float32, ldb int, transB bool, acc bool, c []float32, ldc int) {
	kern := b.kernel()
	gemmCore(kern, pa.m, n, pa.k,
		func(_ []float32, ic, mc, pc, kc int) []float32 {
			return pa.p[pc*pa.mPad+ic*kc : pc*pa.mPad+(ic+(mc+pa.mr-1)/pa.mr*pa.mr)*kc]
		},
		func(bp []float32, pc, kc, jc, nc int) { packB(bp, bm, ldb, transB, pc, kc, jc, nc, kern.nr) },
		acc, c, ldc)
}

// Blocking of the pure-Go sgemm (BLIS-style loops): a kc×nc panel of B is
// packed once and shared, mc×kc panels of A are packed per worker, and an
// mr×nr register tile of C is computed by the micro-kernel. All of A is
// packed again for every nc block of B, so nc is as wide as the model's
// matmuls (up to 4096 columns: a 4 MB B panel, which L3 holds): with 1024,
// 4096×1280×1280 packed A twice and ran 12% slower on the AVX-512 kernel
// (2026-12-04; kc 128–384 and mc 96–192 measured within the noise).
const (
	gemmKC = 256
	gemmMC = 96 // a multiple of every kernel's mr (4, 6, 12)
	gemmNC = 4096
)

// maxTile bounds mr*nr over the kernels (avx512 12x32 is the largest): the
// edge-tile scratch of macroKernel.
const maxTile = 12 * 32

// microKernel adds a packed mr×kc panel of A times a packed kc×nr panel of
// B into the mr×nr tile at c[0] with row stride ldc.
type microKernel struct {
	name   string
	mr, nr int
	fn     func(kc int, ap, bp, c []float32, ldc int)
	// vector marks an assembly (SIMD) kernel, with which the Go convs beat
	// OpenBLAS (see convBLAS).
	vector bool
}

// kernelGo is the portable kernel: a 4×4 tile in sixteen scalar accumulators.
var kernelGo = microKernel{name: "go 4x4", mr: 4, nr: 4, fn: func(kc int, ap, bp, c []float32, ldc int) {
	kernel4x4(ap[:kc*4], bp[:kc*4], c, ldc)
}}

// transposeRows, where set (amd64 with AVX, see gemm_asm.go), packs a
// whole panel: rows (a multiple of 4) rows of a row-major matrix starting
// at a[0] (row stride lda), kc values each, into dst k-major, dst[kk*rows+r]
// = a[r*lda+kk]. packA uses it for A, packB for a transposed B.
var transposeRows func(dst, a []float32, lda, rows, kc int)

// gemmKernel is the kernel gemmGo uses: kernelGo, or an assembly one chosen
// at start-up when the CPU has it (see gemm_asm.go).
var gemmKernel = kernelGo

// packPool holds per-worker A panels; packBPool the shared B panel buffers.
var (
	packPool  = sync.Pool{New: func() any { s := make([]float32, (gemmMC+8)*gemmKC); return &s }}
	packBPool = sync.Pool{New: func() any { s := []float32(nil); return &s }}
)

// gemmGo is the pure-Go sgemm; see gemm.
func gemmGo(transA, transB bool, m, n, k int, a []float32, lda int, bm []float32, ldb int, acc bool, c []float32, ldc int) {
	gemmWith(gemmKernel, transA, transB, m, n, k, a, lda, bm, ldb, acc, c, ldc)
}

// gemmWith is gemmGo with an explicit micro-kernel.
func gemmWith(kern microKernel, transA, transB bool, m, n, k int, a []float32, lda int, bm []float32, ldb int, acc bool, c []float32, ldc int) {
	gemmCore(kern, m, n, k,
		func(ap []float32, ic, mc, pc, kc int) []float32 {
			packA(kern, ap, a, lda, transA, ic, mc, pc, kc)
			return ap
		},
		func(bp []float32, pc, kc, jc, nc int) { packB(bp, bm, ldb, transB, pc, kc, jc, nc, kern.nr) },
		acc, c, ldc)
}

// gemmCore runs the blocked loops of the pure-Go sgemm for C (m, n) =
// A (m, k) · B (k, n) (+ C when acc) with the packing of each operand given
// as a function: packA returns the mr-row panels of A[ic:ic+mc, pc:pc+kc]
// (packed into the worker's scratch ap, or already packed elsewhere) and
// packB packs the nr-column panels of B[pc:pc+kc, jc:jc+nc] into bp.
func gemmCore(kern microKernel, m, n, k int, packA func(ap []float32, ic, mc, pc, kc int) []float32,
	packB func(bp []float32, pc, kc, jc, nc int), acc bool, c []float32, ldc int) {
	if !acc {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
	}
	if k == 0 || m == 0 || n == 0 {
		return
	}
	bpp := packBPool.Get().(*[]float32)
	defer packBPool.Put(bpp)
	if need := min(gemmKC, k) * (min(gemmNC, n) + kern.nr); len(*bpp) < need {
		*bpp = make([]float32, need)
	}
	bp := *bpp
	mr, nr := kern.mr, kern.nr
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			// The workers pack the B panel together (alone, one would wait),
			// then split the mr-row panels of A evenly and take them in blocks
			// of up to gemmMC rows: split by whole blocks, 1024 rows (11
			// blocks) left one worker 6 blocks to the other's 5.
			nPanels := (nc + nr - 1) / nr
			parallelFor(nPanels, kc*nr, func(lo, hi int) {
				packB(bp[lo*kc*nr:], pc, kc, jc+lo*nr, min(nc, hi*nr)-lo*nr)
			})
			mPanels := (m + mr - 1) / mr
			parallelFor(mPanels, mr*kc*nc/64, func(lo, hi int) {
				ap := packPool.Get().(*[]float32)
				defer packPool.Put(ap)
				for p := lo; p < hi; p += gemmMC / mr {
					ic := p * mr
					mc := min(min(hi-p, gemmMC/mr)*mr, m-ic)
					apn := packA(*ap, ic, mc, pc, kc)
					macroKernel(kern, mc, nc, kc, apn, bp, c[ic*ldc+jc:], ldc)
				}
			})
		}
	}
}

// packA copies op(A)[ic:ic+mc, pc:pc+kc] into ap as panels of kern.mr rows,
// k-major inside a panel: ap[p*kc*mr + kk*mr + r] = op(A)[ic+p*mr+r, pc+kk],
// zero-padded past mc. A whole panel of a row-major A goes to transposeRows
// where set; otherwise it walks kk outermost so the panel is written in
// order: the mr rows are read side by side (each row's cache lines serve
// many kk), and a transposed A gives each step's mr values as one run.
func packA(kern microKernel, ap, a []float32, lda int, transA bool, ic, mc, pc, kc int) {
	mr := kern.mr
	for p := 0; p*mr < mc; p++ {
		dst := ap[p*kc*mr : (p+1)*kc*mr]
		i0 := ic + p*mr
		rows := min(mr, mc-p*mr)
		if !transA && rows == mr && mr%4 == 0 && transposeRows != nil {
			transposeRows(dst, a[i0*lda+pc:], lda, mr, kc)
			continue
		}
		for kk := 0; kk < kc; kk++ {
			d := dst[kk*mr : kk*mr+mr]
			if transA {
				// A is stored (k, m): element (i, kk) at a[kk*lda + i].
				copy(d[:rows], a[(pc+kk)*lda+i0:])
			} else {
				for r := range d[:rows] {
					d[r] = a[(i0+r)*lda+pc+kk]
				}
			}
			clear(d[rows:])
		}
	}
}

// packB copies op(B)[pc:pc+kc, jc:jc+nc] into bp as panels of nr columns:
// bp[q*kc*nr + kk*nr + c] = op(B)[pc+kk, jc+q*nr+c], zero-padded.
func packB(bp, bm []float32, ldb int, transB bool, pc, kc, jc, nc, nr int) {
	for q := 0; q*nr < nc; q++ {
		dst := bp[q*kc*nr : (q+1)*kc*nr]
		cols := min(nr, nc-q*nr)
		if transB && cols == nr && nr%4 == 0 && transposeRows != nil {
			// B is stored (n, k): the panel's nr columns are rows of bm.
			transposeRows(dst, bm[(jc+q*nr)*ldb+pc:], ldb, nr, kc)
			continue
		}
		for kk := 0; kk < kc; kk++ {
			d := dst[kk*nr : kk*nr+nr]
			if !transB && cols == nr {
				copy(d, bm[(pc+kk)*ldb+jc+q*nr:])
				continue
			}
			for cc := 0; cc < nr; cc++ {
				if cc >= cols {
					d[cc] = 0
					continue
				}
				j := jc + q*nr + cc
				if transB {
					// B is stored (n, k): element (kk, j) at bm[j*ldb + kk].
					d[cc] = bm[j*ldb+pc+kk]
				} else {
					d[cc] = bm[(pc+kk)*ldb+j]
				}
			}
		}
	}
}

// packBHalf is packB for a B of 16-bit words of dtype dt, converted to
// float32 as it is packed. Transposed (B stored (n, k), as nn.Linear's
// weight), each column's kc words are contiguous: they are converted in one
// run and then spread over the panel; with transposeRows, a whole panel's
// columns are converted side by side into scratch and transposed in one go.
func packBHalf(bp []float32, bh []uint16, dt tensor.DType, ldb int, transB bool, pc, kc, jc, nc, nr int) {
	var runBuf [gemmKC]float32
	run := runBuf[:kc]
	var cols32 []float32
	if transB && nr%4 == 0 && transposeRows != nil && nc >= nr {
		var done func()
		cols32, done = getScratch(nr * kc)
		defer done()
	}
	for q := 0; q*nr < nc; q++ {
		dst := bp[q*kc*nr : (q+1)*kc*nr]
		cols := min(nr, nc-q*nr)
		if cols32 != nil && cols == nr {
			for cc := 0; cc < nr; cc++ {
				j := jc + q*nr + cc
				unpackHalf(cols32[cc*kc:(cc+1)*kc], bh[j*ldb+pc:j*ldb+pc+kc], dt)
			}
			transposeRows(dst, cols32, kc, nr, kc)
			continue
		}
		if transB {
			for cc := 0; cc < nr; cc++ {
				if cc >= cols {
					for kk := 0; kk < kc; kk++ {
						dst[kk*nr+cc] = 0
					}
					continue
				}
				j := jc + q*nr + cc
				// B is stored (n, k): column j of op(B) is bh[j*ldb+pc : j*ldb+pc+kc].
				unpackHalf(run, bh[j*ldb+pc:j*ldb+pc+kc], dt)
				for kk, v := range run {
					dst[kk*nr+cc] = v
				}
			}
			continue
		}
		for kk := 0; kk < kc; kk++ {
			d := dst[kk*nr : kk*nr+nr]
			row := (pc+kk)*ldb + jc + q*nr
			unpackHalf(d[:cols], bh[row:row+cols], dt)
			clear(d[cols:])
		}
	}
}

// macroKernel adds the packed (mc, kc)·(kc, nc) product into c (row stride ldc).
func macroKernel(kern microKernel, mc, nc, kc int, ap, bp, c []float32, ldc int) {
	mr, nr := kern.mr, kern.nr
	// The edge-tile scratch escapes (kern.fn is a func value): it is made
	// only where an edge tile needs it, not on every call.
	var tile []float32
	for q := 0; q*nr < nc; q++ {
		bq := bp[q*kc*nr : (q+1)*kc*nr]
		cols := min(nr, nc-q*nr)
		for p := 0; p*mr < mc; p++ {
			apn := ap[p*kc*mr : (p+1)*kc*mr]
			rows := min(mr, mc-p*mr)
			cOff := p*mr*ldc + q*nr
			if rows == mr && cols == nr {
				kern.fn(kc, apn, bq, c[cOff:], ldc)
				continue
			}
			// Edge tile: compute into a scratch tile, then add the valid part.
			if tile == nil {
				tile = make([]float32, maxTile)
			}
			t := tile[:mr*nr]
			clear(t)
			kern.fn(kc, apn, bq, t, nr)
			for r := 0; r < rows; r++ {
				for cc := 0; cc < cols; cc++ {
					c[cOff+r*ldc+cc] += t[r*nr+cc]
				}
			}
		}
	}
}

// kernel4x4 adds a packed 4×kc panel of A times a packed kc×4 panel of B into
// the 4×4 tile of c at offset 0 with row stride ldc, in sixteen scalar
// accumulators (the compiler keeps most in registers; amd64 has 15 for floats).
func kernel4x4(ap, bp, c []float32, ldc int) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for len(ap) >= 4 && len(bp) >= 4 {
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		ap, bp = ap[4:], bp[4:]
	}
	r := c[0:4:4]
	r[0] += c00
	r[1] += c01
	r[2] += c02
	r[3] += c03
	r = c[ldc : ldc+4 : ldc+4]
	r[0] += c10
	r[1] += c11
	r[2] += c12
	r[3] += c13
	r = c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += c20
	r[1] += c21
	r[2] += c22
	r[3] += c23
	r = c[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += c30
	r[1] += c31
	r[2] += c32
	r[3] += c33
}
