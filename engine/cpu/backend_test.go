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
	if HaveBLAS() != (New().GemmName() == "openblas") {
		t.Fatal("GemmName disagrees with HaveBLAS")
	}
}
