package clip

import (
	"fmt"

	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
)

// PromptEmbeds is SDXL's text conditioning for one prompt; the caller owns
// both tensors (Free).
type PromptEmbeds struct {
	// Embeds is prompt_embeds (1, N, C1+C2): text_encoder's and
	// text_encoder_2's hidden_states[-2] concatenated on the last axis.
	Embeds *tensor.Tensor
	// Pooled is pooled_prompt_embeds (1, P): text_encoder_2's text_embeds.
	Pooled *tensor.Tensor
}

// Free releases both tensors.
func (p *PromptEmbeds) Free() {
	tensor.FreeAll(p.Embeds, p.Pooled)
	p.Embeds, p.Pooled = nil, nil
}

// checkPair validates the two encoders and tokenizers SDXL pairs.
func checkPair(te1, te2 *TextModel, tok1, tok2 *tokenizer.Tokenizer) error {
	switch {
	case te1 == nil || te2 == nil || tok1 == nil || tok2 == nil:
		return fmt.Errorf("clip: encode prompt: missing text encoder or tokenizer")
	case te2.TextProjection == nil:
		return fmt.Errorf("clip: encode prompt: text_encoder_2 is %q, want CLIPTextModelWithProjection", te2.Config.Architectures)
	case te1.b != te2.b:
		return fmt.Errorf("clip: encode prompt: the text encoders are on different backends")
	case tok1.MaxLength() != tok2.MaxLength():
		return fmt.Errorf("clip: encode prompt: tokenizers pad to %d and %d tokens", tok1.MaxLength(), tok2.MaxLength())
	}
	return nil
}

// EncodePrompt is diffusers' StableDiffusionXLPipeline.encode_prompt for one
// prompt (no clip_skip, no LoRA scale): each tokenizer pads/truncates the
// prompt to its max length, each encoder gives hidden_states[-2] (without the
// final layer norm), concatenated on the last axis; the pooled vector is
// text_encoder_2's text_embeds.
func EncodePrompt(te1, te2 *TextModel, tok1, tok2 *tokenizer.Tokenizer, prompt string) (*PromptEmbeds, error) {
	if err := checkPair(te1, te2, tok1, tok2); err != nil {
		return nil, err
	}
	ids1 := tok1.EncodePadded(prompt, tok1.MaxLength())
	ids2 := tok2.EncodePadded(prompt, tok2.MaxLength())
	o1, err := te1.Forward([][]int{ids1}, Options{PenultimateOnly: true})
	if err != nil {
		return nil, fmt.Errorf("clip: text_encoder: %w", err)
	}
	defer o1.Free()
	o2, err := te2.Forward([][]int{ids2}, Options{})
	if err != nil {
		return nil, fmt.Errorf("clip: text_encoder_2: %w", err)
	}
	defer o2.Free()
	emb, err := te1.b.Concat(2, o1.Penultimate, o2.Penultimate) // (1, N, C1+C2)
	if err != nil {
		return nil, fmt.Errorf("clip: encode prompt: %w", err)
	}
	pooled := o2.TextEmbeds // (1, P)
	o2.TextEmbeds = nil
	return &PromptEmbeds{Embeds: emb, Pooled: pooled}, nil
}

// EncodeNegativePrompt encodes the negative prompt as diffusers does: when
// negative is nil (no negative prompt given) and forceZeros
// (model_index.json's force_zeros_for_empty_prompt, true for SDXL base) it
// returns zeros of the prompt's shapes; otherwise it encodes *negative like
// any prompt — an explicit "" included.
func EncodeNegativePrompt(te1, te2 *TextModel, tok1, tok2 *tokenizer.Tokenizer, negative *string, forceZeros bool) (*PromptEmbeds, error) {
	if negative != nil || !forceZeros {
		text := ""
		if negative != nil {
			text = *negative
		}
		return EncodePrompt(te1, te2, tok1, tok2, text)
	}
	if err := checkPair(te1, te2, tok1, tok2); err != nil {
		return nil, err
	}
	b := te1.b
	emb, err := b.Zeros(tensor.Shape{1, tok1.MaxLength(), te1.Config.HiddenSize + te2.Config.HiddenSize}, tensor.F32)
	if err != nil {
		return nil, err
	}
	pooled, err := b.Zeros(tensor.Shape{1, te2.Config.ProjectionDim}, tensor.F32)
	if err != nil {
		emb.Free()
		return nil, err
	}
	return &PromptEmbeds{Embeds: emb, Pooled: pooled}, nil
}
