// Package bench is the engine's op benchmark suite, runnable on any
// tensor.Backend: the SDXL-sized matmuls, a 3×3 conv, self and cross
// attention and group norm, each reported in ms, GFLOP/s and GB/s. Beside
// them it times the CPU sgemm baselines on the same matmul shapes: the pure-Go
// kernel and (built with -tags openblas) cblas_sgemm called directly, so the
// backend's ratio to OpenBLAS comes from one run on one machine.
package bench

import (
	"fmt"
	"math"
	"math/rand"
	"time"

	"lorastudio/engine/cpu"
	"lorastudio/engine/tensor"
)

// Result is one timed row.
type Result struct {
	Op     string  `json:"op"`     // e.g. "matmul"
	Shape  string  `json:"shape"`  // e.g. "4096x1280x1280"
	Device string  `json:"device"` // the backend name, or "cpu-purego" / "blas" for the baselines
	Ms     float64 `json:"ms"`     // best wall time of one run
	GFlops float64 `json:"gflops"` // useful floating-point operations per second / 1e9
	GBps   float64 `json:"gbps"`   // minimum bytes read and written per second / 1e9
}

// Options control how long each case is timed.
type Options struct {
	// MinTime keeps repeating a case (after one warm-up run) until this much
	// time was spent timing it; the best run is reported. Default 1s.
	MinTime time.Duration
	// MaxRuns caps the timed runs per case. Default 20.
	MaxRuns int
}

func (o Options) withDefaults() Options {
	if o.MinTime <= 0 {
		o.MinTime = time.Second
	}
	if o.MaxRuns <= 0 {
		o.MaxRuns = 20
	}
	return o
}

// Case is one benchmark: Setup uploads random inputs and returns the op to
// time (its result is synced and freed by the runner) and a cleanup.
type Case struct {
	Op, Shape    string
	Flops, Bytes float64
	Setup        func(b tensor.Backend, r *rand.Rand) (run func() ([]*tensor.Tensor, error), cleanup func(), err error)
}

// MatMulShape is one matmul of the suite: (M, K)·(K, N).
type MatMulShape struct{ M, K, N int }

// String formats it as MxKxN.
func (s MatMulShape) String() string { return fmt.Sprintf("%dx%dx%d", s.M, s.K, s.N) }

