package train

import (
	"fmt"
	"strings"
	"time"

	"lorastudio/engine/sdxl"
	"lorastudio/engine/train/dataset"
)

// Report is the pre-flight check of a run, made before any weight is
// loaded: the dataset (dataset.Inspect), the length of the run, and
// estimates of its memory and time from the model's configs.
type Report struct {
	Dataset *dataset.Report
	// StepsPerEpoch counts optimizer steps (GradAccum micro-batches each);
	// Steps is the run's total, Epochs the epochs it touches.
	StepsPerEpoch, Steps, Epochs int
	// LoRAParams is the number of trainable values.
	LoRAParams int64
	Memory     Memory
	// StepFLOPs is the floating-point work of one optimizer step (forward,
	// backward of the activations, and with checkpointing the forward again).
	StepFLOPs float64
	// Seconds is the estimated duration of the run at DefaultFLOPS (see
	// Duration for another throughput).
	Seconds float64
}

// Memory is the memory estimate of a run, in bytes. Device is what the
// training loop holds on the device at its peak:
//
//	Device = Weights + LoRA + Activations (+ TextEncoders when captions are shuffled)
//	Weights     = UNet parameters × 2 (frozen, fp16)
//	LoRA        = LoRA parameters × 4 × 2 (fp32 values and gradients; AdamW runs on the host)
//	Activations = what forward keeps for backward at the largest bucket, batch B, fp32:
//	  per resnet        (2·Cin + 6·Cout) · h·w · B values
//	  per transformer   (4 + 27·depth) · C · h·w · B values (norms, q/k/v, attention out,
//	                    GEGLU's 8C and 4C, residuals; the fused attention keeps no h·w × h·w scores)
//	  with checkpointing only the blocks' inputs (every skip tensor) plus the largest block
//	Host = LoRA parameters × 4 × 4 (master copy, gradient, Adam's two moments)
//
// Prepare is the peak while the caches are filled (VAE weights fp16 plus
// its widest activations at the largest bucket: about six tensors of
// vae.LargestActivation); it comes before training, never beside it.
type Memory struct {
	Weights, LoRA, Activations, TextEncoders int64
	Device, Host, Prepare                    int64
	// ActivationsNoCheckpoint and ActivationsCheckpoint are both estimates,
	// so a UI can show what the switch saves.
	ActivationsNoCheckpoint, ActivationsCheckpoint int64
}

// DefaultFLOPS is the nominal sustained throughput (FLOP/s) Report.Seconds
// assumes when the device's own is unknown. `lorastudio bench train` prints
// the throughput a device really sustains in a training step (StepFLOPs over
// its seconds per step); Duration takes that figure.
const DefaultFLOPS = 2e11

// Duration returns the run's estimated time at flops FLOP/s.
func (r Report) Duration(flops float64) time.Duration {
	if flops <= 0 {
		return 0
	}
	return time.Duration(r.StepFLOPs * float64(r.Steps) / flops * float64(time.Second))
}

