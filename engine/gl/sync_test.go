package gl

import (
	"math"
	"testing"
	"unsafe"

	"lorastudio/engine/tensor"
)

// TestPoisonedAllocations checks LORASTUDIO_GL_POISON: a new buffer reads
// as NaN (what a GPU's recycled memory may hold), so a kernel that reads
// memory no one wrote fails on llvmpipe too. It also checks that the
// per-dispatch glFinish (Device.finish) is on unless turned off.
func TestPoisonedAllocations(t *testing.T) {
	device(t) // skip or fail as every GL test does without a context
	t.Setenv("LORASTUDIO_GL_POISON", "1")
	dev, err := OpenDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if !dev.poison || !dev.finish {
		t.Fatalf("poison %v, finish %v: want both on", dev.poison, dev.finish)
	}
	b := &Backend{dev: dev}
	var got []float32
	if err := dev.thread.Call(func() error {
		x, buf, err := b.alloc(tensor.Shape{3, 5}, tensor.F32)
		if err != nil {
			return err
		}
		got = make([]float32, 15)
		download(buf, unsafe.Pointer(&got[0]), 4*len(got))
		dev.pool.release(buf)
		_ = x // released through its buffer above: the tensor is never used
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("element %d of a poisoned allocation is %v, want NaN", i, v)
		}
	}
	t.Setenv("LORASTUDIO_GL_POISON", "")
	t.Setenv("LORASTUDIO_GL_FINISH", "0")
	plain, err := OpenDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if plain.poison || plain.finish {
		t.Errorf("with LORASTUDIO_GL_FINISH=0 and no poison: poison %v, finish %v", plain.poison, plain.finish)
	}
}
