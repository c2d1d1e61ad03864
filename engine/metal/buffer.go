//go:build darwin

package metal

import (
	"fmt"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego/objc"
)

// buffer is one shared-storage MTLBuffer: the GPU and the CPU see the same
// memory through contents. size is its allocated size in bytes (a size
// class), bytes what was asked for.
type buffer struct {
	dev      *Device
	id       objc.ID // id<MTLBuffer>
	contents unsafe.Pointer
	size     int
	bytes    int
}

// Release returns the buffer to its device's pool; the tensor package calls
// it once, when the last tensor sharing it is freed. Work already encoded
// keeps it alive (command buffers retain what they use), and the next
// CPU write to a recycled buffer waits for the GPU first.
func (b *buffer) Release() {
	d := b.dev
	d.pool.uncount(b)
	if d.closed.Load() {
		if b.id != 0 {
			b.id.Send(selRelease) // the device is gone; only the object is left
			b.id, b.contents = 0, nil
		}
		return
	}
	d.pool.recycle(b)
}

// bufferPool reuses buffers by size class (engine/gl's classes: at most a
// quarter wasted). Its state is guarded by mu: Release may come from any
// goroutine.
type bufferPool struct {
	dev *Device

	mu        sync.Mutex
	free      map[int][]*buffer // size class -> idle buffers
	inUse     int
	peak      int
	idleBytes int
	maxIdle   int
}

func newBufferPool(d *Device) *bufferPool {
	return &bufferPool{dev: d, free: map[int][]*buffer{}, maxIdle: 1 << 30}
}

// sizeClass rounds n bytes up to 256 or to one of four steps per power of two.
func sizeClass(n int) int {
	if n <= 256 {
		return 256
	}
	k := bits.Len(uint(n-1)) - 1
	step := 1 << (k - 2)
	return (n + step - 1) / step * step
}

// alloc returns a buffer of at least n bytes, from the pool when one of its
// class is idle. It runs on the Metal thread.
func (p *bufferPool) alloc(n int) (*buffer, error) {
	if n <= 0 {
		n = 4
	}
	c := sizeClass(n)
	if int64(c) > p.dev.limits.MaxBuffer {
		c = (n + 3) &^ 3
	}
	p.mu.Lock()
	var b *buffer
	if bs := p.free[c]; len(bs) > 0 {
		b = bs[len(bs)-1]
		p.free[c] = bs[:len(bs)-1]
		p.idleBytes -= c
	}
	p.mu.Unlock()
	if b == nil {
		const storageModeShared = 0 // MTLResourceStorageModeShared
		id := p.dev.dev.Send(selNewBuffer, uint64(c), uint64(storageModeShared))
		if id == 0 {
			return nil, fmt.Errorf("metal: out of device memory allocating %d bytes (%d in use, %s recommends at most %d)", c, p.InUse(), p.dev.limits.Renderer, p.dev.limits.WorkingSet)
		}
		b = &buffer{dev: p.dev, id: id, contents: objc.Send[unsafe.Pointer](id, selContents), size: c}
	}
	b.bytes = n
	p.mu.Lock()
	p.inUse += c
	p.peak = max(p.peak, p.inUse)
	p.mu.Unlock()
	return b, nil
}

// release returns b to the pool (Metal thread).
func (p *bufferPool) release(b *buffer) {
	p.uncount(b)
	p.recycle(b)
}

// uncount removes b from the memory in use.
func (p *bufferPool) uncount(b *buffer) {
	p.mu.Lock()
	p.inUse -= b.size
	p.mu.Unlock()
}

// recycle keeps an uncounted buffer for reuse, or releases it when the pool
// holds enough idle memory. The tensor that held it sees it as released.
func (p *bufferPool) recycle(b *buffer) {
	nb := &buffer{dev: b.dev, id: b.id, contents: b.contents, size: b.size}
	b.id, b.contents = 0, nil
	p.mu.Lock()
	keep := p.idleBytes+nb.size <= p.maxIdle
	if keep {
		p.idleBytes += nb.size
		p.free[nb.size] = append(p.free[nb.size], nb)
	}
	p.mu.Unlock()
	if !keep {
		nb.id.Send(selRelease)
	}
}

// trim releases every idle buffer.
func (p *bufferPool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, bs := range p.free {
		for _, b := range bs {
			b.id.Send(selRelease)
		}
		delete(p.free, c)
	}
	p.idleBytes = 0
}

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

// upload writes n bytes from data into b after the GPU is done with it
// (a recycled buffer may still be read by queued work). Metal thread.
func upload(b *buffer, data unsafe.Pointer, n int) {
	if n == 0 {
		return
	}
	b.dev.idleForCPU()
	copy(unsafe.Slice((*byte)(b.contents), n), unsafe.Slice((*byte)(data), n))
}

// download reads n bytes of b into data once queued work is done.
func download(b *buffer, data unsafe.Pointer, n int) {
	if n == 0 {
		return
	}
	b.dev.idleForCPU()
	copy(unsafe.Slice((*byte)(data), n), unsafe.Slice((*byte)(b.contents), n))
}

// zeroFill clears the first n bytes of g once queued work is done.
func zeroFill(g *buffer, n int) {
	if n <= 0 {
		return
	}
	g.dev.idleForCPU()
	clear(unsafe.Slice((*byte)(g.contents), n))
}

// idleForCPU commits what is open and waits for the GPU before the CPU
// touches buffer memory; a command buffer's error stays kept for the next
// wait (Sync or the op's end).
func (d *Device) idleForCPU() {
	d.flush()
	d.finish()
}
