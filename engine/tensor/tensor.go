package tensor

import (
	"fmt"
	"sync"
)

// Buffer is a backend's storage behind one or more tensors. The backend
// defines the concrete type (a Go slice, a GL buffer object ...) and gets it
// back from Tensor.Buffer inside its ops.
type Buffer interface {
	// Release returns the memory to the backend. The tensor package calls it
	// exactly once, when the last tensor sharing the buffer is freed.
	Release()
}

// storage is a buffer shared by a tensor and its views, with a reference count.
type storage struct {
	mu   sync.Mutex
	buf  Buffer
	refs int
}

// Tensor is an n-dimensional array of one dtype held in a Backend's memory.
// Tensors are always contiguous and row-major. See the package doc for the
// ownership and freeing rules.
type Tensor struct {
	shape   Shape
	dtype   DType
	backend Backend
	st      *storage

	mu    sync.Mutex
	freed bool
}

// New wraps a buffer the backend b has just allocated as a tensor of the given
// shape and dtype. Only backends call New.
func New(b Backend, buf Buffer, shape Shape, dt DType) *Tensor {
	return &Tensor{shape: shape.Clone(), dtype: dt, backend: b, st: &storage{buf: buf, refs: 1}}
}

// Shape returns a copy of the tensor's shape (valid even after Free).
func (t *Tensor) Shape() Shape { return t.shape.Clone() }

// DType returns the tensor's element type.
func (t *Tensor) DType() DType { return t.dtype }

// Numel returns the number of elements.
func (t *Tensor) Numel() int { return t.shape.Numel() }

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Dim returns the size of axis i (negative counts from the end); it panics
// only on an out-of-range axis, which is a programming error.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Bytes returns the size of the tensor's storage in bytes.
func (t *Tensor) Bytes() int64 { return int64(t.shape.Numel()) * int64(t.dtype.Size()) }

// Backend returns the backend that owns the tensor.
func (t *Tensor) Backend() Backend { return t.backend }

// String describes the tensor, e.g. "f32(2, 3)" or "f32(2, 3) freed".
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	s := t.dtype.String() + t.shape.String()
	if t.Freed() {
		s += " freed"
	}
	return s
}

// Freed reports whether Free has been called on t.
func (t *Tensor) Freed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.freed
}

// Free releases t's reference to its buffer; the buffer itself is released
// when no view shares it any more. Freeing twice returns an error wrapping
// ErrFreed.
func (t *Tensor) Free() error {
	if t == nil {
		return &OpError{Op: "free", Err: ErrArg, Msg: "nil tensor"}
	}
	t.mu.Lock()
	if t.freed {
		t.mu.Unlock()
		return Errorf("free", ErrFreed, "%s%s freed twice", t.dtype, t.shape)
	}
	t.freed = true
	t.mu.Unlock()
	t.st.mu.Lock()
	t.st.refs--
	last := t.st.refs == 0
	t.st.mu.Unlock()
	if last {
		t.st.buf.Release()
	}
	return nil
}

// Buffer returns the backend buffer behind t, or an error wrapping ErrFreed.
// Backends call it inside their ops after Check.
func (t *Tensor) Buffer() (Buffer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.freed {
		return nil, fmt.Errorf("%s%s: %w", t.dtype, t.shape, ErrFreed)
	}
	return t.st.buf, nil
}

// Reshape returns a view of t with a new shape of the same number of
// elements; it shares t's buffer (no copy) and must be freed separately.
// One dimension may be -1 and is then inferred.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	const op = "reshape"
	if err := Check(op, t.backend, t); err != nil {
		return nil, err
	}
	ns, err := InferShape(t.shape, Shape(shape))
	if err != nil {
		return nil, Errorf(op, ErrShape, "%s to %s: %v", t.shape, Shape(shape), err)
	}
	t.st.mu.Lock()
	if t.st.refs == 0 {
		t.st.mu.Unlock()
		return nil, Errorf(op, ErrFreed, "%s%s", t.dtype, t.shape)
	}
	t.st.refs++
	t.st.mu.Unlock()
	return &Tensor{shape: ns, dtype: t.dtype, backend: t.backend, st: t.st}, nil
}

// InferShape resolves a reshape target against a source shape: at most one
// -1 entry is inferred and the element counts must match.
func InferShape(from, to Shape) (Shape, error) {
	out := to.Clone()
	infer := -1
	n := 1
	for i, d := range out {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 1:
			return nil, fmt.Errorf("bad dimension %d", d)
		default:
			n *= d
		}
	}
	if infer >= 0 {
		if n == 0 || from.Numel()%n != 0 {
			return nil, fmt.Errorf("cannot infer -1 for %d elements", from.Numel())
		}
		out[infer] = from.Numel() / n
		n *= out[infer]
	}
	if n != from.Numel() {
		return nil, fmt.Errorf("%d elements vs %d", from.Numel(), n)
	}
	return out, nil
}

// Check validates the tensor operands of op for backend b: none may be nil
// (pass optional operands only when present), freed, or owned by another
// backend. Backends call it first thing in every op.
func Check(op string, b Backend, ts ...*Tensor) error {
	for i, t := range ts {
		if t == nil {
			return Errorf(op, ErrArg, "operand %d is nil", i)
		}
		if t.Freed() {
			return Errorf(op, ErrFreed, "operand %d %s%s was freed", i, t.dtype, t.shape)
		}
		if t.backend != b && Root(t.backend) != Root(b) {
			return Errorf(op, ErrBackend, "operand %d %s%s belongs to backend %q, not %q", i, t.dtype, t.shape, t.backend.Name(), b.Name())
		}
	}
	return nil
}

// Wrapper is implemented by a backend that forwards every op to another one
// (engine/opstats' timing wrapper): tensors of the wrapper and of the backend
// it wraps share one memory, so Check accepts either on both.
type Wrapper interface {
	// Unwrap returns the backend the wrapper forwards to.
	Unwrap() Backend
}

// Root follows Unwrap from b to the backend that owns the memory.
func Root(b Backend) Backend {
	for {
		w, ok := b.(Wrapper)
		if !ok {
			return b
		}
		b = w.Unwrap()
	}
}

// Adopt makes w the backend t reports from Backend(), so that code which
// calls ops through x.Backend() (engine/nn) keeps going through the wrapper w.
// It is for wrappers only, on a tensor the wrapped backend has just returned;
// t's backend and w must share a Root.
func Adopt(t *Tensor, w Backend) error {
	if t == nil {
		return nil
	}
	if Root(t.backend) != Root(w) {
		return Errorf("adopt", ErrBackend, "%s%s belongs to backend %q, which %q does not wrap", t.dtype, t.shape, t.backend.Name(), w.Name())
	}
	t.backend = w
	return nil
}

// CheckF32 returns an ErrDType error unless every tensor is F32; name labels
// the operands in the message, e.g. "x".
func CheckF32(op string, names []string, ts ...*Tensor) error {
	for i, t := range ts {
		if t.dtype != F32 {
			n := fmt.Sprintf("operand %d", i)
			if i < len(names) {
				n = names[i]
			}
			return Errorf(op, ErrDType, "%s is %s%s, want f32", n, t.dtype, t.shape)
		}
	}
	return nil
}

// FreeAll frees every non-nil tensor and returns the first error.
func FreeAll(ts ...*Tensor) error {
	var first error
	for _, t := range ts {
		if t == nil {
			continue
		}
		if err := t.Free(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
