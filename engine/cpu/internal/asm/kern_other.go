//go:build !amd64 || purego

// Package asm holds the CPU backend's assembly micro-kernels; on this
// platform (or with -tags purego) there are none.
package asm

// HaveAVX2 is false: no assembly kernels on this platform.
const HaveAVX2 = false

// Kern6x16AVX2 is never called when HaveAVX2 is false.
func Kern6x16AVX2(kc int, a, b, c *float32, ldc int) {
	panic("asm: Kern6x16AVX2 without AVX2 support")
}

// HaveF16C is false: no assembly conversion on this platform.
const HaveF16C = false

// CvtF16F32 is never called when HaveF16C is false.
func CvtF16F32(dst *float32, src *uint16, n int) {
	panic("asm: CvtF16F32 without F16C support")
}
