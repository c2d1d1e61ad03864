package gl

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/go-gl/gl/v4.3-core/gl"

	"lorastudio/engine/tensor"
)

// Backend is the OpenGL 4.3 compute backend: tensors live in shader storage
// buffers, ops are compute kernels from shaders/gl, and every GL call runs
// on the device's one locked thread. It is safe for use by one goroutine at
// a time (the GL thread serializes the work either way).
type Backend struct {
	dev    *Device
	closed atomic.Bool
}

var _ tensor.Backend = (*Backend)(nil)

// New opens a headless GL device and returns a backend on it. It fails,
// saying why, when no OpenGL 4.3 context with compute shaders can be made.
func New() (*Backend, error) {
	d, err := OpenDevice()
	if err != nil {
		return nil, err
	}
	return &Backend{dev: d}, nil
}

// Dev returns the device behind the backend (limits, memory, thread).
func (b *Backend) Dev() *Device { return b.dev }

// Name returns "gl".
func (b *Backend) Name() string { return "gl" }

// Device returns the GL renderer and version.
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

// MaxTensorBytes returns GL_MAX_SHADER_STORAGE_BLOCK_SIZE: the bytes one
// storage-buffer binding may address (128 MiB on Mesa llvmpipe), so the
// largest tensor a kernel takes whole.
func (b *Backend) MaxTensorBytes() int64 { return int64(b.dev.limits.MaxSSBOSize) }

// Close releases the context; tensors still alive become unusable.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	return b.dev.Close()
}

// call runs f on the GL thread, turning a closed backend and a pending GL
// error into errors naming op.
func (b *Backend) call(op string, f func() error) error {
	if b.closed.Load() {
		return tensor.Errorf(op, tensor.ErrClosed, "gl backend")
	}
	err := b.dev.thread.Call(func() error {
		if err := f(); err != nil {
			return err
		}
		return glError(op)
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
		return tensor.Errorf(op, tensor.ErrClosed, "gl backend")
	}
	return tensor.Check(op, b, ts...)
}

// buf returns t's GL buffer; t has passed check.
func buf(t *tensor.Tensor) (*buffer, error) {
	bb, err := t.Buffer()
	if err != nil {
		return nil, err
	}
	g, ok := bb.(*buffer)
	if !ok {
		return nil, fmt.Errorf("tensor %s has no GL buffer", t)
	}
	if g.id == 0 {
		return nil, fmt.Errorf("tensor %s: buffer released: %w", t, tensor.ErrFreed)
	}
	return g, nil
}

// bufs returns the GL buffers of ts.
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

// alloc makes a new tensor of shape and dtype; it runs on the GL thread.
func (b *Backend) alloc(shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, *buffer, error) {
	n := shape.Numel() * dt.Size()
	n = (n + 3) &^ 3 // whole 32-bit words: packed halves are read in pairs
	g, err := b.dev.pool.alloc(n)
	if err != nil {
		return nil, nil, err
	}
	return tensor.New(b, g, shape, dt), g, nil
}

// zeroFill clears the first n bytes of g (n a multiple of 4); GL thread.
func zeroFill(g *buffer, n int) {
	if n <= 0 {
		return
	}
	gl.BindBuffer(gl.SHADER_STORAGE_BUFFER, g.id)
	gl.ClearBufferSubData(gl.SHADER_STORAGE_BUFFER, gl.R32UI, 0, n, gl.RED_INTEGER, gl.UNSIGNED_INT, nil)
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
		ptr = unsafe.Pointer(&data[0])
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
// builds from the input buffers and the result's buffer, on the GL thread.
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
		return tensor.Errorf(op, tensor.ErrShape, "%s has rank %d; the GL backend handles rank <= 6", s, len(s))
	}
	return nil
}

// Sync waits until every queued command has finished on the device
// (glFinish) and returns the first error kept from asynchronous work.
func (b *Backend) Sync() error {
	if b.closed.Load() {
		return tensor.Errorf("sync", tensor.ErrClosed, "gl backend")
	}
	return b.dev.thread.Call(func() error {
		gl.Finish()
		return glError("sync")
	})
}
