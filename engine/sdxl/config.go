// Package sdxl opens SDXL model sources — a diffusers folder or a Stability
// single-file checkpoint — reads their configs, derives every component's
// parameter list from its config, maps the single-file layout onto diffusers
// names, and describes a model for `lorastudio info`.
package sdxl

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The component names, as in a diffusers folder and in model_index.json.
const (
	UNet         = "unet"
	VAE          = "vae"
	TextEncoder  = "text_encoder"
	TextEncoder2 = "text_encoder_2"
)

// Components lists the weighted components of an SDXL pipeline in a fixed order.
var Components = []string{UNet, VAE, TextEncoder, TextEncoder2}

// IntOrList is a config field that diffusers accepts as one integer (the
// same for every block) or as a list (one per block); JSON null gives nil.
type IntOrList []int

// UnmarshalJSON reads a number, a list of numbers or null.
func (l *IntOrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var v []int
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*l = v
		return nil
	}
	var v int
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want an integer or a list of integers, got %s", b)
	}
	*l = IntOrList{v}
	return nil
}

// At returns the value for block i: the single value, or the i-th of the list.
func (l IntOrList) At(i int) int {
	if len(l) == 1 {
		return l[0]
	}
	return l[i]
}

// fits reports whether l has one value or exactly n.
func (l IntOrList) fits(n int) bool { return len(l) == 1 || len(l) == n }

// UNetConfig holds the fields of diffusers' UNet2DConditionModel config.json
// that SDXL uses (unet/config.json).
type UNetConfig struct {
	ClassName                         string    `json:"_class_name"`
	InChannels                        int       `json:"in_channels"`
	OutChannels                       int       `json:"out_channels"`
	SampleSize                        int       `json:"sample_size"`
	BlockOutChannels                  []int     `json:"block_out_channels"`
	LayersPerBlock                    int       `json:"layers_per_block"`
	TransformerLayersPerBlock         IntOrList `json:"transformer_layers_per_block"`
	ReverseTransformerLayersPerBlock  IntOrList `json:"reverse_transformer_layers_per_block"`
	AttentionHeadDim                  IntOrList `json:"attention_head_dim"`
	NumAttentionHeads                 IntOrList `json:"num_attention_heads"`
	CrossAttentionDim                 IntOrList `json:"cross_attention_dim"`
	DownBlockTypes                    []string  `json:"down_block_types"`
	UpBlockTypes                      []string  `json:"up_block_types"`
	MidBlockType                      string    `json:"mid_block_type"`
	NormNumGroups                     int       `json:"norm_num_groups"`
	NormEps                           float64   `json:"norm_eps"`
	ActFn                             string    `json:"act_fn"`
	AdditionEmbedType                 string    `json:"addition_embed_type"`
	AdditionTimeEmbedDim              int       `json:"addition_time_embed_dim"`
	ProjectionClassEmbeddingsInputDim int       `json:"projection_class_embeddings_input_dim"`
	UseLinearProjection               bool      `json:"use_linear_projection"`
	FlipSinToCos                      bool      `json:"flip_sin_to_cos"`
	FreqShift                         float64   `json:"freq_shift"`
	UpcastAttention                   bool      `json:"upcast_attention"`
	ConvInKernel                      int       `json:"conv_in_kernel"`
	ConvOutKernel                     int       `json:"conv_out_kernel"`
	DownsamplePadding                 int       `json:"downsample_padding"`
	MidBlockScaleFactor               float64   `json:"mid_block_scale_factor"`
	TimeEmbeddingType                 string    `json:"time_embedding_type"`
	ResnetTimeScaleShift              string    `json:"resnet_time_scale_shift"`

	// Fields that would change the module tree; SDXL leaves them null/false
	// and Validate rejects anything else.
	ClassEmbedType     *string         `json:"class_embed_type"`
	EncoderHidDimType  *string         `json:"encoder_hid_dim_type"`
	TimeCondProjDim    *int            `json:"time_cond_proj_dim"`
	TimeEmbeddingDim   *int            `json:"time_embedding_dim"`
	NumClassEmbeds     *int            `json:"num_class_embeds"`
	DualCrossAttention bool            `json:"dual_cross_attention"`
	OnlyCrossAttention json.RawMessage `json:"only_cross_attention"`
	AttentionType      string          `json:"attention_type"`
}

