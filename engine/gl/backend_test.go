package gl

import (
	"errors"
	"testing"

	"lorastudio/engine/tensor"
)

// TestUseAfterFree: a freed tensor is rejected by every path with ErrFreed,
// a second Free is an error, and a view keeps the buffer alive.
func TestUseAfterFree(t *testing.T) {
	b := newTestBackend(t)
	x, err := b.Upload([]float32{1, 2, 3, 4, 5, 6}, tensor.Shape{2, 3}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	v, err := x.Reshape(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Free(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Download(x); !errors.Is(err, tensor.ErrFreed) {
		t.Fatalf("Download of a freed tensor: %v", err)
	}
	if _, err := b.Scale(x, 2); !errors.Is(err, tensor.ErrFreed) {
		t.Fatalf("Scale of a freed tensor: %v", err)
	}
	if err := x.Free(); !errors.Is(err, tensor.ErrFreed) {
		t.Fatalf("second Free: %v", err)
	}
	// The view still owns the buffer.
	got, err := b.Download(v)
	if err != nil || len(got) != 6 || got[5] != 6 {
		t.Fatalf("view after freeing its source: %v %v", got, err)
	}
	before := b.Memory().InUse
	if err := v.Free(); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.thread.Sync(); err != nil {
		t.Fatal(err)
	}
	if after := b.Memory().InUse; after >= before {
		t.Fatalf("memory in use %d -> %d after freeing the last view", before, after)
	}
}

// TestPoolReuse: a freed buffer serves the next allocation of its class and
// the peak is tracked.
func TestPoolReuse(t *testing.T) {
	b := newTestBackend(t)
	b.ResetPeak()
	base := b.Memory().InUse
	x, err := b.Zeros(tensor.Shape{1000}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Download(x)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 0 {
			t.Fatalf("Zeros[%d] = %v", i, v)
		}
	}
	g, _ := buf(x)
	id := g.id
	x.Free()
	y, err := b.Zeros(tensor.Shape{990}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Free()
	g2, _ := buf(y)
	if g2.id != id {
		t.Errorf("a buffer of the same size class was not reused (%d, then %d)", id, g2.id)
	}
	if m := b.Memory(); m.InUse != base+int64(sizeClass(4000)) || m.Peak < m.InUse {
		t.Errorf("memory %+v, base %d", m, base)
	}
}

// TestOpErrors: bad shapes and non-F32
// activations are errors, not crashes.
func TestOpErrors(t *testing.T) {
	b := newTestBackend(t)
	h, err := b.Upload([]float32{1, 2, 3, 4}, tensor.Shape{2, 2}, tensor.F16)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Free()
	if _, err := b.Softmax(h); !errors.Is(err, tensor.ErrDType) {
		t.Errorf("softmax of f16: %v", err)
	}
	x, _ := b.Upload([]float32{1, 2, 3, 4, 5, 6}, tensor.Shape{2, 3}, tensor.F32)
	defer x.Free()
	if _, err := b.MatMul(x, x, nil, false, false); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("matmul (2,3)x(2,3): %v", err)
	}
	if _, err := b.Upload([]float32{1}, tensor.Shape{2}, tensor.F32); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("upload of 1 value for (2): %v", err)
	}
	// f16 round trip keeps halves exactly.
	got, err := b.Download(h)
	if err != nil || got[3] != 4 {
		t.Errorf("f16 download %v %v", got, err)
	}
}

// TestClose: after Close, ops fail with ErrClosed and freeing a surviving
// tensor neither crashes nor reports an error.
func TestClose(t *testing.T) {
	device(t) // skip or fail like every GL test when there is no context
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	x, err := b.Upload([]float32{1, 2}, tensor.Shape{2}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Scale(x, 2); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Scale after Close: %v", err)
	}
	if _, err := b.Zeros(tensor.Shape{2}, tensor.F32); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Zeros after Close: %v", err)
	}
	if err := x.Free(); err != nil {
		t.Fatalf("Free after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestTwoContexts: a second engine context in the same process (each on its
// own locked thread) does not disturb the first: interleaved work on both
// gives the right answers. (Fyne's own GL context lives beside the engine's
// the same way.)
func TestTwoContexts(t *testing.T) {
	a := newTestBackend(t)
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	xa, _ := a.Upload([]float32{1, 2, 3}, tensor.Shape{3}, tensor.F32)
	xb, _ := b.Upload([]float32{10, 20, 30}, tensor.Shape{3}, tensor.F32)
	defer xa.Free()
	defer xb.Free()
	for i := 0; i < 3; i++ {
		ya, err := a.Scale(xa, 2)
		if err != nil {
			t.Fatal(err)
		}
		yb, err := b.AddScalar(xb, 1)
		if err != nil {
			t.Fatal(err)
		}
		va, _ := a.Download(ya)
		vb, _ := b.Download(yb)
		if va[2] != 6 || vb[2] != 31 {
			t.Fatalf("round %d: %v and %v", i, va, vb)
		}
		tensor.FreeAll(ya, yb)
	}
	if _, err := a.Scale(xb, 2); !errors.Is(err, tensor.ErrBackend) {
		t.Fatalf("a tensor of the other context was accepted: %v", err)
	}
}
