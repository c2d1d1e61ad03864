package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"lorastudio/app/studio"
)

// generateUsage is printed by `lorastudio generate --help` and on a bad line.
const generateUsage = `Usage: lorastudio generate --prompt TEXT --out FILE.png [flags]

Generates one image (a PNG with its parameters in an A1111 "parameters" text
chunk). An identical earlier request is copied from the cache at once.

Flags:
  --model PATH         SDXL diffusers folder or .safetensors checkpoint
                       (default: the configured model, else the demo model)
  --config DIR         diffusers folder with the configs for a single-file checkpoint
  --lora FILE[:WEIGHT] a LoRA file (kohya, diffusers) or peft folder; repeatable (weight 1)
  --prompt TEXT        the prompt
  --negative TEXT      the negative prompt (none when absent; --negative '' is the empty prompt)
  --steps N            sampling steps (25)
  --cfg X              classifier-free guidance scale (7)
  --sampler NAME       dpmpp_2m, dpmpp_2m_karras, euler or euler_a (dpmpp_2m)
  --size WxH           image size, multiples of 8 (1024x1024)
  --seed N             the seed (default: a random one, printed and recorded)
  --device D           auto, cpu or gl (auto)
  --no-cache           generate even if the cache has the image (the result is still cached)
  --out FILE.png       where to write the image
  --data-dir DIR       where the database and the cache live

Exit status: 0 ok, 1 the generation failed, 2 bad command line, 130 interrupted.
`

// exitInterrupted is the exit status after Ctrl-C (128 + SIGINT).
const exitInterrupted = 130

// exitProcess ends the process; tests replace it.
var exitProcess = os.Exit

// optString is a string flag that records whether it was given, so that
// an empty --negative (the empty prompt) differs from no --negative (none).
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string { return o.v }

func (o *optString) Set(s string) error { o.v, o.set = s, true; return nil }

// optUint is an unsigned flag that records whether it was given.
type optUint struct {
	v   uint64
	set bool
}

func (o *optUint) String() string { return strconv.FormatUint(o.v, 10) }

func (o *optUint) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want a whole number from 0 to %d", uint64(1)<<63-1)
	}
	o.v, o.set = v, true
	return nil
}

// loraList collects repeated --lora FILE[:WEIGHT] flags.
type loraList []studio.LoRASpec

func (l *loraList) String() string { return fmt.Sprint(*l) }

func (l *loraList) Set(s string) error {
	spec := studio.LoRASpec{Path: s, Weight: 1}
	if i := strings.LastIndex(s, ":"); i > 0 {
		if w, err := strconv.ParseFloat(s[i+1:], 32); err == nil {
			spec = studio.LoRASpec{Path: s[:i], Weight: float32(w)}
		}
	}
	if spec.Path == "" {
		return errors.New("want FILE[:WEIGHT]")
	}
	*l = append(*l, spec)
	return nil
}

// parseSize reads WIDTHxHEIGHT.
func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		if w, err = strconv.Atoi(a); err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil {
		return 0, 0, usageError("--size %q: want WIDTHxHEIGHT, e.g. 1024x1024", s)
	}
	return w, h, nil
}

// generateArgs is a parsed generate command line.
type generateArgs struct {
	req     studio.GenerateRequest
	dataDir string
}

