package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"lorastudio/engine/lora"
	"lorastudio/engine/sched"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/train/dataset"
	"lorastudio/engine/train/optim"
	"lorastudio/engine/unet"
)

// Run trains a LoRA on src's UNet with imgs and cfg, in runDir (checkpoints,
// samples; see state.go), reporting progress through events (which may be
// nil). Cancelling ctx stops the run after the current step: it saves a
// resumable checkpoint and returns ErrStopped. With resume it continues
// from runDir's newest readable state, refusing one made with another
// model, dataset or settings (the error says what differs); without it, a
// runDir that already holds a state is refused.
//
// A run is a pure function of (cfg, imgs, model): the data order comes from
// dataset.Plan(seed, epoch), each micro-batch's latent sample, noise,
// timesteps, caption choices and dropout masks from (seed, micro-batch
// number), so a stopped and resumed run follows the curve of the
// uninterrupted one bit for bit.
func Run(ctx context.Context, be tensor.Backend, src *sdxl.Source, imgs []dataset.Image, cfg Config, runDir string, resume bool, events func(Event)) (Result, error) {
	return run(ctx, be, src, imgs, cfg, runDir, resume, events, false, Options{})
}

// run is Run; with fixedDraws every micro-batch draws what micro-batch 0
// draws (the same timesteps and noise), for the overfitting test.
func run(ctx context.Context, be tensor.Backend, src *sdxl.Source, imgs []dataset.Image, cfg Config, runDir string, resume bool, events func(Event), fixedDraws bool, opts Options) (Result, error) {
	if events == nil {
		events = func(Event) {}
	}
	r := &runner{ctx: ctx, be: be, src: src, imgs: imgs, cfg: cfg, dir: runDir, emit: events, fixedDraws: fixedDraws, requests: opts.Requests}
	res, err := r.run(resume)
	r.free()
	if err != nil && !errors.Is(err, ErrStopped) {
		events(Event{Kind: Failed, Step: r.step, Total: r.total, Message: err.Error()})
	}
	return res, err
}

// runner is one session of a run.
type runner struct {
	ctx  context.Context
	be   tensor.Backend
	src  *sdxl.Source
	imgs []dataset.Image
	cfg  Config
	dir  string
	emit func(Event)
	// fixedDraws makes every micro-batch draw as micro-batch 0 does.
	fixedDraws bool
	// requests carries Save now / Sample now (requests.go); nil once closed.
	requests <-chan Request

	id       identity
	obj      *objective
	schedule optim.Schedule
	model    *unet.Model
	net      *lora.Network
	opt      *optim.AdamW
	feed     *feeder
	params   [][]float32 // host master copy of the LoRA weights (network order)
	names    []string

	sizes       []dataset.Size // the images' sizes (zero: unreadable, skipped)
	perEpoch    int            // micro-batches in one epoch
	plans       map[int][]dataset.Batch
	step, total int
	loss        float64
	smooth      float64
	haveSmooth  bool
	startedAt   string
	lastState   string // the newest complete state file
	lastLoRA    string // its LoRA file
	samples     []string
	sampledAt   int       // the step whose samples were rendered last (0: none)
	sessionFrom int       // the step this session started at
	sessionT0   time.Time // when its first step started
}

func (r *runner) free() {
	if r.feed != nil {
		r.feed.free()
	}
	if r.net != nil {
		r.net.Free()
	}
	if r.model != nil {
		r.model.FreeCache()
		r.model.Free()
	}
}

func (r *runner) preparing(msg string) { r.emit(Event{Kind: Preparing, Total: r.total, Message: msg}) }

