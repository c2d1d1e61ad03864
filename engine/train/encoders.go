package train

import (
	"fmt"

	"lorastudio/engine/clip"
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
