package pipeline

import (
	"fmt"

	"lorastudio/engine/lora"
	"lorastudio/engine/nn"
	"lorastudio/engine/tensor"
)

// appliedLoRA is one open LoRA file with the weight it is merged at.
type appliedLoRA struct {
	l      *lora.LoRA
	weight float32
}

// mergedWeights wraps a component's weights and merges LoRAs into the
// parameters they target as the loader reads them: such a parameter is
// reported as F32 (uploaded unrounded, so the merge keeps its precision)
// and read with every LoRA's delta added in turn; all others pass through
// untouched, packed F16 included.
type mergedWeights struct {
	inner   nn.Source
	comp    string
	loras   []appliedLoRA
	targets map[string]bool // parameter names some LoRA updates
}

// withLoRAs returns src itself when no LoRA targets comp, else a
// mergedWeights over it.
func withLoRAs(src nn.Source, comp string, loras []appliedLoRA) nn.Source {
	targets := map[string]bool{}
	for _, a := range loras {
		for _, layer := range a.l.Layers {
			if layer.Component == comp {
				targets[layer.Module+".weight"] = true
			}
		}
	}
	if len(targets) == 0 {
		return src
	}
	return &mergedWeights{inner: src, comp: comp, loras: loras, targets: targets}
}

// Names lists the wrapped source's names.
func (m *mergedWeights) Names() []string { return m.inner.Names() }

// Lookup reports F32 for a parameter a LoRA updates, else the stored dtype.
func (m *mergedWeights) Lookup(name string) ([]int, tensor.DType, bool) {
	shape, dt, ok := m.inner.Lookup(name)
	if ok && m.targets[name] {
		dt = tensor.F32
	}
	return shape, dt, ok
}

// Float32 returns a parameter's values with every LoRA that targets it
// merged at its weight.
func (m *mergedWeights) Float32(name string) ([]float32, error) {
	w, err := m.inner.Float32(name)
	if err != nil || !m.targets[name] {
		return w, err
	}
	for _, a := range m.loras {
		if _, err := a.l.Apply(m.comp, name, w, a.weight); err != nil {
			return nil, fmt.Errorf("lora %s: %s.%s: %w", a.l.Path, m.comp, name, err)
		}
	}
	return w, nil
}

// Float16Bits passes packed parameters through; a parameter a LoRA updates
// is reported as F32, so loaders never ask for its fp16 bits.
func (m *mergedWeights) Float16Bits(name string) ([]uint16, error) {
	h, ok := m.inner.(nn.Float16Source)
	if !ok || m.targets[name] {
		return nil, fmt.Errorf("pipeline: %s.%s has no fp16 form", m.comp, name)
	}
	return h.Float16Bits(name)
}
