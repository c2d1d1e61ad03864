package cpu

import "lorastudio/engine/cpu/internal/asm"

// kernelAVX2 is the 6×16 AVX2/FMA assembly micro-kernel (amd64).
var kernelAVX2 = microKernel{name: "avx2 6x16", mr: 6, nr: 16, vector: true, fn: func(kc int, ap, bp, c []float32, ldc int) {
	// Bounds the assembly relies on: the panels hold kc steps and the tile fits in c.
	_ = ap[kc*6-1]
	_ = bp[kc*16-1]
	_ = c[5*ldc+15]
	asm.Kern6x16AVX2(kc, &ap[0], &bp[0], &c[0], ldc)
}}

// kernelAVX512 is the 12×32 AVX-512 assembly micro-kernel (amd64). Its
// 24 ZMM accumulators do twice the AVX2 kernel's work per FMA instruction.
var kernelAVX512 = microKernel{name: "avx512 12x32", mr: 12, nr: 32, vector: true, fn: func(kc int, ap, bp, c []float32, ldc int) {
	_ = ap[kc*12-1]
	_ = bp[kc*32-1]
	_ = c[11*ldc+31]
	asm.Kern12x32AVX512(kc, &ap[0], &bp[0], &c[0], ldc)
}}

// transposeRowsAsm is transposeRows with asm.TransposeRows doing four k
// steps at a time as 4×4 register transposes, the last kc%4 steps in Go.
// It packs panels 5-15x faster than a scalar loop, whose strided reads
// and writes took a quarter of 2048×320×320 on the AVX-512 kernel; and
// attention's q·kᵀ packs kᵀ again for every 96 query rows.
func transposeRowsAsm(dst, a []float32, lda, rows, kc int) {
	k4 := kc &^ 3
	if k4 > 0 {
		_ = dst[k4*rows-1]
		_ = a[(rows-1)*lda+k4-1]
		asm.TransposeRows(&dst[0], &a[0], lda, rows, k4)
	}
	for kk := k4; kk < kc; kk++ {
		d := dst[kk*rows : kk*rows+rows]
		for r := range d {
			d[r] = a[r*lda+kk]
		}
	}
}

// goSgemmFaster is true where the Go sgemm beats OpenBLAS, so that a
// -tags openblas build uses it all the same: with the AVX-512 kernel (see
// useBLAS for the measurement).
var goSgemmFaster bool

func init() {
	switch {
	case asm.HaveAVX512:
		gemmKernel = kernelAVX512
		goSgemmFaster = true
	case asm.HaveAVX2:
		gemmKernel = kernelAVX2
	}
	if asm.HaveAVX {
		transposeRows = transposeRowsAsm
	}
}
