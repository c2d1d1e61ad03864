package bench

import (
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"lorastudio/engine/cpu"
	"lorastudio/engine/device"
	"lorastudio/engine/tensor"
)

// benchBackend opens the device named by $LORASTUDIO_BENCH_DEVICE (auto, cpu
// or gl; default cpu) for the benchmarks.
func benchBackend(b *testing.B) tensor.Backend {
	kind := os.Getenv("LORASTUDIO_BENCH_DEVICE")
	if kind == "" {
		kind = "cpu"
	}
	be, err := device.Open(kind)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

// benchCase runs c under the testing harness and reports GFLOP/s and GB/s.
func benchCase(b *testing.B, be tensor.Backend, c Case) {
	run, cleanup, err := c.Setup(be, rand.New(rand.NewSource(1)))
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		outs, err := run()
		if err == nil {
			err = sync(be, outs[0])
		}
		tensor.FreeAll(outs...)
		if err != nil {
			b.Fatal(err)
		}
	}
	s := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(c.Flops/s/1e9, "GFLOP/s")
	b.ReportMetric(c.Bytes/s/1e9, "GB/s")
}

func BenchmarkOps(b *testing.B) {
	be := benchBackend(b)
	for _, c := range Suite() {
		b.Run(c.Op+"_"+c.Shape, func(b *testing.B) { benchCase(b, be, c) })
	}
}

// BenchmarkMatMulPureGo times the pure-Go sgemm on the suite's matmul shapes.
func BenchmarkMatMulPureGo(b *testing.B) {
	for _, s := range MatMulShapes {
		b.Run(s.String(), func(b *testing.B) { benchCase(b, cpu.NewPureGo(), MatMulCase(s)) })
	}
}

// BenchmarkMatMulBLAS times cblas_sgemm directly (needs -tags openblas).
func BenchmarkMatMulBLAS(b *testing.B) {
	if !cpu.HaveBLAS() {
		b.Skip("built without -tags openblas")
	}
	for _, s := range MatMulShapes {
		b.Run(s.String(), func(b *testing.B) {
			a, bm, c := randn(rand.New(rand.NewSource(1)), s.M*s.K), randn(rand.New(rand.NewSource(2)), s.K*s.N), make([]float32, s.M*s.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := cpu.BLASSgemm(s.M, s.N, s.K, a, bm, c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(s.M*s.K*s.N)/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFLOP/s")
		})
	}
}

func TestRunSmallCase(t *testing.T) {
	c := MatMulCase(MatMulShape{33, 65, 13})
	r, err := c.Run(cpu.New(), Options{MinTime: time.Millisecond, MaxRuns: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Op != "matmul" || r.Shape != "33x65x13" || r.Device != "cpu" || r.Ms <= 0 {
		t.Fatalf("result %+v", r)
	}
	// GFLOP/s and GB/s must be the case's counts over the measured time.
	if want := 2 * 33 * 65 * 13 / (r.Ms / 1e3) / 1e9; r.GFlops < want*0.999 || r.GFlops > want*1.001 {
		t.Fatalf("gflops %g, want %g", r.GFlops, want)
	}
	if want := 4 * float64(33*65+65*13+33*13) / (r.Ms / 1e3) / 1e9; r.GBps < want*0.999 || r.GBps > want*1.001 {
		t.Fatalf("gbps %g, want %g", r.GBps, want)
	}
}

func TestSuiteShapes(t *testing.T) {
	var names []string
	for _, c := range Suite() {
		names = append(names, c.Op+" "+c.Shape)
		if c.Flops <= 0 || c.Bytes <= 0 {
			t.Errorf("%s %s: flops %g bytes %g", c.Op, c.Shape, c.Flops, c.Bytes)
		}
	}
	got := strings.Join(names, ", ")
	want := "matmul 4096x1280x1280, matmul 1024x640x2560, conv2d_3x3 1x320x128x128, attention_self 10x4096x4096x64, attention_cross 10x4096x77x64, groupnorm 1x320x128x128/32"
	if got != want {
		t.Fatalf("suite %s\nwant %s", got, want)
	}
}

func TestRatios(t *testing.T) {
	rs := []Result{
		{Op: "matmul", Shape: "4x4x4", Device: "blas", GFlops: 100},
		{Op: "matmul", Shape: "4x4x4", Device: "cpu", GFlops: 60},
		{Op: "matmul", Shape: "4x4x4", Device: "cpu-purego", GFlops: 5},
		{Op: "matmul", Shape: "8x8x8", Device: "cpu", GFlops: 60}, // no blas row: no ratio
		{Op: "conv2d_3x3", Shape: "4x4x4", Device: "cpu", GFlops: 60},
	}
	got := Ratios(rs)
	if len(got) != 2 || got["cpu 4x4x4"] != 0.6 || got["cpu-purego 4x4x4"] != 0.05 {
		t.Fatalf("ratios %v", got)
	}
}

func TestCompareMatMulRows(t *testing.T) {
	var rows []Result
	err := CompareMatMul(cpu.New(), Options{MinTime: time.Millisecond, MaxRuns: 2}, MatMulShape{33, 65, 13}, func(r Result) { rows = append(rows, r) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cpu", "cpu-purego"}
	if cpu.HaveBLAS() {
		want = append(want, "blas")
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want devices %v", rows, want)
	}
	for i, r := range rows {
		if r.Device != want[i] || r.Op != "matmul" || r.Shape != "33x65x13" || r.Ms <= 0 || r.GFlops <= 0 {
			t.Errorf("row %d: %+v", i, r)
		}
	}
}
