package clip_test

import (
	"os"
	"testing"
	"time"

	"lorastudio/engine/clip"
	"lorastudio/engine/device"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
)

// synthSource serves a parameter list with deterministic pseudo-random
// values (stored as F16), generated on demand so a full-size model needs no
// host copy.
type synthSource struct {
	shapes map[string][]int
	names  []string
}

func newSynth(ps []sdxl.Param) synthSource {
	s := synthSource{shapes: map[string][]int{}}
	for _, p := range ps {
		s.shapes[p.Name] = p.Shape
		s.names = append(s.names, p.Name)
	}
	return s
}

func (s synthSource) Names() []string { return s.names }

func (s synthSource) Lookup(name string) ([]int, tensor.DType, bool) {
	sh, ok := s.shapes[name]
	return sh, tensor.F16, ok
}

func (s synthSource) Float32(name string) ([]float32, error) {
	n := tensor.Shape(s.shapes[name]).Numel()
	v := make([]float32, n)
	x := uint32(len(name)*2654435761 + 1)
	for i := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[i] = (float32(x>>8)/float32(1<<24) - 0.5) * 0.04
	}
	return v, nil
}

// benchBase loads a full-size SDXL base text encoder with synthetic weights
// (the parameter list engine/sdxl derives from the real config, so the load
// is strict against it) and times one 77-token forward.
func benchBase(b *testing.B, cfg sdxl.CLIPTextConfig) {
	ps, err := sdxl.CLIPTextParams(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// LORASTUDIO_BENCH_DEVICE picks the backend (cpu, gl, auto), cpu by default.
	kind := os.Getenv("LORASTUDIO_BENCH_DEVICE")
	if kind == "" {
		kind = "cpu"
	}
	be, err := device.Open(kind)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	start := time.Now()
	m, err := clip.Load(be, newSynth(ps), clip.Config(cfg))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	loadMS := float64(time.Since(start).Milliseconds())
	mib := float64(be.Memory().InUse) / (1 << 20)
	tok, err := tokenizer.Embedded(tokenizer.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ids := tok.EncodePadded("a photo of a cat sitting on a red bicycle", 77)
	b.ResetTimer()
	for range b.N {
		out, err := m.Forward([][]int{ids}, clip.Options{})
		if err != nil {
			b.Fatal(err)
		}
		out.Free()
		if s, ok := be.(tensor.Syncer); ok {
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(loadMS, "load-ms")
	b.ReportMetric(mib, "weights-MiB")
}

// BenchmarkSDXLBaseTextEncoder is CLIP ViT-L/14's text tower at full size (123M parameters).
func BenchmarkSDXLBaseTextEncoder(b *testing.B) { benchBase(b, sdxl.SDXLBaseTextEncoder()) }

// BenchmarkSDXLBaseTextEncoder2 is OpenCLIP bigG's text tower at full size (695M parameters).
func BenchmarkSDXLBaseTextEncoder2(b *testing.B) { benchBase(b, sdxl.SDXLBaseTextEncoder2()) }
