package unet_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"lorastudio/engine/cpu"
	"lorastudio/engine/device"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// synthWeights serves a parameter list with deterministic pseudo-random
// values (stored as F16), generated on demand so a full-size UNet needs no
// host copy.
type synthWeights struct {
	shapes map[string][]int
	names  []string
}

func newSynthWeights(ps []sdxl.Param) synthWeights {
	s := synthWeights{shapes: map[string][]int{}}
	for _, p := range ps {
		s.shapes[p.Name] = p.Shape
		s.names = append(s.names, p.Name)
	}
	return s
}

func (s synthWeights) Names() []string { return s.names }

func (s synthWeights) Lookup(name string) ([]int, tensor.DType, bool) {
	sh, ok := s.shapes[name]
	return sh, tensor.F16, ok
}

func (s synthWeights) Float32(name string) ([]float32, error) {
	v := make([]float32, tensor.Shape(s.shapes[name]).Numel())
	x := uint32(len(name)*2654435761 + 1)
	for i := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[i] = (float32(x>>8)/float32(1<<24) - 0.5) * 0.04
	}
	return v, nil
}

// BenchmarkSDXLBaseUNet loads the full-size SDXL base 1.0 UNet with
// synthetic F16 weights (the parameter list engine/sdxl derives from the
// real config, so the load is strict against it) and times one forward of
// a batch of one. LORASTUDIO_BENCH_DEVICE picks the backend (cpu, gl, auto;
// cpu by default) and LORASTUDIO_BENCH_LATENT the latent side (16 by
// default, 128 for a 1024x1024 image). It needs about 6 GiB for the weights.
func BenchmarkSDXLBaseUNet(b *testing.B) { benchBase(b, false, false, false) }

// BenchmarkSDXLBaseUNetTrain times ForwardTrain + Backward (the
// activations' gradients all the way down, and the input gradients) on the
// same model, and BenchmarkSDXLBaseUNetTrainCheckpoint the same with
// gradient checkpointing; peakMiB includes the weights, stepMiB is the peak
// above the weights and inputs.
func BenchmarkSDXLBaseUNetTrain(b *testing.B) { benchBase(b, true, false, false) }

// BenchmarkSDXLBaseUNetTrainCheckpoint is BenchmarkSDXLBaseUNetTrain with Checkpoint.
func BenchmarkSDXLBaseUNetTrainCheckpoint(b *testing.B) { benchBase(b, true, true, false) }

// BenchmarkSDXLBaseUNetTrainLoRAStep is the step as the LoRA trainer runs
// it: Checkpoint and NoInputGrads.
func BenchmarkSDXLBaseUNetTrainLoRAStep(b *testing.B) { benchBase(b, true, true, true) }

