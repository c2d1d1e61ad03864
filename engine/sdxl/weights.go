package sdxl

import (
	"lorastudio/engine/nn"
	"lorastudio/engine/tensor"
)

// Weights returns one component of the model (UNet, VAE, TextEncoder or
// TextEncoder2) as an nn.Source under its diffusers parameter names, whatever
// the file layout. It is also an nn.Float16Source, so fp16 tensors can reach
// the device without a float32 copy.
func (s *Source) Weights(component string) nn.Source { return componentWeights{s, component} }

// componentWeights is what Weights returns.
type componentWeights struct {
	src  *Source
	comp string
}

// Names lists the component's parameter names.
func (w componentWeights) Names() []string {
	ps := w.src.Params(w.comp)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// Lookup returns a parameter's shape and stored dtype.
func (w componentWeights) Lookup(name string) ([]int, tensor.DType, bool) {
	r, err := w.src.Tensor(w.comp, name)
	if err != nil {
		return nil, 0, false
	}
	return r.Shape, nn.StoredDType(string(r.DType)), true
}

// Float32 returns a parameter's values as float32 (a new slice).
func (w componentWeights) Float32(name string) ([]float32, error) {
	r, err := w.src.Tensor(w.comp, name)
	if err != nil {
		return nil, err
	}
	return r.Float32()
}

// Float16Bits returns a parameter as fp16 bit patterns (a new slice).
func (w componentWeights) Float16Bits(name string) ([]uint16, error) {
	r, err := w.src.Tensor(w.comp, name)
	if err != nil {
		return nil, err
	}
	return r.Float16Bits()
}