func (r *runner) run(resume bool) (Result, error) {
	cfg := r.cfg
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if r.be == nil || r.src == nil {
		return Result{}, errors.New("train: no backend or model")
	}
	netCfg, err := cfg.Network()
	if err != nil {
		return Result{}, err
	}
	if err := r.prepareDirs(resume); err != nil {
		return Result{}, err
	}
	if r.id, err = newIdentity(cfg, r.src, r.imgs); err != nil {
		return Result{}, err
	}
	if resume {
		if err := r.checkResume(); err != nil {
			return Result{}, err
		}
	}
	if r.obj, err = newObjective(schedulerConfig(r.src.Config()), cfg.MinSNRGamma, cfg.NoiseOffset); err != nil {
		return Result{}, fmt.Errorf("%s: %w", r.src.Path(), err)
	}
	r.plans = map[int][]dataset.Batch{}
	first, err := r.plan(0)
	if err != nil {
		return Result{}, err
	}
	r.perEpoch = len(first)
	r.total = totalSteps(cfg, r.perEpoch)
	r.schedule = optim.Schedule{Kind: cfg.Scheduler, Warmup: cfg.WarmupSteps, Total: r.total, Base: cfg.LR}

	plans, err := r.allPlans()
	if err != nil {
		return Result{}, err
	}
	r.preparing("encoding the dataset (latents and captions)")
	if r.feed, err = newFeeder(r.ctx, r.be, r.src, r.imgs, cfg, r.dir, r.id, plans, r.preparing); err != nil {
		if r.ctx.Err() != nil {
			r.emit(Event{Kind: Stopped, Total: r.total, Message: "stopped while preparing the caches"})
			return Result{}, ErrStopped
		}
		return Result{}, err
	}

	r.preparing("loading the UNet")
	if r.model, err = unet.Load(r.be, r.src.Config().UNet, fp16Weights{r.src.Weights(sdxl.UNet)}); err != nil {
		return Result{}, fmt.Errorf("train: %s: %w", r.src.Path(), err)
	}
	r.model.Checkpoint = cfg.GradientCheckpointing
	r.model.NoInputGrads = true // the latents and text embeddings are cached inputs: no gradient wanted
	if r.net, err = lora.NewNetwork(r.be, r.model.Linears(), netCfg, cfg.Seed); err != nil {
		return Result{}, fmt.Errorf("train: %w", err)
	}
	if r.params, err = r.net.Values(); err != nil {
		return Result{}, fmt.Errorf("train: %w", err)
	}
	sizes := make([]int, len(r.params))
	for i, p := range r.params {
		sizes[i] = len(p)
	}
	for _, p := range r.net.Params() {
		r.names = append(r.names, p.Name)
	}
	r.opt = optim.NewAdamW(cfg.AdamW(), sizes)
	r.startedAt = time.Now().UTC().Format(time.RFC3339)
	if resume {
		if err := r.restore(); err != nil {
			return Result{}, err
		}
	}
	return r.loop()
}

