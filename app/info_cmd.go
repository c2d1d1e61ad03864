package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"lorastudio/engine/device"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/demo"
)

// infoUsage is printed by `lorastudio info --help`.
const infoUsage = `Show which compute backend LoRA Studio uses, or what an SDXL model holds.

Usage:
  lorastudio info --device [--backend auto|cpu|gl] [--json]
  lorastudio info [MODEL] [--config DIR] [--json]

--device   describe the compute backend: GL (OpenGL 4.3 compute through a
           headless EGL context) when available, else the CPU
--backend  which backend to describe (default: $LORASTUDIO_DEVICE, else auto)
--json     machine-readable output: an object with "backend", "renderer",
           "version", "max_ssbo_binding" ... for --device; with MODEL, an object
           with "format" ("diffusers" or "single-file") and "components" keyed
           unet, vae, text_encoder, text_encoder_2, each with "params" and "dtype"
MODEL      a diffusers folder (model_index.json, unet/, vae/ ...) or a
           single-file checkpoint such as sd_xl_base_1.0.safetensors; with
           neither MODEL nor --device: the configured model, else the demo
           model (random weights, written to the data directory on first use)
--config   a diffusers folder whose config.json files give a single file's
           sizes (default: SDXL base 1.0's)
`

// infoCommand runs `lorastudio info`.
func infoCommand(args []string, stdout, stderr io.Writer) error {
	var wantDevice, asJSON bool
	var kind, model, configDir, dataDir string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--device" || a == "-device":
			wantDevice = true
		case a == "--json" || a == "-json":
			asJSON = true
		case a == "--backend" || a == "-backend" || a == "--config" || a == "-config" || a == "--data-dir" || a == "-data-dir":
			if i+1 >= len(args) {
				return usageError("info: %s needs a value", a)
			}
			switch strings.TrimLeft(a, "-") {
			case "backend":
				kind = args[i+1]
			case "config":
				configDir = args[i+1]
			case "data-dir":
				dataDir = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--backend="):
			kind = strings.TrimPrefix(a, "--backend=")
		case strings.HasPrefix(a, "--config="):
			configDir = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "--data-dir="):
			dataDir = strings.TrimPrefix(a, "--data-dir=")
		case a == "-h" || a == "--help" || a == "help":
			fmt.Fprint(stdout, infoUsage)
			return nil
		case strings.HasPrefix(a, "-"):
			return usageError("info: unknown flag %s\n\n%s", a, infoUsage)
		case model != "":
			return usageError("info: one MODEL at a time, got %s and %s", model, a)
		default:
			model = a
		}
	}
	switch {
	case model != "" && wantDevice:
		return usageError("info: give either --device or MODEL, not both")
	case model != "":
		return modelInfo(model, configDir, asJSON, stdout)
	case configDir != "":
		return usageError("info: --config applies to MODEL only")
	case !wantDevice:
		return defaultModelInfo(dataDir, asJSON, stdout, stderr)
	}
	inf, err := device.Describe(kind)
	if err != nil {
		if strings.Contains(err.Error(), "unknown device") {
			return usageError("info: %v", err)
		}
		return fmt.Errorf("info: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(inf)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "backend:\t%s\n", inf.Backend)
	fmt.Fprintf(tw, "renderer:\t%s\n", inf.Renderer)
	if inf.Backend == "gl" {
		fmt.Fprintf(tw, "version:\tOpenGL %s, GLSL %s\n", inf.Version, inf.GLSL)
		fmt.Fprintf(tw, "vendor:\t%s\n", inf.Vendor)
		fmt.Fprintf(tw, "context:\tEGL %s platform, no surface\n", inf.Platform)
		fmt.Fprintf(tw, "max storage binding:\t%d MiB\n", inf.MaxSSBOBinding>>20)
		fmt.Fprintf(tw, "shared memory:\t%d KiB\n", inf.MaxShared>>10)
		fmt.Fprintf(tw, "max work groups:\t%d x %d x %d\n", inf.MaxWorkGroups[0], inf.MaxWorkGroups[1], inf.MaxWorkGroups[2])
	}
	if inf.Fallback != "" {
		fmt.Fprintf(tw, "why not gl:\t%s\n", inf.Fallback)
	}
	return tw.Flush()
}

// modelInfo prints what an SDXL model holds: its format, and per component the
// parameter count, stored dtype and the device memory it needs.
func modelInfo(path, configDir string, asJSON bool, stdout io.Writer) error {
	var opts []sdxl.Option
	if configDir != "" {
		opts = append(opts, sdxl.WithConfigDir(configDir))
	}
	inf, err := sdxl.Inspect(path, opts...)
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(inf)
	}
	_, err = io.WriteString(stdout, inf.Text())
	return err
}

// defaultModelInfo describes the model a generation without --model uses:
// the configured one, else the demo model (saying so on stderr).
func defaultModelInfo(dataDirFlag string, asJSON bool, stdout, stderr io.Writer) error {
	s, err := openStudio(dataDirFlag)
	if err != nil {
		return err
	}
	defer s.Close()
	path, isDemo, err := s.ResolveModel("")
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if isDemo {
		fmt.Fprintf(stderr, "no model configured: showing the %s (%s)\n", demo.Name, path)
	}
	return modelInfo(path, "", asJSON, stdout)
}
