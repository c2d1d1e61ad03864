package lora

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"lorastudio/engine/half"
	"lorastudio/engine/sdxl"
)

// Merge output formats.
const (
	// MergeSingleFile writes one .safetensors in Stability's layout (what
	// A1111 and ComfyUI load as a checkpoint).
	MergeSingleFile = "single"
	// MergeDiffusers writes a diffusers folder (from a diffusers folder,
	// whose configs and tokenizers it copies).
	MergeDiffusers = "diffusers"
)

// Weighted is a LoRA and the weight it is merged at.
type Weighted struct {
	LoRA   *LoRA
	Weight float32
}

// MergedParams returns a reader of src's parameters with every LoRA of
// loras merged at its weight, in order, as fp16 bits: a parameter no LoRA
// updates is passed through (its fp16 bits untouched); an updated one is
// read as float32, gets each LoRA's weight · Scale · Up·Down added exactly as
// generate's loader adds it, and is rounded to fp16 (nearest even) once.
func MergedParams(src *sdxl.Source, loras []Weighted) sdxl.Float16Func {
	return func(comp, name string) ([]uint16, error) {
		r, err := src.Tensor(comp, name)
		if err != nil {
			return nil, err
		}
		module, isWeight := strings.CutSuffix(name, ".weight")
		touched := false
		for _, w := range loras {
			if isWeight && w.LoRA.Layers[LayerKey(comp, module)] != nil {
				touched = true
			}
		}
		if !touched {
			return r.Float16Bits()
		}
		v, err := r.Float32()
		if err != nil {
			return nil, err
		}
		for _, w := range loras {
			if _, err := w.LoRA.Apply(comp, name, v, w.Weight); err != nil {
				return nil, err
			}
		}
		out := make([]uint16, len(v))
		for i, x := range v {
			out[i] = half.Float32ToFloat16(x)
		}
		return out, nil
	}
}

// Merge bakes loras into the model src and writes the result at out, fp16:
// format MergeSingleFile writes a Stability-layout single file (its
// metadata names the merged LoRAs and weights), MergeDiffusers a diffusers
// folder (src must be one: its configs and tokenizers are copied). Every
// layer must update a parameter of src with its shape. out is written
// atomically and may not be the model itself; a diffusers folder may not
// exist yet.
func Merge(src *sdxl.Source, loras []Weighted, out, format string) error {
	if len(loras) == 0 {
		return fmt.Errorf("lora: merge: no LoRA to merge")
	}
	type merged struct {
		File   string  `json:"file"`
		Weight float32 `json:"weight"`
	}
	var names []merged
	for _, w := range loras {
		for _, k := range w.LoRA.Keys() {
			layer := w.LoRA.Layers[k]
			r, err := src.Tensor(layer.Component, layer.Target())
			if err != nil {
				return fmt.Errorf("lora: merge %s: layer %s: %w", w.LoRA.Path, k, err)
			}
			if r.NumElements() != int64(layer.Out*layer.In) || r.Shape[0] != layer.Out {
				return fmt.Errorf("lora: merge %s: layer %s updates %d×%d, the model's %s is %v", w.LoRA.Path, k, layer.Out, layer.In, layer.Target(), r.Shape)
			}
		}
		names = append(names, merged{File: filepath.Base(w.LoRA.Path), Weight: w.Weight})
	}
	if same(out, src.Path()) {
		return fmt.Errorf("lora: merge: %s is the model itself; write the merged model elsewhere", out)
	}
	read := MergedParams(src, loras)
	switch format {
	case MergeSingleFile, "":
		b, err := json.Marshal(names)
		if err != nil {
			return err
		}
		meta := map[string]string{"format": "pt", "lorastudio_merged_loras": string(b)}
		return sdxl.WriteSingleFile(out, src.Config(), read, meta)
	case MergeDiffusers:
		if src.Format() != sdxl.FormatDiffusers {
			return fmt.Errorf("lora: merge: %s is a single file, which has no configs or tokenizers to make a diffusers folder from; merge into a single file (format %q) or start from a diffusers folder", src.Path(), MergeSingleFile)
		}
		return sdxl.WriteDiffusersFolder(out, src.Path(), src.Config(), read)
	}
	return fmt.Errorf("lora: merge: format %q, want %q or %q", format, MergeSingleFile, MergeDiffusers)
}

// same reports whether paths a and b name the same existing file or folder.
func same(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
