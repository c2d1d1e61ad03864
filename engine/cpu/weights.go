package cpu

import (
	"sync"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/half"
	"lorastudio/engine/tensor"
)

// Weights stored as F16/BF16 stay packed in memory; the kernels convert them
// to float32 where they read them, never into a whole fresh fp32 copy per
// call:
//   - the pure-Go sgemm converts a weight B (MatMul's b) block by block while
//     packing its kc×nc panels, and packs a weight A (Conv2D's w) once per
//     call into its mr-row panels, converting while packing, so the pixel
//     chunks of the call share one packing (see packAHalf, gemmPackedA);
//   - OpenBLAS, which takes fp32 only, gets the weight unpacked into a pooled
//     scratch slice (weightScratch), reused from call to call instead of a
//     new allocation the runtime zeroes first.
// The conversion itself is F16C's VCVTPH2PS on amd64 CPUs that have it and a
// 64K-entry table elsewhere (both exact).

// f16Table maps every fp16 bit pattern to its float32 value, built on first
// use where F16C is missing.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = half.Float16ToFloat32(uint16(i))
	}
	return &t
})

// unpackHalf converts the 16-bit words src of dtype dt (F16 or BF16) to
// float32 in dst[:len(src)].
func unpackHalf(dst []float32, src []uint16, dt tensor.DType) {
	dst = dst[:len(src)]
	if dt == tensor.BF16 {
		for i, v := range src {
			dst[i] = half.BFloat16ToFloat32(v)
		}
		return
	}
	i := 0
	if n := len(src) &^ 15; asm.HaveF16C && n > 0 {
		asm.CvtF16F32(&dst[0], &src[0], n)
		i = n
	}
	if i == len(src) {
		return
	}
	t := f16Table()
	for ; i < len(src); i++ {
		dst[i] = t[src[i]]
	}
}

// scratchPool holds float32 slices reused for unpacked weights and packed
// weight panels.
var scratchPool = sync.Pool{New: func() any { s := []float32(nil); return &s }}

// getScratch returns a pooled slice of n float32 (contents undefined) and
// the function that returns it to the pool.
func getScratch(n int) ([]float32, func()) {
	p := scratchPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	s := (*p)[:n]
	return s, func() { scratchPool.Put(p) }
}

// weightScratch returns a weight operand as float32: an F32 tensor's own
// data, or an F16/BF16 one unpacked into pooled scratch. Call done when the
// values are no longer read.
func weightScratch(t *tensor.Tensor) (vals []float32, done func()) {
	bf, _ := t.Buffer()
	buf := bf.(*buffer)
	if t.DType() == tensor.F32 {
		return buf.f32, func() {}
	}
	s, done := getScratch(len(buf.u16))
	parallelFor(len(buf.u16)/4096+1, 4096, func(lo, hi int) {
		lo, hi = lo*4096, min(hi*4096, len(buf.u16))
		if lo < hi {
			unpackHalf(s[lo:hi], buf.u16[lo:hi], t.DType())
		}
	})
	return s, done
}

// halfData returns an F16/BF16 tensor's packed words.
func halfData(t *tensor.Tensor) []uint16 {
	bf, _ := t.Buffer()
	return bf.(*buffer).u16
}
