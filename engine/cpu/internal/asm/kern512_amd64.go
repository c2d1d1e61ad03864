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
