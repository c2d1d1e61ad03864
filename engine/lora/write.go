package lora

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"

	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// kohyaComponentPrefix is the kohya prefix WriteKohya gives each component.
var kohyaComponentPrefix = map[string]string{
	sdxl.UNet:         "lora_unet_",
	sdxl.TextEncoder:  "lora_te1_",
	sdxl.TextEncoder2: "lora_te2_",
}

// WriteKohya writes l at path as sd-scripts writes an SDXL LoRA — the file
// ComfyUI, A1111 and diffusers all load: UNet modules under their
// Stability-layout names (lora_unet_input_blocks_4_1_…), text encoders as
// lora_te1_/lora_te2_ with transformers names, each layer's lora_down,
// lora_up and alpha (alpha = rank, scale 1, for a layer that had none), in
// dtype F16 or F32. A convolution's factors are written 4-D. The file is
// written atomically; cfg must be the model the LoRA was opened for.
//
// The safetensors metadata holds ss_base_model_version and, when every layer
// shares them, ss_network_dim and ss_network_alpha (as diffusers' kohya
// converter writes them); metadata's entries are added to those and win
// over them (a trainer adds ss_network_module, ss_steps, modelspec.* ...).
func WriteKohya(path string, l *LoRA, cfg sdxl.Config, dtype safetensors.DType, metadata map[string]string) error {
	if dtype != safetensors.F16 && dtype != safetensors.F32 {
		return fmt.Errorf("lora: %s: write dtype %s, want F16 or F32", path, dtype)
	}
	t, err := newTargets(cfg)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(l.Layers))
	for k := range l.Layers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ts []safetensors.Tensor
	ranks, alphas := map[int]bool{}, map[float32]bool{}
	for _, k := range keys {
		layer := l.Layers[k]
		if err := layer.check(); err != nil {
			return fmt.Errorf("lora: %s: %w", path, err)
		}
		prefix, ok := kohyaComponentPrefix[layer.Component]
		if !ok {
			return fmt.Errorf("lora: %s: layer %s: component %q has no kohya prefix", path, k, layer.Component)
		}
		target, ok := t.shape(layer.Component, layer.Module)
		if !ok || prod(target) != layer.Out*layer.In || target[0] != layer.Out {
			return fmt.Errorf("lora: %s: layer %s does not fit the model (target %v, update %d×%d)", path, k, target, layer.Out, layer.In)
		}
		name := flatten(layer.Module)
		if s, ok := t.stability[layer.Module]; ok && layer.Component == sdxl.UNet {
			name = s
		}
		if got, ok, err := t.resolveFlat(layer.Component, name); err != nil || !ok || got != layer.Module {
			return fmt.Errorf("lora: %s: layer %s: kohya name %s would not read back (%v)", path, k, name, err)
		}
		downShape := append([]int{layer.Rank}, target[1:]...)
		upShape := []int{layer.Out, layer.Rank}
		if len(target) == 4 {
			upShape = append(upShape, 1, 1)
		}
		alpha := float32(layer.Rank)
		if layer.HasAlpha {
			alpha = layer.Alpha
		}
		ranks[layer.Rank], alphas[alpha] = true, true
		for _, e := range []struct {
			suffix string
			shape  []int
			v      []float32
		}{
			{".alpha", nil, []float32{alpha}},
			{".lora_down.weight", downShape, layer.Down},
			{".lora_up.weight", upShape, layer.Up},
		} {
			tensor, err := encode(prefix+name+e.suffix, dtype, e.shape, e.v)
			if err != nil {
				return fmt.Errorf("lora: %s: %w", path, err)
			}
			ts = append(ts, tensor)
		}
	}
	meta := map[string]string{"ss_base_model_version": "sdxl_base_v1-0"}
	if len(ranks) == 1 && len(alphas) == 1 {
		for r := range ranks {
			meta["ss_network_dim"] = strconv.Itoa(r)
		}
		for a := range alphas {
			meta["ss_network_alpha"] = strconv.FormatFloat(float64(a), 'g', -1, 32)
		}
	}
	maps.Copy(meta, metadata)
	if err := safetensors.Write(path, ts, meta); err != nil {
		return fmt.Errorf("lora: %s: %w", path, err)
	}
	return nil
}

// encode packs float32 values as a little-endian tensor of dtype (F16 rounds
// to nearest even).
func encode(name string, dtype safetensors.DType, shape []int, v []float32) (safetensors.Tensor, error) {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	if dtype == safetensors.F16 {
		h, err := safetensors.ToFloat16Bits(safetensors.F32, b)
		if err != nil {
			return safetensors.Tensor{}, fmt.Errorf("key %s: %w", name, err)
		}
		b = b[:2*len(h)]
		for i, u := range h {
			binary.LittleEndian.PutUint16(b[2*i:], u)
		}
	}
	return safetensors.Tensor{Name: name, DType: dtype, Shape: slices.Clone(shape), Data: b}, nil
}
