package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"lorastudio/engine/bench"
	"lorastudio/engine/cpu"
	"lorastudio/engine/device"
)

// benchUsage is printed by `lorastudio bench --help`.
const benchUsage = `Benchmark the engine's ops.

Usage:
  lorastudio bench ops [--device auto|cpu|gl] [--json] [--only REGEXP] [--min-time DURATION]
  lorastudio bench sdxl|generate ...   full-size SDXL (see 'lorastudio bench sdxl --help')
  lorastudio bench train ...           a LoRA training step at SDXL's shapes (see 'lorastudio bench train --help')

Times the SDXL-sized ops (matmul 4096x1280x1280 and 1024x640x2560, conv2d 3x3
on 1x320x128x128, attention 4096 tokens self and 4096x77 cross with 10 heads
of 64, group norm 1x320x128x128 in 32 groups) on the chosen backend, and the
CPU sgemm baselines on the same matmul shapes: the pure-Go kernel
("cpu-purego") and, when built with -tags openblas, cblas_sgemm ("blas"),
with each matmul's ratio to cblas_sgemm.

--device    auto (GL when available, else CPU), cpu or gl
            (default: $LORASTUDIO_DEVICE, else auto)
--json      print an array of {"op","shape","device","ms","gflops","gbps"}
--only      run only the rows whose "op shape" matches REGEXP
--min-time  time each row at least this long and report the best run (default 1s)
`

// benchCommand runs `lorastudio bench`.
func benchCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("bench: which benchmark? use 'lorastudio bench ops|sdxl|generate|train'\n\n%s", benchUsage)
	}
	switch args[0] {
	case "ops":
	case "sdxl", "generate":
		return benchSDXLCommand(args[0], args[1:], stdout)
	case "train":
		return benchTrainCommand(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	default:
		return usageError("bench: unknown benchmark %q; use 'lorastudio bench ops|sdxl|generate|train'", args[0])
	}
	kind, asJSON, only := "", false, (*regexp.Regexp)(nil)
	opts := bench.Options{}
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
		case a == "-h" || a == "--help":
			fmt.Fprint(stdout, benchUsage)
			return nil
		case strings.HasPrefix(a, "-") && (name == "device" || name == "only" || name == "min-time" || name == "data-dir"):
			if !hasVal {
				if i+1 >= len(rest) {
					return usageError("bench: %s needs a value", a)
				}
				i++
				val = rest[i]
			}
			switch name {
			case "device":
				kind = val
			case "only":
				re, err := regexp.Compile(val)
				if err != nil {
					return usageError("bench: --only %q: %v", val, err)
				}
				only = re
			case "min-time":
				d, err := time.ParseDuration(val)
				if err != nil || d <= 0 {
					return usageError("bench: --min-time %q is not a positive duration like 500ms or 2s", val)
				}
				opts.MinTime = d
			}
		default:
			return usageError("bench: unknown argument %s\n\n%s", a, benchUsage)
		}
	}
	b, err := device.Open(kind)
	if err != nil {
		if strings.Contains(err.Error(), "unknown device") {
			return usageError("bench: %v", err)
		}
		return fmt.Errorf("bench: %w", err)
	}
	defer b.Close()

	want := func(op, shape string) bool { return only == nil || only.MatchString(op+" "+shape) }
	var rows []bench.Result
	emit := func(r bench.Result) {
		rows = append(rows, r)
		if !asJSON {
			fmt.Fprintln(stdout, formatRow(r))
		}
	}
	if !asJSON {
		fmt.Fprintf(stdout, "device: %s (%s)\n", b.Name(), b.Device())
		fmt.Fprintln(stdout, formatHeader())
	}
	if err := bench.RunSuite(b, opts, want, emit); err != nil {
		return err
	}
	if asJSON {
		if rows == nil {
			rows = []bench.Result{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	printRatios(stdout, rows)
	return nil
}

func formatHeader() string {
	return fmt.Sprintf("%-16s %-18s %-11s %10s %10s %9s", "op", "shape", "device", "ms", "GFLOP/s", "GB/s")
}

func formatRow(r bench.Result) string {
	return fmt.Sprintf("%-16s %-18s %-11s %10.2f %10.2f %9.2f", r.Op, r.Shape, r.Device, r.Ms, r.GFlops, r.GBps)
}

// printRatios prints each matmul's GFLOP/s relative to cblas_sgemm, or says
// why there is no ratio.
func printRatios(w io.Writer, rows []bench.Result) {
	ratios := bench.Ratios(rows)
	if len(ratios) == 0 {
		for _, r := range rows {
			if r.Op == "matmul" && !cpu.HaveBLAS() {
				fmt.Fprintln(w, "no blas rows: build with -tags openblas to compare with cblas_sgemm")
				return
			}
		}
		return
	}
	keys := make([]string, 0, len(ratios))
	for k := range ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dev, shape, _ := strings.Cut(k, " ")
		fmt.Fprintf(w, "ratio matmul %s %s / blas: %.2f\n", shape, dev, ratios[k])
	}
}
