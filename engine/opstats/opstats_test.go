package opstats_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/opstats"
	"lorastudio/engine/tensor"
)

// graph runs a small fixed graph through b: a linear layer with bias, GELU,
// a residual add, a layer norm, a permute and a cast, then downloads.
// It returns the downloaded values.
func graph(t *testing.T, b tensor.Backend) []float32 {
	t.Helper()
	x, err := b.Upload([]float32{1, 2, 3, 4, 5, 6}, tensor.Shape{2, 3}, tensor.F32) // (2, 3)
	must(t, err)
	w, err := b.Upload([]float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, tensor.Shape{3, 3}, tensor.F16) // (3, 3)
	must(t, err)
	bias, err := b.Zeros(tensor.Shape{3}, tensor.F32)
	must(t, err)
	// The model calls ops through x.Backend(), as engine/nn does.
	h, err := x.Backend().MatMul(x, w, bias, false, false) // (2, 3)
	must(t, err)
	a, err := h.Backend().Activation(h, tensor.GELU) // (2, 3)
	must(t, err)
	r, err := a.Backend().Binary(tensor.Add, a, x) // (2, 3)
	must(t, err)
	n, err := r.Backend().LayerNorm(r, nil, nil, 1e-5) // (2, 3)
	must(t, err)
	p, err := n.Backend().Permute(n, 1, 0) // (3, 2)
	must(t, err)
	c, err := p.Backend().Cast(p, tensor.F16) // (3, 2)
	must(t, err)
	v, err := c.Backend().Download(c)
	must(t, err)
	must(t, tensor.FreeAll(x, w, bias, h, a, r, n, p, c))
	return v
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCountsAndAttributesASmallGraph(t *testing.T) {
	inner := cpu.New()
	defer inner.Close()
	want := graph(t, inner)

	b := opstats.New(inner)
	got := graph(t, b)
	if len(got) != len(want) {
		t.Fatalf("through the wrapper %d values, directly %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("value %d through the wrapper %g, directly %g", i, got[i], want[i])
		}
	}
	s := b.Stats()
	wantOps := map[string]int64{"Upload": 2, "Zeros": 1, "MatMul": 1, "Activation": 1, "Binary": 1, "LayerNorm": 1, "Permute": 1, "Cast": 1, "Download": 1}
	if len(s.Ops) != len(wantOps) {
		t.Errorf("op rows %v, want %v", s.Ops, wantOps)
	}
	for _, c := range s.Ops {
		if c.Calls != wantOps[c.Name] {
			t.Errorf("%s: %d calls, want %d", c.Name, c.Calls, wantOps[c.Name])
		}
		if c.Kind != opstats.KindOf(c.Name) {
			t.Errorf("%s: kind %s, want %s", c.Name, c.Kind, opstats.KindOf(c.Name))
		}
	}
	wantKinds := []struct {
		k     opstats.Kind
		calls int64
	}{{opstats.MatMul, 1}, {opstats.Norm, 1}, {opstats.Activation, 1}, {opstats.Cast, 1}, {opstats.Copy, 1}, {opstats.Elementwise, 1}, {opstats.Transfer, 4}}
	if len(s.Kinds) != len(wantKinds) {
		t.Fatalf("kind rows %+v, want %+v", s.Kinds, wantKinds)
	}
	var share float64
	var total int64
	for i, c := range s.Kinds {
		if c.Kind != wantKinds[i].k || c.Calls != wantKinds[i].calls {
			t.Errorf("kind row %d is %s × %d, want %s × %d", i, c.Kind, c.Calls, wantKinds[i].k, wantKinds[i].calls)
		}
		share += c.Share
		total += int64(c.Time)
	}
	if total != int64(s.Total) || math.Abs(share-1) > 1e-9 {
		t.Errorf("kinds sum to %d ns and share %g; total %d ns", total, share, s.Total)
	}
	if s.Synced {
		t.Error("the CPU backend is synchronous, yet Synced")
	}

	var buf bytes.Buffer
	s.WriteTable(&buf, "graph", true)
	for _, w := range []string{"matmul", "MatMul", "transfer", "Download"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, buf.String())
		}
	}
	if strings.Contains(buf.String(), "serialises") {
		t.Errorf("table of a synchronous backend mentions syncing:\n%s", buf.String())
	}

	must(t, b.Reset())
	if s := b.Stats(); len(s.Ops) != 0 || s.Total != 0 {
		t.Errorf("after Reset: %+v", s)
	}
}

