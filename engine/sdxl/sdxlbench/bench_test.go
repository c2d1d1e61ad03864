package sdxlbench

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"lorastudio/engine/device"
)

// BenchmarkSDXL runs Run on the full-size SDXL base 1.0 shapes. It needs
// LORASTUDIO_BENCH_SDXL=1 (it takes minutes and ~8 GiB: never in CI), and
// reads LORASTUDIO_BENCH_DEVICE (cpu, gl, auto; default auto),
// LORASTUDIO_BENCH_SIZES (e.g. "512,1024"; default 1024,512),
// LORASTUDIO_BENCH_BATCH (0: 1 and 2), LORASTUDIO_BENCH_COMPONENTS (e.g.
// "unet,vae") and LORASTUDIO_BENCH_RUNS. Run it with -benchtime 1x:
//
//	LORASTUDIO_BENCH_SDXL=1 LORASTUDIO_BENCH_DEVICE=cpu LORASTUDIO_BENCH_SIZES=512 \
//	  go test -run XXX -bench SDXL -benchtime 1x -timeout 0 ./engine/sdxl/sdxlbench/
func BenchmarkSDXL(b *testing.B) {
	if os.Getenv("LORASTUDIO_BENCH_SDXL") != "1" {
		b.Skip("set LORASTUDIO_BENCH_SDXL=1 to run the full-size SDXL benchmark (minutes, ~8 GiB)")
	}
	var opts Options
	if s := os.Getenv("LORASTUDIO_BENCH_SIZES"); s != "" {
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("LORASTUDIO_BENCH_SIZES=%q: %v", s, err)
			}
			opts.Sizes = append(opts.Sizes, n)
		}
	}
	for env, dst := range map[string]*int{"LORASTUDIO_BENCH_BATCH": &opts.Batch, "LORASTUDIO_BENCH_RUNS": &opts.Runs} {
		if s := os.Getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				b.Fatalf("%s=%q: %v", env, s, err)
			}
			*dst = n
		}
	}
	if s := os.Getenv("LORASTUDIO_BENCH_COMPONENTS"); s != "" {
		opts.Components = strings.Split(s, ",")
	}
	be, err := device.Open(os.Getenv("LORASTUDIO_BENCH_DEVICE"))
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	opts.Warmup = be.Name() != "cpu"
	for b.Loop() {
		if _, err := Run(be, opts, os.Stdout); err != nil {
			b.Fatal(err)
		}
	}
}
