package cpu

import (
	"math/rand"
	"testing"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/tensor"
)

// The SDXL UNet's exp-family ops at their shapes, each with the AVX-512,
// AVX2 and portable Go code (the ISAs this CPU lacks are skipped), so one
// run compares them side by side; besides ns/op they report user-ns/op,
// the process's user CPU time per op (steadier than wall time on a shared
// machine; see userNs). Single-threaded figures:
//
//	go test -run '^$' -bench 'BenchmarkExpFamily' -cpu 1 -count 5 ./engine/cpu/
func BenchmarkExpFamily(bm *testing.B) {
	b := New()
	rng := rand.New(rand.NewSource(1))
	upload := func(s tensor.Shape, sd float64) *tensor.Tensor {
		v := make([]float32, s.Numel())
		for i := range v {
			v[i] = float32(sd * rng.NormFloat64())
		}
		x, err := b.Upload(v, s, tensor.F32)
		if err != nil {
			bm.Fatal(err)
		}
		return x
	}
	silu := upload(tensor.Shape{2, 1280, 32, 32}, 2)
	geglu := upload(tensor.Shape{2 * 1024, 2 * 5120}, 1)
	scores := upload(tensor.Shape{1024, 1024}, 3)
	qkv := upload(tensor.Shape{1, 10, 1024, 64}, 1)
	ops := []struct {
		name string
		run  func() ([]*tensor.Tensor, error)
	}{
		{"silu_2x1280x32x32", func() ([]*tensor.Tensor, error) {
			y, err := b.Activation(silu, tensor.SiLU)
			return []*tensor.Tensor{y}, err
		}},
		{"geglu_2048x10240", func() ([]*tensor.Tensor, error) {
			y, err := b.GEGLU(geglu, tensor.GELU)
			return []*tensor.Tensor{y}, err
		}},
		{"softmax_1024x1024", func() ([]*tensor.Tensor, error) {
			y, err := b.Softmax(scores)
			return []*tensor.Tensor{y}, err
		}},
		{"attention_10x1024x64", func() ([]*tensor.Tensor, error) {
			o, l, err := b.Attention(qkv, qkv, qkv, 0.125, false)
			return []*tensor.Tensor{o, l}, err
		}},
	}
	for _, op := range ops {
		benchPerISA(bm, op.name, 0, func(bm *testing.B) {
			ts, err := op.run()
			if err != nil {
				bm.Fatal(err)
			}
			tensor.FreeAll(ts...)
		})
	}
}

// BenchmarkExpFamilyKernels times the same code on cache-resident data
// (16K elements; softmax rows of 1024), without the allocation and memory
// traffic of the ops above:
//
//	go test -run '^$' -bench 'BenchmarkExpFamilyKernels' -cpu 1 -count 5 ./engine/cpu/
func BenchmarkExpFamilyKernels(bm *testing.B) {
	const n = 16 << 10
	rng := rand.New(rand.NewSource(1))
	x, h, y := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], h[i] = float32(3*rng.NormFloat64()), float32(rng.NormFloat64())
	}
	kernels := []struct {
		name string
		run  func()
	}{
		{"silu", func() { actForward(tensor.SiLU, y, x, nil) }},
		{"gelu_times_h", func() { actForward(tensor.GELU, y, x, h) }},
		{"softmax_rows_1024", func() {
			for r := 0; r < n; r += 1024 {
				softmaxRow(y[r:r+1024], x[r:r+1024])
			}
		}},
	}
	for _, k := range kernels {
		benchPerISA(bm, k.name, 4*n, func(*testing.B) { k.run() })
	}
}

// benchPerISA runs one sub-benchmark name/ISA per entry of vecISAs (those
// this CPU/build lacks skip), each calling op once per iteration with asm's
// kernels set to that ISA, and reports user-ns/op; bytes > 0 sets the
// throughput figure too.
func benchPerISA(bm *testing.B, name string, bytes int64, op func(*testing.B)) {
	avx512, avx2 := asm.VexpAVX512, asm.VexpAVX2
	defer func() { asm.VexpAVX512, asm.VexpAVX2 = avx512, avx2 }()
	for _, isa := range vecISAs(avx512, avx2) {
		bm.Run(name+"/"+isa.name, func(bm *testing.B) {
			if !isa.have {
				bm.Skip("not on this CPU/build")
			}
			asm.VexpAVX512, asm.VexpAVX2 = isa.use512, isa.use2
			if bytes > 0 {
				bm.SetBytes(bytes)
			}
			u0 := userNs()
			for bm.Loop() {
				op(bm)
			}
			bm.ReportMetric(float64(userNs()-u0)/float64(bm.N), "user-ns/op")
		})
	}
}

// vecISA is one choice of asm's kernels for a benchmark: have says
// whether this CPU/build can run it.
type vecISA struct {
	name               string
	have, use512, use2 bool
}

func vecISAs(avx512, avx2 bool) []vecISA {
	return []vecISA{{"avx512", avx512, true, false}, {"avx2", avx2, false, true}, {"go", true, false, false}}
}
