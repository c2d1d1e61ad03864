package train

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/lora"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// TestPreflightCountsTheNetwork compares Preflight's LoRA size with the
// network NewNetwork really builds on the tiny model, and checks the
// estimate's parts: weights from the configs, checkpointing saving memory,
// the run's steps from the dataset.
func TestPreflightCountsTheNetwork(t *testing.T) {
	src := openTiny(t)
	imgs := writeImages(t, t.TempDir(), 3, 64, 64)
	for _, preset := range []string{"attn", "attn-mlp"} {
		cfg := tinyConfig(filepath.Join(t.TempDir(), "cache"), 0)
		cfg.Targets = preset
		cfg.MaxSteps, cfg.Epochs = 0, 3
		r, err := Preflight(cfg, imgs, src.Config())
		if err != nil {
			t.Fatal(err)
		}
		be := cpu.New()
		m, err := unet.FromSource(be, src)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := cfg.Network()
		if err != nil {
			t.Fatal(err)
		}
		net, err := lora.NewNetwork(be, m.Linears(), nc, 1)
		if err != nil {
			t.Fatal(err)
		}
		if int64(net.NumParams()) != r.LoRAParams {
			t.Errorf("%s: Preflight counts %d LoRA parameters, the network has %d", preset, r.LoRAParams, net.NumParams())
		}
		net.Free()
		m.Free()
		// 3 images, batch 2 → 2 batches an epoch, 2 accumulated a step
		if r.Dataset.Images != 3 || r.StepsPerEpoch != 1 || r.Steps != 3 || r.Epochs != 3 {
			t.Errorf("%s: %d images, %d steps an epoch, %d steps, %d epochs; want 3, 1, 3, 3", preset, r.Dataset.Images, r.StepsPerEpoch, r.Steps, r.Epochs)
		}
	}
	cfg := Default()
	r, err := Preflight(cfg, imgs, sdxl.SDXLBase())
	if err != nil {
		t.Fatal(err)
	}
	m := r.Memory
	ps, _ := sdxl.UNetParams(sdxl.SDXLBase().UNet)
	var n int64
	for _, p := range ps {
		n += p.NumElements()
	}
	if m.Weights != 2*n {
		t.Errorf("weights %d bytes, want 2 × %d", m.Weights, n)
	}
	if !(m.ActivationsCheckpoint < m.ActivationsNoCheckpoint) || m.Activations != m.ActivationsCheckpoint {
		t.Errorf("activations: %d with checkpointing, %d without, %d used", m.ActivationsCheckpoint, m.ActivationsNoCheckpoint, m.Activations)
	}
	if m.Device != m.Weights+m.LoRA+m.Activations {
		t.Errorf("device %d ≠ %d + %d + %d", m.Device, m.Weights, m.LoRA, m.Activations)
	}
	t.Logf("SDXL 1024², batch 1, r 8 attn:\n%s(without checkpointing: activations %s)", r, gib(m.ActivationsNoCheckpoint))
}

// TestPreflightMemoryMatchesARun compares the device-memory estimate with
// the backend's measured peak during a real step on the tiny model at
// 128² (batch 2), checkpointing on and off: within a quarter either way.
func TestPreflightMemoryMatchesARun(t *testing.T) {
	src := openTiny(t)
	imgs := writeImages(t, t.TempDir(), 2, 64, 64)
	for _, ck := range []bool{true, false} {
		cfg := tinyConfig(filepath.Join(t.TempDir(), "cache"), 2)
		cfg.Data.Resolution, cfg.Data.MaxSide = 128, 256
		cfg.Batch, cfg.GradAccum, cfg.GradientCheckpointing = 2, 1, ck
		rep, err := Preflight(cfg, imgs, src.Config())
		if err != nil {
			t.Fatal(err)
		}
		be := cpu.New()
		var peak int64
		if _, err := Run(context.Background(), be, src, imgs, cfg, filepath.Join(t.TempDir(), "run"), false, func(e Event) {
			if e.Kind == Step && e.Step == 1 {
				be.ResetPeak()
			}
			if e.Kind == Step && e.Step == 2 {
				peak = be.Memory().Peak
			}
		}); err != nil {
			t.Fatal(err)
		}
		est := rep.Memory.Device
		if r := float64(est) / float64(peak); r < 0.75 || r > 1.25 {
			t.Errorf("checkpointing %t: estimate %d KiB, measured peak %d KiB (ratio %.2f)", ck, est>>10, peak>>10, r)
		} else {
			t.Logf("checkpointing %t: estimate %d KiB, measured peak %d KiB (ratio %.2f)", ck, est>>10, peak>>10, r)
		}
	}
}

// TestActivationEstimateMatchesAStep compares walkUNet's activation
// estimates (what Preflight's Memory.Activations adds to the weights) with
// the device peak of a real UNet step on the tiny model at a 64×64 latent,
// where activations outweigh the weights: checkpointing off, and on with
// NoInputGrads as Run trains; within a quarter either way.
func TestActivationEstimateMatchesAStep(t *testing.T) {
	src := openTiny(t)
	be := cpu.New()
	m, err := unet.FromSource(be, src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	cfg := m.Config()
	const side = 64
	r := rand.New(rand.NewPCG(1, 2))
	up := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		x, err := be.Upload(v, shape, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x, ctx, text := up(1, cfg.InChannels, side, side), up(1, 77, cfg.CrossAttentionDimAt(0)), up(1, m.TextEmbedsDim())
	ids, err := be.Upload([]float32{512, 512, 0, 0, 512, 512}, tensor.Shape{1, 6}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	dout := up(1, cfg.OutChannels, side, side)
	defer tensor.FreeAll(x, ctx, text, ids, dout)
	w := walkUNet(cfg, 1, side, side)
	for _, ck := range []bool{false, true} {
		m.Checkpoint, m.NoInputGrads = ck, ck
		base := be.Memory().InUse
		be.ResetPeak()
		out, err := m.ForwardTrain(x, []float32{500}, ctx, text, ids)
		if err != nil {
			t.Fatal(err)
		}
		ds, dc, err := m.Backward(dout)
		if err != nil {
			t.Fatal(err)
		}
		peak := be.Memory().Peak - base
		tensor.FreeAll(out, ds, dc)
		m.FreeCache()
		est := w.activations(ck)
		if q := float64(est) / float64(peak); q < 0.75 || q > 1.25 {
			t.Errorf("checkpointing %t: activations estimated %d KiB, measured %d KiB (ratio %.2f)", ck, est>>10, peak>>10, q)
		} else {
			t.Logf("checkpointing %t: activations estimated %d KiB, measured %d KiB (ratio %.2f)", ck, est>>10, peak>>10, q)
		}
	}
}
