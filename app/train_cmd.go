package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"lorastudio/app/studio"
)

// trainUsage is printed by `lorastudio train --help` and on a bad line.
const trainUsage = `Usage: lorastudio train --dataset DIR [--model PATH] [--out FILE.safetensors] [flags]
       lorastudio train --resume RUN [--device D]

Trains an SDXL LoRA on a dataset folder (images/ + captions/, or images with
.txt captions beside them in kohya N_name repeat folders). The pre-flight
report is printed first; Ctrl+C saves a resumable checkpoint and exits 130.
Runs are recorded: see 'lorastudio runs list'.

Input and output:
  --dataset DIR          the dataset folder
  --model PATH           SDXL diffusers folder or .safetensors checkpoint
                         (default: the configured model, else the demo model)
  --out PATH             the LoRA file (a folder with --format peft)
                         (default: <data-dir>/runs/<id>-<name>/<name>.safetensors)
  --name NAME            the run's name (default: the output's or dataset's name)
  --format F             kohya (A1111, ComfyUI, Civitai), peft (save_pretrained folder)
                         or diffusers (default kohya)
  --save-precision P     fp16 or fp32 (default fp16)
  --device D             auto, cpu or gl (default auto)
  --allow-uncaptioned    train images without a caption on an empty one
  --check                print the pre-flight report and exit
  --resume RUN           continue a stopped run (its id, or its folder)
  --data-dir DIR         where the database, runs and caches live

LoRA:
  --rank N               adapter rank (8)
  --alpha X              alpha; the scale is alpha/rank (16)
  --targets T            attn (to_q,to_k,to_v,to_out.0), attn-mlp (+ proj_in, proj_out,
                         ff.net.0.proj, ff.net.2) or a comma-separated list (attn)
  --init I               kohya or gaussian (kohya)
  --dropout P            LoRA dropout (0)

Optimizer:
  --lr X                 learning rate (1e-4)
  --scheduler S          constant, linear or cosine (constant)
  --warmup N             warm-up steps (0)
  --steps N              optimizer steps (default: --epochs epochs)
  --epochs N             epochs when --steps is 0 (10)
  --batch N              batch size (1)
  --grad-accum N         micro-batches per optimizer step (1)
  --max-grad-norm X      gradient clipping, 0 = off (1)
  --weight-decay X       AdamW weight decay (0.01)
  --min-snr-gamma X      min-SNR loss weighting, 0 = off (0)
  --noise-offset X       noise offset, 0 = off (0)
  --seed N               the seed of weights, data order and noise (42)
  --no-checkpointing     keep activations instead of recomputing them (faster, more memory)

Data:
  --resolution N         training resolution; buckets keep area <= N² (1024)
  --no-buckets           train every image as one N×N square
  --random-crop          crop at random instead of the centre
  --flip                 mirror half of the samples
  --caption-dropout P    probability of training a sample with an empty caption (0)
  --shuffle-tags         shuffle comma-separated tags
  --keep-tags N          tags kept in front when shuffling (0)

Checkpoints and samples:
  --save-every N         a numbered LoRA and a resumable state every N steps (500)
  --sample-every N       sample images every N steps, 0 = never (500)
  --sample-prompt TEXT   a sample prompt; repeatable (default: two captions of the dataset)
  --sample-steps N       sampling steps of a sample image (25)
  --sample-size N        side of the sample images (default: the resolution)
  --log-every N          with output to a pipe, one line every N steps (default: about 50 lines a run)

Exit status: 0 ok, 1 the training failed, 2 bad command line, 130 interrupted (resumable).
`

// stringList collects a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ", ") }

func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// float32Flag is a float32 flag.
type float32Flag struct{ p *float32 }

func (f float32Flag) String() string {
	if f.p == nil {
		return "0"
	}
	return fmt.Sprint(*f.p)
}

func (f float32Flag) Set(s string) error {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return errors.New("want a number")
	}
	*f.p = float32(v)
	return nil
}

// trainArgs is a parsed train command line.
type trainArgs struct {
	req      studio.TrainRequest
	dataDir  string
	check    bool
	resume   string
	logEvery int
}

// resumeFlags are the flags --resume may be combined with: the run keeps
// every other setting.
var resumeFlags = map[string]bool{"resume": true, "device": true, "data-dir": true, "check": true, "log-every": true}

