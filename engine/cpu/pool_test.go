package cpu

import (
	"testing"

	"lorastudio/engine/tensor"
)

// TestPoolReusesClearedBuffers: a freed tensor's slice comes back, cleared,
// for the next tensor of its length, and not for another length.
func TestPoolReusesClearedBuffers(t *testing.T) {
	if poolOff {
		t.Skip("LORASTUDIO_CPU_POOL=0")
	}
	b := New()
	defer b.Close()
	n := poolMinBytes / 4 * 2
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	a, err := b.Upload(ones, tensor.Shape{n}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	first := &data(a)[0]
	a.Free()
	if got := b.pool.idleBytes(); got != int64(n)*4 {
		t.Fatalf("pool holds %d bytes after one free, want %d", got, n*4)
	}
	other, err := b.Zeros(tensor.Shape{n + 16}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if &data(other)[0] == first {
		t.Fatal("a tensor of another length got the freed slice")
	}
	z, err := b.Zeros(tensor.Shape{2, n / 2}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if &data(z)[0] != first {
		t.Fatal("a tensor of the freed length did not reuse the slice")
	}
	for i, v := range data(z) {
		if v != 0 {
			t.Fatalf("reused slice not cleared: element %d is %g", i, v)
		}
	}
	if got := b.pool.idleBytes(); got != 0 {
		t.Fatalf("pool holds %d bytes after the reuse, want 0", got)
	}
	tensor.FreeAll(other, z)
}

// TestPoolBounds: slices below poolMinBytes are not kept, and the pool
// never holds more than poolLimit bytes.
func TestPoolBounds(t *testing.T) {
	var p bufferPool
	p.put(make([]float32, poolMinBytes/4-1))
	if p.idleBytes() != 0 {
		t.Fatal("a slice below poolMinBytes was kept")
	}
	n := poolMaxBytes / 4
	for range poolLimit/poolMaxBytes + 2 {
		p.put(make([]float32, n))
	}
	if got := p.idleBytes(); poolOff && got != 0 || !poolOff && got > poolLimit {
		t.Fatalf("pool holds %d bytes, limit %d", got, poolLimit)
	}
	if !poolOff && p.get(n) == nil {
		t.Fatal("no slice of a kept length came back")
	}
	p.drain()
	if p.idleBytes() != 0 || p.get(n) != nil {
		t.Fatal("drain left slices")
	}
}
