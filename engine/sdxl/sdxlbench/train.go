package sdxlbench

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"

	"lorastudio/engine/lora"
	"lorastudio/engine/opstats"
	"lorastudio/engine/rng"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/train"
	"lorastudio/engine/train/optim"
	"lorastudio/engine/unet"
)

// TrainOptions choose what Train measures. The zero value measures SDXL
// base 1.0 at 1024², batch 1, a rank-8 LoRA on the attention projections,
// with gradient checkpointing on and off, one timed step each.
type TrainOptions struct {
	// Size is the square image side in pixels (a multiple of 8 × the UNet's
	// down factor); default 1024.
	Size int
	// Rank is the LoRA rank (alpha = 2·rank, the tutorial's ratio); default 8.
	Rank int
	// Targets is a lora.TargetPreset name or list; default "attn".
	Targets string
	// Batch is the micro-batch; default 1.
	Batch int
	// Checkpointing lists the settings timed; empty means {true, false}.
	Checkpointing []bool
	// Runs is how many timed steps each setting averages; default 1.
	Runs int
	// Warmup runs one untimed step first (GL compiles its kernels on first use).
	Warmup bool
	// Config is the model; nil means sdxl.SDXLBase() (tests pass a tiny one).
	Config *sdxl.Config
	// Seed seeds the random weights and inputs; 0 means 1.
	Seed uint64
	// OpStats times every op through engine/opstats and reports the per-kind
	// breakdown with each timing (see Options.OpStats).
	OpStats bool
}

// TrainTiming is one measured training setting.
type TrainTiming struct {
	Checkpointing bool `json:"checkpointing"`
	Size          int  `json:"size"`
	Batch         int  `json:"batch"`
	Rank          int  `json:"rank"`
	// Seconds is the mean time of one optimizer step: forward in training
	// mode, the MSE loss, backward, downloading the LoRA gradients, clipping,
	// AdamW on the host and uploading the new weights.
	Seconds float64 `json:"seconds"`
	Runs    int     `json:"runs"`
	// GFLOPS is the sustained throughput: train.StepFLOPs over Seconds.
	GFLOPS float64 `json:"gflops"`
	// DevicePeakBytes is the backend's peak during the steps (weights
	// included); HostPeakBytes the Go heap's sampled peak, MaxRSSBytes the
	// process's peak resident size so far.
	DevicePeakBytes int64 `json:"device_peak_bytes"`
	HostPeakBytes   int64 `json:"host_peak_bytes"`
	MaxRSSBytes     int64 `json:"max_rss_bytes"`
	// Ops is the per-op breakdown of the timed steps (all Runs together),
	// present with TrainOptions.OpStats; the host's AdamW is outside it.
	Ops *opstats.Stats `json:"ops,omitempty"`
}

// TrainReport is everything Train measured.
type TrainReport struct {
	Backend    string        `json:"backend"`
	Device     string        `json:"device"`
	LoRAParams int           `json:"lora_params"`
	Load       Load          `json:"load"`
	Timings    []TrainTiming `json:"timings"`
}

