// Package lora reads the LoRA files in circulation — kohya/A1111/ComfyUI
// (Stability-layout or diffusers-layout module names), diffusers (old
// lora.down/lora.up and newer lora_A/lora_B spellings) and peft adapters —
// into one canonical form keyed by the target parameter in diffusers naming,
// and merges a layer into (or out of) its target weight.
//
// Every format's spellings live in one table-driven conversion file
// (keys.go); the module names a key may name come from the model's configs
// (targets.go), never from guessed splits of underscore-joined names.
//
// Scale. A layer's scale is alpha/rank where the file says alpha: kohya's
// per-layer .alpha tensors, a peft adapter's adapter_config.json (lora_alpha,
// alpha_pattern, rank_pattern, use_rslora), or the peft config diffusers ≥
// 0.33 stores in the file's metadata (lora_adapter_metadata). A file with no
// alpha anywhere (diffusers ≤ 0.26's pytorch_lora_weights.safetensors) loads
// at scale 1, as diffusers itself loads it. So the same factors saved by
// peft (r 4, alpha 8) load at scale 2 from the adapter and from kohya files
// carrying alpha 8, but at scale 1 from the diffusers file: diffusers gives
// that file half the effect, and so do we. The reference's LoRA pipeline
// goldens were made from the kohya file (loaded scaling 2.0).
package lora

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Layer is one low-rank update of a target weight W (out, in...):
// ΔW = Scale() · Up · Down, with Down (Rank, In) and Up (Out, Rank) row-major.
// For a convolution target In is in_channels·kh·kw (Down holds the kernel
// flattened) and ΔW is reshaped to the target's shape.
type Layer struct {
	// Component is the pipeline component: "unet", "text_encoder" or
	// "text_encoder_2".
	Component string
	// Module is the target module in diffusers naming
	// ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"); the
	// target weight is Module + ".weight".
	Module string
	// Source is the key prefix the layer was read from, for messages.
	Source string
	// Down is (Rank, In) and Up is (Out, Rank), row-major.
	Down, Up []float32
	// Rank, In and Out are the update's sizes.
	Rank, In, Out int
	// TargetShape is the target weight's shape ((Out, In) for a linear,
	// (Out, C, kh, kw) for a convolution).
	TargetShape []int
	// Alpha is the file's alpha; HasAlpha says whether the file carried one.
	Alpha    float32
	HasAlpha bool
}

// LoRA is a LoRA file in canonical form.
type LoRA struct {
	// Name is the file's base name without extension (or the adapter
	// folder's name).
	Name string
	// Path is the file or folder the LoRA was read from.
	Path string
	// Format is the detected format: FormatKohya, FormatDiffusers,
	// FormatPEFT or FormatComfyUI.
	Format string
	// Layers holds every layer keyed by LayerKey(component, module).
	Layers map[string]*Layer
	// Unmatched lists, sorted, the keys that match no target. It is only
	// ever non-empty when Options.AllowUnmatched was set (otherwise Open
	// fails and names them).
	Unmatched []string
	// Unsupported lists, sorted, the keys of LoRA variants this package does
	// not merge (LoHa, LoKr, DoRA ...), each followed by the variant in
	// parentheses; like Unmatched, only with Options.AllowUnmatched.
	Unsupported []string
}