// String formats the estimates for a terminal.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "steps: %d (%d per epoch, %d epochs)\n", r.Steps, r.StepsPerEpoch, r.Epochs)
	fmt.Fprintf(&b, "LoRA parameters: %d\n", r.LoRAParams)
	m := r.Memory
	fmt.Fprintf(&b, "device memory: %s (weights %s, LoRA %s, activations %s", gib(m.Device), gib(m.Weights), gib(m.LoRA), gib(m.Activations))
	if m.TextEncoders > 0 {
		fmt.Fprintf(&b, ", text encoders %s", gib(m.TextEncoders))
	}
	fmt.Fprintf(&b, "); preparing the caches: %s; host: %s\n", gib(m.Prepare), gib(m.Host))
	fmt.Fprintf(&b, "work: %.1f TFLOP a step; about %s at %.0f GFLOP/s\n", r.StepFLOPs/1e12, r.Duration(DefaultFLOPS).Round(time.Second), DefaultFLOPS/1e9)
	return b.String()
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// Preflight checks a run before loading any weight: the dataset report, the
// steps, and the memory and time estimates from modelCfg and cfg.
func Preflight(cfg Config, imgs []dataset.Image, modelCfg sdxl.Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	ds, err := dataset.Inspect(imgs, cfg.Data, cfg.Batch, nil)
	if err != nil {
		return Report{}, fmt.Errorf("train: %w", err)
	}
	r := Report{Dataset: ds}
	perEpoch := ds.StepsPerEpoch
	r.Steps = totalSteps(cfg, perEpoch)
	r.StepsPerEpoch = (perEpoch + cfg.GradAccum - 1) / cfg.GradAccum
	if perEpoch > 0 {
		r.Epochs = (r.Steps*cfg.GradAccum + perEpoch - 1) / perEpoch
	}
	targets, err := cfg.targets()
	if err != nil {
		return Report{}, err
	}
	ps, err := sdxl.UNetParams(modelCfg.UNet)
	if err != nil {
		return Report{}, fmt.Errorf("train: %w", err)
	}
	var weights int64
	for _, p := range ps {
		weights += p.NumElements()
		if len(p.Shape) != 2 || !strings.HasSuffix(p.Name, ".weight") {
			continue
		}
		m := strings.TrimSuffix(p.Name, ".weight")
		for _, t := range targets {
			if strings.HasSuffix(m, "."+t) {
				r.LoRAParams += int64(cfg.Rank) * int64(p.Shape[0]+p.Shape[1])
				break
			}
		}
	}
	// the largest bucket by area bounds the activations and the work
	largest := dataset.Size{W: cfg.Data.Resolution, H: cfg.Data.Resolution}
	area := 0
	for _, b := range ds.Buckets {
		if b.Bucket.W*b.Bucket.H > area {
			largest, area = b.Bucket, b.Bucket.W*b.Bucket.H
		}
	}
	f := 1 << (len(modelCfg.VAE.BlockOutChannels) - 1)
	w := walkUNet(modelCfg.UNet, cfg.Batch, largest.H/f, largest.W/f)
	m := &r.Memory
	m.Weights = 2 * weights
	m.LoRA = 8 * r.LoRAParams
	m.Host = 16 * r.LoRAParams
	m.ActivationsNoCheckpoint = 4 * w.all
	m.ActivationsCheckpoint = 4 * (w.kept + w.largestBlock)
	m.Activations = m.ActivationsNoCheckpoint
	if cfg.GradientCheckpointing {
		m.Activations = m.ActivationsCheckpoint
	}
	if !dataset.TextCacheable(cfg.Data) {
		for _, c := range []string{sdxl.TextEncoder, sdxl.TextEncoder2} {
			tps, err := sdxl.ComponentParams(modelCfg, c)
			if err != nil {
				return Report{}, fmt.Errorf("train: %w", err)
			}
			for _, p := range tps {
				m.TextEncoders += 2 * p.NumElements()
			}
		}
	}
	m.Device = m.Weights + m.LoRA + m.Activations + m.TextEncoders
	vps, err := sdxl.VAEParams(modelCfg.VAE)
	if err != nil {
		return Report{}, fmt.Errorf("train: %w", err)
	}
	for _, p := range vps {
		m.Prepare += 2 * p.NumElements()
	}
	widest := 0
	for i, c := range modelCfg.VAE.BlockOutChannels {
		if i < 2 {
			widest = max(widest, c)
		}
	}
	m.Prepare += 6 * 4 * int64(widest) * int64(area)

	r.StepFLOPs = float64(cfg.GradAccum) * StepFLOPs(modelCfg.UNet, cfg.Batch, largest.H/f, largest.W/f, cfg.GradientCheckpointing)
	r.Seconds = r.Duration(DefaultFLOPS).Seconds()
	return r, nil
}

// StepFLOPs estimates the floating-point work of one training micro-batch
// of batch samples at latent size h×w through the UNet of c: the forward
// (convolutions, linears, attention's two matmuls; 2 FLOPs a multiply-add),
// the backward of the activations (about as much again: frozen weights get
// no weight gradient, the LoRA's are negligible) and, with checkpointing,
// the forward run again block by block.
func StepFLOPs(c sdxl.UNetConfig, batch, h, w int, checkpointing bool) float64 {
	fwd := float64(batch) * walkUNet(c, 1, h, w).flops
	if checkpointing {
		return 3 * fwd
	}
	return 2 * fwd
}

// unetWalk is the activation and work estimate of one UNet forward.
type unetWalk struct {
	all          int64   // values kept for backward by the whole forward
	kept         int64   // values a checkpointed forward keeps (the blocks' inputs and skips)
	largestBlock int64   // values kept by the largest single block
	flops        float64 // forward FLOPs of one sample
}