func benchBase(b *testing.B, train, checkpoint, noInputGrads bool) {
	kind := os.Getenv("LORASTUDIO_BENCH_DEVICE")
	if kind == "" {
		kind = "cpu"
	}
	side := 16
	if s := os.Getenv("LORASTUDIO_BENCH_LATENT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n%4 != 0 {
			b.Fatalf("LORASTUDIO_BENCH_LATENT=%q: want a positive multiple of 4", s)
		}
		side = n
	}
	cfg := sdxl.SDXLBaseUNet()
	ps, err := sdxl.UNetParams(cfg)
	if err != nil {
		b.Fatal(err)
	}
	be, err := device.Open(kind)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	start := time.Now()
	m, err := unet.Load(be, cfg, newSynthWeights(ps))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	b.Logf("load %.1f s, %.0f MiB of weights on %s", time.Since(start).Seconds(), float64(be.Memory().InUse)/(1<<20), be.Device())
	up := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(i%7) * 0.1
		}
		t, err := be.Upload(v, shape, tensor.F32)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	x := up(1, cfg.InChannels, side, side)
	ctx := up(1, 77, cfg.CrossAttentionDim.At(0))
	text := up(1, m.TextEmbedsDim())
	px := float32(side * 8)
	ids, err := be.Upload([]float32{px, px, 0, 0, px, px}, tensor.Shape{1, 6}, tensor.F32)
	if err != nil {
		b.Fatal(err)
	}
	defer tensor.FreeAll(x, ctx, text, ids)
	m.Checkpoint, m.NoInputGrads = checkpoint, noInputGrads
	base := be.Memory().InUse
	run := func() {
		var out *tensor.Tensor
		if train {
			out, err = m.ForwardTrain(x, []float32{500}, ctx, text, ids)
		} else {
			out, err = m.Forward(x, []float32{500}, ctx, text, ids)
		}
		if err != nil {
			b.Fatal(err)
		}
		if train {
			ds, dc, err := m.Backward(out)
			if err != nil {
				b.Fatal(err)
			}
			tensor.FreeAll(ds, dc)
			m.FreeCache()
		}
		if s, ok := be.(tensor.Syncer); ok {
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		out.Free()
	}
	run() // warm-up (GL compiles its kernels)
	be.ResetPeak()
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.StopTimer()
	b.ReportMetric(float64(be.Memory().Peak)/(1<<20), "peakMiB")
	b.ReportMetric(float64(be.Memory().Peak-base)/(1<<20), "stepMiB")
	b.Log(fmt.Sprintf("latent %dx%d (image %dx%d) on %s, train %v, checkpoint %v, no input grads %v", side, side, side*8, side*8, be.Name(), train, checkpoint, noInputGrads))
}

// BenchmarkHalfSDXLUNetTrain is a training step (ForwardTrain + Backward,
// batch 1, timestep 500) of SDXL base's UNet at half its widths
// (block_out_channels 160, 320, 640; the same depths, heads and
// conditioning) with synthetic F16 weights: without checkpointing, with
// it, and as the LoRA trainer runs it (with NoInputGrads too). stepMiB is
// the device peak above the weights and inputs. LORASTUDIO_BENCH_LATENT
// sets the latent side (64 by default, a 512² image).
func BenchmarkHalfSDXLUNetTrain(b *testing.B) {
	side := 64
	if s := os.Getenv("LORASTUDIO_BENCH_LATENT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n%4 != 0 {
			b.Fatalf("LORASTUDIO_BENCH_LATENT=%q: want a positive multiple of 4", s)
		}
		side = n
	}
	cfg := sdxl.SDXLBaseUNet()
	cfg.BlockOutChannels = []int{160, 320, 640}
	ps, err := sdxl.UNetParams(cfg)
	if err != nil {
		b.Fatal(err)
	}
	be := cpu.New()
	m, err := unet.Load(be, cfg, newSynthWeights(ps))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	up := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(i%7) * 0.1
		}
		t, err := be.Upload(v, shape, tensor.F32)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	x := up(1, cfg.InChannels, side, side)
	ctx := up(1, 77, cfg.CrossAttentionDim.At(0))
	text := up(1, m.TextEmbedsDim())
	px := float32(side * 8)
	ids, err := be.Upload([]float32{px, px, 0, 0, px, px}, tensor.Shape{1, 6}, tensor.F32)
	if err != nil {
		b.Fatal(err)
	}
	defer tensor.FreeAll(x, ctx, text, ids)
	for _, c := range []struct {
		name                     string
		checkpoint, noInputGrads bool
	}{{"plain", false, false}, {"checkpoint", true, false}, {"lora-step", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			m.Checkpoint, m.NoInputGrads = c.checkpoint, c.noInputGrads
			base := be.Memory().InUse
			be.ResetPeak()
			for range b.N {
				out, err := m.ForwardTrain(x, []float32{500}, ctx, text, ids)
				if err != nil {
					b.Fatal(err)
				}
				ds, dc, err := m.Backward(out)
				if err != nil {
					b.Fatal(err)
				}
				tensor.FreeAll(out, ds, dc)
				m.FreeCache()
			}
			b.ReportMetric(float64(be.Memory().Peak-base)/(1<<20), "stepMiB")
		})
	}
}
