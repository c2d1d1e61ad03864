package lora

import (
	"fmt"
	"sort"
	"strings"

	"lorastudio/engine/sdxl"
)

// loraComponents are the components a LoRA may update, in a fixed order.
var loraComponents = []string{sdxl.UNet, sdxl.TextEncoder, sdxl.TextEncoder2}

// stabilityUNetPrefix begins every UNet key of a Stability single file.
const stabilityUNetPrefix = "model.diffusion_model."

// targets is every module a LoRA may update, derived from the model's
// configs: per component, each weight of rank 2 (linear) or 4 (convolution).
type targets struct {
	// shapes maps component → module → the weight's shape.
	shapes map[string]map[string][]int
	// flat maps component → underscore-joined module name → module. The
	// UNet's table holds both the diffusers names and the Stability-layout
	// names (from sdxl.SingleFileLayout); a form two modules share maps to ""
	// (ambiguous), and ambiguous lists who shares it.
	flat      map[string]map[string]string
	ambiguous map[string][]string
	// stability maps a UNet module to its underscore-joined Stability-layout
	// name, as sd-scripts writes SDXL LoRAs.
	stability map[string]string
	// stabilityDotted maps a dotted Stability-layout UNet name
	// (input_blocks.4.1.proj_in) to its module.
	stabilityDotted map[string]string
}

// flatten joins a dotted module name with underscores, as kohya does.
func flatten(module string) string { return strings.ReplaceAll(module, ".", "_") }

// newTargets derives the target modules of cfg.
func newTargets(cfg sdxl.Config) (*targets, error) {
	t := &targets{
		shapes:    map[string]map[string][]int{},
		flat:      map[string]map[string]string{},
		ambiguous: map[string][]string{},
		stability: map[string]string{},

		stabilityDotted: map[string]string{},
	}
	for _, c := range loraComponents {
		ps, err := sdxl.ComponentParams(cfg, c)
		if err != nil {
			return nil, fmt.Errorf("lora: %s parameters: %w", c, err)
		}
		t.shapes[c] = map[string][]int{}
		t.flat[c] = map[string]string{}
		for _, p := range ps {
			m, ok := strings.CutSuffix(p.Name, ".weight")
			if !ok || (len(p.Shape) != 2 && len(p.Shape) != 4) {
				continue
			}
			t.shapes[c][m] = p.Shape
			t.addFlat(c, flatten(m), m)
		}
	}
	// kohya's Stability-layout UNet names come from the single-file table.
	layout, err := sdxl.SingleFileLayout(cfg)
	if err != nil {
		return nil, fmt.Errorf("lora: single-file layout: %w", err)
	}
	for _, r := range layout {
		if r.Component != sdxl.UNet || r.RowStart != 0 || r.RowEnd != 0 || r.Transpose || r.Reshape {
			continue
		}
		m, ok := strings.CutSuffix(r.Name, ".weight")
		if !ok {
			continue
		}
		if _, ok := t.shapes[sdxl.UNet][m]; !ok {
			continue
		}
		k, ok := strings.CutPrefix(r.Key, stabilityUNetPrefix)
		if !ok {
			continue
		}
		k, ok = strings.CutSuffix(k, ".weight")
		if !ok {
			continue
		}
		t.addFlat(sdxl.UNet, flatten(k), m)
		t.stability[m] = flatten(k)
		t.stabilityDotted[k] = m
	}
	return t, nil
}

// addFlat records that the underscore form f of component c names module m.
func (t *targets) addFlat(c, f, m string) {
	prev, seen := t.flat[c][f]
	switch {
	case !seen:
		t.flat[c][f] = m
	case prev == m:
	default:
		key := c + ":" + f
		if prev != "" {
			t.ambiguous[key] = append(t.ambiguous[key], prev)
		}
		t.ambiguous[key] = append(t.ambiguous[key], m)
		sort.Strings(t.ambiguous[key])
		t.flat[c][f] = ""
	}
}

// resolveFlat returns the module of component c whose underscore form is f.
// ok is false when none has it; an ambiguous form is an error.
func (t *targets) resolveFlat(c, f string) (module string, ok bool, err error) {
	m, seen := t.flat[c][f]
	if !seen {
		return "", false, nil
	}
	if m == "" {
		return "", false, fmt.Errorf("%s name %q could be any of %s", c, f, strings.Join(t.ambiguous[c+":"+f], ", "))
	}
	return m, true, nil
}

// shape returns the weight shape of module m of component c.
func (t *targets) shape(c, m string) ([]int, bool) {
	s, ok := t.shapes[c][m]
	return s, ok
}
