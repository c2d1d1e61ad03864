// Package sdxlbench measures the full-size SDXL base 1.0 components on a
// backend with random weights (nothing to download): host and device peak
// memory while loading each component, seconds per UNet forward per image
// size and batch (batch 2 is one classifier-free-guidance step), VAE decode
// time (tiled where one pass would exceed the backend's per-tensor limit)
// and text-encoding time. Weights are made on demand one tensor at a time
// as fp16 (RandomSource), so no fp32 copy of the model exists on the host.
//
// It is not run by `go test ./...`: the benchmark in this package runs only
// with LORASTUDIO_BENCH_SDXL=1, and `lorastudio bench sdxl` calls Run.
package sdxlbench

import (
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"lorastudio/engine/clip"
	"lorastudio/engine/nn"
	"lorastudio/engine/opstats"
	"lorastudio/engine/rng"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
	"lorastudio/engine/unet"
	"lorastudio/engine/vae"
)

// Options choose what Run measures. The zero value measures everything of
// SDXL base 1.0 at 1024² and 512², batches 1 and 2, one timed run each.
type Options struct {
	// Sizes are the square image sides (pixels) the UNet and the VAE are
	// timed at, each a multiple of 8 × the UNet's down factor; default
	// {1024, 512}.
	Sizes []int
	// Batch is the UNet batch timed: 0 times batch 1 and batch 2 (one CFG
	// step, cond and uncond together); another value times only it.
	Batch int
	// Components lists what to load and time, from sdxl.Components ("unet",
	// "vae", "text_encoder", "text_encoder_2"); empty means all. The text
	// encoders are timed together (SDXL's prompt encoding) when both are
	// listed, else each alone.
	Components []string
	// Runs is how many timed runs each case averages; default 1.
	Runs int
	// Warmup runs every component once, untimed, at the smallest size before
	// timing it (the GL backend compiles its kernels on first use).
	Warmup bool
	// MaxTensorBytes is the largest tensor the backend takes in one binding;
	// a VAE decode whose largest activation exceeds it is tiled
	// (vae.TilingWithin). 0 asks the backend (GL: its shader-storage
	// binding limit) and takes 1 GiB otherwise.
	MaxTensorBytes int64
	// Config is the model measured; nil means sdxl.SDXLBase() (tests pass
	// a tiny one).
	Config *sdxl.Config
	// Seed seeds the random weights and inputs; 0 means 1.
	Seed uint64
	// OpStats times every op through engine/opstats and reports the per-kind
	// breakdown with each timing. On an asynchronous backend (GL) it syncs
	// after every op, which serialises the queue and slows the totals.
	OpStats bool
}

// Load is what loading one component cost.
type Load struct {
	Component string  `json:"component"`
	Params    int64   `json:"params"`
	Seconds   float64 `json:"seconds"`
	// HostPeakBytes is the most Go heap in use while loading (sampled),
	// HostBaseBytes the heap in use before; with the CPU backend the weights
	// themselves live on the Go heap.
	HostPeakBytes int64 `json:"host_peak_bytes"`
	HostBaseBytes int64 `json:"host_base_bytes"`
	// MaxRSSBytes is the process's peak resident size so far (getrusage;
	// 0 where unavailable). It only grows, so it bounds this load and
	// everything before it.
	MaxRSSBytes int64 `json:"max_rss_bytes"`
	// DeviceInUseBytes are the component's weights on the device after
	// loading; DevicePeakBytes the backend's peak during the load.
	DeviceInUseBytes int64 `json:"device_in_use_bytes"`
	DevicePeakBytes  int64 `json:"device_peak_bytes"`
}