// parseTrainArgs parses the command line into a request (no files touched).
func parseTrainArgs(args []string, stderr io.Writer) (trainArgs, error) {
	a := trainArgs{req: studio.TrainRequest{Config: studio.DefaultTrainConfig()}}
	c := &a.req.Config
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var prompts stringList
	noCheckpointing := false
	fs.StringVar(&a.req.Dataset, "dataset", "", "")
	fs.StringVar(&a.req.Model, "model", "", "")
	fs.StringVar(&a.req.Out, "out", "", "")
	fs.StringVar(&a.req.Name, "name", "", "")
	fs.StringVar(&c.Format, "format", c.Format, "")
	fs.StringVar(&c.SavePrecision, "save-precision", c.SavePrecision, "")
	fs.StringVar(&a.req.Device, "device", "auto", "")
	fs.BoolVar(&a.req.AllowUncaptioned, "allow-uncaptioned", false, "")
	fs.BoolVar(&a.check, "check", false, "")
	fs.StringVar(&a.resume, "resume", "", "")
	fs.StringVar(&a.dataDir, "data-dir", "", "")
	fs.IntVar(&c.Rank, "rank", c.Rank, "")
	fs.Var(float32Flag{&c.Alpha}, "alpha", "")
	fs.StringVar(&c.Targets, "targets", c.Targets, "")
	fs.StringVar(&c.Init, "init", c.Init, "")
	fs.Var(float32Flag{&c.Dropout}, "dropout", "")
	fs.Float64Var(&c.LR, "lr", c.LR, "")
	fs.StringVar(&c.Scheduler, "scheduler", c.Scheduler, "")
	fs.IntVar(&c.WarmupSteps, "warmup", c.WarmupSteps, "")
	fs.IntVar(&c.MaxSteps, "steps", c.MaxSteps, "")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "")
	fs.IntVar(&c.Batch, "batch", c.Batch, "")
	fs.IntVar(&c.GradAccum, "grad-accum", c.GradAccum, "")
	fs.Float64Var(&c.MaxGradNorm, "max-grad-norm", c.MaxGradNorm, "")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "")
	fs.Float64Var(&c.MinSNRGamma, "min-snr-gamma", c.MinSNRGamma, "")
	fs.Float64Var(&c.NoiseOffset, "noise-offset", c.NoiseOffset, "")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "")
	fs.BoolVar(&noCheckpointing, "no-checkpointing", false, "")
	fs.IntVar(&c.Data.Resolution, "resolution", c.Data.Resolution, "")
	fs.BoolVar(&c.Data.NoBuckets, "no-buckets", false, "")
	fs.BoolVar(&c.Data.RandomCrop, "random-crop", false, "")
	fs.BoolVar(&c.Data.Flip, "flip", false, "")
	fs.Float64Var(&c.Data.CaptionDropout, "caption-dropout", c.Data.CaptionDropout, "")
	fs.BoolVar(&c.Data.ShuffleTags, "shuffle-tags", false, "")
	fs.IntVar(&c.Data.KeepTags, "keep-tags", c.Data.KeepTags, "")
	fs.IntVar(&c.SaveEvery, "save-every", c.SaveEvery, "")
	fs.IntVar(&c.SampleEvery, "sample-every", c.SampleEvery, "")
	fs.Var(&prompts, "sample-prompt", "")
	fs.IntVar(&c.SampleSteps, "sample-steps", c.SampleSteps, "")
	fs.IntVar(&c.SampleSize, "sample-size", c.SampleSize, "")
	fs.IntVar(&a.logEvery, "log-every", 0, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, trainUsage)
			return a, err
		}
		return a, usageError("train: %v (see 'lorastudio train --help')", err)
	}
	if fs.NArg() > 0 {
		return a, usageError("train: unexpected argument %q (the dataset is given with --dataset)", fs.Arg(0))
	}
	if a.logEvery < 0 {
		return a, usageError("train: --log-every %d: want 1 or more", a.logEvery)
	}
	if a.resume != "" {
		var extra []string
		fs.Visit(func(f *flag.Flag) {
			if !resumeFlags[f.Name] {
				extra = append(extra, "--"+f.Name)
			}
		})
		if len(extra) > 0 {
			return a, usageError("train: --resume continues a run with its own settings; drop %s", strings.Join(extra, ", "))
		}
		return a, nil
	}
	if a.req.Dataset == "" {
		return a, usageError("train: --dataset DIR is required (see 'lorastudio train --help')")
	}
	c.GradientCheckpointing = !noCheckpointing
	// Buckets span 256..2048 px at 1024²; a smaller or larger --resolution
	// widens the range to include it rather than being refused.
	if r := c.Data.Resolution; r > 0 {
		c.Data.MinSide = min(c.Data.MinSide, r)
		c.Data.MaxSide = max(c.Data.MaxSide, r)
	}
	c.SamplePrompts = prompts
	if err := c.Validate(); err != nil {
		return a, usageError("train: %v", strings.TrimPrefix(err.Error(), "train: "))
	}
	return a, nil
}

