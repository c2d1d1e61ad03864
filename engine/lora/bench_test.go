package lora

import (
	"path/filepath"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/sdxl"
)

// benchLayer returns a rank-32 layer for a weight of real SDXL base 1.0
// (configs embedded in engine/sdxl) whose name ends with suffix.
func benchLayer(b *testing.B, suffix string) *Layer {
	b.Helper()
	cfg, err := sdxl.DefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	module := firstParam(b, cfg, sdxl.UNet, suffix)
	target := paramShapeTB(b, cfg, sdxl.UNet, module+".weight")
	const rank = 32
	out, in := target[0], prod(target[1:])
	return &Layer{Component: sdxl.UNet, Module: module, Rank: rank, Out: out, In: in,
		Down: filled(rank*in, 0.01), Up: filled(out*rank, 0.01), Alpha: 16, HasAlpha: true, TargetShape: target}
}

func benchMerge(b *testing.B, suffix string) {
	layer := benchLayer(b, suffix)
	w := make([]float32, layer.Out*layer.In)
	b.SetBytes(int64(4 * len(w)))
	for b.Loop() {
		if err := MergeInto(w, layer, 1); err != nil {
			b.Fatal(err)
		}
	}
	flop := float64(2 * layer.Out * layer.In * layer.Rank)
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkMergeAttn1280 merges a rank-32 update into SDXL's mid-block to_q
// (1280×1280).
func BenchmarkMergeAttn1280(b *testing.B) {
	benchMerge(b, "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight")
}

// BenchmarkMergeFF merges a rank-32 update into SDXL's mid-block ff.net.2
// (1280×5120).
func BenchmarkMergeFF(b *testing.B) {
	benchMerge(b, "mid_block.attentions.0.transformer_blocks.0.ff.net.2.weight")
}

// BenchmarkOpenKohya opens the fixture's Stability-layout kohya file
// (targets derived from the configs included).
func BenchmarkOpenKohya(b *testing.B) {
	root := fixtures.Root(b)
	cfg := fixtureConfig(b)
	path := filepath.Join(root, "lora", "kohya_sgm_names.safetensors")
	for b.Loop() {
		if _, err := Open(path, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTargetsSDXL derives the target table of real SDXL base 1.0 (every
// linear and convolution of the UNet and both text encoders, and the
// Stability names).
func BenchmarkTargetsSDXL(b *testing.B) {
	cfg, err := sdxl.DefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := newTargets(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
