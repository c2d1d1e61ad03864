package lora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// PEFTOptions are the adapter_config.json fields a canonical LoRA does not
// carry.
type PEFTOptions struct {
	// Component is the component the adapter wraps (empty: the UNet); every
	// layer must belong to it, since a peft adapter describes one model.
	Component string
	// BaseModel is base_model_name_or_path (empty writes null, as
	// save_pretrained of a UNet does).
	BaseModel string
	// Init is the network's init (InitKohya, InitGaussian or empty): kohya's
	// down init is peft's default (kaiming-uniform, a = √5), so it is
	// written as init_lora_weights true.
	Init string
	// Dropout is lora_dropout.
	Dropout float32
}

// WritePEFT writes l into the folder dir as peft's save_pretrained does for
// the tutorial's `unet.save_pretrained("sdxl_lora")`: adapter_config.json
// and adapter_model.safetensors with keys
// base_model.model.<module>.lora_A.weight / lora_B.weight, in dtype F16 or
// F32, for a UNet LoRA. See WritePEFTWithOptions.
func WritePEFT(dir string, l *LoRA, dtype safetensors.DType) error {
	return WritePEFTWithOptions(dir, l, dtype, PEFTOptions{})
}

// WritePEFTWithOptions is WritePEFT with the config fields of opts.
//
// r and lora_alpha are the most common rank and alpha (ties: the smaller);
// a layer with another rank or alpha is listed in rank_pattern or
// alpha_pattern by its full module name. Open reads those; peft 0.9 matches
// a pattern key only after a dot (".*\.key$"), so it would miss a whole
// module name — a network's one rank and alpha never need a pattern. A layer without alpha (scale 1) gets alpha = rank. target_modules
// are the module-name suffixes the layers share (to_q, to_out.0,
// ff.net.0.proj ...), sorted; peft matches them as NewNetwork does. The
// folder is created if needed; both files are written atomically, the
// weights before the config, so a folder whose config exists has its
// weights.
func WritePEFTWithOptions(dir string, l *LoRA, dtype safetensors.DType, opts PEFTOptions) error {
	if dtype != safetensors.F16 && dtype != safetensors.F32 {
		return fmt.Errorf("lora: %s: write dtype %s, want F16 or F32", dir, dtype)
	}
	comp := opts.Component
	if comp == "" {
		comp = sdxl.UNet
	}
	if len(l.Layers) == 0 {
		return fmt.Errorf("lora: %s: the LoRA has no layer", dir)
	}
	keys := l.Keys()
	var ts []safetensors.Tensor
	ranks, alphas := map[string]int{}, map[string]float32{}
	var modules []string
	for _, k := range keys {
		layer := l.Layers[k]
		if err := layer.check(); err != nil {
			return fmt.Errorf("lora: %s: %w", dir, err)
		}
		if layer.Component != comp {
			return fmt.Errorf("lora: %s: layer %s belongs to %s; a peft adapter holds one component (%s)", dir, k, layer.Component, comp)
		}
		downShape, upShape, err := factorShapes(layer)
		if err != nil {
			return fmt.Errorf("lora: %s: %w", dir, err)
		}
		for _, e := range []struct {
			suffix string
			shape  []int
			v      []float32
		}{
			{".lora_A.weight", downShape, layer.Down},
			{".lora_B.weight", upShape, layer.Up},
		} {
			t, err := encode(peftPrefix+layer.Module+e.suffix, dtype, e.shape, e.v)
			if err != nil {
				return fmt.Errorf("lora: %s: %w", dir, err)
			}
			ts = append(ts, t)
		}
		ranks[layer.Module] = layer.Rank
		alphas[layer.Module] = float32(layer.Rank)
		if layer.HasAlpha {
			alphas[layer.Module] = layer.Alpha
		}
		modules = append(modules, layer.Module)
	}
	r := mostCommon(ranks)
	alpha := mostCommon(alphas)
	rankPattern, alphaPattern := map[string]int{}, map[string]float32{}
	for _, m := range modules {
		if ranks[m] != r {
			rankPattern[m] = ranks[m]
		}
		if alphas[m] != alpha {
			alphaPattern[m] = alphas[m]
		}
	}
	var init any = true
	if opts.Init == InitGaussian {
		init = InitGaussian
	}
	var base any
	if opts.BaseModel != "" {
		base = opts.BaseModel
	}
	// The fields and their order are peft 0.9's LoraConfig as save_pretrained
	// writes it (inference_mode is set while saving).
	fields := []struct {
		name  string
		value any
	}{
		{"peft_type", "LORA"},
		{"auto_mapping", nil},
		{"base_model_name_or_path", base},
		{"revision", nil},
		{"task_type", nil},
		{"inference_mode", true},
		{"r", r},
		{"target_modules", peftTargets(modules)},
		{"lora_alpha", jsonNumber(alpha)},
		{"lora_dropout", pyFloat(opts.Dropout)},
		{"fan_in_fan_out", false},
		{"bias", "none"},
		{"use_rslora", false},
		{"modules_to_save", nil},
		{"init_lora_weights", init},
		{"layers_to_transform", nil},
		{"layers_pattern", nil},
		{"rank_pattern", rankPattern},
		{"alpha_pattern", numberMap(alphaPattern)},
		{"megatron_config", nil},
		{"megatron_core", "megatron.core"},
		{"loftq_config", map[string]any{}},
		{"use_dora", false},
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, f := range fields {
		v, err := json.MarshalIndent(f.value, "  ", "  ")
		if err != nil {
			return fmt.Errorf("lora: %s: %s: %w", dir, f.name, err)
		}
		fmt.Fprintf(&b, "  %q: %s", f.name, v)
		if i < len(fields)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}")

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	if err := safetensors.Write(filepath.Join(dir, peftWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: %s: %w", dir, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, peftConfigFile), b.Bytes()); err != nil {
		return fmt.Errorf("lora: %s: %w", dir, err)
	}
	return nil
}

// factorShapes returns the shapes a layer's factors are saved with: (Rank,
// In) and (Out, Rank) for a linear; (Rank, C, kh, kw) and (Out, Rank, 1, 1)
// for a convolution (TargetShape of rank 4).
func factorShapes(layer *Layer) (down, up []int, err error) {
	target := layer.TargetShape
	if len(target) == 0 {
		target = []int{layer.Out, layer.In}
	}
	if target[0] != layer.Out || prod(target[1:]) != layer.In || (len(target) != 2 && len(target) != 4) {
		return nil, nil, fmt.Errorf("layer %s: target shape %v does not fit a %d×%d update", layer.Key(), target, layer.Out, layer.In)
	}
	down = append([]int{layer.Rank}, target[1:]...)
	up = []int{layer.Out, layer.Rank}
	if len(target) == 4 {
		up = append(up, 1, 1)
	}
	return down, up, nil
}

// knownTargets are the module-name suffixes a trainer names (the attn-mlp
// preset's), longest first so that ff.net.0.proj wins over a shorter form.
var knownTargets = func() []string {
	s := slices.Clone(attnMLPTargets)
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return s
}()

// peftTargets returns the sorted target_modules that name modules: for each,
// the known trainer target it ends with, else its last name part (with the
// part before when the last is an index, as in to_out.0).
func peftTargets(modules []string) []string {
	set := map[string]bool{}
	for _, m := range modules {
		t := ""
		for _, k := range knownTargets {
			if strings.HasSuffix(m, "."+k) || m == k {
				t = k
				break
			}
		}
		if t == "" {
			parts := strings.Split(m, ".")
			t = parts[len(parts)-1]
			if _, err := strconv.Atoi(t); err == nil && len(parts) > 1 {
				t = parts[len(parts)-2] + "." + t
			}
		}
		set[t] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// mostCommon returns the value most layers have; ties go to the smaller.
func mostCommon[T int | float32](byModule map[string]T) T {
	count := map[T]int{}
	for _, v := range byModule {
		count[v]++
	}
	var best T
	n := 0
	for v, c := range count {
		if c > n || (c == n && v < best) {
			best, n = v, c
		}
	}
	return best
}

// jsonNumber writes a float32 as Python's json does for the value it holds:
// integral values as integers (lora_alpha 16), others in the shortest form.
type jsonNumber float32

// MarshalJSON writes the number in the shortest form that reads back.
func (n jsonNumber) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(n), 'g', -1, 32)), nil
}

// pyFloat writes a float32 as Python's json writes a float: always with a
// fraction or exponent (lora_dropout 0.0).
type pyFloat float32

// MarshalJSON writes the shortest form that reads back, with ".0" added to
// an integral value.
func (f pyFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return []byte(s), nil
}

// numberMap converts an alpha pattern for JSON.
func numberMap(m map[string]float32) map[string]jsonNumber {
	out := make(map[string]jsonNumber, len(m))
	for k, v := range m {
		out[k] = jsonNumber(v)
	}
	return out
}

// writeFileAtomic writes b to path through a synced temporary file beside
// it renamed over path, so a crash never leaves a partial file there.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable
		d.Close()
	}
	return nil
}