// trainCommand runs `lorastudio train`. The first Ctrl+C stops the run
// after the current step with a resumable checkpoint and exits 130; a second
// one kills the process at once (every file is written atomically, so the
// last checkpoint stays whole).
func trainCommand(args []string, stdout, stderr io.Writer) error {
	if sub, rest, ok := trainSubcommand(args); ok { // train export | import: train_export_cmd.go
		return sub(rest, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	res, err := trainRun(ctx, args, stdout, stderr)
	if err != nil && errors.Is(err, errInterrupted) {
		stop()
		if res.Steps == 0 {
			fmt.Fprintf(stderr, "lorastudio: train: interrupted before the first step")
		} else {
			fmt.Fprintf(stderr, "lorastudio: train: interrupted at step %d; checkpoint saved", res.Steps)
			if res.Checkpoint != "" {
				fmt.Fprintf(stderr, " (%s)", res.Checkpoint)
			}
		}
		fmt.Fprintf(stderr, "\nresume with: lorastudio train --resume %d\n", res.RunID)
		exitProcess(exitInterrupted)
		return nil
	}
	return err
}

// errInterrupted is trainRun's error when Ctrl+C stopped the run.
var errInterrupted = errors.New("interrupted")

// trainRun is trainCommand under a cancellable context.
func trainRun(ctx context.Context, args []string, stdout, stderr io.Writer) (studio.TrainResult, error) {
	a, err := parseTrainArgs(args, stderr)
	if err != nil {
		return studio.TrainResult{}, err
	}
	st, err := openStudio(a.dataDir)
	if err != nil {
		return studio.TrainResult{}, err
	}
	defer st.Close()
	var plan *studio.TrainPlan
	var resume *studio.ResumeRequest
	var run func() (studio.TrainResult, error)
	if a.resume != "" {
		id, err := st.FindRun(a.resume)
		if err != nil {
			return studio.TrainResult{}, trainError(err)
		}
		resume = &studio.ResumeRequest{RunID: id, Device: a.req.Device}
		p, r, err := st.PlanResume(*resume)
		if err != nil {
			return studio.TrainResult{RunID: id}, trainError(err)
		}
		plan = p
		fmt.Fprintf(stderr, "resuming run %d (%s) at step %d of %d\n", r.ID, r.Name, r.StepsDone, r.StepsTotal)
		run = func() (studio.TrainResult, error) {
			return st.ResumePlanned(ctx, p, r, trainProgress(stderr, isTerminal(stderr), a.logEvery))
		}
	} else {
		p, err := st.PlanTrain(a.req)
		if err != nil {
			return studio.TrainResult{}, trainError(err)
		}
		plan = p
		run = func() (studio.TrainResult, error) {
			return st.Train(ctx, p, trainProgress(stderr, isTerminal(stderr), a.logEvery))
		}
	}
	if plan.IsDemo {
		fmt.Fprintln(stderr, "using the demo model (random weights): pass --model PATH to train a real LoRA")
	}
	fmt.Fprint(stdout, plan.Describe())
	if a.check {
		plan.Close()
		return studio.TrainResult{}, nil
	}
	res, err := run()
	if err != nil {
		if ctx.Err() != nil && res.Status == studio.RunStopped {
			return res, errInterrupted
		}
		return res, trainError(err)
	}
	fmt.Fprintf(stdout, "run: %d (%s)\nsteps: %d\nloss: %.6g\noutput: %s\n", res.RunID, res.RunDir, res.Steps, res.Loss, res.Output)
	return res, nil
}

// trainError makes a request error a usage-free failure (exit 1) that
// names the file, and prefixes the command.
func trainError(err error) error {
	return fmt.Errorf("train: %s", strings.TrimPrefix(err.Error(), studio.ErrInvalidTrain.Error()+": "))
}

// trainProgress reports a run's events on w: on a terminal one progress
// line redrawn in place (step/total, smoothed loss, learning rate, it/s,
// ETA); on a pipe one line every logEvery steps (0: about 50 lines a run),
// and a line for each sample, checkpoint and stage.
func trainProgress(w io.Writer, tty bool, logEvery int) func(studio.TrainEvent) {
	drawn := false // a progress line is on screen, unterminated
	endLine := func() {
		if drawn {
			fmt.Fprintln(w)
			drawn = false
		}
	}
	return func(e studio.TrainEvent) {
		switch e.Kind {
		case studio.TrainStep:
			every := logEvery
			if every == 0 {
				every = max(1, e.Total/50)
			}
			line := fmt.Sprintf("step %d/%d  loss %.4f  lr %.3g  %.2f it/s  ETA %s", e.Step, e.Total, e.SmoothLoss, e.LR, e.ItPerSec, formatETA(e.ETA))
			if tty {
				const width = 24
				n := width * e.Step / max(e.Total, 1)
				fmt.Fprintf(w, "\r[%s%s] %s ", strings.Repeat("#", n), strings.Repeat(".", width-n), line)
				drawn = true
				if e.Step == e.Total {
					endLine()
				}
				return
			}
			if e.Step%every == 0 || e.Step == e.Total || e.Step == 1 {
				fmt.Fprintln(w, line)
			}
		case studio.TrainPreparing:
			endLine()
			fmt.Fprintln(w, e.Message)
		case studio.TrainSample:
			endLine()
			fmt.Fprintf(w, "sample at step %d: %s\n", e.Step, e.Path)
		case studio.TrainCheckpoint:
			endLine()
			fmt.Fprintf(w, "checkpoint at step %d: %s\n", e.Step, e.Path)
		case studio.TrainFailed:
			endLine()
		case studio.TrainDone, studio.TrainStopped:
			endLine()
		}
	}
}

// formatETA prints a duration as h:mm:ss or m:ss.
func formatETA(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
