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
