package train

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"lorastudio/engine/cpu"
)

// BenchmarkTrainStepTiny times optimizer steps of Run on the tiny fixture
// model at 64×64 (batch 1, rank 4, attn), with gradient checkpointing on
// and off: everything of a step (data, forward, backward, AdamW), not the
// caches' preparation, the loading or the final write. It reports the
// backend's peak memory too.
func BenchmarkTrainStepTiny(b *testing.B) {
	src := openTiny(b)
	imgs := writeImages(b, b.TempDir(), 2, 64, 64)
	cache := filepath.Join(b.TempDir(), "cache")
	for _, ck := range []bool{true, false} {
		b.Run(fmt.Sprintf("checkpointing=%t", ck), func(b *testing.B) {
			cfg := tinyConfig(cache, b.N+1)
			cfg.Batch, cfg.GradAccum = 1, 1
			cfg.GradientCheckpointing = ck
			be := cpu.New()
			_, err := Run(context.Background(), be, src, imgs, cfg, filepath.Join(b.TempDir(), "run"), false, func(e Event) {
				if e.Kind != Step {
					return
				}
				switch e.Step {
				case 1: // the first step warms up
					be.ResetPeak()
					b.ResetTimer()
				case b.N + 1:
					b.StopTimer()
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(be.Memory().Peak)/(1<<20), "peak-MiB")
		})
	}
}
