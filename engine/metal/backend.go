//go:build darwin

package metal

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"lorastudio/engine/tensor"
)

// Backend is the Metal compute backend: tensors live in shared-storage
// MTLBuffers and ops are engine/gl's kernels compiled to MSL. It is safe
// for use by one goroutine at a time (the Metal thread serializes the work).
type Backend struct {
	dev    *Device
	closed atomic.Bool
}

var _ tensor.Backend = (*Backend)(nil)

// New opens the default Metal device and returns a backend on it. It
// fails, saying why, when there is none.
func New() (*Backend, error) {
	d, err := OpenDevice()
	if err != nil {
		return nil, err
	}
	return &Backend{dev: d}, nil
}

// Dev returns the device behind the backend (limits, memory).
func (b *Backend) Dev() *Device { return b.dev }

// Name returns "metal".
func (b *Backend) Name() string { return "metal" }

// Device returns the GPU's name.
func (b *Backend) Device() string { return b.dev.Renderer() }

// Memory reports the bytes held by live tensors and the peak.
func (b *Backend) Memory() tensor.MemStats {
	s := b.dev.MemStats()
	return tensor.MemStats{InUse: int64(s.InUse), Peak: int64(s.Peak)}
}

// ResetPeak sets the peak to the memory in use now.
func (b *Backend) ResetPeak() {
	p := b.dev.pool
	p.mu.Lock()
	p.peak = p.inUse
	p.mu.Unlock()
}

// MaxTensorBytes returns the bytes one kernel binding takes whole: the
// device's maxBufferLength, capped at 2 GiB - 1 because the kernels count
// elements in int32 parameters (as on GL).
func (b *Backend) MaxTensorBytes() int64 { return int64(b.dev.limits.MaxSSBOSize) }

// Close waits for queued work and releases the device; tensors still alive
// become unusable.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	return b.dev.Close()
}

// call runs f on the Metal thread and commits what it encoded, turning a
// closed backend and errors into errors naming op.
func (b *Backend) call(op string, f func() error) error {
	if b.closed.Load() {
		return tensor.Errorf(op, tensor.ErrClosed, "metal backend")
	}
	err := b.dev.thread.call(func() error {
		err := f()
		b.dev.flush()
		if err == nil {
			err, b.dev.enc.err = b.dev.enc.err, nil
		}
		return err
	})
	if err != nil {
		if _, ok := err.(*tensor.OpError); ok {
			return err
		}
		return &tensor.OpError{Op: op, Msg: err.Error(), Err: err}
	}
	return nil
}

// check validates operands (nil, freed, other backend, closed).
func (b *Backend) check(op string, ts ...*tensor.Tensor) error {
	if b.closed.Load() {
		return tensor.Errorf(op, tensor.ErrClosed, "metal backend")
	}
	return tensor.Check(op, b, ts...)
}

// buf returns t's Metal buffer; t has passed check.
func buf(t *tensor.Tensor) (*buffer, error) {
	bb, err := t.Buffer()
	if err != nil {
		return nil, err
	}
	g, ok := bb.(*buffer)
	if !ok {
		return nil, fmt.Errorf("tensor %s has no Metal buffer", t)
	}
	if g.id == 0 {
		return nil, fmt.Errorf("tensor %s: buffer released: %w", t, tensor.ErrFreed)
	}
	return g, nil
}

// bufs returns the Metal buffers of ts.
func bufs(ts ...*tensor.Tensor) ([]*buffer, error) {
	out := make([]*buffer, len(ts))
	for i, t := range ts {
		g, err := buf(t)
		if err != nil {
			return nil, err
		}
		out[i] = g
	}
	return out, nil
}

// alloc makes a new tensor of shape and dtype; it runs on the Metal thread.
func (b *Backend) alloc(shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, *buffer, error) {
	n := shape.Numel() * dt.Size()
	n = (n + 3) &^ 3 // whole 32-bit words: packed halves are read in pairs
	g, err := b.dev.pool.alloc(n)
	if err != nil {
		return nil, nil, err
	}
	return tensor.New(b, g, shape, dt), g, nil
}

// Upload copies data into a new tensor; F16/BF16 are packed on the host.
func (b *Backend) Upload(data []float32, shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	const op = "upload"
	if !shape.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrShape, "shape %s", shape)
	}
	if !dt.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrDType, "%s", dt)
	}
	if len(data) != shape.Numel() {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%d values for shape %s", len(data), shape)
	}
	var ptr unsafe.Pointer
	nbytes := len(data) * dt.Size()
	if dt == tensor.F32 {
		if len(data) > 0 {
			ptr = unsafe.Pointer(&data[0])
		}
	} else {
		h := make([]uint16, len(data)+1)
		tensor.Pack(h[:len(data)], data, dt)
		ptr = unsafe.Pointer(&h[0])
		nbytes = (nbytes + 3) &^ 3
	}
	var out *tensor.Tensor
	err := b.call(op, func() error {
		t, g, err := b.alloc(shape, dt)
		if err != nil {
			return err
		}
		upload(g, ptr, nbytes)
		out = t
		return nil
	})
	return out, err
}