// prepareDirs creates the run directory and checks that the output can be
// written, before any weight is loaded.
func (r *runner) prepareDirs(resume bool) error {
	for _, d := range []string{r.dir, filepath.Join(r.dir, checkpointDir), filepath.Join(r.dir, samplesDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("train: run folder: %w", err)
		}
	}
	if !resume {
		steps, err := stateFiles(r.dir)
		if err != nil {
			return err
		}
		if len(steps) > 0 {
			return fmt.Errorf("train: %s already holds a checkpoint at step %d: resume it or choose another run folder", r.dir, steps[0])
		}
	}
	out := r.output()
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: output %s: %w", out, err)
	}
	f, err := os.CreateTemp(dir, ".lorastudio-write-test-*")
	if err != nil {
		return fmt.Errorf("train: output %s: the folder cannot be written: %w", out, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// output is where the final LoRA goes.
func (r *runner) output() string {
	if r.cfg.Output != "" {
		return r.cfg.Output
	}
	if r.cfg.Format == "peft" {
		return filepath.Join(r.dir, "lora")
	}
	return filepath.Join(r.dir, "lora.safetensors")
}

// schedulerConfig converts the model's scheduler config to engine/sched's.
func schedulerConfig(c sdxl.Config) sched.Config {
	out := sched.SDXLConfig()
	if raw := c.Scheduler.Raw; raw != nil {
		if data, err := json.Marshal(raw); err == nil {
			if p, err := sched.ParseConfig(data); err == nil {
				return p
			}
		}
	}
	out.NumTrainTimesteps = c.Scheduler.NumTrainTimesteps
	out.BetaStart, out.BetaEnd, out.BetaSchedule = c.Scheduler.BetaStart, c.Scheduler.BetaEnd, c.Scheduler.BetaSchedule
	out.PredictionType = c.Scheduler.PredictionType
	return out
}

// totalSteps is the number of optimizer steps of a run: MaxSteps, else
// Epochs epochs of perEpoch micro-batches, GradAccum a step.
func totalSteps(cfg Config, perEpoch int) int {
	if cfg.MaxSteps > 0 {
		return cfg.MaxSteps
	}
	return (cfg.Epochs*perEpoch + cfg.GradAccum - 1) / cfg.GradAccum
}

// plan returns (and remembers) the batches of epoch e.
func (r *runner) plan(e int) ([]dataset.Batch, error) {
	if p, ok := r.plans[e]; ok {
		return p, nil
	}
	if r.sizes == nil {
		r.sizes = dataset.ProbeSizes(r.imgs) // once: every epoch's plan needs them
	}
	p, err := dataset.PlanSizes(r.imgs, r.sizes, r.cfg.Data, r.cfg.Batch, r.cfg.Seed, e)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if r.perEpoch != 0 && len(p) != r.perEpoch {
		return nil, fmt.Errorf("train: epoch %d has %d batches, epoch 0 had %d (did the dataset change?)", e, len(p), r.perEpoch)
	}
	for k := range r.plans { // keep two epochs at most
		if k < e-1 {
			delete(r.plans, k)
		}
	}
	r.plans[e] = p
	return p, nil
}

// allPlans returns the plan of every epoch the run will touch, for the
// caches.
func (r *runner) allPlans() ([][]dataset.Batch, error) {
	last := (r.total*r.cfg.GradAccum - 1) / max(1, r.perEpoch)
	out := make([][]dataset.Batch, 0, last+1)
	for e := 0; e <= last; e++ {
		p, err := r.plan(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// checkResume refuses, before anything is encoded or loaded, to resume a
// state of another run (the newest state whose metadata can be read).
func (r *runner) checkResume() error {
	steps, err := stateFiles(r.dir)
	if err != nil {
		return err
	}
	for _, step := range steps {
		p := statePath(r.dir, step)
		s, err := readStateMeta(p)
		if err != nil {
			continue // restore reports it and falls back
		}
		if d := s.mismatch(r.cfg, r.id); d != "" {
			return fmt.Errorf("train: cannot resume %s: it is another run (%s)", p, d)
		}
		return nil
	}
	return nil
}

// restore loads runDir's newest state into the network and the optimizer.
// A run stopped before its first step has no state: it starts over.
func (r *runner) restore() error {
	if steps, err := stateFiles(r.dir); err != nil {
		return err
	} else if len(steps) == 0 {
		r.preparing("no checkpoint yet in " + r.dir + ": starting at step 0")
		return nil
	}
	s, path, err := latestState(r.dir, r.names, func(p string, err error) {
		r.preparing(fmt.Sprintf("skipping the damaged checkpoint %s: %v", p, err))
	})
	if err != nil {
		return err
	}
	if d := s.mismatch(r.cfg, r.id); d != "" {
		return fmt.Errorf("train: cannot resume %s: it is another run (%s)", path, d)
	}
	if err := r.net.SetParams(s.params); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	if err := r.opt.Restore(s.optim); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	r.params = s.params
	r.step, r.loss, r.smooth, r.haveSmooth = s.Step, s.Loss, s.Smooth, s.Step > 0
	if s.StartedAt != "" {
		r.startedAt = s.StartedAt
	}
	r.lastState, r.lastLoRA = path, filepath.Join(r.dir, s.LoRA)
	r.preparing(fmt.Sprintf("resuming at step %d from %s", s.Step, path))
	return nil
}

// loop runs the optimizer steps.
func (r *runner) loop() (Result, error) {
	cfg := r.cfg
	r.sessionFrom, r.sessionT0 = r.step, time.Now()
	for r.step < r.total {
		if r.ctx.Err() != nil {
			return r.stop()
		}
		loss, err := r.trainStep()
		if err != nil {
			return r.result(""), err
		}
		r.step++
		r.loss = loss
		if !r.haveSmooth {
			r.smooth, r.haveSmooth = loss, true
		} else {
			r.smooth = 0.9*r.smooth + 0.1*loss
		}
		r.report()
		if cfg.SaveEvery > 0 && r.step%cfg.SaveEvery == 0 && r.step < r.total {
			if err := r.checkpoint(); err != nil {
				return r.result(""), err
			}
		}
		if cfg.SampleEvery > 0 && r.step%cfg.SampleEvery == 0 {
			if err := r.sample(); err != nil {
				if r.ctx.Err() != nil {
					return r.stop()
				}
				return r.result(""), err
			}
		}
		if err := r.serveRequests(); err != nil {
			if r.ctx.Err() != nil {
				return r.stop()
			}
			return r.result(""), err
		}
	}
	if r.lastState == "" || !samePath(r.lastState, statePath(r.dir, r.step)) {
		if err := r.checkpoint(); err != nil {
			return r.result(""), err
		}
	}
	out := r.output()
	if err := r.writeLoRA(out, true); err != nil {
		return r.result(""), err
	}
	r.emit(Event{Kind: Done, Step: r.step, Total: r.total, Epoch: r.epochOf(r.step), Loss: r.loss, SmoothLoss: r.smooth, Path: out})
	return r.result(out), nil
}

func samePath(a, b string) bool { return filepath.Clean(a) == filepath.Clean(b) }

// stop saves a resumable checkpoint and returns ErrStopped.
func (r *runner) stop() (Result, error) {
	if r.step > 0 && (r.lastState == "" || !samePath(r.lastState, statePath(r.dir, r.step))) {
		if err := r.checkpoint(); err != nil {
			return r.result(""), fmt.Errorf("train: stopping: %w", err)
		}
	}
	r.emit(Event{Kind: Stopped, Step: r.step, Total: r.total, Epoch: r.epochOf(r.step), Loss: r.loss, SmoothLoss: r.smooth, Path: r.lastLoRA})
	return r.result(""), ErrStopped
}

func (r *runner) result(out string) Result {
	return Result{Steps: r.step, Epoch: r.epochOf(max(r.step-1, 0)), Loss: r.loss, SmoothLoss: r.smooth,
		Output: out, Checkpoint: r.lastLoRA, State: r.lastState, Samples: r.samples}
}

// epochOf is the epoch of the first micro-batch of optimizer step s.
func (r *runner) epochOf(s int) int { return s * r.cfg.GradAccum / max(1, r.perEpoch) }

// report emits the Step event of the step just done.
func (r *runner) report() {
	done := r.step - r.sessionFrom
	el := time.Since(r.sessionT0).Seconds()
	ev := Event{Kind: Step, Step: r.step, Total: r.total, Epoch: r.epochOf(r.step - 1),
		Loss: r.loss, SmoothLoss: r.smooth, LR: r.schedule.LR(r.step - 1),
		DeviceBytes: r.be.Memory().InUse}
	if el > 0 {
		ev.ItPerSec = float64(done) / el
		ev.ETA = time.Duration(float64(r.total-r.step) / ev.ItPerSec * float64(time.Second))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ev.HostBytes = int64(ms.HeapInuse)
	r.emit(ev)
}

// lastGood names the last good checkpoint for error messages.
func (r *runner) lastGood() string {
	if r.lastState == "" {
		return "no checkpoint was written yet"
	}
	return "the last good checkpoint is " + r.lastLoRA + " (state " + r.lastState + ")"
}

// trainStep runs GradAccum micro-batches and one optimizer step, returning
// the step's loss (the mean over its micro-batches).
func (r *runner) trainStep() (float64, error) {
	cfg := r.cfg
	var loss float64
	for a := range cfg.GradAccum {
		k := r.step*cfg.GradAccum + a
		l, err := r.micro(k)
		if err != nil {
			r.net.ZeroGrad()
			return 0, err
		}
		loss += float64(l)
	}
	grads, err := r.net.Grads()
	r.net.ZeroGrad()
	if err != nil {
		return 0, fmt.Errorf("train: step %d: %w", r.step+1, err)
	}
	norm := optim.ClipGradNorm(grads, cfg.MaxGradNorm)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return 0, fmt.Errorf("train: step %d: the gradient norm is %v; stopped, %s", r.step+1, norm, r.lastGood())
	}
	if err := r.opt.Step(r.params, grads, r.schedule.LR(r.step)); err != nil {
		return 0, fmt.Errorf("train: step %d: %w", r.step+1, err)
	}
	if err := r.net.SetParams(r.params); err != nil {
		return 0, fmt.Errorf("train: step %d: %w", r.step+1, err)
	}
	return loss, nil
}

// micro runs forward and backward of micro-batch k (the gradients add up in
// the network) and returns its loss, already divided by GradAccum.
func (r *runner) micro(k int) (float32, error) {
	cfg := r.cfg
	epoch, pos := k/r.perEpoch, k%r.perEpoch
	plan, err := r.plan(epoch)
	if err != nil {
		return 0, err
	}
	batch := plan[pos]
	in, err := r.feed.batch(batch, k)
	if err != nil {
		return 0, fmt.Errorf("train: step %d: %w", r.step+1, err)
	}
	b, c, h, w := in.shape[0], in.shape[1], in.shape[2], in.shape[3]
	dk := k
	if r.fixedDraws {
		dk = 0
	}
	d := r.obj.draw(cfg.Seed, dk, b, c, h, w)
	x0 := make([]float32, len(in.mean)) // (B, C, h, w) latent_dist.sample() · scaling_factor
	sf := in.scale
	for i := range x0 {
		x0[i] = (in.mean[i] + in.std[i]*d.latent[i]) * sf
	}
	noisy, target, err := r.obj.inputs(x0, d)
	if err != nil {
		return 0, err
	}
	ts := make([]float32, b)
	for i, t := range d.timesteps {
		ts[i] = float32(t)
	}
	var tens []*tensor.Tensor
	defer func() { tensor.FreeAll(tens...) }()
	up := func(v []float32, shape tensor.Shape) (*tensor.Tensor, error) {
		t, err := r.be.Upload(v, shape, tensor.F32)
		if err == nil {
			tens = append(tens, t)
		}
		return t, err
	}
	sample, err := up(noisy, tensor.Shape{b, c, h, w})
	if err != nil {
		return 0, err
	}
	hidden, err := up(in.hidden, in.hiddenShape)
	if err != nil {
		return 0, err
	}
	pooled, err := up(in.pooled, in.pooledShape)
	if err != nil {
		return 0, err
	}
	timeIDs, err := up(in.timeIDs, tensor.Shape{b, 6})
	if err != nil {
		return 0, err
	}
	r.net.Train(true)
	r.net.SetDropoutSeed(cfg.Seed, k)
	pred, err := r.model.ForwardTrain(sample, ts, hidden, pooled, timeIDs) // (B, C, h, w)
	if err != nil {
		return 0, fmt.Errorf("train: step %d: %w", r.step+1, err)
	}
	tens = append(tens, pred)
	pv, err := r.be.Download(pred)
	if err != nil {
		r.model.FreeCache()
		return 0, err
	}
	loss, dpred := r.obj.loss(pv, target, d.timesteps, cfg.GradAccum)
	if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
		r.model.FreeCache()
		return 0, fmt.Errorf("train: step %d: the loss is %v; stopped, %s", r.step+1, loss, r.lastGood())
	}
	dp, err := up(dpred, tensor.Shape{b, c, h, w})
	if err != nil {
		r.model.FreeCache()
		return 0, err
	}
	dsample, dcontext, err := r.model.Backward(dp) // both nil: NoInputGrads
	r.model.FreeCache()
	tensor.FreeAll(dsample, dcontext)
	if err != nil {
		return 0, fmt.Errorf("train: step %d: %w", r.step+1, err)
	}
	return loss, nil
}
