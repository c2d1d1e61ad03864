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
//   - OpenBLAS, which takes fp32 only, gets the weight unpacked into a kept
//     scratch slice (weightScratch), reused from call to call instead of a
//     new allocation the runtime zeroes first.
// The packed or unpacked copy is one layer's, for one call; at most
// scratchKeepBytes of them are kept between calls, never a copy of the model.
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

// scratchKeepBytes bounds the scratch slices kept between calls: enough for
// the largest SDXL conv weight packed as fp32 (1280×2560×3×3, 118 MB) and a
// few smaller ones. Unlike a sync.Pool, which every GC empties (and a UNet
// step runs many), the kept slices survive, so the per-call packing does not
// allocate; past the bound a returned slice is left to the GC.
var scratchKeepBytes int64 = 256 << 20

// scratch is the free list of float32 slices reused for unpacked weights
// and packed weight panels.
var scratch struct {
	mu   sync.Mutex
	free [][]float32
	held int64 // bytes in free
}

// getScratch returns a slice of n float32 (contents undefined), reused when
// one large enough is kept, and the function that gives it back.
func getScratch(n int) ([]float32, func()) {
	scratch.mu.Lock()
	best := -1
	for i, s := range scratch.free {
		if cap(s) >= n && (best < 0 || cap(s) < cap(scratch.free[best])) {
			best = i
		}
	}
	var s []float32
	if best >= 0 {
		s = scratch.free[best]
		scratch.free = append(scratch.free[:best], scratch.free[best+1:]...)
		scratch.held -= 4 * int64(cap(s))
	}
	scratch.mu.Unlock()
	if s == nil {
		s = make([]float32, n)
	}
	return s[:n], func() { putScratch(s) }
}

// putScratch keeps s for reuse while the kept bytes stay under
// scratchKeepBytes, dropping the smallest kept slices to make room.
func putScratch(s []float32) {
	b := 4 * int64(cap(s))
	if b > scratchKeepBytes {
		return
	}
	scratch.mu.Lock()
	defer scratch.mu.Unlock()
	for scratch.held+b > scratchKeepBytes && len(scratch.free) > 0 {
		small := 0
		for i, f := range scratch.free {
			if cap(f) < cap(scratch.free[small]) {
				small = i
			}
		}
		scratch.held -= 4 * int64(cap(scratch.free[small]))
		scratch.free = append(scratch.free[:small], scratch.free[small+1:]...)
	}
	scratch.free = append(scratch.free, s)
	scratch.held += b
}

// weightScratch returns a weight operand as float32: an F32 tensor's own
// data, or an F16/BF16 one unpacked into kept scratch. Call done when the
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

// weightWords returns a weight's values as they are stored: an F32
// tensor's float32 slice, or an F16/BF16 one's 16-bit words (the other nil).
func weightWords(w *tensor.Tensor) (f32 []float32, words []uint16) {
	if w.DType() == tensor.F32 {
		return data(w), nil
	}
	return nil, halfData(w)
}

// halfData returns an F16/BF16 tensor's packed words.
func halfData(t *tensor.Tensor) []uint16 {
	bf, _ := t.Buffer()
	return bf.(*buffer).u16
}
