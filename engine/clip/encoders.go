package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
)

// Encoders are SDXL's two text encoders with their tokenizers: what a
// pipeline needs to turn prompts into conditioning.
type Encoders struct {
	TE1, TE2   *TextModel
	Tok1, Tok2 *tokenizer.Tokenizer
	// ForceZerosForEmptyPrompt is model_index.json's
	// force_zeros_for_empty_prompt: an absent negative prompt gives zeros.
	ForceZerosForEmptyPrompt bool
}

// OpenEncoders loads text_encoder, text_encoder_2, tokenizer and tokenizer_2
// of a diffusers SDXL folder onto b, and force_zeros_for_empty_prompt from its
// model_index.json (true when the field is absent, as in diffusers).
func OpenEncoders(b tensor.Backend, dir string) (*Encoders, error) {
	e := &Encoders{ForceZerosForEmptyPrompt: true}
	raw, err := os.ReadFile(filepath.Join(dir, "model_index.json"))
	if err != nil {
		return nil, fmt.Errorf("clip: %v", err)
	}
	var idx struct {
		ForceZeros *bool `json:"force_zeros_for_empty_prompt"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("clip: %s: %v", filepath.Join(dir, "model_index.json"), err)
	}
	if idx.ForceZeros != nil {
		e.ForceZerosForEmptyPrompt = *idx.ForceZeros
	}
	if e.Tok1, err = tokenizer.FromDir(filepath.Join(dir, "tokenizer")); err != nil {
		return nil, err
	}
	if e.Tok2, err = tokenizer.FromDir(filepath.Join(dir, "tokenizer_2")); err != nil {
		return nil, err
	}
	if e.TE1, err = OpenDir(b, filepath.Join(dir, "text_encoder")); err != nil {
		return nil, err
	}
	if e.TE2, err = OpenDir(b, filepath.Join(dir, "text_encoder_2")); err != nil {
		e.TE1.Free()
		return nil, err
	}
	if err := checkPair(e.TE1, e.TE2, e.Tok1, e.Tok2); err != nil {
		e.Free()
		return nil, err
	}
	return e, nil
}

// Encode returns the conditioning of prompt and of the negative prompt
// (nil: none given — zeros when ForceZerosForEmptyPrompt; "" is encoded).
func (e *Encoders) Encode(prompt string, negative *string) (pos, neg *PromptEmbeds, err error) {
	if e.TE1 == nil {
		return nil, nil, errors.New("clip: encoders used after Free")
	}
	if pos, err = EncodePrompt(e.TE1, e.TE2, e.Tok1, e.Tok2, prompt); err != nil {
		return nil, nil, err
	}
	if neg, err = EncodeNegativePrompt(e.TE1, e.TE2, e.Tok1, e.Tok2, negative, e.ForceZerosForEmptyPrompt); err != nil {
		pos.Free()
		return nil, nil, err
	}
	return pos, neg, nil
}

// Free releases both text encoders (all their device memory); the
// tokenizers stay usable.
func (e *Encoders) Free() {
	if e.TE1 != nil {
		e.TE1.Free()
	}
	if e.TE2 != nil {
		e.TE2.Free()
	}
	e.TE1, e.TE2 = nil, nil
}
