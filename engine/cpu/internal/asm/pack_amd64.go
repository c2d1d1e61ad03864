//go:build amd64 && !purego

package asm

import "golang.org/x/sys/cpu"

// HaveAVX reports whether TransposeRows may be called on this CPU (AVX,
// with the OS saving YMM state).
var HaveAVX = cpu.X86.HasAVX

// TransposeRows packs rows rows of a row-major matrix (row stride lda
// floats) k-major: dst[k*rows+r] = src[r*lda+k] for k < kc and r < rows,
// with rows and kc multiples of 4, by 4×4 transposes in XMM registers. It
// is how the sgemm packs a panel (of A, or of a transposed B). The caller
// guarantees the bounds.
//
//go:noescape
func TransposeRows(dst, src *float32, lda, rows, kc int)
