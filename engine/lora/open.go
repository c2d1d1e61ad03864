package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// File names of the folder formats.
const (
	peftConfigFile      = "adapter_config.json"
	peftWeightsFile     = "adapter_model.safetensors"
	diffusersWeightFile = "pytorch_lora_weights.safetensors"
)

// Options changes how Open reads a LoRA.
type Options struct {
	// AllowUnmatched loads a file whose keys do not all match: the keys that
	// match no target go to LoRA.Unmatched and those of unsupported variants
	// to LoRA.Unsupported, for the caller to show. Without it such a file is
	// an error naming the keys.
	AllowUnmatched bool
	// Component is the component of dotted keys that carry no component
	// prefix (a peft adapter saved from a bare model); empty means the UNet.
	Component string
}

// UnmatchedError is the error of a file holding keys that match no target
// (or belong to LoRA variants this package does not merge).
type UnmatchedError struct {
	Path string
	// Unmatched lists the keys that name no module of the model.
	Unmatched []string
	// Unsupported lists the keys of unsupported variants, each followed by
	// the variant in parentheses.
	Unsupported []string
}

// Error names the file and every key.
func (e *UnmatchedError) Error() string {
	var parts []string
	if len(e.Unmatched) > 0 {
		parts = append(parts, fmt.Sprintf("%d keys match no module of the model: %s", len(e.Unmatched), strings.Join(e.Unmatched, ", ")))
	}
	if len(e.Unsupported) > 0 {
		parts = append(parts, fmt.Sprintf("%d keys are of unsupported LoRA variants: %s", len(e.Unsupported), strings.Join(e.Unsupported, ", ")))
	}
	return fmt.Sprintf("lora: %s: %s", e.Path, strings.Join(parts, "; "))
}

// peftConfig is the part of peft's adapter_config.json that sets the scale.
type peftConfig struct {
	PeftType     string             `json:"peft_type"`
	R            int                `json:"r"`
	LoraAlpha    float64            `json:"lora_alpha"`
	RankPattern  map[string]int     `json:"rank_pattern"`
	AlphaPattern map[string]float64 `json:"alpha_pattern"`
	UseRSLoRA    bool               `json:"use_rslora"`
	UseDoRA      bool               `json:"use_dora"`
	FanInFanOut  bool               `json:"fan_in_fan_out"`
}

// Open reads the LoRA at path for the model cfg describes: a kohya,
// diffusers or peft safetensors file, a peft adapter folder (holding
// adapter_config.json) or a diffusers folder (holding
// pytorch_lora_weights.safetensors). Every key must match a module of the
// model with a fitting shape; the error names the file and the keys.
func Open(path string, cfg sdxl.Config) (*LoRA, error) {
	return OpenWithOptions(path, cfg, Options{})
}

// OpenWithOptions is Open with options.
func OpenWithOptions(path string, cfg sdxl.Config, opts Options) (*LoRA, error) {
	weights, configPath, name, err := locate(path)
	if err != nil {
		return nil, err
	}
	var pc *peftConfig
	if configPath != "" {
		if pc, err = readPeftConfig(configPath); err != nil {
			return nil, err
		}
	}
	t, err := newTargets(cfg)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Open(weights)
	if err != nil {
		return nil, fmt.Errorf("lora: %s: %w", weights, err)
	}
	defer f.Close()
	configs := map[string]*peftConfig{}
	if pc == nil {
		defComp := opts.Component
		if defComp == "" {
			defComp = sdxl.UNet
		}
		if configs, err = metadataConfigs(weights, f.Metadata(), defComp); err != nil {
			return nil, err
		}
	}
	l, err := load(f, t, pc, configs, opts)
	if err != nil {
		return nil, err
	}
	l.Name, l.Path = name, path
	return l, nil
}

