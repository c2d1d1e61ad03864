package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"lorastudio/engine/lora"
	"lorastudio/engine/sdxl"
)

// loraUsage is printed by `lorastudio lora --help` and on a bad line.
const loraUsage = `Usage: lorastudio lora merge --lora FILE[:WEIGHT]... --out PATH [flags]

Bakes LoRAs into a new fp16 checkpoint: generating with it and no --lora gives
the image the base model gives with those LoRAs (within 1/255).

Flags:
  --model PATH       the base: an SDXL diffusers folder or .safetensors single
                     file (default: the configured model, else the demo model)
  --config DIR       diffusers folder with the configs for a single-file model
                     (default: SDXL base 1.0's)
  --lora FILE[:W]    a LoRA file (kohya, diffusers) or peft folder merged at
                     weight W (1); repeatable, merged in the order given
  --out PATH         the merged model: a .safetensors file, or a diffusers
                     folder that does not exist yet
  --format F         single (one Stability-layout .safetensors, what A1111 and
                     ComfyUI load as a checkpoint) or diffusers (a folder with
                     the base's configs and tokenizers; the base must be a
                     diffusers folder); default: single when --out ends in
                     .safetensors, else diffusers
  --data-dir DIR     where the settings (the configured model) live

The output is written under a temporary name and renamed when complete.
Exit status: 0 ok, 1 the merge failed, 2 bad command line.
`

// loraMergeArgs is a parsed `lora merge` command line.
type loraMergeArgs struct {
	model, configDir string
	loras            loraList
	out, format      string
	dataDir          string
}

// parseLoRAMergeArgs parses `lora merge`'s flags (no files touched).
func parseLoRAMergeArgs(args []string, stderr io.Writer) (loraMergeArgs, error) {
	var a loraMergeArgs
	fs := flag.NewFlagSet("lora merge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.model, "model", "", "")
	fs.StringVar(&a.configDir, "config", "", "")
	fs.Var(&a.loras, "lora", "")
	fs.StringVar(&a.out, "out", "", "")
	fs.StringVar(&a.format, "format", "", "")
	fs.StringVar(&a.dataDir, "data-dir", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, loraUsage)
			return a, err
		}
		return a, usageError("lora merge: %v (see 'lorastudio lora --help')", err)
	}
	switch {
	case fs.NArg() > 0:
		return a, usageError("lora merge: unexpected argument %q", fs.Arg(0))
	case len(a.loras) == 0:
		return a, usageError("lora merge: at least one --lora FILE[:WEIGHT] is required")
	case a.out == "":
		return a, usageError("lora merge: --out PATH is required")
	}
	if a.format == "" {
		a.format = lora.MergeDiffusers
		if strings.EqualFold(filepath.Ext(a.out), ".safetensors") {
			a.format = lora.MergeSingleFile
		}
	}
	switch a.format {
	case lora.MergeSingleFile:
		if !strings.EqualFold(filepath.Ext(a.out), ".safetensors") {
			return a, usageError("lora merge: --format single writes a .safetensors file; --out %q does not end in .safetensors", a.out)
		}
	case lora.MergeDiffusers:
	default:
		return a, usageError("lora merge: --format %q, want single or diffusers", a.format)
	}
	return a, nil
}

// loraCommand runs `lorastudio lora SUBCOMMAND`.
func loraCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, loraUsage)
		return usageError("lora: a subcommand is required (merge)")
	}
	// global flags (--data-dir) may stand before the subcommand
	var globals []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, _, hasValue := strings.Cut(args[0], "=")
		if !globalValueFlags[name] {
			break
		}
		if hasValue || len(args) < 2 {
			globals, args = append(globals, args[0]), args[1:]
		} else {
			globals, args = append(globals, args[0], args[1]), args[2:]
		}
	}
	if len(args) == 0 {
		return usageError("lora: a subcommand is required (merge)")
	}
	switch args[0] {
	case "merge":
		return loraMerge(append(globals, args[1:]...), stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, loraUsage)
		return nil
	}
	return usageError("lora: unknown subcommand %q (want merge)", args[0])
}

// loraMerge runs `lorastudio lora merge`.
func loraMerge(args []string, stdout, stderr io.Writer) error {
	a, err := parseLoRAMergeArgs(args, stderr)
	if err != nil {
		return err
	}
	model := a.model
	if model == "" {
		st, err := openStudio(a.dataDir)
		if err != nil {
			return err
		}
		model, _, err = st.ResolveModel("")
		st.Close()
		if err != nil {
			return err
		}
	}
	var opts []sdxl.Option
	if a.configDir != "" {
		opts = append(opts, sdxl.WithConfigDir(a.configDir))
	}
	src, err := sdxl.OpenSource(model, opts...)
	if err != nil {
		return err
	}
	defer src.Close()
	var ws []lora.Weighted
	layers := 0
	for _, spec := range a.loras {
		l, err := lora.Open(spec.Path, src.Config())
		if err != nil {
			return err
		}
		ws = append(ws, lora.Weighted{LoRA: l, Weight: spec.Weight})
		layers += len(l.Layers)
	}
	start := time.Now()
	if err := lora.Merge(src, ws, a.out, a.format); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merged %d LoRA(s), %d layers, into %s (%s, fp16) in %.1f s\n",
		len(ws), layers, a.out, a.format, time.Since(start).Seconds())
	return nil
}
