package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"lorastudio/engine/device"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/demo"
)

// infoUsage is printed by `lorastudio info --help`.
const infoUsage = `Show which compute backend LoRA Studio uses, or what an SDXL model holds.

Usage:
  lorastudio info --device [auto|cpu|gl] [--json]
  lorastudio info [MODEL] [--config DIR] [--json]

--device D  describe the compute backend D gives on this machine: auto (GL,
            OpenGL 4.3 compute through a headless EGL context, when a GPU
            gives it, else the CPU, saying why), cpu or gl; a bare --device
            describes the default ($LORASTUDIO_DEVICE, else auto), as every
            other command's --device does
--json      machine-readable output: an object with "backend", "renderer",
            "version", "max_ssbo_binding" ... for --device; with MODEL, an
            object with "format" ("diffusers" or "single-file") and
            "components" keyed unet, vae, text_encoder, text_encoder_2, each
            with "params" and "dtype"
MODEL       a diffusers folder (model_index.json, unet/, vae/ ...) or a
            single-file checkpoint such as sd_xl_base_1.0.safetensors; with
            neither MODEL nor --device: the configured model, else the demo
            model (random weights, written to the data directory on first use)
--config    a diffusers folder whose config.json files give a single file's
            sizes (default: SDXL base 1.0's)
--backend D the older spelling of --device D
`

// infoArgs is info's command line.
type infoArgs struct {
	wantDevice bool   // --device given, with or without a value
	kind       string // the device to describe; "" for the default
	asJSON     bool
	model      string // MODEL, "" for none
	configDir  string // --config
	dataDir    string // --data-dir
	help       bool
}

// isDeviceKind reports whether s names a device (auto, cpu, gl, any case).
func isDeviceKind(s string) bool {
	return slices.Contains(device.Kinds, strings.ToLower(s))
}

// setKind records a device from --device or --backend, refusing two
// different ones on the same line.
func (a *infoArgs) setKind(flag, kind string) error {
	if a.kind != "" && !strings.EqualFold(a.kind, kind) {
		return usageError("info: two devices, %q and %q (%s)", a.kind, kind, flag)
	}
	a.wantDevice, a.kind = true, kind
	return nil
}

// parseInfoArgs reads info's command line. --device takes its value the way
// every other command's does (--device gl, --device=gl), but the value may be
// left out: a bare --device describes the default device. So the word after
// a bare --device is its value when it names a device, MODEL when it is a
// file or folder, and otherwise a device that does not exist (reported as
// such, since `info --device vulkan` means a device).
func parseInfoArgs(args []string) (infoArgs, error) {
	var a infoArgs
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		isFlag := strings.HasPrefix(arg, "-") && arg != "-"
		switch {
		case isFlag && name == "device" && hasVal:
			if err := a.setKind(arg, val); err != nil {
				return a, err
			}
		case isFlag && name == "device":
			a.wantDevice = true
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") || args[i+1] == "help" {
				continue // bare: the default device
			}
			next := args[i+1]
			if _, err := os.Stat(next); err == nil && !isDeviceKind(next) {
				continue // MODEL; refused below with --device
			}
			if err := a.setKind(arg, next); err != nil {
				return a, err
			}
			i++
		case isFlag && !hasVal && (name == "json" || name == "h" || name == "help"):
			a.asJSON = a.asJSON || name == "json"
			a.help = a.help || name != "json"
		case isFlag && (name == "backend" || name == "config" || name == "data-dir"):
			if !hasVal {
				if i+1 >= len(args) {
					return a, usageError("info: %s needs a value", arg)
				}
				i++
				val = args[i]
			}
			switch name {
			case "backend":
				if err := a.setKind(arg, val); err != nil {
					return a, err
				}
			case "config":
				a.configDir = val
			case "data-dir":
				a.dataDir = val
			}
		case arg == "help":
			a.help = true
		case isFlag:
			return a, usageError("info: unknown flag %s\n\n%s", arg, infoUsage)
		case a.model != "":
			return a, usageError("info: one MODEL at a time, got %s and %s", a.model, arg)
		default:
			a.model = arg
		}
	}
	switch {
	case a.help:
	case a.model != "" && a.wantDevice:
		return a, usageError("info: give either --device or MODEL (%s), not both", a.model)
	case a.configDir != "" && a.model == "":
		return a, usageError("info: --config applies to MODEL only")
	}
	return a, nil
}

// infoCommand runs `lorastudio info`.
func infoCommand(args []string, stdout, stderr io.Writer) error {
	a, err := parseInfoArgs(args)
	switch {
	case err != nil:
		return err
	case a.help:
		fmt.Fprint(stdout, infoUsage)
		return nil
	case a.model != "":
		return modelInfo(a.model, a.configDir, a.asJSON, stdout)
	case !a.wantDevice:
		return defaultModelInfo(a.dataDir, a.asJSON, stdout, stderr)
	}
	return deviceInfo(a.kind, a.asJSON, stdout)
}

// deviceInfo describes the backend kind gives on this machine ("" for the
// default): as JSON, or as a table.
func deviceInfo(kind string, asJSON bool, stdout io.Writer) error {
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
		fmt.Fprintf(tw, "device memory:\t%s\n", deviceMemoryText(inf.DeviceMemory, inf.DeviceMemoryFree))
	}
	if inf.Backend == "metal" {
		fmt.Fprintf(tw, "working set:\t%d MiB recommended\n", inf.WorkingSet>>20)
		fmt.Fprintf(tw, "unified memory:\t%v\n", inf.UnifiedMemory)
		fmt.Fprintf(tw, "max buffer binding:\t%d MiB\n", inf.MaxSSBOBinding>>20)
	}
	if inf.Fallback != "" {
		fmt.Fprintf(tw, "why not gl:\t%s\n", inf.Fallback)
	}
	return tw.Flush()
}

// deviceMemoryText is the GL device memory as info prints it: MiB, marked
// "free at start" when the driver reports free memory, or why it is unknown.
func deviceMemoryText(bytes int64, free bool) string {
	switch {
	case bytes <= 0:
		return "unknown (the driver has no memory query)"
	case free:
		return fmt.Sprintf("%d MiB free at start", bytes>>20)
	}
	return fmt.Sprintf("%d MiB", bytes>>20)
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