func TestResultsBelongToTheWrapperAndInnerTensorsAreAccepted(t *testing.T) {
	inner := cpu.New()
	defer inner.Close()
	b := opstats.New(inner)
	x, err := inner.Upload([]float32{1, 2, 3, 4}, tensor.Shape{2, 2}, tensor.F32) // made before wrapping
	must(t, err)
	defer x.Free()
	y, err := b.Scale(x, 2)
	must(t, err)
	defer y.Free()
	if y.Backend() != tensor.Backend(b) {
		t.Fatalf("result reports backend %T, want the wrapper", y.Backend())
	}
	v, err := y.Reshape(4)
	must(t, err)
	defer v.Free()
	if v.Backend() != tensor.Backend(b) {
		t.Errorf("a view of a wrapped result reports %T", v.Backend())
	}
	z, err := inner.Binary(tensor.Add, x, y) // the inner backend takes the wrapper's tensors
	must(t, err)
	z.Free()
	parts, err := b.Split(y, 0, 1, 1)
	must(t, err)
	for _, p := range parts {
		if p.Backend() != tensor.Backend(b) {
			t.Errorf("a Split piece reports %T", p.Backend())
		}
	}
	must(t, tensor.FreeAll(parts...))
	if c := b.Stats(); len(c.Ops) != 2 {
		t.Errorf("counted %+v, want Scale and Split only (the inner Binary bypassed the wrapper)", c.Ops)
	}

	other := cpu.New()
	defer other.Close()
	o, err := other.Upload([]float32{1}, tensor.Shape{1}, tensor.F32)
	must(t, err)
	defer o.Free()
	if _, err := b.Scale(o, 2); !errors.Is(err, tensor.ErrBackend) {
		t.Errorf("a tensor of another backend: %v, want ErrBackend", err)
	}
	if _, err := b.Binary(tensor.Add, x, o); !errors.Is(err, tensor.ErrBackend) {
		t.Errorf("mixing backends: %v, want ErrBackend", err)
	}
	for _, c := range b.Stats().Ops {
		if c.Name == "Scale" && c.Calls != 1 || c.Name == "Binary" {
			t.Errorf("failed calls were counted: %+v", c)
		}
	}
}

// asyncCPU is the CPU backend posing as an asynchronous one: it counts Syncs.
type asyncCPU struct {
	*cpu.Backend
	syncs int
}

func (a *asyncCPU) Sync() error { a.syncs++; return nil }

// Unwrap says that the CPU backend's tensors are asyncCPU's.
func (a *asyncCPU) Unwrap() tensor.Backend { return a.Backend }

func TestSyncsAfterEveryOpOnAnAsynchronousBackend(t *testing.T) {
	a := &asyncCPU{Backend: cpu.New()}
	defer a.Close()
	b := opstats.New(a)
	if !b.Synced() {
		t.Fatal("a backend with Sync is not reported as synced")
	}
	graph(t, b)
	s := b.Stats()
	var calls int64
	for _, c := range s.Ops {
		calls += c.Calls
	}
	if int64(a.syncs) != calls {
		t.Errorf("%d syncs for %d ops", a.syncs, calls)
	}
	var buf bytes.Buffer
	s.WriteTable(&buf, "graph", false)
	if !strings.Contains(buf.String(), "serialises the queue") {
		t.Errorf("the table of a synced run does not say so:\n%s", buf.String())
	}
}

// TestOnGL runs the graph through the wrapper on the GL backend, which
// queues its ops: the wrapper syncs after each and counts the same ops.
func TestOnGL(t *testing.T) {
	inner := gltest.Backend(t)
	want := graph(t, inner)
	b := opstats.New(inner)
	if !b.Synced() {
		t.Fatal("the GL backend is asynchronous, yet the wrapper does not sync")
	}
	got := graph(t, b)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d through the wrapper %g, directly %g", i, got[i], want[i])
		}
	}
	s := b.Stats()
	var calls int64
	for _, c := range s.Ops {
		calls += c.Calls
	}
	if calls != 10 || !s.Synced {
		t.Errorf("%d calls counted (want 10), synced %v: %+v", calls, s.Synced, s.Ops)
	}
	must(t, b.Sync())
}