// locate finds the weights file (and peft config) of path.
func locate(path string) (weights, config, name string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", "", fmt.Errorf("lora: %w", err)
	}
	if st.IsDir() {
		name = filepath.Base(filepath.Clean(path))
		if _, err := os.Stat(filepath.Join(path, peftConfigFile)); err == nil {
			w := filepath.Join(path, peftWeightsFile)
			if _, err := os.Stat(w); err != nil {
				return "", "", "", fmt.Errorf("lora: %s: a peft adapter folder without %s (adapter_model.bin is not read: save it as safetensors)", path, peftWeightsFile)
			}
			return w, filepath.Join(path, peftConfigFile), name, nil
		}
		w := filepath.Join(path, diffusersWeightFile)
		if _, err := os.Stat(w); err == nil {
			return w, "", name, nil
		}
		return "", "", "", fmt.Errorf("lora: %s: a folder with neither %s nor %s", path, peftConfigFile, diffusersWeightFile)
	}
	name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if filepath.Base(path) == peftWeightsFile {
		c := filepath.Join(filepath.Dir(path), peftConfigFile)
		if _, err := os.Stat(c); err == nil {
			return path, c, filepath.Base(filepath.Dir(filepath.Clean(path))), nil
		}
	}
	return path, "", name, nil
}

// readPeftConfig reads and checks adapter_config.json.
func readPeftConfig(path string) (*peftConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	return parsePeftConfig(path, b)
}

// parsePeftConfig decodes and checks a peft LoraConfig; where names the file
// (and the metadata field) for messages.
func parsePeftConfig(where string, b []byte) (*peftConfig, error) {
	var c peftConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("lora: %s: %w", where, err)
	}
	switch {
	case c.PeftType != "" && c.PeftType != "LORA":
		return nil, fmt.Errorf("lora: %s: peft_type %q is not supported (only LORA)", where, c.PeftType)
	case c.UseDoRA:
		return nil, fmt.Errorf("lora: %s: use_dora is set: DoRA adapters are not supported", where)
	case c.FanInFanOut:
		return nil, fmt.Errorf("lora: %s: fan_in_fan_out is set: transposed (Conv1D) targets are not supported", where)
	case c.R <= 0:
		return nil, fmt.Errorf("lora: %s: r is %d, want a positive rank", where, c.R)
	}
	return &c, nil
}

// adapterMetadataKey is the safetensors metadata field where diffusers ≥ 0.33
// stores the peft LoraConfig of the layers it saves (lora_adapter_metadata):
// the config's fields as they are (save_lora_adapter), or prefixed by
// component ("unet.r", "unet.lora_alpha" ...: save_lora_weights).
const adapterMetadataKey = "lora_adapter_metadata"

