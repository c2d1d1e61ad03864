package cpu

import (
	"errors"
	"strings"
	"testing"

	"lorastudio/engine/tensor"
)

func TestMemoryAccounting(t *testing.T) {
	b := New()
	x, err := b.Zeros(tensor.Shape{10, 10}, tensor.F32) // 400 bytes
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Zeros(tensor.Shape{10, 10}, tensor.F16) // 200 bytes
	if err != nil {
		t.Fatal(err)
	}
	if m := b.Memory(); m.InUse != 600 || m.Peak != 600 {
		t.Fatalf("after two allocations: %+v", m)
	}
	v, err := x.Reshape(100) // a view costs nothing
	if err != nil {
		t.Fatal(err)
	}
	if m := b.Memory(); m.InUse != 600 {
		t.Fatalf("a view changed memory: %+v", m)
	}
	x.Free()
	h.Free()
	if m := b.Memory(); m.InUse != 400 || m.Peak != 600 {
		t.Fatalf("view still holds x: %+v", m)
	}
	v.Free()
	if m := b.Memory(); m.InUse != 0 || m.Peak != 600 {
		t.Fatalf("after freeing all: %+v", m)
	}
	b.ResetPeak()
	if m := b.Memory(); m.Peak != 0 {
		t.Fatalf("after ResetPeak: %+v", m)
	}
}

func TestUploadDownloadPacked(t *testing.T) {
	b := New()
	vals := []float32{1, -2.5, 65504, 1e-8, 0.1}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		x, err := b.Upload(vals, tensor.Shape{5}, dt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Download(x)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if want := tensor.RoundTo(v, dt); got[i] != want {
				t.Errorf("%s: [%d] = %g, want %g", dt, i, got[i], want)
			}
		}
		if x.Bytes() != int64(5*dt.Size()) {
			t.Errorf("%s: %d bytes", dt, x.Bytes())
		}
		x.Free()
	}
}

func TestClosedBackend(t *testing.T) {
	b := New()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Zeros(tensor.Shape{2}, tensor.F32); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Zeros after Close: %v", err)
	}
}

func TestDeviceNamesGemm(t *testing.T) {
	d := New().Device()
	if !strings.Contains(d, "threads") || !strings.Contains(d, New().GemmName()) {
		t.Fatalf("Device() = %q", d)
	}
	if !strings.HasPrefix(NewPureGo().GemmName(), "pure-go") {
		t.Fatal("NewPureGo uses BLAS")
	}
	if (HaveBLAS() && !goSgemmFaster) != (New().GemmName() == "openblas") {
		t.Fatalf("GemmName %q disagrees with HaveBLAS %v and goSgemmFaster %v", New().GemmName(), HaveBLAS(), goSgemmFaster)
	}
	if HaveBLAS() != ((&Backend{blas: true}).GemmName() == "openblas") {
		t.Fatal("a backend that forces BLAS does not use it")
	}
}

// TestRankZero: a rank-0 tensor (one element) goes through the shape-generic
// ops without a panic and with the right value.
func TestRankZero(t *testing.T) {
	b := New()
	s, err := b.Upload([]float32{3}, tensor.Shape{}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Upload([]float32{1, 2}, tensor.Shape{2}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, f func() (*tensor.Tensor, error), want ...float32) {
		t.Helper()
		out, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := b.Download(out)
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: %v, want %v", name, got, want)
			}
		}
		out.Free()
	}
	run("mul scalar", func() (*tensor.Tensor, error) { return b.Binary(tensor.Mul, s, s) }, 9)
	run("add broadcast", func() (*tensor.Tensor, error) { return b.Binary(tensor.Add, v, s) }, 4, 5)
	run("reduce to scalar", func() (*tensor.Tensor, error) { return b.ReduceTo(v, tensor.Shape{}) }, 3)
	run("broadcast scalar", func() (*tensor.Tensor, error) { return b.BroadcastTo(s, tensor.Shape{2}) }, 3, 3)
	run("permute scalar", func() (*tensor.Tensor, error) { return b.Permute(s) }, 3)
	run("softmax scalar", func() (*tensor.Tensor, error) { return b.Softmax(s) }, 1)
	run("scale", func() (*tensor.Tensor, error) { return b.Scale(s, 2) }, 6)
	for name, f := range map[string]func() error{
		"layernorm": func() error { _, err := b.LayerNorm(s, nil, nil, 1e-5); return err },
		"geglu":     func() error { _, err := b.GEGLU(s, tensor.GELU); return err },
		"concat":    func() error { _, err := b.Concat(0, s, s); return err },
		"slice":     func() error { _, err := b.Slice(s, 0, 0, 1); return err },
		"matmul":    func() error { _, err := b.MatMul(s, s, nil, false, false); return err },
		"split":     func() error { _, err := b.Split(s, 0, 1); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s of a rank-0 tensor: no error", name)
		}
	}
}
