package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"lorastudio/engine/device"
	"lorastudio/engine/opstats"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/sdxlbench"
	"lorastudio/engine/tensor"
)

// benchSDXLUsage is printed by `lorastudio bench sdxl --help` and `bench generate --help`.
const benchSDXLUsage = `Benchmark full-size SDXL with random weights (nothing is downloaded).

Usage:
  lorastudio bench sdxl [--device auto|cpu|gl] [--size N]... [--ops|--no-ops] [--json]
  lorastudio bench generate [--device auto|cpu|gl] [--size WxH] [--steps N] [--ops|--no-ops] [--json]

sdxl      loads SDXL base 1.0's real shapes (UNet, VAE, both text encoders) one
          at a time and reports each load's seconds and host/device peak memory,
          seconds per UNet forward at each --size (default 1024 and 512) with
          batch 1 and batch 2, VAE decode and prompt encoding
generate  the figures of one text-to-image run at --size (default 1024x1024)
          with --steps (default 25): seconds per UNet step with classifier-free
          guidance (batch 2), VAE decode, prompt encoding, and the whole image
          as their sum; peak device and host memory
These take minutes on a CPU (a 1024² UNet step is about 2 minutes on 2 cores).

Each timing is followed by its per-op breakdown: calls, seconds and share of
the time in ops per kind (matmul, conv, attention, norm, activation, cast,
copy, elementwise, transfer, other); in --json under "ops". It is on by
default where ops run synchronously (cpu); on gl --ops turns it on and syncs
after every op, which serialises the queue and slows the totals. --no-ops
turns it off.
`

// benchSDXLConfig is the model the SDXL benchmarks build; nil is SDXL base
// 1.0's real shapes. Tests put a tiny config here.
var benchSDXLConfig *sdxl.Config

// parseBenchArgs walks a bench command line for cmd ("bench train"): --json,
// --ops/--no-ops and help (usage printed, help true) are handled here; every
// other flag must be one of valued (space-separated names, padded with
// spaces) and is passed to set as --name V or --name=V.
func parseBenchArgs(cmd, usage string, args []string, valued string, stdout io.Writer, set func(name, val string) error) (asJSON bool, ops *bool, help bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
			continue
		case a == "--ops" || a == "--no-ops":
			on := a == "--ops"
			ops = &on
			continue
		case a == "-h" || a == "--help" || a == "help":
			fmt.Fprint(stdout, usage)
			return false, nil, true, nil
		case !strings.HasPrefix(a, "-") || !strings.Contains(valued, " "+name+" "):
			return false, nil, false, usageError("%s: unknown argument %s\n\n%s", cmd, a, usage)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return false, nil, false, usageError("%s: %s needs a value", cmd, a)
			}
			i++
			val = args[i]
		}
		if err := set(name, val); err != nil {
			return false, nil, false, err
		}
	}
	return asJSON, ops, false, nil
}

