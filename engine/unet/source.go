package unet

import (
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// SourceWeights returns an nn.Source over the UNet parameters of an open
// SDXL model (diffusers names, whatever the file layout: a diffusers folder
// or a Stability single file mapped by engine/sdxl).
func SourceWeights(src *sdxl.Source) nn.Source { return sourceWeights{src} }

type sourceWeights struct{ src *sdxl.Source }

// Names lists the UNet's parameter names.
func (w sourceWeights) Names() []string {
	var out []string
	for _, p := range w.src.Params(sdxl.UNet) {
		out = append(out, p.Name)
	}
	return out
}

// Lookup returns a parameter's shape and stored dtype.
func (w sourceWeights) Lookup(name string) ([]int, tensor.DType, bool) {
	r, err := w.src.Tensor(sdxl.UNet, name)
	if err != nil {
		return nil, 0, false
	}
	return r.Shape, nn.StoredDType(string(r.DType)), true
}

// Float32 returns a parameter's values as float32.
func (w sourceWeights) Float32(name string) ([]float32, error) {
	r, err := w.src.Tensor(sdxl.UNet, name)
	if err != nil {
		return nil, err
	}
	return r.Float32()
}