// metadataConfigs reads the per-component peft configs a file's metadata
// carries; keys without a component prefix belong to defComp.
func metadataConfigs(path string, meta map[string]string, defComp string) (map[string]*peftConfig, error) {
	raw, ok := meta[adapterMetadataKey]
	if !ok {
		return nil, nil
	}
	where := path + " (metadata " + adapterMetadataKey + ")"
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return nil, fmt.Errorf("lora: %s: %w", where, err)
	}
	per := map[string]map[string]json.RawMessage{}
	for k, v := range fields {
		comp := defComp
		for _, p := range componentPrefixes {
			if rest, found := strings.CutPrefix(k, p.prefix); found {
				comp, k = p.component, rest
				break
			}
		}
		if per[comp] == nil {
			per[comp] = map[string]json.RawMessage{}
		}
		per[comp][k] = v
	}
	out := map[string]*peftConfig{}
	for comp, fs := range per {
		b, err := json.Marshal(fs)
		if err != nil {
			return nil, fmt.Errorf("lora: %s: %w", where, err)
		}
		if out[comp], err = parsePeftConfig(where+" "+comp, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// patternValue returns the value peft's rank_pattern/alpha_pattern gives
// module (a key matches when the module name ends with it, as peft's
// re.match(r".*\.{key}$") does), or def.
func patternValue[T any](pattern map[string]T, module string, def T) T {
	keys := make([]string, 0, len(pattern))
	for k := range pattern {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		re, err := regexp.Compile(`^(.*\.)?` + k + `$`)
		if err == nil && re.MatchString(module) {
			return pattern[k]
		}
	}
	return def
}

// group gathers the keys of one layer as the file spells it.
type group struct {
	component, base string
	naming          naming
	down, up, alpha string
	keys            []string
}

// load reads every key of f into canonical layers.
// pc is the adapter folder's config (it applies to every layer without an
// alpha of its own); configs are the per-component configs of the file's
// metadata.
func load(f *safetensors.File, t *targets, pc *peftConfig, configs map[string]*peftConfig, opts Options) (*LoRA, error) {
	path := f.Path()
	defComp := opts.Component
	if defComp == "" {
		defComp = sdxl.UNet
	}
	if !slices.Contains(loraComponents, defComp) {
		return nil, fmt.Errorf("lora: %s: component %q is not one a LoRA updates (%s)", path, defComp, strings.Join(loraComponents, ", "))
	}
	var unmatched, unsupported []string
	groups := map[string]*group{}
	var order []string
	sawKohya, sawComfy := false, false
	for _, k := range f.Names() {
		p, ok := parseKey(k, defComp)
		if !ok {
			unmatched = append(unmatched, k)
			continue
		}
		if p.unsupported != "" {
			unsupported = append(unsupported, fmt.Sprintf("%s (%s)", k, p.unsupported))
			continue
		}
		sawKohya = sawKohya || p.naming == namingFlat
		sawComfy = sawComfy || p.naming == namingStability
		id := fmt.Sprintf("%s|%d|%s", p.component, p.naming, p.base)
		g := groups[id]
		if g == nil {
			g = &group{component: p.component, base: p.base, naming: p.naming}
			groups[id] = g
			order = append(order, id)
		}
		g.keys = append(g.keys, k)
		slot := map[role]*string{roleDown: &g.down, roleUp: &g.up, roleAlpha: &g.alpha}[p.role]
		if *slot != "" {
			return nil, fmt.Errorf("lora: %s: keys %s and %s hold the same tensor", path, *slot, k)
		}
		*slot = k
	}

	l := &LoRA{Layers: map[string]*Layer{}, Format: FormatDiffusers}
	switch {
	case pc != nil:
		l.Format = FormatPEFT
	case sawKohya:
		l.Format = FormatKohya
	case sawComfy:
		l.Format = FormatComfyUI
	}
	from := map[string]string{} // layer key → the group it came from
	for _, id := range order {
		g := groups[id]
		module, found := g.base, false
		switch g.naming {
		case namingFlat:
			m, ok, err := t.resolveFlat(g.component, g.base)
			if err != nil {
				return nil, fmt.Errorf("lora: %s: key %s: %w", path, g.keys[0], err)
			}
			module, found = m, ok
		case namingStability:
			module, found = t.stabilityDotted[g.base]
		default:
			_, found = t.shape(g.component, module)
		}
		if !found {
			unmatched = append(unmatched, g.keys...)
			continue
		}
		if g.down == "" || g.up == "" {
			return nil, fmt.Errorf("lora: %s: layer %s is incomplete: it has %s but no %s", path, g.base,
				strings.Join(g.keys, ", "), map[bool]string{true: "down (lora_down/lora_A) factor", false: "up (lora_up/lora_B) factor"}[g.down == ""])
		}
		layer, err := readLayer(f, g, module, t)
		if err != nil {
			return nil, err
		}
		c := pc
		if c == nil {
			c = configs[g.component]
		}
		if c != nil && !layer.HasAlpha {
			r := patternValue(c.RankPattern, module, c.R)
			if r != layer.Rank {
				return nil, fmt.Errorf("lora: %s: key %s has rank %d but the adapter config gives %s rank %d", path, g.down, layer.Rank, module, r)
			}
			a := patternValue(c.AlphaPattern, module, c.LoraAlpha)
			if c.UseRSLoRA {
				// rsLoRA scales by alpha/√r; keep Scale() = Alpha/Rank.
				a *= math.Sqrt(float64(r))
			}
			layer.Alpha, layer.HasAlpha = float32(a), true
		}
		if prev, dup := from[layer.Key()]; dup {
			return nil, fmt.Errorf("lora: %s: layers %s and %s both update %s", path, prev, g.base, layer.Key())
		}
		from[layer.Key()] = g.base
		l.Layers[layer.Key()] = layer
	}
	sort.Strings(unmatched)
	sort.Strings(unsupported)
	if len(unmatched)+len(unsupported) > 0 {
		if !opts.AllowUnmatched {
			return nil, &UnmatchedError{Path: path, Unmatched: unmatched, Unsupported: unsupported}
		}
		l.Unmatched, l.Unsupported = unmatched, unsupported
	}
	if len(l.Layers) == 0 {
		return nil, fmt.Errorf("lora: %s: no LoRA layer found (%d keys)", path, len(f.Names()))
	}
	return l, nil
}

// readLayer reads a group's factors and alpha and checks them against the
// target weight's shape.
func readLayer(f *safetensors.File, g *group, module string, t *targets) (*Layer, error) {
	path := f.Path()
	target, _ := t.shape(g.component, module)
	di, _ := f.Tensor(g.down)
	ui, _ := f.Tensor(g.up)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("lora: %s: key %s: %s (target %s.%s.weight %v)", path, g.down, fmt.Sprintf(format, a...), g.component, module, target)
	}
	if len(di.Shape) < 2 {
		return nil, bad("down factor has shape %v, want (rank, in...)", di.Shape)
	}
	rank := di.Shape[0]
	if len(ui.Shape) < 2 || ui.Shape[1] != rank || prod(ui.Shape[2:]) != 1 {
		return nil, fmt.Errorf("lora: %s: key %s: up factor has shape %v, want (out, %d) (or (out, %d, 1, 1))", path, g.up, ui.Shape, rank, rank)
	}
	out, in := ui.Shape[0], prod(di.Shape[1:])
	if out != target[0] || !sameTail(di.Shape[1:], target[1:]) {
		return nil, bad("factors give a (%d, %v) update", out, di.Shape[1:])
	}
	down, err := f.Float32(g.down)
	if err != nil {
		return nil, fmt.Errorf("lora: %s: key %s: %w", path, g.down, err)
	}
	up, err := f.Float32(g.up)
	if err != nil {
		return nil, fmt.Errorf("lora: %s: key %s: %w", path, g.up, err)
	}
	layer := &Layer{
		Component: g.component, Module: module, Source: g.base,
		Down: down, Up: up, Rank: rank, In: in, Out: out,
		TargetShape: slices.Clone(target),
	}
	if g.alpha != "" {
		ai, _ := f.Tensor(g.alpha)
		if ai.NumElements() != 1 {
			return nil, fmt.Errorf("lora: %s: key %s: alpha has shape %v, want a scalar", path, g.alpha, ai.Shape)
		}
		a, err := f.Float32(g.alpha)
		if err != nil {
			return nil, fmt.Errorf("lora: %s: key %s: %w", path, g.alpha, err)
		}
		layer.Alpha, layer.HasAlpha = a[0], true
	}
	for _, v := range [][]float32{down, up} {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("lora: %s: layer %s holds a non-finite value", path, g.base)
			}
		}
	}
	return layer, nil
}

// prod returns the product of dims (1 for none).
func prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// sameTail reports whether a factor's trailing dims fit a weight's: equal,
// or equal once trailing 1s are dropped (a (r, in, 1, 1) factor of a linear,
// a (r, in) factor of a 1×1 convolution).
func sameTail(a, b []int) bool {
	trim := func(s []int) []int {
		for len(s) > 0 && s[len(s)-1] == 1 {
			s = s[:len(s)-1]
		}
		return s
	}
	return slices.Equal(a, b) || slices.Equal(trim(a), trim(b))
}
