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
)

// Config holds the fields of transformers' CLIPTextConfig the model reads
// (text_encoder/config.json, text_encoder_2/config.json). Its fields are
// those of sdxl.CLIPTextConfig, so clip.Config(c) converts one.
type Config struct {
	Architectures         []string `json:"architectures"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	VocabSize             int      `json:"vocab_size"`
	HiddenAct             string   `json:"hidden_act"`
	LayerNormEps          float64  `json:"layer_norm_eps"`
	ProjectionDim         int      `json:"projection_dim"`
	PadTokenID            int      `json:"pad_token_id"`
	BosTokenID            int      `json:"bos_token_id"`
	EosTokenID            int      `json:"eos_token_id"`
}

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

// WithProjection reports whether the model is CLIPTextModelWithProjection
// (it then has text_projection.weight and Forward gives TextEmbeds).
func (c Config) WithProjection() bool {
	return len(c.Architectures) > 0 && c.Architectures[0] == "CLIPTextModelWithProjection"
}

// HeadDim returns hidden_size / num_attention_heads.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// Validate checks the config describes a CLIP text model this package builds.
func (c Config) Validate() error {
	switch {
	case len(c.Architectures) != 1 || (c.Architectures[0] != "CLIPTextModel" && c.Architectures[0] != "CLIPTextModelWithProjection"):
		return fmt.Errorf("architectures %q, want [CLIPTextModel] or [CLIPTextModelWithProjection]", c.Architectures)
	case c.HiddenSize <= 0 || c.IntermediateSize <= 0 || c.NumHiddenLayers <= 0 || c.MaxPositionEmbeddings <= 0 || c.VocabSize <= 0:
		return fmt.Errorf("hidden_size %d, intermediate_size %d, num_hidden_layers %d, max_position_embeddings %d, vocab_size %d must be positive",
			c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.MaxPositionEmbeddings, c.VocabSize)
	case c.NumAttentionHeads <= 0 || c.HiddenSize%c.NumAttentionHeads != 0:
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	case c.HiddenAct != "quick_gelu" && c.HiddenAct != "gelu":
		return fmt.Errorf("hidden_act %q, want quick_gelu or gelu", c.HiddenAct)
	case c.LayerNormEps <= 0:
		return fmt.Errorf("layer_norm_eps %g must be positive", c.LayerNormEps)
	case c.WithProjection() && c.ProjectionDim <= 0:
		return fmt.Errorf("projection_dim %d must be positive", c.ProjectionDim)
	}
	return nil
}