// openBenchDevice opens the backend a bench command asked for; an unknown
// kind is a usage error.
func openBenchDevice(cmd, kind string) (tensor.Backend, error) {
	b, err := device.Open(kind)
	if err != nil {
		if strings.Contains(err.Error(), "unknown device") {
			return nil, usageError("%s: %v", cmd, err)
		}
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return b, nil
}

// benchSDXLCommand runs `lorastudio bench sdxl|generate`; which is "sdxl" or "generate".
func benchSDXLCommand(which string, args []string, stdout io.Writer) error {
	kind, steps := "", 25
	var sizes []int
	asJSON, opsFlag, help, err := parseBenchArgs("bench "+which, benchSDXLUsage, args, " device size steps data-dir ", stdout, func(name, val string) error {
		switch name {
		case "device":
			kind = val
		case "steps":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || which != "generate" {
				return usageError("bench %s: --steps %q: a positive number, for bench generate", which, val)
			}
			steps = n
		case "size":
			n, err := parseSquareSize(val)
			if err != nil {
				return usageError("bench %s: --size %q: %v", which, val, err)
			}
			sizes = append(sizes, n)
		}
		return nil
	})
	if err != nil || help {
		return err
	}
	opts := sdxlbench.Options{Sizes: sizes, Config: benchSDXLConfig}
	if which == "generate" {
		if len(sizes) > 1 {
			return usageError("bench generate: one --size at a time")
		}
		if len(sizes) == 0 {
			opts.Sizes = []int{1024}
		}
		opts.Batch = 2 // cond and uncond together, as the pipeline runs a CFG step
	}
	b, err := openBenchDevice("bench "+which, kind)
	if err != nil {
		return err
	}
	defer b.Close()
	opts.Warmup = b.Name() == "gl" // the first use of each kernel compiles it
	opts.OpStats = wantOpStats(b, opsFlag)
	progress := stdout
	if asJSON {
		progress = io.Discard
	}
	rep, err := sdxlbench.Run(b, opts, progress)
	if err != nil {
		return fmt.Errorf("bench %s: %w", which, err)
	}
	if which == "sdxl" {
		if asJSON {
			return writeJSON(stdout, rep)
		}
		return nil
	}
	g := summarizeGenerate(rep, opts.Sizes[0], steps)
	if asJSON {
		return writeJSON(stdout, g)
	}
	fmt.Fprintf(stdout, "\ntext-to-image at %dx%d, %d steps with CFG, on %s:\n", g.Size, g.Size, g.Steps, g.Backend)
	fmt.Fprintf(stdout, "  UNet step (batch 2)   %8.2f s\n", g.StepSeconds)
	fmt.Fprintf(stdout, "  prompt encoding       %8.2f s\n", g.EncodeSeconds)
	fmt.Fprintf(stdout, "  VAE decode            %8.2f s\n", g.DecodeSeconds)
	fmt.Fprintf(stdout, "  whole image           %8.2f s  (encoding + %d steps + decode)\n", g.ImageSeconds, g.Steps)
	fmt.Fprintf(stdout, "  peak device memory    %8.0f MiB\n", float64(g.DevicePeakBytes)/(1<<20))
	fmt.Fprintf(stdout, "  peak host memory      %8.0f MiB (max RSS)\n", float64(g.HostPeakBytes)/(1<<20))
	return nil
}

// generateBench is `bench generate`'s result: one image's cost from its parts.
type generateBench struct {
	Backend         string  `json:"backend"`
	Device          string  `json:"device"`
	Size            int     `json:"size"`
	Steps           int     `json:"steps"`
	StepSeconds     float64 `json:"step_seconds"` // one UNet forward, batch 2 (CFG)
	EncodeSeconds   float64 `json:"encode_seconds"`
	DecodeSeconds   float64 `json:"decode_seconds"`
	ImageSeconds    float64 `json:"image_seconds"` // encode + steps × step + decode
	DevicePeakBytes int64   `json:"device_peak_bytes"`
	HostPeakBytes   int64   `json:"host_peak_bytes"`
	// The per-op breakdowns of the step, the decode and the prompt encoding
	// (with opstats on; see sdxlbench.Options.OpStats).
	StepOps   *opstats.Stats `json:"step_ops,omitempty"`
	DecodeOps *opstats.Stats `json:"decode_ops,omitempty"`
	EncodeOps *opstats.Stats `json:"encode_ops,omitempty"`
}

// summarizeGenerate turns sdxlbench's measurements into one image's figures.
func summarizeGenerate(rep sdxlbench.Report, size, steps int) generateBench {
	g := generateBench{Backend: rep.Backend, Device: rep.Device, Size: size, Steps: steps}
	for _, t := range rep.Timings {
		switch {
		case t.Component == "unet" && t.Size == size && t.Batch == 2:
			g.StepSeconds = t.Seconds
			g.StepOps = t.Ops
		case t.Component == "vae" && t.Size == size:
			g.DecodeSeconds = t.Seconds
			g.DecodeOps = t.Ops
		case strings.HasPrefix(t.Component, "text_encoder"):
			g.EncodeSeconds += t.Seconds
			g.EncodeOps = t.Ops
		}
		g.DevicePeakBytes = max(g.DevicePeakBytes, t.DevicePeakBytes)
	}
	for _, l := range rep.Loads {
		g.DevicePeakBytes = max(g.DevicePeakBytes, l.DevicePeakBytes)
		g.HostPeakBytes = max(g.HostPeakBytes, l.MaxRSSBytes, l.HostPeakBytes)
	}
	g.ImageSeconds = g.EncodeSeconds + float64(steps)*g.StepSeconds + g.DecodeSeconds
	return g
}

// wantOpStats says whether a benchmark on b times every op: as flag says
// (--ops/--no-ops), else only where ops run synchronously, since timing them
// one by one on an asynchronous backend serialises its queue.
func wantOpStats(b tensor.Backend, flag *bool) bool {
	if flag != nil {
		return *flag
	}
	_, async := b.(tensor.Syncer)
	return !async
}

// parseSquareSize reads "1024" or "1024x1024"; the benchmark times square images.
func parseSquareSize(s string) (int, error) {
	w, h, found := strings.Cut(strings.ToLower(s), "x")
	if !found {
		h = w
	}
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(h)
	switch {
	case err1 != nil || err2 != nil || wi <= 0:
		return 0, fmt.Errorf("want N or NxN")
	case wi != hi:
		return 0, fmt.Errorf("the benchmark times square images")
	case wi%8 != 0:
		return 0, fmt.Errorf("not a multiple of 8")
	}
	return wi, nil
}

// writeJSON prints v indented.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
