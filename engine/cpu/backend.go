// Package cpu is the engine's reference backend: pure Go float32 kernels,
// goroutine-parallel over runtime.GOMAXPROCS workers, written as plain loops
// with the shape of every buffer in a comment. It is the spec the GPU
// backends are judged against, and the fallback when no GPU is available.
//
// MatMul, Conv2D (through blocked im2col) and Attention (in blocks of query
// rows) run on one sgemm. By default it is the package's own: cache-blocked,
// parallel, with a 12×32 AVX-512 or a 6×16 AVX2/FMA micro-kernel in Go
// assembly on amd64 CPUs that have them (internal/asm) and a portable 4×4 Go
// kernel elsewhere or with -tags purego. Built with -tags openblas, OpenBLAS's cblas_sgemm is used
// instead (cgo, -lopenblas), except on CPUs with AVX-512, where the Go sgemm
// measured faster (see useBLAS). Every path is tested.
package cpu

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"lorastudio/engine/tensor"
)

// Backend is the CPU backend. It is safe for concurrent use.
type Backend struct {
	mu     sync.Mutex
	inUse  int64
	peak   int64
	closed bool
	// pureGo forces the pure-Go sgemm even when built with -tags openblas.
	pureGo bool
	// portable forces the portable Go micro-kernel (tests).
	portable bool
	// kern, when set, forces this micro-kernel (tests).
	kern *microKernel
	// blas forces OpenBLAS, when built with it, even where useBLAS would
	// prefer the Go sgemm (tests).
	blas bool
	// direct turns Winograd off, so 3×3 convs take the implicit GEMM
	// (tests and benchmarks).
	direct bool
	// pool keeps released F32 slices for reuse (pool.go).
	pool bufferPool
}

var _ tensor.Backend = (*Backend)(nil)

// New returns a CPU backend; MatMul uses OpenBLAS when built with -tags
// openblas and the CPU lacks AVX-512 (see useBLAS).
func New() *Backend { return &Backend{} }

// NewPureGo returns a CPU backend that never calls BLAS, even when built
// with -tags openblas (used to test and benchmark the pure-Go kernels).
func NewPureGo() *Backend { return &Backend{pureGo: true} }

// buffer is the CPU storage: f32 for F32 tensors, u16 for packed F16/BF16.
type buffer struct {
	b     *Backend
	f32   []float32
	u16   []uint16
	bytes int64
}

// Release returns the buffer's bytes to the backend's accounting.
func (bf *buffer) Release() {
	bf.b.account(-bf.bytes)
	if bf.f32 != nil {
		bf.b.pool.put(bf.f32)
	}
	bf.f32, bf.u16 = nil, nil
}

func (b *Backend) account(delta int64) {
	b.mu.Lock()
	b.inUse += delta
	if b.inUse > b.peak {
		b.peak = b.inUse
	}
	b.mu.Unlock()
}

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Device describes the CPU model, the worker count and the sgemm in use.
func (b *Backend) Device() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d threads, sgemm %s", model, runtime.GOMAXPROCS(0), b.GemmName())
}

// GemmName returns which sgemm MatMul uses: "openblas", or "pure-go" with
// its micro-kernel, e.g. "pure-go (avx2 6x16)".
func (b *Backend) GemmName() string {
	if b.useBLAS() {
		return "openblas"
	}
	return "pure-go (" + gemmKernel.name + ")"
}

// HaveBLAS reports whether the package was built with -tags openblas.
func HaveBLAS() bool { return haveBLAS }

// useBLAS reports whether gemm (MatMul, Conv2D, Attention) calls OpenBLAS.
// Not where the Go sgemm has its AVX-512 kernel: on this project's AMD EPYC
// (Zen 5) machine, with 2 threads, it ran every matmul shape of the bench
// suite 1.5x or more faster than OpenBLAS (measured 2026-12-04, README
// "AVX-512 sgemm"), whose kernels there are AVX2 ones
// (OPENBLAS_CORETYPE=Haswell, as users and CI set it); and it converts fp16
// weights while packing instead of unpacking them first. A CPU without
// AVX-512 keeps OpenBLAS, whose AVX2 sgemm beats the 6×16 Go kernel.
func (b *Backend) useBLAS() bool {
	return haveBLAS && !b.pureGo && (b.blas || !goSgemmFaster)
}

// convBLAS reports whether Conv2D's forward pass calls OpenBLAS (on an
// im2col buffer). Only where the Go sgemm has no assembly kernel: with the
// AVX2 one, our implicit GEMM and Winograd beat OpenBLAS's own AVX2 kernels
// on im2col by 1.3–2.5× on the SDXL conv shapes (BenchmarkSDXLConv shapes,
// 2026-12-04, this project's machine with OPENBLAS_CORETYPE=Haswell: im2col
// + OpenBLAS 95–145 GFLOP/s, Go AVX2 direct 164–195, Go AVX2 Winograd
// 235–289), though OpenBLAS wins plain matmuls there.
func (b *Backend) convBLAS() bool {
	return b.useBLAS() && (b.blas || !b.kernel().vector)
}