// SDXLBaseUNet returns the UNet config of stabilityai/stable-diffusion-xl-base-1.0
// (unet/config.json of that repository, copied in configs/unet.json).
func SDXLBaseUNet() UNetConfig {
	return UNetConfig{
		ClassName: "UNet2DConditionModel", InChannels: 4, OutChannels: 4, SampleSize: 128,
		BlockOutChannels: []int{320, 640, 1280}, LayersPerBlock: 2,
		TransformerLayersPerBlock: IntOrList{1, 2, 10},
		AttentionHeadDim:          IntOrList{5, 10, 20}, // diffusers' misnomer: these are head counts
		CrossAttentionDim:         IntOrList{2048},
		DownBlockTypes:            []string{"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"},
		UpBlockTypes:              []string{"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"},
		MidBlockType:              "UNetMidBlock2DCrossAttn",
		NormNumGroups:             32, NormEps: 1e-5, ActFn: "silu",
		AdditionEmbedType: "text_time", AdditionTimeEmbedDim: 256,
		ProjectionClassEmbeddingsInputDim: 2816, // 1280 pooled + 6 time ids × 256
		UseLinearProjection:               true, FlipSinToCos: true, FreqShift: 0,
		ConvInKernel: 3, ConvOutKernel: 3, DownsamplePadding: 1, MidBlockScaleFactor: 1,
		TimeEmbeddingType: "positional", ResnetTimeScaleShift: "default",
		OnlyCrossAttention: json.RawMessage("false"),
	}
}

// TimeEmbedDim is the width of the time embedding: 4 × the first block's channels.
func (c UNetConfig) TimeEmbedDim() int { return 4 * c.BlockOutChannels[0] }

// HasCrossAttention reports whether down block i (a diffusers down_blocks
// index) carries transformer blocks.
func (c UNetConfig) HasCrossAttention(i int) bool {
	return c.DownBlockTypes[i] == "CrossAttnDownBlock2D"
}

// UpHasCrossAttention reports whether up block i carries transformer blocks.
func (c UNetConfig) UpHasCrossAttention(i int) bool {
	return c.UpBlockTypes[i] == "CrossAttnUpBlock2D"
}

// TransformerDepth returns the number of transformer blocks in each attention
// of down block i.
func (c UNetConfig) TransformerDepth(i int) int { return c.TransformerLayersPerBlock.At(i) }

// UpTransformerDepth returns the number of transformer blocks in each
// attention of up block i: reverse_transformer_layers_per_block when given,
// else transformer_layers_per_block reversed (as diffusers does).
func (c UNetConfig) UpTransformerDepth(i int) int {
	if c.ReverseTransformerLayersPerBlock != nil {
		return c.ReverseTransformerLayersPerBlock.At(i)
	}
	return c.TransformerLayersPerBlock.At(len(c.BlockOutChannels) - 1 - i)
}

// CrossAttentionDimAt returns the width of the text states attended by down block i.
func (c UNetConfig) CrossAttentionDimAt(i int) int { return c.CrossAttentionDim.At(i) }

