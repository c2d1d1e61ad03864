//go:build !amd64 || purego

package asm

// HaveAVX is false: no assembly on this platform.
const HaveAVX = false

// TransposeRows is never called when HaveAVX is false.
func TransposeRows(dst, src *float32, lda, rows, kc int) {
	panic("asm: TransposeRows without AVX support")
}