// Memory reports the bytes held by live tensors and the peak.
func (b *Backend) Memory() tensor.MemStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return tensor.MemStats{InUse: b.inUse, Peak: b.peak}
}

// ResetPeak sets the peak to the bytes in use now.
func (b *Backend) ResetPeak() {
	b.mu.Lock()
	b.peak = b.inUse
	b.mu.Unlock()
}

// MaxTensorBytes returns 0: the CPU backend takes tensors of any size (host
// memory is the caller's to bound).
func (b *Backend) MaxTensorBytes() int64 { return 0 }

// Close marks the backend closed; later allocations fail with ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.pool.drain()
	return nil
}

// maxElements bounds one tensor (16 Gi elements), well inside int and memory.
const maxElements = 1 << 34

// numel is Shape.Numel with overflow detection.
func numel(s tensor.Shape) (int, bool) {
	n := 1
	for _, d := range s {
		if d > 0 && n > maxElements/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// alloc returns a new zeroed tensor; shape and dtype are trusted.
func (b *Backend) alloc(op string, shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	return b.allocClear(op, shape, dt, true)
}

// newF32Dirty is newF32 for an op that writes every element of its output:
// a buffer reused from the pool is not cleared first (its old contents are
// still there), which spares a pass over the output's memory.
func (b *Backend) newF32Dirty(op string, shape tensor.Shape) (*tensor.Tensor, []float32, error) {
	t, err := b.allocClear(op, shape, tensor.F32, false)
	if err != nil {
		return nil, nil, err
	}
	return t, data(t), nil
}

// allocClear is alloc; with clearPooled false a pooled F32 buffer keeps its
// old contents (see newF32Dirty).
func (b *Backend) allocClear(op string, shape tensor.Shape, dt tensor.DType, clearPooled bool) (*tensor.Tensor, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, tensor.Errorf(op, tensor.ErrClosed, "cpu backend")
	}
	if !shape.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrShape, "invalid shape %s", shape)
	}
	if n, ok := numel(shape); !ok || n > maxElements {
		return nil, tensor.Errorf(op, tensor.ErrShape, "shape %s has too many elements (at most %d)", shape, int64(maxElements))
	}
	if !dt.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrDType, "%s", dt)
	}
	n := shape.Numel()
	bf := &buffer{b: b, bytes: int64(n) * int64(dt.Size())}
	if dt == tensor.F32 {
		if bf.f32 = b.pool.get(n); bf.f32 != nil {
			if clearPooled {
				clear(bf.f32)
			}
		} else {
			bf.f32 = make([]float32, n)
		}
	} else {
		bf.u16 = make([]uint16, n)
	}
	b.account(bf.bytes)
	return tensor.New(b, bf, shape, dt), nil
}

// newF32 allocates an F32 result and returns it with its data.
func (b *Backend) newF32(op string, shape tensor.Shape) (*tensor.Tensor, []float32, error) {
	t, err := b.alloc(op, shape, tensor.F32)
	if err != nil {
		return nil, nil, err
	}
	return t, data(t), nil
}

// data returns an F32 tensor's slice; callers have already run Check.
func data(t *tensor.Tensor) []float32 {
	bf, _ := t.Buffer()
	return bf.(*buffer).f32
}

// f32s checks the operands of op and returns their float32 data; every
// operand must be F32.
func (b *Backend) f32s(op string, names []string, ts ...*tensor.Tensor) ([][]float32, error) {
	if err := tensor.Check(op, b, ts...); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, names, ts...); err != nil {
		return nil, err
	}
	out := make([][]float32, len(ts))
	for i, t := range ts {
		out[i] = data(t)
	}
	return out, nil
}

// Upload copies data into a new tensor, packing to F16/BF16 when asked.
func (b *Backend) Upload(values []float32, shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	const op = "upload"
	if n, ok := numel(shape); !ok || !shape.Valid() || len(values) != n {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%d values for shape %s (%d elements)", len(values), shape, shape.Numel())
	}
	t, err := b.alloc(op, shape, dt)
	if err != nil {
		return nil, err
	}
	bf, _ := t.Buffer()
	buf := bf.(*buffer)
	if dt == tensor.F32 {
		copy(buf.f32, values)
	} else {
		tensor.Pack(buf.u16, values, dt)
	}
	return t, nil
}

// Zeros returns a new zero tensor.
func (b *Backend) Zeros(shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	return b.alloc("zeros", shape, dt)
}

// Download copies the tensor's values out as float32.
func (b *Backend) Download(t *tensor.Tensor) ([]float32, error) {
	if err := tensor.Check("download", b, t); err != nil {
		return nil, err
	}
	bf, _ := t.Buffer()
	buf := bf.(*buffer)
	out := make([]float32, t.Numel())
	if t.DType() == tensor.F32 {
		copy(out, buf.f32)
	} else {
		unpackHalf(out, buf.u16, t.DType())
	}
	return out, nil
}

// parallelFor runs fn over [0, n) split into contiguous chunks, one per
// worker (at most GOMAXPROCS), when the work (n * cost elements) is large
// enough to pay for the goroutines.
func parallelFor(n, cost int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n*cost < 1<<15 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}
