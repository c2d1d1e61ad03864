package gl

import (
	"fmt"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/go-gl/gl/v4.3-core/gl"
)

// buffer is one shader storage buffer. size is its allocated size in bytes
// (a size class), bytes what was asked for. A buffer may exceed the device's
// per-binding limit: only kernels that can walk it in ranges accept it.
type buffer struct {
	dev   *Device
	id    uint32
	size  int
	bytes int
}

// Release returns the buffer to its device's pool (queued on the GL thread);
// the tensor package calls it once, when the last tensor sharing it is freed.
// The accounting changes at once; the buffer object is recycled on the GL
// thread.
func (b *buffer) Release() {
	d := b.dev
	d.pool.uncount(b)
	if d.closed.Load() {
		return // the context and its buffers are gone
	}
	d.thread.CallAsync(func() error {
		d.pool.recycle(b)
		return nil
	})
}

// bufferPool reuses SSBOs by size class: a freed buffer goes back to the
// pool and serves the next allocation of its class. Allocation and release
// happen on the GL thread; the counters may be read from any goroutine.
type bufferPool struct {
	dev  *Device
	free map[int][]uint32 // size class -> idle buffer names

	mu        sync.Mutex
	inUse     int // bytes in buffers held by tensors
	peak      int // the most inUse has been
	idleBytes int // bytes in idle buffers kept for reuse
	maxIdle   int // idle bytes above this are deleted instead of kept
}

func newBufferPool(d *Device) *bufferPool {
	return &bufferPool{dev: d, free: map[int][]uint32{}, maxIdle: 1 << 30}
}

// sizeClass rounds n bytes up to 256 or to one of four steps per power of two
// (1, 1.25, 1.5, 1.75 × 2^k), so reuse wastes at most a quarter.
func sizeClass(n int) int {
	if n <= 256 {
		return 256
	}
	k := bits.Len(uint(n-1)) - 1 // 2^k < n <= 2^(k+1)
	step := 1 << (k - 2)
	return (n + step - 1) / step * step
}

// alloc returns a buffer of at least n bytes, from the pool when one of its
// class is idle. It runs on the GL thread.
func (p *bufferPool) alloc(n int) (*buffer, error) {
	if n <= 0 {
		n = 4
	}
	c := sizeClass(n)
	if c > p.dev.limits.MaxSSBOSize {
		c = (n + 3) &^ 3 // big buffers get their exact size
	}
	var id uint32
	if ids := p.free[c]; len(ids) > 0 {
		id = ids[len(ids)-1]
		p.free[c] = ids[:len(ids)-1]
		p.mu.Lock()
		p.idleBytes -= c
		p.mu.Unlock()
	} else {
		gl.GenBuffers(1, &id)
		gl.BindBuffer(gl.SHADER_STORAGE_BUFFER, id)
		gl.BufferData(gl.SHADER_STORAGE_BUFFER, c, nil, gl.DYNAMIC_COPY)
		if e := gl.GetError(); e != gl.NO_ERROR {
			gl.DeleteBuffers(1, &id)
			if e == gl.OUT_OF_MEMORY {
				return nil, fmt.Errorf("gl: out of device memory allocating %d bytes (%d in use)", c, p.InUse())
			}
			return nil, fmt.Errorf("gl: allocating a buffer of %d bytes: GL error 0x%x", c, e)
		}
	}
	if p.dev.poison {
		nan := uint32(0x7fc00000)
		gl.BindBuffer(gl.SHADER_STORAGE_BUFFER, id)
		gl.ClearBufferSubData(gl.SHADER_STORAGE_BUFFER, gl.R32UI, 0, c, gl.RED_INTEGER, gl.UNSIGNED_INT, unsafe.Pointer(&nan))
	}
	p.mu.Lock()
	p.inUse += c
	if p.inUse > p.peak {
		p.peak = p.inUse
	}
	p.mu.Unlock()
	return &buffer{dev: p.dev, id: id, size: c, bytes: n}, nil
}

// release returns b to the pool (or deletes it when the pool holds enough
// idle memory). It runs on the GL thread.
func (p *bufferPool) release(b *buffer) {
	p.uncount(b)
	p.recycle(b)
}

// uncount removes b from the memory in use (any goroutine).
func (p *bufferPool) uncount(b *buffer) {
	p.mu.Lock()
	p.inUse -= b.size
	p.mu.Unlock()
}

// recycle puts an uncounted buffer back in the pool or deletes it; GL thread.
func (p *bufferPool) recycle(b *buffer) {
	p.mu.Lock()
	keep := p.idleBytes+b.size <= p.maxIdle
	if keep {
		p.idleBytes += b.size
	}
	p.mu.Unlock()
	if keep {
		p.free[b.size] = append(p.free[b.size], b.id)
	} else {
		gl.DeleteBuffers(1, &b.id)
	}
	b.id = 0
}

// trim deletes every idle buffer. It runs on the GL thread.
func (p *bufferPool) trim() {
	for c, ids := range p.free {
		if len(ids) > 0 {
			gl.DeleteBuffers(int32(len(ids)), &ids[0])
		}
		delete(p.free, c)
	}
	p.mu.Lock()
	p.idleBytes = 0
	p.mu.Unlock()
}

// deleteAll deletes the idle buffers at close; buffers still held by tensors
// die with the context.
func (p *bufferPool) deleteAll() { p.trim() }

// InUse returns the bytes held by live tensors.
func (p *bufferPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// MemStats is the buffer pool's accounting, in bytes.
type MemStats struct {
	InUse int // held by live tensors
	Peak  int // the most ever in use at once
	Idle  int // kept in the pool for reuse
}

// MemStats reports memory in use, its peak and the idle pool.
func (d *Device) MemStats() MemStats {
	p := d.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	return MemStats{InUse: p.inUse, Peak: p.peak, Idle: p.idleBytes}
}

// upload writes data into b from byte offset 0. It runs on the GL thread.
func upload(b *buffer, data unsafe.Pointer, n int) {
	if n == 0 {
		return
	}
	gl.BindBuffer(gl.SHADER_STORAGE_BUFFER, b.id)
	gl.BufferSubData(gl.SHADER_STORAGE_BUFFER, 0, n, data)
}

// download reads n bytes of b into data. It runs on the GL thread.
func download(b *buffer, data unsafe.Pointer, n int) {
	if n == 0 {
		return
	}
	gl.MemoryBarrier(gl.BUFFER_UPDATE_BARRIER_BIT)
	gl.BindBuffer(gl.SHADER_STORAGE_BUFFER, b.id)
	gl.GetBufferSubData(gl.SHADER_STORAGE_BUFFER, 0, n, data)
}
