// Package pipeline is SDXL text-to-image as diffusers' StableDiffusionXLPipeline
// runs it: both prompts through the two CLIP text encoders, classifier-free
// guidance with the negative and positive halves batched together, SDXL's
// micro-conditioning time ids, initial latents from torch's CPU generator,
// one of engine/sched's samplers, and the VAE decode. The same seed gives
// the same image as the reference.
//
// Memory: the UNet and the VAE stay on the device from Load to Close
// (LoRAs merged into their weights while loading); the text encoders are
// loaded for each generation and freed as soon as the prompts are encoded.
package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"lorastudio/engine/clip"
	"lorastudio/engine/lora"
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
	"lorastudio/engine/unet"
	"lorastudio/engine/vae"
)

// LoRASpec names a LoRA file (or peft adapter folder) and the weight it is
// merged at (1 = the file's own strength).
type LoRASpec struct {
	Path   string
	Weight float32
}

// Options changes how Load reads a model.
type Options struct {
	// LoRAs are merged into the weights while loading, each at its weight.
	LoRAs []LoRASpec
	// ConfigDir is a diffusers folder whose configs (and tokenizers) size a
	// single-file checkpoint; "" reads the sizes from the source (a diffusers
	// folder's own configs, SDXL base 1.0's for a single file).
	ConfigDir string
}

// Pipeline is a loaded SDXL model ready to generate on one backend. Its
// methods may be called from several goroutines; generations run one at a
// time.
type Pipeline struct {
	mu    sync.Mutex
	b     tensor.Backend
	src   *sdxl.Source
	cfg   sdxl.Config
	loras []appliedLoRA
	unet  *unet.Model
	vae   *vae.AutoencoderKL
	tok1  *tokenizer.Tokenizer
	tok2  *tokenizer.Tokenizer
	// tensorLimit, when positive, replaces the backend's per-tensor limit
	// in the choice of a tiled decode (tests).
	tensorLimit int64
}

// Load opens the model at modelPath (a diffusers folder or a single
// .safetensors checkpoint), opens the LoRAs and loads the UNet and the VAE
// onto b with the LoRAs merged. Errors name the file and the problem.
func Load(b tensor.Backend, modelPath string, opts Options) (*Pipeline, error) {
	if b == nil {
		return nil, errors.New("pipeline: nil backend")
	}
	var sopts []sdxl.Option
	if opts.ConfigDir != "" {
		sopts = append(sopts, sdxl.WithConfigDir(opts.ConfigDir))
	}
	src, err := sdxl.OpenSource(modelPath, sopts...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p := &Pipeline{b: b, src: src, cfg: src.Config()}
	fail := func(err error) (*Pipeline, error) {
		p.Close()
		return nil, err
	}
	for _, spec := range opts.LoRAs {
		l, err := lora.Open(spec.Path, p.cfg)
		if err != nil {
			return fail(fmt.Errorf("pipeline: %w", err))
		}
		p.loras = append(p.loras, appliedLoRA{l: l, weight: spec.Weight})
	}
	if p.tok1, p.tok2, err = openTokenizers(src, opts.ConfigDir); err != nil {
		return fail(err)
	}
	if p.unet, err = unet.Load(b, p.cfg.UNet, p.weights(sdxl.UNet)); err != nil {
		return fail(fmt.Errorf("pipeline: %s: %w", modelPath, err))
	}
	if p.vae, err = vae.Load(b, p.cfg.VAE, p.weights(sdxl.VAE)); err != nil {
		return fail(fmt.Errorf("pipeline: %s: %w", modelPath, err))
	}
	return p, nil
}

// weights returns the nn.Source a component loads from, with the LoRAs that
// target it merged.
func (p *Pipeline) weights(comp string) nn.Source {
	return withLoRAs(p.src.Weights(comp), comp, p.loras)
}

// openTokenizers finds both tokenizers: the model folder's, else those of
// the config folder, else CLIP's embedded vocabulary with SDXL's special
// tokens (the second tokenizer pads with "!").
func openTokenizers(src *sdxl.Source, configDir string) (*tokenizer.Tokenizer, *tokenizer.Tokenizer, error) {
	dirs := []string{configDir}
	if src.Format() == sdxl.FormatDiffusers {
		dirs = []string{src.Path()}
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "tokenizer")); err != nil {
			continue
		}
		t1, err := tokenizer.FromDir(filepath.Join(dir, "tokenizer"))
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: %w", err)
		}
		t2, err := tokenizer.FromDir(filepath.Join(dir, "tokenizer_2"))
		if err != nil {
			return nil, nil, fmt.Errorf("pipeline: %w", err)
		}
		return t1, t2, nil
	}
	t1, err := tokenizer.Embedded(tokenizer.DefaultConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: embedded tokenizer: %w", err)
	}
	c2 := tokenizer.DefaultConfig()
	c2.Pad = "!"
	t2, err := tokenizer.Embedded(c2)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: embedded tokenizer_2: %w", err)
	}
	return t1, t2, nil
}

// openEncoders loads both text encoders (LoRAs merged) for one generation.
func (p *Pipeline) openEncoders() (*clip.Encoders, error) {
	e := &clip.Encoders{Tok1: p.tok1, Tok2: p.tok2, ForceZerosForEmptyPrompt: p.cfg.Index.ForceZerosForEmptyPrompt}
	var err error
	if e.TE1, err = clip.Load(p.b, p.weights(sdxl.TextEncoder), clip.Config(p.cfg.TextEncoder)); err != nil {
		return nil, fmt.Errorf("pipeline: %s: text_encoder: %w", p.src.Path(), err)
	}
	if e.TE2, err = clip.Load(p.b, p.weights(sdxl.TextEncoder2), clip.Config(p.cfg.TextEncoder2)); err != nil {
		e.Free()
		return nil, fmt.Errorf("pipeline: %s: text_encoder_2: %w", p.src.Path(), err)
	}
	return e, nil
}

// Backend returns the backend the pipeline runs on.
func (p *Pipeline) Backend() tensor.Backend { return p.b }

// Config returns the model's configs.
func (p *Pipeline) Config() sdxl.Config { return p.cfg }

// Close frees the UNet and the VAE (all the pipeline's device memory) and
// closes the model files. The pipeline must not be used afterwards.
func (p *Pipeline) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unet != nil {
		p.unet.Free()
		p.unet = nil
	}
	if p.vae != nil {
		p.vae.Free()
		p.vae = nil
	}
	var err error
	if p.src != nil {
		err = p.src.Close()
		p.src = nil
	}
	return err
}
