package sdxlbench

import (
	"bytes"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/half"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/demo"
)

// TestRunTiny runs the whole benchmark on the demo model's tiny configs on
// the CPU, forcing the VAE decode to tile with a small tensor limit.
func TestRunTiny(t *testing.T) {
	cfg := demo.Config()
	b := cpu.New()
	defer b.Close()
	var out bytes.Buffer
	rep, err := Run(b, Options{Sizes: []int{64}, Config: &cfg, MaxTensorBytes: 200 << 10, Warmup: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if len(rep.Loads) != 4 {
		t.Fatalf("%d loads, want 4", len(rep.Loads))
	}
	for _, l := range rep.Loads {
		ps, err := sdxl.ComponentParams(cfg, l.Component)
		if err != nil {
			t.Fatal(err)
		}
		if l.Params != sdxl.CountParams(ps) || l.DeviceInUseBytes <= 0 || l.DevicePeakBytes < l.DeviceInUseBytes || l.HostPeakBytes <= 0 || l.Seconds <= 0 {
			t.Errorf("load %+v: want %d params and positive sizes", l, sdxl.CountParams(ps))
		}
	}
	want := []string{"text_encoders encode_prompt 0 1", "unet forward 64 1", "unet forward 64 2", "vae decode 64 1"}
	if len(rep.Timings) != len(want) {
		t.Fatalf("%d timings, want %d: %+v", len(rep.Timings), len(want), rep.Timings)
	}
	for i, tm := range rep.Timings {
		got := strings.Join([]string{tm.Component, tm.What, itoa(tm.Size), itoa(tm.Batch)}, " ")
		if got != want[i] || tm.Seconds <= 0 || tm.Runs != 1 || tm.DevicePeakBytes <= 0 {
			t.Errorf("timing %d: %+v, want %s with positive time and peak", i, tm, want[i])
		}
	}
	if vt := rep.Timings[3]; vt.Tile != 32 {
		t.Errorf("vae decode tile %d, want 32 (64² exceeds the 200 KiB limit, 32² fits)", vt.Tile)
	}
	// The UNet's weights stay fp16 on the device: about 2 bytes a parameter.
	for _, l := range rep.Loads {
		if l.Component == sdxl.UNet {
			if per := float64(l.DeviceInUseBytes) / float64(l.Params); per > 2.2 {
				t.Errorf("unet weights take %.2f bytes a parameter on the device, want fp16 (≈2)", per)
			}
		}
	}
	for _, s := range []string{"unet forward", "vae decode", "device peak", "max RSS"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
}

// TestRunOneEncoder times a lone text encoder's forward.
func TestRunOneEncoder(t *testing.T) {
	cfg := demo.Config()
	b := cpu.New()
	defer b.Close()
	rep, err := Run(b, Options{Components: []string{sdxl.TextEncoder2}, Config: &cfg, Runs: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Loads) != 1 || len(rep.Timings) != 1 || rep.Timings[0].Component != sdxl.TextEncoder2 || rep.Timings[0].Runs != 2 {
		t.Fatalf("report %+v", rep)
	}
}

func TestRunBadOptions(t *testing.T) {
	b := cpu.New()
	defer b.Close()
	for _, o := range []Options{
		{Sizes: []int{1000}},
		{Components: []string{"refiner"}},
		{Batch: -1},
	} {
		if _, err := Run(b, o, nil); err == nil || !strings.Contains(err.Error(), "sdxlbench:") {
			t.Errorf("Run(%+v) = %v, want an sdxlbench error", o, err)
		}
	}
}

// TestRandomSource checks the on-demand weights: deterministic, fp16, the
// statistics demo.InitFor asks for, and Float32 equal to Float16Bits.
func TestRandomSource(t *testing.T) {
	ps := []sdxl.Param{
		{Name: "a.weight", Shape: []int{256, 64, 3, 3}},
		{Name: "a.bias", Shape: []int{256}},
		{Name: "norm.weight", Shape: []int{64}},
	}
	s := RandomSource(ps, 7)
	if got := s.Names(); len(got) != 3 || got[0] != "a.weight" {
		t.Fatalf("Names = %v", got)
	}
	v, err := s.Float32("a.weight")
	if err != nil {
		t.Fatal(err)
	}
	bits, err := s.(interface {
		Float16Bits(string) ([]uint16, error)
	}).Float16Bits("a.weight")
	if err != nil {
		t.Fatal(err)
	}
	var sum, sq float64
	for i, x := range v {
		if half.Float16ToFloat32(bits[i]) != x {
			t.Fatalf("element %d: Float32 %g, Float16Bits %g", i, x, half.Float16ToFloat32(bits[i]))
		}
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	n := float64(len(v))
	std := math.Sqrt(sq/n - (sum/n)*(sum/n))
	if want := 1 / math.Sqrt(64*9); math.Abs(std-want) > 0.02*want || math.Abs(sum/n) > 0.02*want {
		t.Errorf("a.weight mean %g std %g, want 0 and %g", sum/n, std, want)
	}
	again, _ := RandomSource(ps, 7).Float32("a.weight")
	other, _ := RandomSource(ps, 8).Float32("a.weight")
	if again[100] != v[100] || other[100] == v[100] {
		t.Error("values do not depend on the seed alone")
	}
	if b, _ := s.Float32("a.bias"); b[0] != 0 {
		t.Errorf("bias %g, want 0", b[0])
	}
	if g, _ := s.Float32("norm.weight"); g[5] != 1 {
		t.Errorf("norm gamma %g, want 1", g[5])
	}
	if _, err := s.Float32("missing"); err == nil {
		t.Error("no error for a missing parameter")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestRandomSourceParallel: a tensor of several chunks gets the same values
// whatever the number of workers filling it.
func TestRandomSourceParallel(t *testing.T) {
	ps := []sdxl.Param{{Name: "big.weight", Shape: []int{2500, 1280}}} // ≈3 chunks
	s := RandomSource(ps, 3)
	many, err := s.Float32("big.weight")
	if err != nil {
		t.Fatal(err)
	}
	old := runtime.GOMAXPROCS(1)
	one, err := s.Float32("big.weight")
	runtime.GOMAXPROCS(old)
	if err != nil {
		t.Fatal(err)
	}
	for i := range many {
		if many[i] != one[i] {
			t.Fatalf("element %d: %g with %d workers, %g with one", i, many[i], old, one[i])
		}
	}
	if many[0] == many[chunk] || many[1] == many[chunk+1] {
		t.Error("chunks repeat each other's values")
	}
}

// TestRunTinyGL runs the benchmark on the GL backend (kernels compiled by
// the warm-up, work synced before each clock stop), with the tensor limit
// taken from the context.
func TestRunTinyGL(t *testing.T) {
	b := gltest.Backend(t)
	if l := b.MaxTensorBytes(); l <= 0 {
		t.Errorf("GL tensor limit %d, want the context's shader-storage limit", l)
	}
	cfg := demo.Config()
	rep, err := Run(b, Options{Sizes: []int{64}, Batch: 2, Config: &cfg, Warmup: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Backend != "gl" || len(rep.Loads) != 4 || len(rep.Timings) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for _, tm := range rep.Timings {
		if tm.Seconds <= 0 || tm.DevicePeakBytes <= 0 || tm.Tile != 0 {
			t.Errorf("timing %+v: want positive time and peak, no tiling at 64²", tm)
		}
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	t.Log("\n" + out.String())
}

// TestRunOpStats checks the per-op breakdown: every kind of op a UNet forward
// runs is counted, the counts of two runs are exactly twice those of one, and
// the time in ops fits in the measured wall time.
func TestRunOpStats(t *testing.T) {
	cfg := demo.Config()
	b := cpu.New()
	defer b.Close()
	calls := map[int]map[string]int64{}
	for _, runs := range []int{1, 2} {
		var out bytes.Buffer
		rep, err := Run(b, Options{Sizes: []int{64}, Batch: 1, Components: []string{sdxl.UNet}, Config: &cfg, Runs: runs, OpStats: true}, &out)
		if err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + out.String())
		if len(rep.Timings) != 1 || rep.Timings[0].Ops == nil {
			t.Fatalf("timings %+v: want one with its ops", rep.Timings)
		}
		tm := rep.Timings[0]
		s := tm.Ops
		if s.Total <= 0 || s.Total.Seconds() > tm.Seconds*float64(runs) {
			t.Errorf("%v in ops, %v s wall over %d runs", s.Total, tm.Seconds*float64(runs), runs)
		}
		kinds := map[string]int64{}
		for _, k := range s.Kinds {
			kinds[k.Name] = k.Calls
		}
		for _, k := range []string{"matmul", "conv", "attention", "norm", "activation", "elementwise"} {
			if kinds[k] == 0 {
				t.Errorf("%d runs: no %s op counted: %+v", runs, k, s.Kinds)
			}
		}
		calls[runs] = map[string]int64{}
		for _, c := range s.Ops {
			calls[runs][c.Name] = c.Calls
		}
		if !strings.Contains(out.String(), "share") || !strings.Contains(out.String(), "matmul") {
			t.Errorf("output lacks the breakdown:\n%s", out.String())
		}
	}
	if len(calls[1]) != len(calls[2]) {
		t.Errorf("ops of one run %v, of two %v", calls[1], calls[2])
	}
	for op, n := range calls[1] {
		if calls[2][op] != 2*n {
			t.Errorf("%s: %d calls in one run, %d in two", op, n, calls[2][op])
		}
	}
}