// walkUNet estimates a forward of batch n at latent size h×w through cfg's
// UNet: activations (values, see Memory) and FLOPs (2 per multiply-add:
// convolutions, linears, attention's two matmuls).
func walkUNet(cfg sdxl.UNetConfig, n, h, w int) unetWalk {
	var u unetWalk
	const ctxTokens = 77
	resnet := func(cin, cout, s int) (int64, float64) {
		vals := int64(2*cin+6*cout) * int64(s) * int64(n)
		fl := 2 * 9 * float64(cin*cout+cout*cout) * float64(s)
		if cin != cout {
			fl += 2 * float64(cin*cout) * float64(s)
		}
		return vals, fl
	}
	transformer := func(c, depth, s, cross int) (int64, float64) {
		vals := int64(4+27*depth) * int64(c) * int64(s) * int64(n)
		perBlock := 2*float64(s)*float64(4*c*c) + // self-attention projections
			2*float64(s)*float64(2*c*c) + 2*float64(ctxTokens)*float64(2*cross*c) + // cross-attention q/out, k/v
			2*float64(s)*float64(c*8*c+4*c*c) + // feed-forward (GEGLU 8C, then 4C → C)
			4*float64(s)*float64(s)*float64(c) + 4*float64(s)*ctxTokens*float64(c) // scores and weighted sums
		return vals, 2*float64(s)*float64(2*c*c) + float64(depth)*perBlock
	}
	boc := cfg.BlockOutChannels
	s := h * w
	c0 := boc[0]
	u.kept += int64(c0) * int64(s) * int64(n) // conv_in's output
	u.flops += 2 * 9 * float64(cfg.InChannels*c0) * float64(s)
	skips := []int{c0}
	cin := c0
	block := func(vals int64) {
		u.largestBlock = max(u.largestBlock, vals)
	}
	for i, c := range boc {
		var bv int64
		for range cfg.LayersPerBlock {
			v, f := resnet(cin, c, s)
			bv, u.flops = bv+v, u.flops+f
			if cfg.HasCrossAttention(i) {
				v, f := transformer(c, cfg.TransformerDepth(i), s, cfg.CrossAttentionDimAt(i))
				bv, u.flops = bv+v, u.flops+f
			}
			cin = c
			u.kept += int64(c) * int64(s) * int64(n)
			skips = append(skips, c)
		}
		if i < len(boc)-1 {
			s /= 4
			u.flops += 2 * 9 * float64(c*c) * float64(s)
			bv += int64(c) * int64(s) * int64(n) * 4
			u.kept += int64(c) * int64(s) * int64(n)
			skips = append(skips, c)
		}
		u.all += bv
		block(bv)
	}
	last := boc[len(boc)-1]
	var mid int64
	for k := range 2 {
		v, f := resnet(last, last, s)
		mid, u.flops = mid+v, u.flops+f
		if k == 0 {
			v, f := transformer(last, cfg.TransformerDepth(len(boc)-1), s, cfg.CrossAttentionDimAt(len(boc)-1))
			mid, u.flops = mid+v, u.flops+f
		}
	}
	u.all += mid
	block(mid)
	prev := last
	for j := range boc {
		c := boc[len(boc)-1-j]
		var bv int64
		u.kept += int64(prev) * int64(s) * int64(n) // the up block's input
		for range cfg.LayersPerBlock + 1 {
			skip := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			v, f := resnet(prev+skip, c, s)
			bv, u.flops = bv+v, u.flops+f
			if cfg.UpHasCrossAttention(j) {
				v, f := transformer(c, cfg.UpTransformerDepth(j), s, cfg.CrossAttentionDimAt(len(boc)-1-j))
				bv, u.flops = bv+v, u.flops+f
			}
			prev = c
		}
		if j < len(boc)-1 {
			s *= 4
			u.flops += 2 * 9 * float64(c*c) * float64(s)
			bv += 2 * int64(c) * int64(s) * int64(n)
		}
		u.all += bv
		block(bv)
	}
	u.flops += 2 * 9 * float64(c0*cfg.OutChannels) * float64(s)
	u.all += u.kept + 3*int64(c0)*int64(s)*int64(n)
	return u
}
