//go:build !amd64 || purego

package asm

import "math"

// VexpAVX512 and VexpAVX2 are false: no vector exp kernels on this
// platform, so the functions below do no elements and package cpu's Go
// code does them all. (Variables, as on amd64, so tests can save and
// restore them on every platform.)
var (
	VexpAVX512 = false
	VexpAVX2   = false
)

// ExpSum does no elements here.
func ExpSum(dst, src []float32, a, b float32) (k int, sum float64) { return 0, 0 }

// Max does no elements here.
func Max(x []float32) (k int, m float32) { return 0, float32(math.Inf(-1)) }

// Scale does no elements here.
func Scale(x []float32, a float32) (k int) { return 0 }

// XSigmoid does no elements here.
func XSigmoid(dst, src, h []float32, k, c float32) (n int) { return 0 }

// GELU does no elements here.
func GELU(dst, src, h []float32) (n int) { return 0 }