// Zeros returns a new zero-filled tensor.
func (b *Backend) Zeros(shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	const op = "zeros"
	if !shape.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrShape, "shape %s", shape)
	}
	if !dt.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrDType, "%s", dt)
	}
	var out *tensor.Tensor
	err := b.call(op, func() error {
		t, g, err := b.alloc(shape, dt)
		if err != nil {
			return err
		}
		zeroFill(g, (shape.Numel()*dt.Size()+3)&^3)
		out = t
		return nil
	})
	return out, err
}

// Download copies t back to the host as float32.
func (b *Backend) Download(t *tensor.Tensor) ([]float32, error) {
	const op = "download"
	if err := b.check(op, t); err != nil {
		return nil, err
	}
	n := t.Numel()
	out := make([]float32, n)
	var h []uint16
	err := b.call(op, func() error {
		g, err := buf(t)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if t.DType() == tensor.F32 {
			download(g, unsafe.Pointer(&out[0]), 4*n)
		} else {
			h = make([]uint16, n+1)
			download(g, unsafe.Pointer(&h[0]), (2*n+3)&^3)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h != nil {
		tensor.Unpack(out, h[:n], t.DType())
	}
	return out, nil
}

// kernelOut allocates one F32 result of outShape and runs the launches mk
// builds from the input buffers and the result's buffer.
func (b *Backend) kernelOut(op string, outShape tensor.Shape, ins []*tensor.Tensor, mk func(in []*buffer, out *buffer) ([]launch, error)) (*tensor.Tensor, error) {
	return b.kernelOutDT(op, outShape, tensor.F32, ins, mk)
}

// kernelOutDT is kernelOut with the result's dtype.
func (b *Backend) kernelOutDT(op string, outShape tensor.Shape, dt tensor.DType, ins []*tensor.Tensor, mk func(in []*buffer, out *buffer) ([]launch, error)) (*tensor.Tensor, error) {
	if err := b.check(op, ins...); err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err := b.call(op, func() error {
		in, err := bufs(ins...)
		if err != nil {
			return err
		}
		t, g, err := b.alloc(outShape, dt)
		if err != nil {
			return err
		}
		ls, err := mk(in, g)
		if err == nil {
			for _, l := range ls {
				if err = b.dev.run(l); err != nil {
					break
				}
			}
		}
		if err != nil {
			b.dev.pool.release(g)
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// pad6 left-pads dims with pad to rank 6 as int32 uniform values.
func pad6(dims []int, pad int) []int32 {
	out := make([]int32, 6)
	k := 6 - len(dims)
	for i := range out {
		if i < k {
			out[i] = int32(pad)
		} else {
			out[i] = int32(dims[i-k])
		}
	}
	return out
}

// i32 converts ints to uniform values.
func i32(v ...int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// copyLaunch walks shape (rank <= 6) copying src[sOff + walk(sStr)] to
// dst[dOff + walk(dStr)].
func (b *Backend) copyLaunch(src, dst *buffer, shape, sStr []int, sOff int, dStr []int, dOff int) launch {
	n := tensor.Shape(shape).Numel()
	p := i32(n)
	p = append(p, pad6(shape, 1)...)
	p = append(p, pad6(sStr, 0)...)
	p = append(p, int32(sOff))
	p = append(p, pad6(dStr, 0)...)
	p = append(p, int32(dOff))
	return launch{kernel: "copy", bufs: []*buffer{src, dst}, p: p, groups: b.dev.grid1D(n, 256)}
}

// reduceLaunch sums src over the reduced space (red, redStr) for every point
// of the kept space (kept, keptStr), times factor, into dst (contiguous).
func (b *Backend) reduceLaunch(src, dst *buffer, kept, keptStr, red, redStr []int, factor float32) launch {
	nOut := tensor.Shape(kept).Numel()
	p := i32(nOut, tensor.Shape(red).Numel())
	p = append(p, pad6(kept, 1)...)
	p = append(p, pad6(keptStr, 0)...)
	p = append(p, pad6(red, 1)...)
	p = append(p, pad6(redStr, 0)...)
	return launch{kernel: "reduce", bufs: []*buffer{src, dst}, p: p, f: []float32{factor}, groups: b.dev.tileGroups(nOut)}
}

// rank6 reports an error when a shape has more dimensions than the index
// kernels walk.
func rank6(op string, s tensor.Shape) error {
	if len(s) > 6 {
		return tensor.Errorf(op, tensor.ErrShape, "%s has rank %d; the Metal backend handles rank <= 6", s, len(s))
	}
	return nil
}

// Sync waits until every queued command buffer has finished and returns
// the first error one ended with.
func (b *Backend) Sync() error {
	if b.closed.Load() {
		return tensor.Errorf("sync", tensor.ErrClosed, "metal backend")
	}
	return b.dev.thread.call(b.dev.wait)
}