// Validate checks the config describes a UNet this package can lay out.
func (c UNetConfig) Validate() error {
	n := len(c.BlockOutChannels)
	switch {
	case c.ClassName != "" && c.ClassName != "UNet2DConditionModel":
		return fmt.Errorf("_class_name %q, want UNet2DConditionModel", c.ClassName)
	case n == 0:
		return fmt.Errorf("block_out_channels is empty")
	case len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("%d down_block_types and %d up_block_types for %d block_out_channels", len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	case c.InChannels <= 0 || c.OutChannels <= 0 || c.LayersPerBlock <= 0:
		return fmt.Errorf("in_channels %d, out_channels %d, layers_per_block %d must be positive", c.InChannels, c.OutChannels, c.LayersPerBlock)
	case !c.TransformerLayersPerBlock.fits(n):
		return fmt.Errorf("transformer_layers_per_block has %d values for %d blocks", len(c.TransformerLayersPerBlock), n)
	case c.ReverseTransformerLayersPerBlock != nil && !c.ReverseTransformerLayersPerBlock.fits(n):
		return fmt.Errorf("reverse_transformer_layers_per_block has %d values for %d blocks", len(c.ReverseTransformerLayersPerBlock), n)
	case !c.CrossAttentionDim.fits(n):
		return fmt.Errorf("cross_attention_dim has %d values for %d blocks", len(c.CrossAttentionDim), n)
	case c.AttentionHeadDim != nil && !c.AttentionHeadDim.fits(n):
		return fmt.Errorf("attention_head_dim has %d values for %d blocks", len(c.AttentionHeadDim), n)
	case c.NumAttentionHeads != nil && !c.NumAttentionHeads.fits(n):
		return fmt.Errorf("num_attention_heads has %d values for %d blocks", len(c.NumAttentionHeads), n)
	case c.additionError() != nil:
		return c.additionError()
	case c.MidBlockType != "UNetMidBlock2DCrossAttn":
		return fmt.Errorf("mid_block_type %q, want UNetMidBlock2DCrossAttn", c.MidBlockType)
	case c.ConvInKernel%2 != 1 || c.ConvOutKernel%2 != 1:
		return fmt.Errorf("conv_in_kernel %d and conv_out_kernel %d must be odd", c.ConvInKernel, c.ConvOutKernel)
	case c.TimeEmbeddingType != "positional":
		return fmt.Errorf("time_embedding_type %q, want positional", c.TimeEmbeddingType)
	case c.ResnetTimeScaleShift != "default":
		return fmt.Errorf("resnet_time_scale_shift %q, want default", c.ResnetTimeScaleShift)
	case c.ClassEmbedType != nil || c.EncoderHidDimType != nil || c.TimeCondProjDim != nil || c.TimeEmbeddingDim != nil || c.NumClassEmbeds != nil:
		return fmt.Errorf("class_embed_type, encoder_hid_dim_type, time_cond_proj_dim, time_embedding_dim and num_class_embeds must be null for SDXL")
	case c.DualCrossAttention:
		return fmt.Errorf("dual_cross_attention is not supported")
	case len(c.OnlyCrossAttention) > 0 && string(c.OnlyCrossAttention) != "false" && string(c.OnlyCrossAttention) != "null":
		return fmt.Errorf("only_cross_attention %s is not supported", c.OnlyCrossAttention)
	case c.AttentionType != "" && c.AttentionType != "default":
		return fmt.Errorf("attention_type %q, want default", c.AttentionType)
	case c.ActFn != "silu":
		return fmt.Errorf("act_fn %q, want silu", c.ActFn)
	}
	for i, t := range c.DownBlockTypes {
		if t != "DownBlock2D" && t != "CrossAttnDownBlock2D" {
			return fmt.Errorf("down_block_types[%d] %q, want DownBlock2D or CrossAttnDownBlock2D", i, t)
		}
	}
	for i, t := range c.UpBlockTypes {
		if t != "UpBlock2D" && t != "CrossAttnUpBlock2D" {
			return fmt.Errorf("up_block_types[%d] %q, want UpBlock2D or CrossAttnUpBlock2D", i, t)
		}
	}
	for i, ch := range c.BlockOutChannels {
		if ch <= 0 || c.NormNumGroups <= 0 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("block_out_channels[%d] %d is not a positive multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
	}
	return nil
}

// additionError checks the SDXL "text_time" added conditioning.
func (c UNetConfig) additionError() error {
	if c.AdditionEmbedType != "text_time" {
		return fmt.Errorf("addition_embed_type %q, want text_time (SDXL)", c.AdditionEmbedType)
	}
	if c.AdditionTimeEmbedDim <= 0 || c.ProjectionClassEmbeddingsInputDim <= 6*c.AdditionTimeEmbedDim {
		return fmt.Errorf("projection_class_embeddings_input_dim %d must exceed 6 × addition_time_embed_dim %d (pooled text + 6 time ids)", c.ProjectionClassEmbeddingsInputDim, c.AdditionTimeEmbedDim)
	}
	return nil
}

// VAEConfig holds the fields of diffusers' AutoencoderKL config.json (vae/config.json).
type VAEConfig struct {
	ClassName        string   `json:"_class_name"`
	InChannels       int      `json:"in_channels"`
	OutChannels      int      `json:"out_channels"`
	LatentChannels   int      `json:"latent_channels"`
	BlockOutChannels []int    `json:"block_out_channels"`
	DownBlockTypes   []string `json:"down_block_types"`
	UpBlockTypes     []string `json:"up_block_types"`
	LayersPerBlock   int      `json:"layers_per_block"`
	NormNumGroups    int      `json:"norm_num_groups"`
	ActFn            string   `json:"act_fn"`
	SampleSize       int      `json:"sample_size"`
	ScalingFactor    float64  `json:"scaling_factor"`
	ForceUpcast      bool     `json:"force_upcast"`
}

// SDXLBaseVAE returns the VAE config of stabilityai/stable-diffusion-xl-base-1.0
// (vae/config.json, copied in configs/vae.json).
func SDXLBaseVAE() VAEConfig {
	down := "DownEncoderBlock2D"
	up := "UpDecoderBlock2D"
	return VAEConfig{
		ClassName: "AutoencoderKL", InChannels: 3, OutChannels: 3, LatentChannels: 4,
		BlockOutChannels: []int{128, 256, 512, 512},
		DownBlockTypes:   []string{down, down, down, down},
		UpBlockTypes:     []string{up, up, up, up},
		LayersPerBlock:   2, NormNumGroups: 32, ActFn: "silu", SampleSize: 1024,
		ScalingFactor: 0.13025, ForceUpcast: true,
	}
}

// Validate checks the config describes a VAE this package can lay out.
func (c VAEConfig) Validate() error {
	n := len(c.BlockOutChannels)
	switch {
	case c.ClassName != "" && c.ClassName != "AutoencoderKL":
		return fmt.Errorf("_class_name %q, want AutoencoderKL", c.ClassName)
	case n == 0:
		return fmt.Errorf("block_out_channels is empty")
	case len(c.DownBlockTypes) != n || len(c.UpBlockTypes) != n:
		return fmt.Errorf("%d down_block_types and %d up_block_types for %d block_out_channels", len(c.DownBlockTypes), len(c.UpBlockTypes), n)
	case c.InChannels <= 0 || c.OutChannels <= 0 || c.LatentChannels <= 0 || c.LayersPerBlock <= 0:
		return fmt.Errorf("in_channels %d, out_channels %d, latent_channels %d, layers_per_block %d must be positive", c.InChannels, c.OutChannels, c.LatentChannels, c.LayersPerBlock)
	case c.ScalingFactor <= 0:
		return fmt.Errorf("scaling_factor %g must be positive", c.ScalingFactor)
	case c.ActFn != "silu":
		return fmt.Errorf("act_fn %q, want silu", c.ActFn)
	}
	for i := range n {
		if c.DownBlockTypes[i] != "DownEncoderBlock2D" {
			return fmt.Errorf("down_block_types[%d] %q, want DownEncoderBlock2D", i, c.DownBlockTypes[i])
		}
		if c.UpBlockTypes[i] != "UpDecoderBlock2D" {
			return fmt.Errorf("up_block_types[%d] %q, want UpDecoderBlock2D", i, c.UpBlockTypes[i])
		}
		if ch := c.BlockOutChannels[i]; ch <= 0 || c.NormNumGroups <= 0 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("block_out_channels[%d] %d is not a positive multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
	}
	return nil
}

// CLIPTextConfig holds the fields of transformers' CLIPTextConfig
// (text_encoder/config.json, text_encoder_2/config.json).
type CLIPTextConfig struct {
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

// SDXLBaseTextEncoder returns the config of SDXL's first text encoder, OpenAI
// CLIP ViT-L/14's text tower (stable-diffusion-xl-base-1.0 text_encoder/config.json).
func SDXLBaseTextEncoder() CLIPTextConfig {
	return CLIPTextConfig{
		Architectures: []string{"CLIPTextModel"},
		HiddenSize:    768, IntermediateSize: 3072, NumHiddenLayers: 12, NumAttentionHeads: 12,
		MaxPositionEmbeddings: 77, VocabSize: 49408, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		ProjectionDim: 768, PadTokenID: 1, BosTokenID: 0, EosTokenID: 2,
	}
}

// SDXLBaseTextEncoder2 returns the config of SDXL's second text encoder,
// OpenCLIP ViT-bigG/14's text tower with its projection
// (stable-diffusion-xl-base-1.0 text_encoder_2/config.json).
func SDXLBaseTextEncoder2() CLIPTextConfig {
	return CLIPTextConfig{
		Architectures: []string{"CLIPTextModelWithProjection"},
		HiddenSize:    1280, IntermediateSize: 5120, NumHiddenLayers: 32, NumAttentionHeads: 20,
		MaxPositionEmbeddings: 77, VocabSize: 49408, HiddenAct: "gelu", LayerNormEps: 1e-5,
		ProjectionDim: 1280, PadTokenID: 1, BosTokenID: 0, EosTokenID: 2,
	}
}

// WithProjection reports whether the model is CLIPTextModelWithProjection
// (it then carries text_projection.weight).
func (c CLIPTextConfig) WithProjection() bool {
	return len(c.Architectures) > 0 && c.Architectures[0] == "CLIPTextModelWithProjection"
}

// HeadDim returns hidden_size / num_attention_heads.
func (c CLIPTextConfig) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// Validate checks the config describes a CLIP text model this package can lay out.
func (c CLIPTextConfig) Validate() error {
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

// SchedulerConfig is scheduler/scheduler_config.json: the fields the
// samplers read, and every field as parsed JSON in Raw.
type SchedulerConfig struct {
	ClassName         string         `json:"_class_name"`
	NumTrainTimesteps int            `json:"num_train_timesteps"`
	BetaStart         float64        `json:"beta_start"`
	BetaEnd           float64        `json:"beta_end"`
	BetaSchedule      string         `json:"beta_schedule"`
	PredictionType    string         `json:"prediction_type"`
	TimestepSpacing   string         `json:"timestep_spacing"`
	StepsOffset       int            `json:"steps_offset"`
	UseKarrasSigmas   bool           `json:"use_karras_sigmas"`
	Raw               map[string]any `json:"-"`
}

// SDXLBaseScheduler returns the scheduler config of stable-diffusion-xl-base-1.0
// (scheduler/scheduler_config.json: EulerDiscreteScheduler, scaled_linear
// betas 0.00085..0.012, leading spacing, steps_offset 1).
func SDXLBaseScheduler() SchedulerConfig {
	return SchedulerConfig{
		ClassName: "EulerDiscreteScheduler", NumTrainTimesteps: 1000,
		BetaStart: 0.00085, BetaEnd: 0.012, BetaSchedule: "scaled_linear",
		PredictionType: "epsilon", TimestepSpacing: "leading", StepsOffset: 1,
		Raw: map[string]any{
			"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
			"beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
			"clip_sample": false, "interpolation_type": "linear", "num_train_timesteps": 1000.0,
			"prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": false,
			"skip_prk_steps": true, "steps_offset": 1.0, "timestep_spacing": "leading",
			"trained_betas": nil, "use_karras_sigmas": false,
		},
	}
}

// ModelIndex is model_index.json: the pipeline class and, per component,
// the library and class that implement it.
type ModelIndex struct {
	ClassName                string               `json:"_class_name"`
	ForceZerosForEmptyPrompt bool                 `json:"force_zeros_for_empty_prompt"`
	Components               map[string][2]string `json:"-"`
}

// Config gathers every component config of a pipeline.
type Config struct {
	Index        ModelIndex
	UNet         UNetConfig
	VAE          VAEConfig
	TextEncoder  CLIPTextConfig
	TextEncoder2 CLIPTextConfig
	Scheduler    SchedulerConfig
}

// SDXLBase returns every config of stabilityai/stable-diffusion-xl-base-1.0
// from the named constructors (equal to DefaultConfig, which parses the
// embedded copies of the files).
func SDXLBase() Config {
	return Config{
		Index: ModelIndex{
			ClassName: "StableDiffusionXLPipeline", ForceZerosForEmptyPrompt: true,
			Components: map[string][2]string{
				"scheduler": {"diffusers", "EulerDiscreteScheduler"},
				TextEncoder: {"transformers", "CLIPTextModel"}, TextEncoder2: {"transformers", "CLIPTextModelWithProjection"},
				"tokenizer": {"transformers", "CLIPTokenizer"}, "tokenizer_2": {"transformers", "CLIPTokenizer"},
				UNet: {"diffusers", "UNet2DConditionModel"}, VAE: {"diffusers", "AutoencoderKL"},
			},
		},
		UNet: SDXLBaseUNet(), VAE: SDXLBaseVAE(),
		TextEncoder: SDXLBaseTextEncoder(), TextEncoder2: SDXLBaseTextEncoder2(),
		Scheduler: SDXLBaseScheduler(),
	}
}

// Validate checks every component config.
func (c Config) Validate() error {
	if err := c.UNet.Validate(); err != nil {
		return fmt.Errorf("unet config: %v", err)
	}
	if err := c.VAE.Validate(); err != nil {
		return fmt.Errorf("vae config: %v", err)
	}
	if err := c.TextEncoder.Validate(); err != nil {
		return fmt.Errorf("text_encoder config: %v", err)
	}
	if err := c.TextEncoder2.Validate(); err != nil {
		return fmt.Errorf("text_encoder_2 config: %v", err)
	}
	return nil
}

//go:embed configs/*.json
var embeddedConfigs embed.FS

// DefaultConfig returns the configs of stabilityai/stable-diffusion-xl-base-1.0,
// parsed from the copies embedded in the binary (configs/*.json). A single
// file does not record its sizes, so it is read with these unless told otherwise.
func DefaultConfig() (Config, error) {
	files := map[string]string{
		"model_index": "model_index.json", UNet: "unet.json", VAE: "vae.json",
		TextEncoder: "text_encoder.json", TextEncoder2: "text_encoder_2.json", "scheduler": "scheduler.json",
	}
	read := func(key string) (string, []byte, error) {
		name := "configs/" + files[key]
		b, err := embeddedConfigs.ReadFile(name)
		return "embedded " + name, b, err
	}
	return parseConfigs(read)
}

// LoadConfig reads every config of a diffusers folder: model_index.json,
// unet/config.json, vae/config.json, text_encoder/config.json,
// text_encoder_2/config.json and scheduler/scheduler_config.json.
func LoadConfig(dir string) (Config, error) {
	files := map[string]string{
		"model_index": "model_index.json",
		UNet:          filepath.Join(UNet, "config.json"),
		VAE:           filepath.Join(VAE, "config.json"),
		TextEncoder:   filepath.Join(TextEncoder, "config.json"),
		TextEncoder2:  filepath.Join(TextEncoder2, "config.json"),
		"scheduler":   filepath.Join("scheduler", "scheduler_config.json"),
	}
	read := func(key string) (string, []byte, error) {
		p := filepath.Join(dir, files[key])
		b, err := os.ReadFile(p)
		return p, b, err
	}
	return parseConfigs(read)
}

// parseConfigs reads and validates each config through read (which returns
// the file's name for errors and its bytes).
func parseConfigs(read func(key string) (string, []byte, error)) (Config, error) {
	var cfg Config
	name, b, err := read("model_index")
	if err != nil {
		return cfg, fmt.Errorf("sdxl: %v", err)
	}
	if cfg.Index, err = parseModelIndex(name, b); err != nil {
		return cfg, err
	}
	if name, b, err = read(UNet); err != nil {
		return cfg, fmt.Errorf("sdxl: %v", err)
	}
	if err := decodeStrict(name, b, unetRequired, &cfg.UNet); err != nil {
		return cfg, err
	}
	if err := cfg.UNet.Validate(); err != nil {
		return cfg, fmt.Errorf("sdxl: %s: %v", name, err)
	}
	if name, b, err = read(VAE); err != nil {
		return cfg, fmt.Errorf("sdxl: %v", err)
	}
	if err := decodeStrict(name, b, vaeRequired, &cfg.VAE); err != nil {
		return cfg, err
	}
	if err := cfg.VAE.Validate(); err != nil {
		return cfg, fmt.Errorf("sdxl: %s: %v", name, err)
	}
	for _, te := range []struct {
		key string
		dst *CLIPTextConfig
	}{{TextEncoder, &cfg.TextEncoder}, {TextEncoder2, &cfg.TextEncoder2}} {
		if name, b, err = read(te.key); err != nil {
			return cfg, fmt.Errorf("sdxl: %v", err)
		}
		if err := decodeStrict(name, b, clipRequired, te.dst); err != nil {
			return cfg, err
		}
		if err := te.dst.Validate(); err != nil {
			return cfg, fmt.Errorf("sdxl: %s: %v", name, err)
		}
	}
	if !cfg.TextEncoder2.WithProjection() {
		return cfg, fmt.Errorf("sdxl: text_encoder_2 config: architectures %q, want [CLIPTextModelWithProjection] (SDXL's pooled prompt)", cfg.TextEncoder2.Architectures)
	}
	if name, b, err = read("scheduler"); err != nil {
		return cfg, fmt.Errorf("sdxl: %v", err)
	}
	if cfg.Scheduler, err = parseScheduler(name, b); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// The fields each config must carry (non-null): the ones that decide shapes
// or numerics. A config missing one is an error naming the file and the field.
var (
	unetRequired = []string{"in_channels", "out_channels", "block_out_channels", "layers_per_block",
		"transformer_layers_per_block", "cross_attention_dim", "down_block_types", "up_block_types",
		"norm_num_groups", "norm_eps", "addition_embed_type", "addition_time_embed_dim",
		"projection_class_embeddings_input_dim", "use_linear_projection", "flip_sin_to_cos", "freq_shift"}
	unetDefaults = map[string]string{"mid_block_type": `"UNetMidBlock2DCrossAttn"`, "act_fn": `"silu"`,
		"conv_in_kernel": "3", "conv_out_kernel": "3", "downsample_padding": "1", "mid_block_scale_factor": "1",
		"time_embedding_type": `"positional"`, "resnet_time_scale_shift": `"default"`, "attention_head_dim": "8"}
	vaeRequired = []string{"in_channels", "out_channels", "latent_channels", "block_out_channels",
		"down_block_types", "up_block_types", "layers_per_block", "norm_num_groups", "scaling_factor"}
	clipRequired = []string{"architectures", "hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "max_position_embeddings", "vocab_size", "hidden_act", "layer_norm_eps",
		"pad_token_id", "bos_token_id", "eos_token_id"}
	schedulerRequired = []string{"_class_name", "num_train_timesteps", "beta_start", "beta_end", "beta_schedule"}
)

// decodeStrict unmarshals a config into dst after checking the required
// fields are present and not null. Fields absent from the file take
// diffusers' defaults where the library has one (unetDefaults for the UNet).
func decodeStrict(name string, b []byte, required []string, dst any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("sdxl: %s: not a JSON object: %v", name, err)
	}
	var missing []string
	for _, k := range required {
		if v, ok := raw[k]; !ok || string(bytes.TrimSpace(v)) == "null" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sdxl: %s: missing required field(s) %s", name, strings.Join(missing, ", "))
	}
	if _, ok := dst.(*UNetConfig); ok {
		for k, v := range unetDefaults {
			if _, ok := raw[k]; !ok {
				raw[k] = json.RawMessage(v)
			}
		}
		b, _ = json.Marshal(raw)
	}
	if _, ok := dst.(*VAEConfig); ok {
		if _, ok := raw["act_fn"]; !ok {
			raw["act_fn"] = json.RawMessage(`"silu"`)
		}
		b, _ = json.Marshal(raw)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("sdxl: %s: %v", name, err)
	}
	return nil
}

func parseScheduler(name string, b []byte) (SchedulerConfig, error) {
	var c SchedulerConfig
	if err := decodeStrict(name, b, schedulerRequired, &c); err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c.Raw); err != nil {
		return c, fmt.Errorf("sdxl: %s: %v", name, err)
	}
	if c.NumTrainTimesteps <= 0 {
		return c, fmt.Errorf("sdxl: %s: num_train_timesteps %d must be positive", name, c.NumTrainTimesteps)
	}
	return c, nil
}

func parseModelIndex(name string, b []byte) (ModelIndex, error) {
	var m ModelIndex
	if err := decodeStrict(name, b, []string{"_class_name"}, &m); err != nil {
		return m, err
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(b, &raw) // decodeStrict has parsed it
	m.Components = map[string][2]string{}
	for k, v := range raw {
		if strings.HasPrefix(k, "_") {
			continue
		}
		var pair []any
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 {
			continue // a plain option such as force_zeros_for_empty_prompt
		}
		lib, _ := pair[0].(string)
		class, _ := pair[1].(string)
		m.Components[k] = [2]string{lib, class}
	}
	for _, c := range Components {
		if _, ok := m.Components[c]; !ok {
			return m, fmt.Errorf("sdxl: %s: no %q component (is this an SDXL pipeline folder?)", name, c)
		}
	}
	return m, nil
}
