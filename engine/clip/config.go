// Package clip is SDXL's two text encoders — transformers' CLIPTextModel
// (text_encoder, OpenAI CLIP ViT-L/14, quick-GELU) and
// CLIPTextModelWithProjection (text_encoder_2, OpenCLIP ViT-bigG/14, GELU,
// text_projection without bias) — built from their config.json on any
// tensor.Backend, and SDXL's prompt encoding (EncodePrompt).
package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"lorastudio/engine/sdxl"
)

// Config is transformers' CLIPTextConfig as engine/sdxl reads it
// (text_encoder/config.json, text_encoder_2/config.json): one struct, with
// its WithProjection, HeadDim and Validate, for both packages.
type Config = sdxl.CLIPTextConfig

// LoadConfig reads a config.json.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("clip: %v", err)
	}
	c := Config{LayerNormEps: 1e-5, EosTokenID: 2}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&c); err != nil {
		return Config{}, fmt.Errorf("clip: %s: %v", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("clip: %s: %v", path, err)
	}
	return c, nil
}
