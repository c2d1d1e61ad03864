package cpu

import (
	"math"
	"testing"

	"lorastudio/engine/tensor"
)

// TestPoolReusesClearedBuffers: a freed tensor's slice comes back, cleared,
// for the next tensor of its length, and not for another length.
func TestPoolReusesClearedBuffers(t *testing.T) {
	if poolOff {
		t.Skip("LORASTUDIO_CPU_POOL=0")
	}
	b := New()
	defer b.Close()
	n := poolMinBytes / 4 * 2
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	a, err := b.Upload(ones, tensor.Shape{n}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	first := &data(a)[0]
	a.Free()
	if got := b.pool.idleBytes(); got != int64(n)*4 {
		t.Fatalf("pool holds %d bytes after one free, want %d", got, n*4)
	}
	other, err := b.Zeros(tensor.Shape{n + 16}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if &data(other)[0] == first {
		t.Fatal("a tensor of another length got the freed slice")
	}
	z, err := b.Zeros(tensor.Shape{2, n / 2}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if &data(z)[0] != first {
		t.Fatal("a tensor of the freed length did not reuse the slice")
	}
	for i, v := range data(z) {
		if v != 0 {
			t.Fatalf("reused slice not cleared: element %d is %g", i, v)
		}
	}
	if got := b.pool.idleBytes(); got != 0 {
		t.Fatalf("pool holds %d bytes after the reuse, want 0", got)
	}
	tensor.FreeAll(other, z)
}

// TestPoolBounds: slices below poolMinBytes are not kept, and the pool
// never holds more than poolLimit bytes.
func TestPoolBounds(t *testing.T) {
	var p bufferPool
	p.put(make([]float32, poolMinBytes/4-1))
	if p.idleBytes() != 0 {
		t.Fatal("a slice below poolMinBytes was kept")
	}
	n := poolMaxBytes / 4
	for range poolLimit/poolMaxBytes + 2 {
		p.put(make([]float32, n))
	}
	if got := p.idleBytes(); poolOff && got != 0 || !poolOff && got > poolLimit {
		t.Fatalf("pool holds %d bytes, limit %d", got, poolLimit)
	}
	if !poolOff && p.get(n) == nil {
		t.Fatal("no slice of a kept length came back")
	}
	p.drain()
	if p.idleBytes() != 0 || p.get(n) != nil {
		t.Fatal("drain left slices")
	}
}

// TestDirtyOutputsAreWrittenWhole: the ops that take their output from the
// pool without clearing it (newF32Dirty) write every element. The pool is
// filled with NaN slices of each op's output length first, so an element
// an op skipped would come back NaN.
func TestDirtyOutputsAreWrittenWhole(t *testing.T) {
	if poolOff {
		t.Skip("LORASTUDIO_CPU_POOL=0")
	}
	b := New()
	defer b.Close()
	// x (1, 64, 48, 48): 147456 floats, over poolMinBytes; conv3 takes the
	// Winograd path (576 tiles), conv5 the direct one.
	xs := tensor.Shape{1, 64, 48, 48}
	n := xs.Numel()
	vals := func(n int, s float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = s * float32(i%23-11) / 11
		}
		return v
	}
	up := func(v []float32, s tensor.Shape) *tensor.Tensor {
		t.Helper()
		x, err := b.Upload(v, s, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x, y := up(vals(n, 1), xs), up(vals(n, 0.5), xs)
	row := up(vals(48, 2), tensor.Shape{48})
	gamma, beta := up(vals(64, 1), tensor.Shape{64}), up(vals(64, 0.1), tensor.Shape{64})
	w3, w5 := up(vals(64*64*9, 0.01), tensor.Shape{64, 64, 3, 3}), up(vals(64*64*25, 0.01), tensor.Shape{64, 64, 5, 5})
	lnGamma, lnBeta := up(vals(48, 1), tensor.Shape{48}), up(vals(48, 0.1), tensor.Shape{48})
	defer tensor.FreeAll(x, y, row, gamma, beta, w3, w5, lnGamma, lnBeta)
	ops := []struct {
		name string
		run  func() (*tensor.Tensor, error)
	}{
		{"silu", func() (*tensor.Tensor, error) { return b.Activation(x, tensor.SiLU) }},
		{"silu backward", func() (*tensor.Tensor, error) { return b.ActivationBackward(y, x, tensor.SiLU) }},
		{"geglu", func() (*tensor.Tensor, error) { return b.GEGLU(x, tensor.GELU) }},
		{"geglu backward", func() (*tensor.Tensor, error) {
			h, err := b.GEGLU(x, tensor.GELU)
			if err != nil {
				return nil, err
			}
			defer h.Free()
			return b.GEGLUBackward(h, x, tensor.GELU)
		}},
		{"add", func() (*tensor.Tensor, error) { return b.Binary(tensor.Add, x, y) }},
		{"mul broadcast", func() (*tensor.Tensor, error) { return b.Binary(tensor.Mul, x, row) }},
		{"sub", func() (*tensor.Tensor, error) { return b.Binary(tensor.Sub, x, y) }},
		{"scale", func() (*tensor.Tensor, error) { return b.Scale(x, 3) }},
		{"groupnorm", func() (*tensor.Tensor, error) { return b.GroupNorm(x, gamma, beta, 32, 1e-5) }},
		{"layernorm", func() (*tensor.Tensor, error) { return b.LayerNorm(x, lnGamma, lnBeta, 1e-5) }},
		{"upsample", func() (*tensor.Tensor, error) { return b.Upsample2x(x) }},
		{"conv 3x3", func() (*tensor.Tensor, error) { return b.Conv2D(x, w3, gamma, tensor.ConvParams(1, 1)) }},
		{"conv 5x5", func() (*tensor.Tensor, error) { return b.Conv2D(x, w5, nil, tensor.ConvParams(1, 2)) }},
	}
	for _, op := range ops {
		// Learn the output length, then leave NaN slices of it in the pool.
		out, err := op.run()
		if err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		m := out.Shape().Numel()
		out.Free()
		b.pool.drain()
		var poison []*tensor.Tensor
		for range 4 {
			nan := make([]float32, m)
			for i := range nan {
				nan[i] = float32(math.NaN())
			}
			poison = append(poison, up(nan, tensor.Shape{m}))
		}
		tensor.FreeAll(poison...)
		if b.pool.idleBytes() == 0 {
			t.Fatalf("%s: the pool kept none of the NaN slices of %d floats", op.name, m)
		}
		out, err = op.run()
		if err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		for i, v := range data(out) {
			if v != v {
				t.Fatalf("%s: output element %d of %d was not written (still the pooled NaN)", op.name, i, m)
			}
		}
		out.Free()
	}
}