// MatMulShapes are the suite's matmuls: the SDXL projections at 64×64 and
// 32×32 latents.
var MatMulShapes = []MatMulShape{{4096, 1280, 1280}, {1024, 640, 2560}}

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// uploadAll uploads random tensors of the shapes, freeing them all on error.
func uploadAll(b tensor.Backend, r *rand.Rand, shapes ...tensor.Shape) ([]*tensor.Tensor, error) {
	var ts []*tensor.Tensor
	for _, s := range shapes {
		t, err := b.Upload(randn(r, s.Numel()), s, tensor.F32)
		if err != nil {
			tensor.FreeAll(ts...)
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// simple builds a Case whose inputs are random F32 tensors of the shapes.
func simple(op, shape string, flops, bytes float64, shapes []tensor.Shape, f func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error)) Case {
	return Case{Op: op, Shape: shape, Flops: flops, Bytes: bytes,
		Setup: func(b tensor.Backend, r *rand.Rand) (func() ([]*tensor.Tensor, error), func(), error) {
			in, err := uploadAll(b, r, shapes...)
			if err != nil {
				return nil, nil, err
			}
			return func() ([]*tensor.Tensor, error) { return f(b, in) }, func() { tensor.FreeAll(in...) }, nil
		}}
}

func single(t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

// MatMulCase times a (M, K)·(K, N) MatMul without bias.
func MatMulCase(s MatMulShape) Case {
	return simple("matmul", s.String(), 2*float64(s.M*s.K*s.N), 4*float64(s.M*s.K+s.K*s.N+s.M*s.N),
		[]tensor.Shape{{s.M, s.K}, {s.K, s.N}},
		func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			return single(b.MatMul(in[0], in[1], nil, false, false))
		})
}

// Suite returns the benchmark cases.
func Suite() []Case {
	var cs []Case
	for _, s := range MatMulShapes {
		cs = append(cs, MatMulCase(s))
	}
	// conv2d 3×3, stride 1, pad 1: x (1, 320, 128, 128), w (320, 320, 3, 3).
	const C, HW = 320, 128
	cs = append(cs, simple("conv2d_3x3", "1x320x128x128", 2*float64(C*C*9*HW*HW), 4*float64(2*C*HW*HW+C*C*9),
		[]tensor.Shape{{1, C, HW, HW}, {C, C, 3, 3}, {C}},
		func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			return single(b.Conv2D(in[0], in[1], in[2], tensor.ConvParams(1, 1)))
		}))
	// attention: q (1, 10, 4096, 64), k/v (1, 10, Nk, 64).
	for _, nk := range []int{4096, 77} {
		name, shape := "attention_self", "10x4096x4096x64"
		if nk != 4096 {
			name, shape = "attention_cross", "10x4096x77x64"
		}
		cs = append(cs, simple(name, shape, 4*float64(10*4096*nk*64), 4*float64(2*10*4096*64+2*10*nk*64),
			[]tensor.Shape{{1, 10, 4096, 64}, {1, 10, nk, 64}, {1, 10, nk, 64}},
			func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				out, lse, err := b.Attention(in[0], in[1], in[2], 0.125, false)
				if err != nil {
					return nil, err
				}
				return []*tensor.Tensor{out, lse}, nil
			}))
	}
	// group norm: x (1, 320, 128, 128), 32 groups, affine.
	n := float64(C * HW * HW)
	cs = append(cs, simple("groupnorm", "1x320x128x128/32", 8*n, 4*2*n,
		[]tensor.Shape{{1, C, HW, HW}, {C}, {C}},
		func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			return single(b.GroupNorm(in[0], in[1], in[2], 32, 1e-5))
		}))
	return cs
}

// sync waits for t to be computed: Sync when the backend has it, else a
// one-element download.
func sync(b tensor.Backend, t *tensor.Tensor) error {
	if s, ok := b.(tensor.Syncer); ok {
		return s.Sync()
	}
	flat, err := t.Reshape(t.Numel())
	if err != nil {
		return err
	}
	defer flat.Free()
	one, err := b.Slice(flat, 0, 0, 1)
	if err != nil {
		return err
	}
	defer one.Free()
	_, err = b.Download(one)
	return err
}

// timeBest runs f once to warm up, then repeatedly, returning the best duration.
func timeBest(o Options, f func() error) (time.Duration, error) {
	if err := f(); err != nil {
		return 0, err
	}
	best, spent := time.Duration(math.MaxInt64), time.Duration(0)
	for i := 0; i < o.MaxRuns && spent < o.MinTime; i++ {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		d := time.Since(start)
		spent += d
		best = min(best, d)
	}
	return best, nil
}

func result(op, shape, device string, flops, bytes float64, d time.Duration) Result {
	s := d.Seconds()
	return Result{Op: op, Shape: shape, Device: device, Ms: s * 1e3, GFlops: flops / s / 1e9, GBps: bytes / s / 1e9}
}

// Run times one case on b.
func (c Case) Run(b tensor.Backend, o Options) (Result, error) {
	o = o.withDefaults()
	run, cleanup, err := c.Setup(b, rand.New(rand.NewSource(1)))
	if err != nil {
		return Result{}, fmt.Errorf("bench %s %s on %s: %w", c.Op, c.Shape, b.Name(), err)
	}
	defer cleanup()
	d, err := timeBest(o, func() error {
		outs, err := run()
		if err != nil {
			return err
		}
		defer tensor.FreeAll(outs...)
		return sync(b, outs[0])
	})
	if err != nil {
		return Result{}, fmt.Errorf("bench %s %s on %s: %w", c.Op, c.Shape, b.Name(), err)
	}
	return result(c.Op, c.Shape, b.Name(), c.Flops, c.Bytes, d), nil
}

