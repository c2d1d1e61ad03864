//go:build amd64 && !purego

package asm

import "golang.org/x/sys/cpu"

// HaveAVX512 reports whether Kern12x32AVX512 may be called on this CPU:
// AVX-512F with the OS saving ZMM state (x/sys/cpu checks XCR0 for it).
var HaveAVX512 = cpu.X86.HasAVX512F

// Kern12x32AVX512 adds a packed 12×kc panel of A (a; a[k*12+r] is row r at
// step k) times a packed kc×32 panel of B (b; b[k*32+j]) into the 12×32
// tile at c with row stride ldc floats, in 24 ZMM accumulators. The caller
// guarantees the bounds; see gemm_asm.go in package cpu.
//
//go:noescape
func Kern12x32AVX512(kc int, a, b, c *float32, ldc int)

// Pack12 packs 12 rows of a row-major matrix (row stride lda floats) as
// the A panel of Kern12x32AVX512: dst[k*12+r] = src[r*lda+k] for k < kc and
// r < 12; kc is a multiple of 4. It needs AVX, which HaveAVX512 implies.
// The caller guarantees the bounds.
//
//go:noescape
func Pack12(dst, src *float32, lda, kc int)
