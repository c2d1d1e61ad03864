package cpu

import (
	"os"
	"sync"
)

// A released F32 tensor's slice goes back to its backend's pool, keyed by
// its exact length, and the next tensor of that length takes it (cleared,
// unless its op writes every element: newF32Dirty) instead of a fresh make. A UNet or VAE pass allocates the same few
// activation sizes over and over; fresh large slices cost page faults and
// the runtime's zeroing of new spans, and keep the collector busy, where a
// reused one is cleared while it is still in cache. Small slices are left
// to the runtime, which is fast for them; the pool is bounded so it never
// holds more than poolLimit bytes of idle memory.
const (
	poolMinBytes = 256 << 10 // smaller slices: plain make
	poolMaxBytes = 256 << 20 // larger ones (a 1024² VAE decode's) would hold too much idle
	poolLimit    = 768 << 20 // idle bytes kept at most, over all lengths
)

// poolOff turns the pool off (LORASTUDIO_CPU_POOL=0): for measuring it, and
// for telling a suspected reuse bug from another.
var poolOff = os.Getenv("LORASTUDIO_CPU_POOL") == "0"

type bufferPool struct {
	mu    sync.Mutex
	free  map[int][][]float32
	bytes int64
}

// get returns a released slice of length n, not cleared, or nil.
func (p *bufferPool) get(n int) []float32 {
	if n*4 < poolMinBytes || n*4 > poolMaxBytes {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.free[n]
	if len(l) == 0 {
		return nil
	}
	s := l[len(l)-1]
	l[len(l)-1] = nil
	p.free[n] = l[:len(l)-1]
	p.bytes -= int64(n) * 4
	return s
}

// put keeps s for a later get of its length, unless that would pass
// poolLimit (then the runtime takes it back as usual).
func (p *bufferPool) put(s []float32) {
	n := len(s)
	if poolOff || n*4 < poolMinBytes || n*4 > poolMaxBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+int64(n)*4 > poolLimit {
		return
	}
	if p.free == nil {
		p.free = map[int][][]float32{}
	}
	p.free[n] = append(p.free[n], s[:n:n])
	p.bytes += int64(n) * 4
}

// drain drops every kept slice (Close).
func (p *bufferPool) drain() {
	p.mu.Lock()
	p.free, p.bytes = nil, 0
	p.mu.Unlock()
}

// idleBytes is how much the pool holds.
func (p *bufferPool) idleBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}
