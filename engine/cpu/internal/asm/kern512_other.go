//go:build !amd64 || purego

package asm

// HaveAVX512 is false: no assembly kernels on this platform.
const HaveAVX512 = false

// Kern12x32AVX512 is never called when HaveAVX512 is false.
func Kern12x32AVX512(kc int, a, b, c *float32, ldc int) {
	panic("asm: Kern12x32AVX512 without AVX-512 support")
}