// Timing is one measured operation.
type Timing struct {
	Component string `json:"component"` // "unet", "vae" or "text_encoders" (or one encoder)
	What      string `json:"what"`      // "forward", "decode", "encode_prompt"
	Size      int    `json:"size,omitempty"`
	Batch     int    `json:"batch,omitempty"`
	// Seconds is the mean over Runs.
	Seconds float64 `json:"seconds"`
	Runs    int     `json:"runs"`
	// Tile is the tile side in pixels when the decode was tiled, else 0.
	Tile int `json:"tile,omitempty"`
	// DevicePeakBytes is the backend's peak during the runs (weights included).
	DevicePeakBytes int64 `json:"device_peak_bytes"`
	// Ops is the per-op breakdown of the timed runs (all Runs together),
	// present with Options.OpStats.
	Ops *opstats.Stats `json:"ops,omitempty"`
}

// Report is everything Run measured.
type Report struct {
	Backend string   `json:"backend"`
	Device  string   `json:"device"`
	Loads   []Load   `json:"loads"`
	Timings []Timing `json:"timings"`
}

// Run loads each chosen component of SDXL (random fp16 weights) onto b, one
// at a time, measures it as opts says, frees it, and returns the figures. It
// writes a line per measurement to w as it goes (nil: nowhere) and a table
// at the end.
func Run(b tensor.Backend, opts Options, w io.Writer) (Report, error) {
	if w == nil {
		w = io.Discard
	}
	r := &runner{b: b, w: w, opts: opts, rep: Report{Backend: b.Name(), Device: b.Device()}}
	if opts.OpStats {
		r.ops = opstats.New(b)
		r.b = r.ops
	}
	if err := r.setup(); err != nil {
		return r.rep, err
	}
	fmt.Fprintf(w, "SDXL components with random fp16 weights on %s (%s); sizes %v, batches %v\n", b.Name(), b.Device(), r.sizes, r.batches)
	if r.has(sdxl.TextEncoder) || r.has(sdxl.TextEncoder2) {
		if err := r.textEncoders(); err != nil {
			return r.rep, err
		}
	}
	if r.has(sdxl.UNet) {
		if err := r.unet(); err != nil {
			return r.rep, err
		}
	}
	if r.has(sdxl.VAE) {
		if err := r.vae(); err != nil {
			return r.rep, err
		}
	}
	r.rep.WriteTable(w)
	return r.rep, nil
}

type runner struct {
	b       tensor.Backend
	w       io.Writer
	opts    Options
	cfg     sdxl.Config
	sizes   []int
	batches []int
	comps   []string
	limit   int64
	rep     Report
	ops     *opstats.Backend // the timing wrapper r.b is, with Options.OpStats; else nil
}

func (r *runner) has(c string) bool { return slices.Contains(r.comps, c) }

