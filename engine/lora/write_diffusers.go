package lora

import (
	"fmt"

	"lorastudio/engine/safetensors"
)

// WriteDiffusers writes l at path as diffusers' save_lora_weights writes
// pytorch_lora_weights.safetensors (the spelling of diffusers ≤ 0.26, which
// every later diffusers, ComfyUI and this package read):
// <component>.<module>.lora.down.weight and .lora.up.weight, metadata
// {"format": "pt"}, in dtype F16 or F32.
//
// That file carries no alpha, and every loader gives it scale 1, so each
// layer's Scale() is baked into its up factor (in float32, before any F16
// rounding): the file loads with the same update Scale·Up·Down as l, through
// Open as through diffusers. (The newer lora_A/lora_B spelling with the peft
// config in lora_adapter_metadata keeps alpha, but loaders older than
// diffusers 0.33 ignore that metadata and would load it at scale 1.)
func WriteDiffusers(path string, l *LoRA, dtype safetensors.DType) error {
	if dtype != safetensors.F16 && dtype != safetensors.F32 {
		return fmt.Errorf("lora: %s: write dtype %s, want F16 or F32", path, dtype)
	}
	if len(l.Layers) == 0 {
		return fmt.Errorf("lora: %s: the LoRA has no layer", path)
	}
	var ts []safetensors.Tensor
	for _, k := range l.Keys() {
		layer := l.Layers[k]
		if err := layer.check(); err != nil {
			return fmt.Errorf("lora: %s: %w", path, err)
		}
		if !knownComponent(layer.Component) {
			return fmt.Errorf("lora: %s: layer %s: component %q is not one diffusers names", path, k, layer.Component)
		}
		downShape, upShape, err := factorShapes(layer)
		if err != nil {
			return fmt.Errorf("lora: %s: %w", path, err)
		}
		up := layer.Up
		if s := layer.Scale(); s != 1 {
			up = make([]float32, len(layer.Up))
			for i, u := range layer.Up {
				up[i] = u * s
			}
		}
		for _, e := range []struct {
			suffix string
			shape  []int
			v      []float32
		}{
			{".lora.down.weight", downShape, layer.Down},
			{".lora.up.weight", upShape, up},
		} {
			t, err := encode(layer.Key()+e.suffix, dtype, e.shape, e.v)
			if err != nil {
				return fmt.Errorf("lora: %s: %w", path, err)
			}
			ts = append(ts, t)
		}
	}
	if err := safetensors.Write(path, ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: %s: %w", path, err)
	}
	return nil
}

// knownComponent reports whether c is a component a LoRA may update.
func knownComponent(c string) bool {
	for _, k := range loraComponents {
		if k == c {
			return true
		}
	}
	return false
}
