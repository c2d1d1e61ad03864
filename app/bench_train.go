package main

import (
	"fmt"
	"io"
	"strconv"

	"lorastudio/engine/sdxl/sdxlbench"
)

// benchTrainUsage is printed by `lorastudio bench train --help`.
const benchTrainUsage = `Benchmark a LoRA training step at SDXL's real shapes with random weights.

Usage:
  lorastudio bench train [--device auto|cpu|gl] [--size N] [--rank R] [--targets attn|attn-mlp|LIST] [--batch B] [--runs N] [--ops|--no-ops] [--json]

Loads SDXL base 1.0's UNet (random fp16 weights), attaches a LoRA of rank R
(default 8, alpha 2R) on --targets (default attn: to_q, to_k, to_v, to_out.0),
and times whole optimizer steps at --size² (default 1024), batch --batch
(default 1): forward in training mode, MSE, backward, AdamW. Each step is
timed with gradient checkpointing on and then off, with the device's and the
host's peak memory. A 1024² step takes many minutes on a CPU. Each setting
is followed by the per-op breakdown of its steps, as for bench generate: on by
default on cpu; --ops on gl syncs after every op; --no-ops turns it off.
`

// benchTrainCommand runs `lorastudio bench train`.
func benchTrainCommand(args []string, stdout io.Writer) error {
	kind := ""
	opts := sdxlbench.TrainOptions{Config: benchSDXLConfig}
	asJSON, opsFlag, help, err := parseBenchArgs("bench train", benchTrainUsage, args, " device size rank targets batch runs data-dir ", stdout, func(name, val string) error {
		switch name {
		case "device":
			kind = val
		case "targets":
			opts.Targets = val
		case "size":
			n, err := parseSquareSize(val)
			if err != nil {
				return usageError("bench train: --size %q: %v", val, err)
			}
			opts.Size = n
		case "rank", "batch", "runs":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return usageError("bench train: --%s %q: want a positive number", name, val)
			}
			switch name {
			case "rank":
				opts.Rank = n
			case "batch":
				opts.Batch = n
			default:
				opts.Runs = n
			}
		}
		return nil
	})
	if err != nil || help {
		return err
	}
	b, err := openBenchDevice("bench train", kind)
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
	rep, err := sdxlbench.Train(b, opts, progress)
	if err != nil {
		return fmt.Errorf("bench train: %w", err)
	}
	if asJSON {
		return writeJSON(stdout, rep)
	}
	return nil
}
