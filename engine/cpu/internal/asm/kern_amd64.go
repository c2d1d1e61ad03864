//go:build amd64 && !purego

// Package asm holds the CPU backend's assembly micro-kernels. It is a
// separate package because the cpu package uses cgo (with -tags openblas),
// and a cgo package may not contain Go assembly.
package asm

import "golang.org/x/sys/cpu"

// HaveAVX2 reports whether Kern6x16AVX2 may be called on this CPU (AVX2 and
// FMA, with the OS saving YMM state).
var HaveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX

// Kern6x16AVX2 adds a packed 6×kc panel of A (a; a[k*6+r] is row r at step k)
// times a packed kc×16 panel of B (b; b[k*16+j]) into the 6×16 tile at c with
// row stride ldc floats, using AVX2 FMA with twelve YMM accumulators. The
// caller guarantees the bounds; see gemm_amd64.go in package cpu.
//
//go:noescape
func Kern6x16AVX2(kc int, a, b, c *float32, ldc int)

// HaveF16C reports whether CvtF16F32 may be called on this CPU (F16C and
// AVX, with the OS saving YMM state).
var HaveF16C = cpu.X86.HasF16C && cpu.X86.HasAVX

// CvtF16F32 converts n fp16 words at src to float32 at dst; n is a multiple
// of 16 and the caller guarantees both buffers hold n elements.
//
//go:noescape
func CvtF16F32(dst *float32, src *uint16, n int)
