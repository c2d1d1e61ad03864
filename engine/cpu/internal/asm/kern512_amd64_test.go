//go:build amd64 && !purego

package asm

import "testing"

// BenchmarkKernels times each micro-kernel alone on panels that stay in
// cache (kc = 256), the ceiling the blocked sgemm around it can reach.
func BenchmarkKernels(b *testing.B) {
	const kc = 256
	for _, k := range []struct {
		name   string
		ok     bool
		mr, nr int
		fn     func(kc int, a, b, c *float32, ldc int)
	}{
		{"avx2_6x16", HaveAVX2, 6, 16, Kern6x16AVX2},
		{"avx512_12x32", HaveAVX512, 12, 32, Kern12x32AVX512},
	} {
		b.Run(k.name, func(b *testing.B) {
			if !k.ok {
				b.Skip("CPU lacks the instructions")
			}
			a, bp, c := make([]float32, kc*k.mr), make([]float32, kc*k.nr), make([]float32, k.mr*k.nr)
			for i := 0; i < b.N; i++ {
				k.fn(kc, &a[0], &bp[0], &c[0], k.nr)
			}
			b.ReportMetric(2*float64(kc*k.mr*k.nr)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
