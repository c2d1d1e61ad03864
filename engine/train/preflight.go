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
//	  with checkpointing (per resnet and per transformer block) the skips, each
//	                    resnet's input, (3 + depth) · C · h·w · B per transformer (its input,
//	                    proj_in's, each block's, proj_out's), the upsamplers' inputs and
//	                    the output head, plus the largest resnet or transformer block
//	                    (27 · C · h·w · B) and two of the widest maps (gradients)
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
	m.ActivationsNoCheckpoint = w.activations(false)
	m.ActivationsCheckpoint = w.activations(true)
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
	all     int64   // values kept for backward by the whole forward
	kept    int64   // values a checkpointed forward keeps (see walkUNet)
	segment int64   // values of the largest checkpointed segment (a resnet or a transformer block)
	widest  int64   // values of the largest feature map (an activation gradient in flight)
	flops   float64 // forward FLOPs of one sample
}

// activations returns the bytes (fp32) a training step holds beyond the
// weights at its peak: everything the forward keeps, or with checkpointing
// what it keeps, plus the largest segment run again and two feature maps of
// gradients in flight.
func (u unetWalk) activations(checkpointing bool) int64 {
	if checkpointing {
		return 4 * (u.kept + u.segment + 2*u.widest)
	}
	return 4 * u.all
}

// walkUNet estimates a forward of batch n at latent size h×w through cfg's
// UNet: activations (values, see Memory) and FLOPs (2 per multiply-add:
// convolutions, linears, attention's two matmuls).
//
// A checkpointed forward (unet.Model.Checkpoint: per resnet and per
// transformer block) keeps the skips, each resnet's input (in an up block
// the concatenation with its skip), of each transformer its input, proj_in's
// input, every block's input and proj_out's input ((3 + depth)·C·h·w), each
// upsampler's 2× input and conv_norm_out's input, output and SiLU; backward
// adds one segment's activations at a time.
func walkUNet(cfg sdxl.UNetConfig, n, h, w int) unetWalk {
	var u unetWalk
	const ctxTokens = 77
	resnet := func(cin, cout, s int) (int64, float64) {
		vals := int64(2*cin+6*cout) * int64(s) * int64(n)
		fl := 2 * 9 * float64(cin*cout+cout*cout) * float64(s)
		if cin != cout {
			fl += 2 * float64(cin*cout) * float64(s)
		}
		u.segment = max(u.segment, vals)
		return vals, fl
	}
	transformer := func(c, depth, s, cross int) (int64, float64) {
		vals := int64(4+27*depth) * int64(c) * int64(s) * int64(n)
		perBlock := 2*float64(s)*float64(4*c*c) + // self-attention projections
			2*float64(s)*float64(2*c*c) + 2*float64(ctxTokens)*float64(2*cross*c) + // cross-attention q/out, k/v
			2*float64(s)*float64(c*8*c+4*c*c) + // feed-forward (GEGLU 8C, then 4C → C)
			4*float64(s)*float64(s)*float64(c) + 4*float64(s)*ctxTokens*float64(c) // scores and weighted sums
		u.kept += int64(3+depth) * int64(c) * int64(s) * int64(n)
		u.segment = max(u.segment, 27*int64(c)*int64(s)*int64(n))
		return vals, 2*float64(s)*float64(2*c*c) + float64(depth)*perBlock
	}
	mp := func(c, s int) int64 { // one feature map (N, c, h, w)
		v := int64(c) * int64(s) * int64(n)
		u.widest = max(u.widest, v)
		return v
	}
	boc := cfg.BlockOutChannels
	s := h * w
	c0 := boc[0]
	skipVals := mp(c0, s) // the skips and the up blocks' inputs (what a forward keeps past its blocks)
	u.kept += skipVals    // conv_in's output
	u.flops += 2 * 9 * float64(cfg.InChannels*c0) * float64(s)
	skips := []int{c0}
	cin := c0
	for i, c := range boc {
		for range cfg.LayersPerBlock {
			v, f := resnet(cin, c, s) // its input is a skip, kept already
			u.all, u.flops = u.all+v, u.flops+f
			if cfg.HasCrossAttention(i) {
				v, f := transformer(c, cfg.TransformerDepth(i), s, cfg.CrossAttentionDimAt(i))
				u.all, u.flops = u.all+v, u.flops+f
			}
			cin = c
			u.kept += mp(c, s) // the skip
			skipVals += mp(c, s)
			skips = append(skips, c)
		}
		if i < len(boc)-1 {
			u.all += mp(c, s) // the downsampler's input
			s /= 4
			u.flops += 2 * 9 * float64(c*c) * float64(s)
			u.kept += mp(c, s)
			skipVals += mp(c, s)
			skips = append(skips, c)
		}
	}
	last := boc[len(boc)-1]
	for k := range 2 {
		v, f := resnet(last, last, s)
		u.all, u.flops = u.all+v, u.flops+f
		if k == 0 {
			v, f := transformer(last, cfg.TransformerDepth(len(boc)-1), s, cfg.CrossAttentionDimAt(len(boc)-1))
			u.all, u.flops = u.all+v, u.flops+f
			u.kept += mp(last, s) // resnets.1's input
		}
	}
	prev := last
	for j := range boc {
		c := boc[len(boc)-1-j]
		skipVals += mp(prev, s)
		for range cfg.LayersPerBlock + 1 {
			skip := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			v, f := resnet(prev+skip, c, s)
			u.all, u.flops = u.all+v, u.flops+f
			u.kept += mp(prev+skip, s) // the concatenation
			if cfg.UpHasCrossAttention(j) {
				v, f := transformer(c, cfg.UpTransformerDepth(j), s, cfg.CrossAttentionDimAt(len(boc)-1-j))
				u.all, u.flops = u.all+v, u.flops+f
			}
			prev = c
		}
		if j < len(boc)-1 {
			s *= 4
			u.flops += 2 * 9 * float64(c*c) * float64(s)
			v := 2 * mp(c, s)
			u.all += v
			u.kept += v / 2 // the upsampled input of its conv
		}
	}
	u.flops += 2 * 9 * float64(c0*cfg.OutChannels) * float64(s)
	u.kept += 3 * mp(c0, s) // conv_norm_out's input and output, conv_act's output
	u.all += skipVals + 3*mp(c0, s)
	return u
}
