package gl

import (
	"math/rand"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/optest"
	"lorastudio/engine/tensor"
)

// TestParity runs the engine's one table of parity cases (engine/optest) on
// GL against the CPU reference, with the small shapes llvmpipe can afford.
func TestParity(t *testing.T) {
	g := newTestBackend(t)
	optest.RunAgainst(t, cpu.New(), g, optest.Small)
}

// TestParityOtherGemm runs the matmul cases with the GEMM variant this
// device does not pick by default (shared-memory tiles on llvmpipe, the
// register-only one elsewhere), so both kernels stay checked everywhere.
func TestParityOtherGemm(t *testing.T) {
	g := newTestBackend(t)
	g.dev.gemmReg = !g.dev.gemmReg
	defer func() { g.dev.gemmReg = !g.dev.gemmReg }()
	optest.RunAgainst(t, cpu.New(), g, optest.Small, optest.Only("matmul|linear"))
}

// TestParityGemm128 runs the matmul and convolution cases with the 128x128
// shared-memory tiles (8x8 register blocks) that big products use on GPUs.
func TestParityGemm128(t *testing.T) {
	g := newTestBackend(t)
	g.dev.gemm128 = true
	defer func() { g.dev.gemm128 = false }()
	optest.RunAgainst(t, cpu.New(), g, optest.Small, optest.Only("matmul|linear|conv"))
	// One product that crosses a 128 tile in both directions.
	c := cpu.New()
	r := rand.New(rand.NewSource(3))
	av, bv := make([]float32, 130*20), make([]float32, 20*140)
	for i := range av {
		av[i] = float32(r.NormFloat64())
	}
	for i := range bv {
		bv[i] = float32(r.NormFloat64())
	}
	var outs [2][]float32
	for i, be := range []tensor.Backend{g, c} {
		a, _ := be.Upload(av, tensor.Shape{130, 20}, tensor.F32)
		b, _ := be.Upload(bv, tensor.Shape{20, 140}, tensor.F16)
		o, err := be.MatMul(a, b, nil, false, false)
		if err != nil {
			t.Fatal(err)
		}
		outs[i], _ = be.Download(o)
		tensor.FreeAll(a, b, o)
	}
	if m := optest.Compare(f64s(outs[0]), f64s(outs[1])); m.MaxAbs > 1e-4 {
		t.Fatalf("130x20x140 with 128 tiles: %v", m)
	}
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestParitySplitK runs the matmul and conv cases with K split three ways (partial
// products summed by the reduce kernel), and one long-K product that splits
// on its own (a LoRA-like gradient: few output tiles, K = 5000).
func TestParitySplitK(t *testing.T) {
	g := newTestBackend(t)
	g.dev.splitK = 3
	optest.RunAgainst(t, cpu.New(), g, optest.Small, optest.Only("matmul|linear|conv"))
	g.dev.gemmReg = !g.dev.gemmReg // and the other variant
	optest.RunAgainst(t, cpu.New(), g, optest.Small, optest.Only("matmul|linear"))
	g.dev.gemmReg = !g.dev.gemmReg
	g.dev.splitK = 0
	if s := g.gemmSplit(8, 70, 5000, 1, nil); s < 2 {
		t.Fatalf("an 8x70 product over K=5000 is not split (%d)", s)
	}
	c := cpu.New()
	r := rand.New(rand.NewSource(4))
	av, bv := make([]float32, 5000*8), make([]float32, 5000*70)
	for i := range av {
		av[i] = float32(r.NormFloat64())
	}
	for i := range bv {
		bv[i] = float32(r.NormFloat64())
	}
	var outs [2][]float32
	for i, be := range []tensor.Backend{g, c} {
		a, _ := be.Upload(av, tensor.Shape{5000, 8}, tensor.F32)
		b, _ := be.Upload(bv, tensor.Shape{5000, 70}, tensor.F32)
		o, err := be.MatMul(a, b, nil, true, false) // aᵀ·b: (8, 70) over K = 5000
		if err != nil {
			t.Fatal(err)
		}
		outs[i], _ = be.Download(o)
		tensor.FreeAll(a, b, o)
	}
	if m := optest.Compare(f64s(outs[0]), f64s(outs[1])); m.MaxAbs > 1e-3 || m.NMSE > 1e-10 {
		t.Fatalf("8x5000x70 split-K: %v", m)
	}
}