// setup validates the options and fills in the defaults.
func (r *runner) setup() error {
	o := &r.opts
	r.cfg = sdxl.SDXLBase()
	if o.Config != nil {
		r.cfg = *o.Config
	}
	if err := r.cfg.Validate(); err != nil {
		return fmt.Errorf("sdxlbench: %v", err)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Runs <= 0 {
		o.Runs = 1
	}
	r.sizes = slices.Clone(o.Sizes)
	if len(r.sizes) == 0 {
		r.sizes = []int{1024, 512}
	}
	step := 8 << (len(r.cfg.UNet.BlockOutChannels) - 1)
	for _, s := range r.sizes {
		if s <= 0 || s%step != 0 {
			return fmt.Errorf("sdxlbench: size %d is not a positive multiple of %d", s, step)
		}
	}
	switch {
	case o.Batch == 0:
		r.batches = []int{1, 2}
	case o.Batch > 0:
		r.batches = []int{o.Batch}
	default:
		return fmt.Errorf("sdxlbench: batch %d must be positive (0: both 1 and 2)", o.Batch)
	}
	r.comps = slices.Clone(o.Components)
	if len(r.comps) == 0 {
		r.comps = slices.Clone(sdxl.Components)
	}
	for _, c := range r.comps {
		if !slices.Contains(sdxl.Components, c) {
			return fmt.Errorf("sdxlbench: unknown component %q (want unet, vae, text_encoder or text_encoder_2)", c)
		}
	}
	r.limit = o.MaxTensorBytes
	if r.limit <= 0 {
		r.limit = 1 << 30 // bounds host memory where the backend sets no limit
		if l := r.b.MaxTensorBytes(); l > 0 {
			r.limit = l
		}
	}
	return nil
}

// sync waits for the backend's queued work, where it queues.
func (r *runner) sync() error {
	if s, ok := r.b.(tensor.Syncer); ok {
		return s.Sync()
	}
	return nil
}

// load runs fn (which loads one component) and records its cost.
func (r *runner) load(comp string, fn func() error) error {
	ps, err := sdxl.ComponentParams(r.cfg, comp)
	if err != nil {
		return fmt.Errorf("sdxlbench: %v", err)
	}
	runtime.GC()
	r.b.ResetPeak()
	before := r.b.Memory().InUse
	hp := startHeapProbe()
	start := time.Now()
	err = fn()
	if err == nil {
		err = r.sync()
	}
	secs := time.Since(start).Seconds()
	base, peak := hp.stop()
	if err != nil {
		return fmt.Errorf("sdxlbench: loading %s: %w", comp, err)
	}
	m := r.b.Memory()
	l := Load{Component: comp, Params: sdxl.CountParams(ps), Seconds: secs, HostBaseBytes: base, HostPeakBytes: peak,
		MaxRSSBytes: maxRSS(), DeviceInUseBytes: m.InUse - before, DevicePeakBytes: m.Peak}
	r.rep.Loads = append(r.rep.Loads, l)
	fmt.Fprintf(r.w, "load %-14s %6.2f G params  %7.1f s  host heap peak %s (before %s), max RSS %s, device +%s (peak %s)\n",
		comp, float64(l.Params)/1e9, secs, mib(peak), mib(base), mib(l.MaxRSSBytes), mib(l.DeviceInUseBytes), mib(l.DevicePeakBytes))
	return nil
}

// time runs fn once untimed when warm, then Runs times, and records the mean.
func (r *runner) time(t Timing, warm bool, fn func() error) error {
	if warm {
		if err := fn(); err != nil {
			return err
		}
		if err := r.sync(); err != nil {
			return err
		}
	}
	if r.ops != nil {
		if err := r.ops.Reset(); err != nil {
			return err
		}
	}
	r.b.ResetPeak()
	start := time.Now()
	for range r.opts.Runs {
		if err := fn(); err != nil {
			return err
		}
	}
	if err := r.sync(); err != nil {
		return err
	}
	t.Seconds = time.Since(start).Seconds() / float64(r.opts.Runs)
	t.Runs = r.opts.Runs
	t.DevicePeakBytes = r.b.Memory().Peak
	r.rep.Timings = append(r.rep.Timings, t)
	desc := t.Component + " " + t.What
	if t.Size > 0 {
		desc += fmt.Sprintf(" %d²", t.Size)
	}
	if t.Batch > 0 {
		desc += fmt.Sprintf(" batch %d", t.Batch)
	}
	if t.Tile > 0 {
		desc += fmt.Sprintf(" (tiles of %d)", t.Tile)
	}
	fmt.Fprintf(r.w, "%-40s %8.2f s  device peak %s\n", desc, t.Seconds, mib(t.DevicePeakBytes))
	if r.ops != nil {
		s := r.ops.Stats()
		t.Ops = &s
		r.rep.Timings[len(r.rep.Timings)-1].Ops = &s
		s.WriteTable(r.w, fmt.Sprintf("%s, %d run(s), %.2f s wall", desc, t.Runs, t.Seconds*float64(t.Runs)), false)
	}
	return nil
}

// upload puts random normal values of the shape on the device.
func (r *runner) upload(g *rng.Generator, scale float32, shape ...int) (*tensor.Tensor, error) {
	v := g.Randn(tensor.Shape(shape).Numel())
	for i := range v {
		v[i] *= scale
	}
	return r.b.Upload(v, shape, tensor.F32)
}

// textEncoders loads the chosen text encoders and times SDXL's prompt
// encoding (both) or each encoder's forward (one).
func (r *runner) textEncoders() error {
	var models [2]*clip.TextModel
	defer func() {
		for _, m := range models {
			if m != nil {
				m.Free()
			}
		}
	}()
	for i, comp := range []string{sdxl.TextEncoder, sdxl.TextEncoder2} {
		if !r.has(comp) {
			continue
		}
		cfg := r.cfg.TextEncoder
		if i == 1 {
			cfg = r.cfg.TextEncoder2
		}
		ps, err := sdxl.CLIPTextParams(cfg)
		if err != nil {
			return fmt.Errorf("sdxlbench: %v", err)
		}
		src := RandomSource(ps, r.opts.Seed+uint64(i))
		if err := r.load(comp, func() (err error) {
			models[i], err = clip.Load(r.b, src, clip.Config(cfg))
			return err
		}); err != nil {
			return err
		}
	}
	tok1, err := tokenizer.Embedded(tokenizer.DefaultConfig())
	if err != nil {
		return err
	}
	tok2, err := tokenizer.Embedded(tokenizer.Config{Pad: "!"})
	if err != nil {
		return err
	}
	const prompt = "a photograph of an astronaut riding a horse on the moon, highly detailed, 8k"
	if models[0] != nil && models[1] != nil {
		return r.time(Timing{Component: "text_encoders", What: "encode_prompt", Batch: 1}, r.opts.Warmup, func() error {
			pe, err := clip.EncodePrompt(models[0], models[1], tok1, tok2, prompt)
			if err != nil {
				return err
			}
			pe.Free()
			return nil
		})
	}
	for i, m := range models {
		if m == nil {
			continue
		}
		tok := tok1
		if i == 1 {
			tok = tok2
		}
		ids := tok.EncodePadded(prompt, tok.MaxLength())
		comp := []string{sdxl.TextEncoder, sdxl.TextEncoder2}[i]
		if err := r.time(Timing{Component: comp, What: "forward", Batch: 1}, r.opts.Warmup, func() error {
			o, err := m.Forward([][]int{ids}, clip.Options{})
			if err != nil {
				return err
			}
			o.Free()
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// unet loads the UNet and times a forward per size and batch.
func (r *runner) unet() error {
	ps, err := sdxl.UNetParams(r.cfg.UNet)
	if err != nil {
		return fmt.Errorf("sdxlbench: %v", err)
	}
	var m *unet.Model
	if err := r.load(sdxl.UNet, func() (err error) {
		m, err = unet.Load(r.b, r.cfg.UNet, RandomSource(ps, r.opts.Seed+10))
		return err
	}); err != nil {
		return err
	}
	defer m.Free()
	g := rng.New(r.opts.Seed)
	warm := r.opts.Warmup
	for _, size := range r.sizes {
		for _, n := range r.batches {
			side := size / 8
			x, err := r.upload(g, 1, n, r.cfg.UNet.InChannels, side, side)
			if err != nil {
				return err
			}
			ctx, err := r.upload(g, 1, n, 77, r.cfg.UNet.CrossAttentionDimAt(0))
			if err != nil {
				return err
			}
			text, err := r.upload(g, 1, n, m.TextEmbedsDim())
			if err != nil {
				return err
			}
			px := float32(size)
			ids := make([]float32, 0, 6*n)
			for range n {
				ids = append(ids, px, px, 0, 0, px, px)
			}
			tid, err := r.b.Upload(ids, tensor.Shape{n, 6}, tensor.F32)
			if err != nil {
				return err
			}
			err = r.time(Timing{Component: sdxl.UNet, What: "forward", Size: size, Batch: n}, warm, func() error {
				out, err := m.Forward(x, []float32{500}, ctx, text, tid)
				if err != nil {
					return err
				}
				out.Free()
				return nil
			})
			tensor.FreeAll(x, ctx, text, tid)
			if err != nil {
				return fmt.Errorf("sdxlbench: unet %d² batch %d: %w", size, n, err)
			}
			warm = false
		}
	}
	return nil
}

// vae loads the VAE and times a decode per size, tiled when one pass would
// exceed the tensor limit.
func (r *runner) vae() error {
	ps, err := sdxl.VAEParams(r.cfg.VAE)
	if err != nil {
		return fmt.Errorf("sdxlbench: %v", err)
	}
	var m *vae.AutoencoderKL
	if err := r.load(sdxl.VAE, func() (err error) {
		m, err = vae.Load(r.b, r.cfg.VAE, RandomSource(ps, r.opts.Seed+20))
		return err
	}); err != nil {
		return err
	}
	defer m.Free()
	g := rng.New(r.opts.Seed + 1)
	warm := r.opts.Warmup
	for _, size := range r.sizes {
		side := size / m.Factor()
		z, err := r.upload(g, 1/m.ScalingFactor(), 1, r.cfg.VAE.LatentChannels, side, side)
		if err != nil {
			return err
		}
		t := Timing{Component: sdxl.VAE, What: "decode", Size: size, Batch: 1}
		decode := m.Decode
		if vae.LargestActivation(r.cfg.VAE, size) > r.limit {
			tl, err := vae.TilingWithin(r.cfg.VAE, r.limit)
			if err != nil {
				z.Free()
				return err
			}
			t.Tile = tl.SampleSize
			decode = func(z *tensor.Tensor) (*tensor.Tensor, error) { return m.DecodeTiled(z, tl) }
		}
		err = r.time(t, warm, func() error {
			img, err := decode(z)
			if err != nil {
				return err
			}
			img.Free()
			return nil
		})
		z.Free()
		if err != nil {
			return fmt.Errorf("sdxlbench: vae decode %d²: %w", size, err)
		}
		warm = false
	}
	return nil
}

// WriteTable writes the report as two aligned tables.
func (rep Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s (%s)\n", rep.Backend, rep.Device)
	fmt.Fprintln(tw, "component\tparams\tload s\thost heap peak\tmax RSS\tdevice weights\tdevice peak")
	for _, l := range rep.Loads {
		fmt.Fprintf(tw, "%s\t%.3f G\t%.1f\t%s\t%s\t%s\t%s\n", l.Component, float64(l.Params)/1e9, l.Seconds,
			mib(l.HostPeakBytes), mib(l.MaxRSSBytes), mib(l.DeviceInUseBytes), mib(l.DevicePeakBytes))
	}
	fmt.Fprintln(tw, "\noperation\tsize\tbatch\ts/run\truns\tdevice peak")
	for _, t := range rep.Timings {
		size := "-"
		if t.Size > 0 {
			size = fmt.Sprintf("%d²", t.Size)
			if t.Tile > 0 {
				size += fmt.Sprintf(" (tiles %d)", t.Tile)
			}
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%d\t%.2f\t%d\t%s\n", t.Component, t.What, size, t.Batch, t.Seconds, t.Runs, mib(t.DevicePeakBytes))
	}
	tw.Flush()
}

// mib formats bytes as MiB.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// heapProbe samples the Go heap's live bytes while a load runs.
type heapProbe struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	base int64
	peak int64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() int64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// startHeapProbe starts sampling every 5 ms.
func startHeapProbe() *heapProbe {
	p := &heapProbe{done: make(chan struct{}), base: heapNow()}
	p.peak = p.base
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				p.note(heapNow())
			}
		}
	}()
	return p
}

func (p *heapProbe) note(v int64) {
	p.mu.Lock()
	p.peak = max(p.peak, v)
	p.mu.Unlock()
}

// stop ends the sampling and returns the heap before the load and its peak.
func (p *heapProbe) stop() (base, peak int64) {
	p.note(heapNow())
	close(p.done)
	p.wg.Wait()
	return p.base, p.peak
}

var _ nn.Float16Source = randomSource{}
