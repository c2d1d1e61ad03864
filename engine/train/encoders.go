package train

import (
	"fmt"

	"lorastudio/engine/clip"
	"lorastudio/engine/half"
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/pipeline"
	"lorastudio/engine/tensor"
)

// openEncoders loads both text encoders of src with their tokenizers (as
// the pipeline finds them), for runs whose captions are shuffled every step
// and so cannot be cached.
func openEncoders(be tensor.Backend, src *sdxl.Source) (*clip.Encoders, error) {
	cfg := src.Config()
	e := &clip.Encoders{ForceZerosForEmptyPrompt: cfg.Index.ForceZerosForEmptyPrompt}
	var err error
	if e.Tok1, e.Tok2, err = pipeline.OpenTokenizers(src, ""); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if e.TE1, err = clip.Load(be, src.Weights(sdxl.TextEncoder), clip.Config(cfg.TextEncoder)); err != nil {
		return nil, fmt.Errorf("train: %s: text_encoder: %w", src.Path(), err)
	}
	if e.TE2, err = clip.Load(be, src.Weights(sdxl.TextEncoder2), clip.Config(cfg.TextEncoder2)); err != nil {
		e.TE1.Free()
		return nil, fmt.Errorf("train: %s: text_encoder_2: %w", src.Path(), err)
	}
	return e, nil
}

// fp16Weights presents every F32 weight of a source as F16, so a checkpoint
// stored in fp32 still trains with its frozen matmul and convolution
// weights in fp16 on the device (half the memory; the math stays fp32).
// Biases and norms load as F32 whatever the source says.
type fp16Weights struct{ nn.Source }

// Lookup reports F32 parameters as F16.
func (s fp16Weights) Lookup(name string) ([]int, tensor.DType, bool) {
	shape, dt, ok := s.Source.Lookup(name)
	if ok && dt == tensor.F32 {
		dt = tensor.F16
	}
	return shape, dt, ok
}

// Float16Bits gives a parameter as fp16 bit patterns: the source's own when
// it stores fp16, else its values rounded to nearest even.
func (s fp16Weights) Float16Bits(name string) ([]uint16, error) {
	if _, dt, ok := s.Source.Lookup(name); ok && dt == tensor.F16 {
		if f, ok := s.Source.(nn.Float16Source); ok {
			return f.Float16Bits(name)
		}
	}
	v, err := s.Source.Float32(name)
	if err != nil {
		return nil, err
	}
	out := make([]uint16, len(v))
	for i, x := range v {
		out[i] = half.Float32ToFloat16(x)
	}
	return out, nil
}

var _ nn.Float16Source = fp16Weights{}