// Train loads the UNet of SDXL (random fp16 weights) onto b, attaches a
// trainable LoRA (engine/lora's Network, up factors drawn at random so every
// gradient is live), and times full training steps with gradient
// checkpointing on and off, writing a line per measurement to w (nil:
// nowhere) and a table at the end.
func Train(b tensor.Backend, opts TrainOptions, w io.Writer) (TrainReport, error) {
	if w == nil {
		w = io.Discard
	}
	rep := TrainReport{Backend: b.Name(), Device: b.Device()}
	var ops *opstats.Backend
	if opts.OpStats {
		ops = opstats.New(b)
		b = ops
	}
	cfg := sdxl.SDXLBase()
	if opts.Config != nil {
		cfg = *opts.Config
	}
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("sdxlbench: %v", err)
	}
	if opts.Size == 0 {
		opts.Size = 1024
	}
	if opts.Rank == 0 {
		opts.Rank = 8
	}
	if opts.Batch == 0 {
		opts.Batch = 1
	}
	if opts.Runs <= 0 {
		opts.Runs = 1
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if len(opts.Checkpointing) == 0 {
		opts.Checkpointing = []bool{true, false}
	}
	step := 8 << (len(cfg.UNet.BlockOutChannels) - 1)
	switch {
	case opts.Size < 0 || opts.Size%step != 0:
		return rep, fmt.Errorf("sdxlbench: size %d is not a positive multiple of %d", opts.Size, step)
	case opts.Rank < 0 || opts.Batch < 0:
		return rep, fmt.Errorf("sdxlbench: rank %d and batch %d must be positive", opts.Rank, opts.Batch)
	}
	if opts.Targets == "" {
		opts.Targets = lora.PresetAttn
	}
	targets, err := lora.TargetPreset(opts.Targets)
	if err != nil {
		return rep, fmt.Errorf("sdxlbench: %w", err)
	}
	ps, err := sdxl.UNetParams(cfg.UNet)
	if err != nil {
		return rep, fmt.Errorf("sdxlbench: %v", err)
	}
	r := &runner{b: b, w: w, cfg: cfg, opts: Options{Runs: opts.Runs}}
	var m *unet.Model
	if err := r.load(sdxl.UNet, func() (err error) {
		m, err = unet.Load(b, cfg.UNet, RandomSource(ps, opts.Seed+10))
		return err
	}); err != nil {
		return rep, err
	}
	defer m.Free()
	rep.Load = r.rep.Loads[0]
	net, err := lora.NewNetwork(b, m.Linears(), lora.NetworkConfig{Rank: opts.Rank, Alpha: float32(2 * opts.Rank), Targets: targets}, opts.Seed)
	if err != nil {
		return rep, fmt.Errorf("sdxlbench: %w", err)
	}
	defer net.Free()
	rep.LoRAParams = net.NumParams()
	g := rng.New(opts.Seed)
	params, err := net.Values()
	if err != nil {
		return rep, err
	}
	sizes := make([]int, len(params))
	for i, p := range params {
		sizes[i] = len(p)
		if i%2 == 1 { // up factors start at zero; random ones make every gradient non-zero
			copy(p, g.Randn(len(p)))
			for j := range p {
				p[j] *= 1e-3
			}
		}
	}
	if err := net.SetParams(params); err != nil {
		return rep, err
	}
	opt := optim.NewAdamW(optim.DefaultAdamW(1e-4), sizes)

	n, side := opts.Batch, opts.Size/8
	x, err := r.upload(g, 1, n, cfg.UNet.InChannels, side, side)
	if err != nil {
		return rep, err
	}
	ctx, err := r.upload(g, 1, n, 77, cfg.UNet.CrossAttentionDimAt(0))
	if err != nil {
		x.Free()
		return rep, err
	}
	text, err := r.upload(g, 1, n, m.TextEmbedsDim())
	if err != nil {
		tensor.FreeAll(x, ctx)
		return rep, err
	}
	px := float32(opts.Size)
	ids := make([]float32, 0, 6*n)
	ts := make([]float32, n)
	for i := range n {
		ids = append(ids, px, px, 0, 0, px, px)
		ts[i] = float32(100 + 300*i)
	}
	tid, err := b.Upload(ids, tensor.Shape{n, 6}, tensor.F32)
	if err != nil {
		tensor.FreeAll(x, ctx, text)
		return rep, err
	}
	defer tensor.FreeAll(x, ctx, text, tid)
	target := g.Randn(x.Numel())

	trainStep := func() error {
		pred, err := m.ForwardTrain(x, ts, ctx, text, tid) // (N, C, h, w)
		if err != nil {
			return err
		}
		pv, err := b.Download(pred)
		pred.Free()
		if err != nil {
			m.FreeCache()
			return err
		}
		d := make([]float32, len(pv)) // d MSE / d pred = 2 (pred − target) / numel
		for i := range pv {
			d[i] = 2 * (pv[i] - target[i]) / float32(len(pv))
		}
		dt, err := b.Upload(d, x.Shape(), tensor.F32)
		if err != nil {
			m.FreeCache()
			return err
		}
		dx, dctx, err := m.Backward(dt)
		m.FreeCache()
		tensor.FreeAll(dt, dx, dctx)
		if err != nil {
			return err
		}
		grads, err := net.Grads()
		net.ZeroGrad()
		if err != nil {
			return err
		}
		optim.ClipGradNorm(grads, 1)
		if err := opt.Step(params, grads, 1e-4); err != nil {
			return err
		}
		return net.SetParams(params)
	}
	fmt.Fprintf(w, "SDXL LoRA training step on %s (%s): %d², batch %d, rank %d (%s), %d trainable values\n",
		b.Name(), b.Device(), opts.Size, n, opts.Rank, opts.Targets, rep.LoRAParams)
	m.NoInputGrads = true // as engine/train runs it: the latents and text embeddings want no gradient
	for _, ck := range opts.Checkpointing {
		m.Checkpoint = ck
		if opts.Warmup {
			if err := trainStep(); err != nil {
				return rep, fmt.Errorf("sdxlbench: training step: %w", err)
			}
			if err := r.sync(); err != nil {
				return rep, err
			}
		}
		runtime.GC()
		if ops != nil {
			if err := ops.Reset(); err != nil {
				return rep, err
			}
		}
		b.ResetPeak()
		hp := startHeapProbe()
		start := time.Now()
		for range opts.Runs {
			if err := trainStep(); err != nil {
				hp.stop()
				return rep, fmt.Errorf("sdxlbench: training step (checkpointing %t): %w", ck, err)
			}
		}
		if err := r.sync(); err != nil {
			hp.stop()
			return rep, err
		}
		t := TrainTiming{Checkpointing: ck, Size: opts.Size, Batch: n, Rank: opts.Rank, Runs: opts.Runs,
			Seconds: time.Since(start).Seconds() / float64(opts.Runs), DevicePeakBytes: b.Memory().Peak, MaxRSSBytes: maxRSS()}
		_, t.HostPeakBytes = hp.stop()
		t.GFLOPS = train.StepFLOPs(cfg.UNet, n, side, side, ck) / t.Seconds / 1e9
		if ops != nil {
			s := ops.Stats()
			t.Ops = &s
		}
		rep.Timings = append(rep.Timings, t)
		fmt.Fprintf(w, "train step, checkpointing %-5t %8.2f s (%.0f GFLOP/s)  device peak %s, host heap peak %s, max RSS %s\n",
			ck, t.Seconds, t.GFLOPS, mib(t.DevicePeakBytes), mib(t.HostPeakBytes), mib(t.MaxRSSBytes))
		if t.Ops != nil {
			t.Ops.WriteTable(w, fmt.Sprintf("train step, checkpointing %t, %d step(s), %.2f s wall", ck, t.Runs, t.Seconds*float64(t.Runs)), false)
		}
	}
	rep.WriteTable(w)
	return rep, nil
}

// WriteTable writes the training report as an aligned table.
func (rep TrainReport) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s (%s), LoRA %d values\n", rep.Backend, rep.Device, rep.LoRAParams)
	fmt.Fprintln(tw, "checkpointing\tsize\tbatch\trank\ts/step\tGFLOP/s\tdevice peak\thost heap peak\tmax RSS")
	for _, t := range rep.Timings {
		fmt.Fprintf(tw, "%t\t%d²\t%d\t%d\t%.2f\t%.0f\t%s\t%s\t%s\n", t.Checkpointing, t.Size, t.Batch, t.Rank, t.Seconds, t.GFLOPS,
			mib(t.DevicePeakBytes), mib(t.HostPeakBytes), mib(t.MaxRSSBytes))
	}
	tw.Flush()
}
