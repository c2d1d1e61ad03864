package pipeline

import (
	"errors"
	"fmt"

	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
	"lorastudio/engine/vae"
)

// WithUNet builds a pipeline around a UNet already loaded on b from src —
// a trainer's, with its LoRA adapters attached, so samples show the live
// LoRA without merging it. It loads the VAE and the tokenizers; the text
// encoders load for each generation, as with Load. The pipeline borrows u
// and src: call Release, not Close, when done, which frees the VAE only.
func WithUNet(b tensor.Backend, src *sdxl.Source, u *unet.Model) (*Pipeline, error) {
	if b == nil || src == nil || u == nil {
		return nil, errors.New("pipeline: WithUNet needs a backend, a source and a UNet")
	}
	p := &Pipeline{b: b, src: src, cfg: src.Config(), unet: u}
	var err error
	if p.tok1, p.tok2, err = openTokenizers(src, ""); err != nil {
		return nil, err
	}
	if p.vae, err = vae.Load(b, p.cfg.VAE, p.weights(sdxl.VAE)); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", src.Path(), err)
	}
	return p, nil
}

// Release frees what WithUNet loaded (the VAE) and drops the borrowed UNet
// and source without freeing or closing them. The pipeline must not be used
// afterwards.
func (p *Pipeline) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.vae != nil {
		p.vae.Free()
		p.vae = nil
	}
	p.unet, p.src = nil, nil
}