// RunSuite times the suite on b, calling emit after each row: each matmul
// shape through CompareMatMul (so its pure-Go and BLAS baselines come from
// the same run), then every other case. want filters rows by op and shape
// (nil runs everything).
func RunSuite(b tensor.Backend, o Options, want func(op, shape string) bool, emit func(Result)) error {
	if want == nil {
		want = func(string, string) bool { return true }
	}
	for _, s := range MatMulShapes {
		if want("matmul", s.String()) {
			if err := CompareMatMul(b, o, s, emit); err != nil {
				return err
			}
		}
	}
	for _, c := range Suite() {
		if c.Op == "matmul" || !want(c.Op, c.Shape) {
			continue
		}
		r, err := c.Run(b, o)
		if err != nil {
			return err
		}
		emit(r)
	}
	return nil
}

// CompareMatMul times the (M, K)·(K, N) matmul three ways and emits a row
// for each: on b, on the pure-Go CPU backend (device "cpu-purego"), and, when
// built with -tags openblas, through cblas_sgemm directly (device "blas").
// The three alternate within each round, so load from other processes on the
// machine hits them alike; each reports its best run.
func CompareMatMul(b tensor.Backend, o Options, s MatMulShape, emit func(Result)) error {
	o = o.withDefaults()
	c := MatMulCase(s)
	type timed struct {
		device string
		run    func() error
		best   time.Duration
	}
	var ways []*timed
	for _, be := range []tensor.Backend{b, cpu.NewPureGo()} {
		run, cleanup, err := c.Setup(be, rand.New(rand.NewSource(1)))
		if err != nil {
			return fmt.Errorf("bench matmul %s on %s: %w", s, be.Name(), err)
		}
		defer cleanup()
		be := be
		ways = append(ways, &timed{device: be.Name(), run: func() error {
			outs, err := run()
			if err != nil {
				return err
			}
			defer tensor.FreeAll(outs...)
			return sync(be, outs[0])
		}})
	}
	ways[1].device = "cpu-purego"
	if cpu.HaveBLAS() {
		rng := rand.New(rand.NewSource(1))
		a, bm, out := randn(rng, s.M*s.K), randn(rng, s.K*s.N), make([]float32, s.M*s.N)
		ways = append(ways, &timed{device: "blas", run: func() error { return cpu.BLASSgemm(s.M, s.N, s.K, a, bm, out) }})
	}
	for _, w := range ways {
		w.best = time.Duration(math.MaxInt64)
		if err := w.run(); err != nil { // warm-up
			return fmt.Errorf("bench matmul %s on %s: %w", s, w.device, err)
		}
	}
	spent := time.Duration(0)
	for i := 0; i < o.MaxRuns && spent < o.MinTime; i++ {
		for _, w := range ways {
			start := time.Now()
			if err := w.run(); err != nil {
				return fmt.Errorf("bench matmul %s on %s: %w", s, w.device, err)
			}
			d := time.Since(start)
			w.best, spent = min(w.best, d), spent+d
		}
	}
	for _, w := range ways {
		emit(result(c.Op, c.Shape, w.device, c.Flops, c.Bytes, w.best))
	}
	return nil
}

// Ratios returns, for each matmul shape with a "blas" row, the GFLOP/s of
// every other device's matmul divided by cblas_sgemm's, keyed "device shape".
func Ratios(rs []Result) map[string]float64 {
	blas := map[string]float64{}
	for _, r := range rs {
		if r.Op == "matmul" && r.Device == "blas" {
			blas[r.Shape] = r.GFlops
		}
	}
	out := map[string]float64{}
	for _, r := range rs {
		if g, ok := blas[r.Shape]; ok && r.Op == "matmul" && r.Device != "blas" && g > 0 {
			out[r.Device+" "+r.Shape] = r.GFlops / g
		}
	}
	return out
}
