package sdxlbench

import (
	"hash/fnv"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"lorastudio/engine/half"
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/demo"
	"lorastudio/engine/tensor"
)

// RandomSource returns an nn.Source (and nn.Float16Source) over a parameter
// list whose values are made on demand, one tensor at a time, so loading a
// full-size model never holds more than one tensor's values on the host.
// Every parameter is stored as F16; its values are uniform with the mean
// and standard deviation demo.InitFor gives it (biases 0, norms 1, weights
// ±√3/√fan_in), from a xorshift generator seeded by seed and the name.
func RandomSource(ps []sdxl.Param, seed uint64) nn.Source {
	s := randomSource{seed: seed, params: map[string]sdxl.Param{}}
	for _, p := range ps {
		s.params[p.Name] = p
		s.names = append(s.names, p.Name)
	}
	return s
}

type randomSource struct {
	seed   uint64
	params map[string]sdxl.Param
	names  []string
}

// Names lists the parameters in the model's order.
func (s randomSource) Names() []string { return append([]string(nil), s.names...) }

// Lookup returns a parameter's shape; every parameter is stored as F16.
func (s randomSource) Lookup(name string) ([]int, tensor.DType, bool) {
	p, ok := s.params[name]
	return p.Shape, tensor.F16, ok
}

// Float32 returns a parameter's values (rounded through fp16, as stored).
func (s randomSource) Float32(name string) ([]float32, error) {
	p, ok := s.params[name]
	if !ok {
		return nil, errNoParam(name)
	}
	v := make([]float32, p.NumElements())
	s.fill(p, func(i int, x float32) { v[i] = half.Float16ToFloat32(half.Float32ToFloat16(x)) })
	return v, nil
}

// Float16Bits returns a parameter as fp16 bit patterns.
func (s randomSource) Float16Bits(name string) ([]uint16, error) {
	p, ok := s.params[name]
	if !ok {
		return nil, errNoParam(name)
	}
	v := make([]uint16, p.NumElements())
	s.fill(p, func(i int, x float32) { v[i] = half.Float32ToFloat16(x) })
	return v, nil
}

// chunk is how many values one xorshift stream makes; chunks are filled in
// parallel and each is seeded from the name, the seed and its index, so the
// values do not depend on the number of workers.
const chunk = 1 << 20

// fill calls set for every element of p with its value (concurrently for
// distinct elements).
func (s randomSource) fill(p sdxl.Param, set func(i int, x float32)) {
	n := int(p.NumElements())
	init := demo.InitFor(p)
	if init.Std == 0 {
		for i := range n {
			set(i, init.Const)
		}
		return
	}
	h := fnv.New64a()
	h.Write([]byte(p.Name))
	base := h.Sum64() ^ s.seed
	a := float32(init.Std * math.Sqrt(3)) // uniform on [-a, a] has std init.Std
	chunks := (n + chunk - 1) / chunk
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(chunks, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				x := base + uint64(c)*0x9E3779B97F4A7C15
				if x == 0 {
					x = 1
				}
				for i := c * chunk; i < min(n, (c+1)*chunk); i++ {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					u := float32(x>>40) / float32(1<<24) // [0, 1)
					set(i, (2*u-1)*a)
				}
			}
		}()
	}
	wg.Wait()
}

type errNoParam string

func (e errNoParam) Error() string { return "sdxlbench: no parameter " + string(e) }