// Keys returns the keys of l.Layers, sorted.
func (l *LoRA) Keys() []string {
	ks := make([]string, 0, len(l.Layers))
	for k := range l.Layers {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// LayerKey returns the key of a layer in LoRA.Layers: the component and the
// module joined by a dot, as diffusers spells state-dict keys
// ("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q").
func LayerKey(component, module string) string {
	return component + "." + module
}

// Key returns the layer's key in LoRA.Layers.
func (l *Layer) Key() string { return LayerKey(l.Component, l.Module) }

// Target returns the name of the target weight: Module + ".weight".
func (l *Layer) Target() string { return l.Module + ".weight" }

// Scale returns alpha / rank, or 1 when the file carries no alpha (as
// diffusers loads such files).
func (l *Layer) Scale() float32 {
	if !l.HasAlpha || l.Rank == 0 {
		return 1
	}
	return l.Alpha / float32(l.Rank)
}

// Delta returns the effective update Scale() · Up · Down as an (Out, In)
// row-major matrix, accumulated in float64.
func (l *Layer) Delta() []float32 {
	d := make([]float32, l.Out*l.In)
	l.addDelta(d, 1)
	return d
}

// addDelta adds f · Scale() · Up·Down to w (Out, In), accumulating each
// element in float64 over r = 0..Rank-1 in order. Rows are split across
// goroutines when the update is large; each row's arithmetic is the same
// whatever the split.
func (l *Layer) addDelta(w []float32, f float64) {
	s := f * float64(l.Scale())
	rows := func(lo, hi int) {
		acc := make([]float64, l.In) // (In)
		for o := lo; o < hi; o++ {
			clear(acc)
			for r, u := range l.Up[o*l.Rank : (o+1)*l.Rank] { // u = Up[o, r]
				down := l.Down[r*l.In : (r+1)*l.In] // (In)
				uf := float64(u)
				for i, d := range down {
					acc[i] += uf * float64(d)
				}
			}
			row := w[o*l.In : (o+1)*l.In] // (In)
			for i, a := range acc {
				row[i] = float32(float64(row[i]) + s*a)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), l.Out)
	if workers < 2 || l.Out*l.In*l.Rank < 1<<20 {
		rows(0, l.Out)
		return
	}
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := k*l.Out/workers, (k+1)*l.Out/workers
		wg.Go(func() { rows(lo, hi) })
	}
	wg.Wait()
}

// check verifies the layer's buffers agree with its sizes.
func (l *Layer) check() error {
	if l.Rank <= 0 || l.In <= 0 || l.Out <= 0 {
		return fmt.Errorf("lora: layer %s: bad sizes rank %d in %d out %d", l.Key(), l.Rank, l.In, l.Out)
	}
	if len(l.Down) != l.Rank*l.In || len(l.Up) != l.Out*l.Rank {
		return fmt.Errorf("lora: layer %s: down has %d values, up %d; want %d×%d and %d×%d",
			l.Key(), len(l.Down), len(l.Up), l.Rank, l.In, l.Out, l.Rank)
	}
	return nil
}

// MergeInto adds weight · Scale() · Up·Down to the target weights (Out, In
// row-major; a convolution's (Out, C, kh, kw) is the same memory), in place.
func MergeInto(weights []float32, layer *Layer, weight float32) error {
	if err := layer.check(); err != nil {
		return err
	}
	if len(weights) != layer.Out*layer.In {
		return fmt.Errorf("lora: merge %s: target has %d values, the layer updates %d×%d", layer.Key(), len(weights), layer.Out, layer.In)
	}
	layer.addDelta(weights, float64(weight))
	return nil
}

// Apply merges, at weight, l's layer for a component's parameter (its
// diffusers name, "….attn1.to_q.weight") into that parameter's values w, and
// reports whether l updates that parameter (w is untouched when not). A
// weight loader calls it for every parameter it reads.
func (l *LoRA) Apply(component, param string, w []float32, weight float32) (bool, error) {
	module, ok := strings.CutSuffix(param, ".weight")
	if !ok {
		return false, nil
	}
	layer := l.Layers[LayerKey(component, module)]
	if layer == nil {
		return false, nil
	}
	if err := MergeInto(w, layer, weight); err != nil {
		return false, fmt.Errorf("lora: %s: %w", l.Path, err)
	}
	return true, nil
}

// Unmerge subtracts weight · Scale() · Up·Down from the target weights,
// undoing MergeInto up to float32 rounding.
func Unmerge(weights []float32, layer *Layer, weight float32) error {
	return MergeInto(weights, layer, -weight)
}