// parseGenerateArgs parses the command line into a request (no files touched).
func parseGenerateArgs(args []string, stderr io.Writer) (generateArgs, error) {
	var a generateArgs
	a.req = studio.DefaultGenerateRequest()
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var negative optString
	var seed optUint
	var loras loraList
	prompt := optString{}
	size := "1024x1024"
	fs.StringVar(&a.req.Model, "model", "", "")
	fs.StringVar(&a.req.ConfigDir, "config", "", "")
	fs.Var(&loras, "lora", "")
	fs.Var(&prompt, "prompt", "")
	fs.Var(&negative, "negative", "")
	fs.IntVar(&a.req.Steps, "steps", a.req.Steps, "")
	fs.Float64Var(&a.req.CFG, "cfg", a.req.CFG, "")
	fs.StringVar(&a.req.Sampler, "sampler", a.req.Sampler, "")
	fs.StringVar(&size, "size", size, "")
	fs.Var(&seed, "seed", "")
	fs.StringVar(&a.req.Device, "device", a.req.Device, "")
	fs.BoolVar(&a.req.NoCache, "no-cache", false, "")
	fs.StringVar(&a.req.Out, "out", "", "")
	fs.StringVar(&a.dataDir, "data-dir", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, generateUsage)
			return a, err
		}
		return a, usageError("generate: %v (see 'lorastudio generate --help')", err)
	}
	if fs.NArg() > 0 {
		return a, usageError("generate: unexpected argument %q (quote a prompt and pass it with --prompt)", fs.Arg(0))
	}
	if !prompt.set {
		return a, usageError("generate: --prompt is required")
	}
	if a.req.Out == "" {
		return a, usageError("generate: --out FILE.png is required")
	}
	a.req.Prompt = prompt.v
	if negative.set {
		n := negative.v
		a.req.Negative = &n
	}
	if seed.set {
		s := seed.v
		a.req.Seed = &s
	}
	a.req.LoRAs = loras
	var err error
	if a.req.Width, a.req.Height, err = parseSize(size); err != nil {
		return a, err
	}
	a.req.AppVersion = appVersion
	if err := a.req.Validate(); err != nil {
		return a, usageError("generate: %v", strings.TrimPrefix(err.Error(), studio.ErrInvalidRequest.Error()+": "))
	}
	return a, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressPrinter reports steps on stderr: a redrawn bar on a terminal,
// one line a step otherwise.
func progressPrinter(w io.Writer) func(step, steps int, _ image.Image) {
	tty := isTerminal(w)
	start := time.Now()
	return func(step, steps int, _ image.Image) {
		el := time.Since(start)
		per := el / time.Duration(max(step, 1))
		if !tty {
			fmt.Fprintf(w, "step %d/%d (%.2f s/step)\n", step, steps, per.Seconds())
			return
		}
		const width = 30
		n := width * step / max(steps, 1)
		eta := per * time.Duration(steps-step)
		fmt.Fprintf(w, "\r[%s%s] %d/%d  %.2f s/step  ETA %s ", strings.Repeat("#", n), strings.Repeat(".", width-n),
			step, steps, per.Seconds(), eta.Round(time.Second))
		if step == steps {
			fmt.Fprintln(w)
		}
	}
}

// generateCommand runs `lorastudio generate`. Ctrl-C stops the generation at
// the next step, leaves no output file and exits 130; a second Ctrl-C kills
// the process at once.
func generateCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() { // after the first Ctrl-C, a second one kills the process as usual
		<-ctx.Done()
		stop()
	}()
	err := generate(ctx, args, stdout, stderr)
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		stop()
		fmt.Fprintln(stderr, "lorastudio: generate: interrupted; no image written")
		exitProcess(exitInterrupted)
	}
	return err
}

// generate is generateCommand under a cancellable context.
func generate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a, err := parseGenerateArgs(args, stderr)
	if err != nil {
		return err
	}
	st, err := openStudio(a.dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	model, isDemo, err := st.ResolveModel(a.req.Model)
	if err != nil {
		return err
	}
	switch {
	case isDemo:
		fmt.Fprintln(stderr, "using the demo model (random weights): pass --model PATH for real images")
	case a.req.Model == "":
		fmt.Fprintln(stderr, "using the configured model", model)
	}
	a.req.Model = model
	res, err := st.Generate(ctx, a.req, progressPrinter(stderr))
	if err != nil {
		if errors.Is(err, studio.ErrInvalidRequest) {
			return usageError("generate: %v", err)
		}
		return fmt.Errorf("generate: %w", err)
	}
	fmt.Fprintf(stdout, "output: %s\nseed: %d\n", res.Path, res.Seed)
	if res.FromCache {
		fmt.Fprintln(stdout, "from cache")
	}
	fmt.Fprintf(stdout, "time: %.2f s\n", res.Duration.Seconds())
	return nil
}
