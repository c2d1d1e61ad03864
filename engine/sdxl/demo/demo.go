// Package demo writes a tiny SDXL-shaped model with random weights drawn from
// a fixed seed, so that every screen and command works with nothing
// downloaded. It has SDXL base 1.0's structure (two CLIP text encoders with
// the real vocabulary, a three-level UNet with text_time conditioning and
// per-level transformer depths, a four-level VAE with 4 latent channels and
// scaling factor 0.13025, 1024² as the natural size) at a fraction of the
// widths. Its images are noise-like patterns, not pictures: it is a demo with
// random weights and is named so wherever it is shown.
package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"lorastudio/engine/half"
	"lorastudio/engine/nn"
	"lorastudio/engine/rng"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// Name is the demo model's display name.
const Name = "SDXL demo (random weights)"

// DirName is the folder Ensure writes under <dataDir>/models.
const DirName = "sdxl-demo-random"

// Version identifies the generator; a folder written by another version is
// rewritten by Ensure.
const Version = 1

// Seed is the fixed seed every weight is drawn from (component i uses Seed+i).
const Seed = 20261126

// NoticeFile is the plain-text notice written at the top of the folder.
const NoticeFile = "DEMO.txt"

// Notice returns the text of NoticeFile.
func Notice() string {
	return fmt.Sprintf(`%s

This folder is a DEMO model with RANDOM WEIGHTS, written by LoRA Studio
(generator version %d, seed %d). It has the structure of Stable Diffusion XL
base 1.0 (two CLIP text encoders with the real CLIP vocabulary, a UNet with
text_time conditioning, a VAE with 4 latent channels) at tiny widths, so that
every screen and command works with nothing downloaded.

It has learned nothing: its images are patterns of noise, not pictures.
Download a real SDXL checkpoint (for example stabilityai/stable-diffusion-xl-base-1.0)
and choose it as the model to generate real images or to train LoRAs.

This folder can be deleted at any time; it is rewritten on next use.
`, Name, Version, Seed)
}

// Config returns the demo model's configs: SDXL base 1.0's structure at
// tiny widths (UNet block_out_channels [32, 64, 128] with transformer depths
// [1, 2, 2]; two 2-layer, 32-wide text encoders over the 49408-token CLIP
// vocabulary whose penultimate states concatenate to the UNet's 64-wide
// cross-attention; VAE block_out_channels [32, 32, 64, 64]), with SDXL's
// scheduler, sample sizes (1024² images) and scaling factor.
func Config() sdxl.Config {
	cfg := sdxl.SDXLBase()
	te1 := cfg.TextEncoder
	te1.HiddenSize, te1.IntermediateSize, te1.NumHiddenLayers, te1.NumAttentionHeads, te1.ProjectionDim = 32, 64, 2, 4, 32
	te2 := cfg.TextEncoder2
	te2.HiddenSize, te2.IntermediateSize, te2.NumHiddenLayers, te2.NumAttentionHeads, te2.ProjectionDim = 32, 64, 2, 4, 32
	cfg.TextEncoder, cfg.TextEncoder2 = te1, te2

	u := sdxl.SDXLBaseUNet() // SampleSize 128: 1024² images
	u.BlockOutChannels = []int{32, 64, 128}
	u.TransformerLayersPerBlock = sdxl.IntOrList{1, 2, 2}
	u.AttentionHeadDim = sdxl.IntOrList{2, 4, 8} // head counts, as in SDXL's config
	u.CrossAttentionDim = sdxl.IntOrList{te1.HiddenSize + te2.HiddenSize}
	u.AdditionTimeEmbedDim = 8
	u.ProjectionClassEmbeddingsInputDim = te2.ProjectionDim + 6*u.AdditionTimeEmbedDim
	cfg.UNet = u

	v := sdxl.SDXLBaseVAE() // SampleSize 1024, ScalingFactor 0.13025
	v.BlockOutChannels = []int{32, 32, 64, 64}
	v.LayersPerBlock = 1
	cfg.VAE = v
	return cfg
}

// Init is how one parameter is initialised.
type Init struct {
	Std   float64 // the standard deviation of normal weights (0: constant)
	Const float32 // the value of a constant parameter
}

// InitFor returns the initialisation of a parameter, decided from its name
// and shape: biases zero; one-dimensional weights (LayerNorm and GroupNorm
// gammas) one; token and position embeddings normal with std 0.02 and 0.01
// (as CLIP initialises them); every other weight (linear and convolution)
// normal with std 1/sqrt(fan_in), which keeps activations near unit scale
// through the random network so images are neither blank nor saturated.
func InitFor(p sdxl.Param) Init {
	n := p.Name
	switch {
	case strings.HasSuffix(n, ".bias"):
		return Init{}
	case len(p.Shape) == 1:
		return Init{Const: 1}
	case strings.HasSuffix(n, "token_embedding.weight"):
		return Init{Std: 0.02}
	case strings.HasSuffix(n, "position_embedding.weight"):
		return Init{Std: 0.01}
	}
	fanIn := 1
	for _, d := range p.Shape[1:] {
		fanIn *= d
	}
	return Init{Std: 1 / math.Sqrt(float64(fanIn))}
}

// Weights returns random values for a parameter list, drawn in order from a
// torch-compatible generator seeded with seed and initialised by InitFor.
// The same list and seed always give the same values.
func Weights(ps []sdxl.Param, seed uint64) nn.MapSource {
	g := rng.New(seed)
	out := make(nn.MapSource, len(ps))
	for _, p := range ps {
		out[p.Name] = nn.HostTensor{Shape: p.Shape, DType: tensor.F16, Data: values(g, p)}
	}
	return out
}

// values draws one parameter's values from g.
func values(g *rng.Generator, p sdxl.Param) []float32 {
	n := int(p.NumElements())
	init := InitFor(p)
	if init.Std == 0 {
		v := make([]float32, n)
		for i := range v {
			v[i] = init.Const
		}
		return v
	}
	v := g.Randn(n)
	for i := range v {
		v[i] *= float32(init.Std)
	}
	return v
}

// weightFile names each component's weight file in the folder.
var weightFile = map[string]string{
	sdxl.UNet:         "diffusion_pytorch_model.safetensors",
	sdxl.VAE:          "diffusion_pytorch_model.safetensors",
	sdxl.TextEncoder:  "model.safetensors",
	sdxl.TextEncoder2: "model.safetensors",
}

// Write writes the demo model as a complete diffusers folder in dir
// (created if needed): model_index.json, each component's config.json and
// fp16 weights, tokenizer/ and tokenizer_2/ built from the embedded CLIP
// vocabulary (tokenizer_2 pads with "!"), scheduler/scheduler_config.json
// (SDXL base 1.0's) and NoticeFile. The bytes are the same every time.
func Write(dir string) error {
	cfg := Config()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo: config: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: %v", err)
	}
	files := map[string]any{
		"unet/config.json":                    cfg.UNet,
		"vae/config.json":                     cfg.VAE,
		"text_encoder/config.json":            cfg.TextEncoder,
		"text_encoder_2/config.json":          cfg.TextEncoder2,
		"scheduler/scheduler_config.json":     cfg.Scheduler.Raw,
		"model_index.json":                    modelIndex(cfg),
		"tokenizer/special_tokens_map.json":   specialTokens("<|endoftext|>", false),
		"tokenizer/tokenizer_config.json":     specialTokens("<|endoftext|>", true),
		"tokenizer_2/special_tokens_map.json": specialTokens("!", false),
		"tokenizer_2/tokenizer_config.json":   specialTokens("!", true),
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		b, err := marshal(files[name])
		if err != nil {
			return fmt.Errorf("demo: %s: %v", name, err)
		}
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	vocab, merges, err := vocabFiles()
	if err != nil {
		return err
	}
	for _, tok := range []string{"tokenizer", "tokenizer_2"} {
		if err := writeFile(filepath.Join(dir, tok, "vocab.json"), vocab); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, tok, "merges.txt"), merges); err != nil {
			return err
		}
	}
	for i, comp := range sdxl.Components {
		ps, err := sdxl.ComponentParams(cfg, comp)
		if err != nil {
			return fmt.Errorf("demo: %s: %v", comp, err)
		}
		g := rng.New(Seed + uint64(i))
		ts := make([]safetensors.Tensor, len(ps))
		for j, p := range ps {
			v := values(g, p)
			data := make([]byte, 2*len(v))
			for k, x := range v {
				h := half.Float32ToFloat16(x)
				data[2*k], data[2*k+1] = byte(h), byte(h>>8)
			}
			ts[j] = safetensors.Tensor{Name: p.Name, DType: safetensors.F16, Shape: p.Shape, Data: data}
		}
		path := filepath.Join(dir, comp, weightFile[comp])
		if err := safetensors.Write(path, ts, map[string]string{"format": "pt", "lorastudio_demo": "random weights"}); err != nil {
			return fmt.Errorf("demo: %v", err)
		}
	}
	return writeFile(filepath.Join(dir, NoticeFile), []byte(Notice()))
}

// modelIndex returns model_index.json's fields.
func modelIndex(cfg sdxl.Config) map[string]any {
	m := map[string]any{
		"_class_name":                  cfg.Index.ClassName,
		"_diffusers_version":           "0.26.3",
		"_lorastudio_demo":             Name,
		"force_zeros_for_empty_prompt": cfg.Index.ForceZerosForEmptyPrompt,
	}
	for k, v := range cfg.Index.Components {
		m[k] = []string{v[0], v[1]}
	}
	return m
}

// specialTokens returns a CLIP tokenizer folder's special_tokens_map.json
// (full false) or tokenizer_config.json (full true) with the given pad token.
func specialTokens(pad string, full bool) map[string]any {
	tok := func(s string) map[string]any {
		m := map[string]any{"content": s, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}
		if full {
			m["__type"] = "AddedToken"
		}
		return m
	}
	m := map[string]any{
		"bos_token": tok("<|startoftext|>"),
		"eos_token": tok("<|endoftext|>"),
		"unk_token": tok("<|endoftext|>"),
		"pad_token": pad,
	}
	if pad == "<|endoftext|>" {
		m["pad_token"] = tok(pad)
	}
	if full {
		m["add_prefix_space"] = false
		m["clean_up_tokenization_spaces"] = true
		m["do_lower_case"] = true
		m["errors"] = "replace"
		m["model_max_length"] = 77
		m["tokenizer_class"] = "CLIPTokenizer"
	}
	return m
}

// marshal is indented JSON with a final newline and no HTML escaping
// (encoding/json sorts map keys, so the bytes are stable).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFile writes b to path, creating its folder.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("demo: %v", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("demo: %v", err)
	}
	return nil
}

// Ensure returns the demo model folder <dataDir>/models/sdxl-demo-random,
// writing it on first use. It is written into a temporary folder beside the
// final one and renamed into place, so a half-written folder never appears
// under the final name. An existing folder is returned when it opens as an
// SDXL model (sdxl.OpenSource and Check) and carries this version's notice;
// otherwise it is replaced.
func Ensure(dataDir string) (string, error) {
	parent := filepath.Join(dataDir, "models")
	final := filepath.Join(parent, DirName)
	if valid(final) == nil {
		return final, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("demo: %v", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+DirName+".tmp*")
	if err != nil {
		return "", fmt.Errorf("demo: %v", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := Write(tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("demo: %v", err)
	}
	if err := valid(tmp); err != nil {
		return "", fmt.Errorf("demo: the model just written does not open: %v", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process may have put a valid folder there first.
		if valid(final) == nil {
			return final, nil
		}
		// A stale or broken folder of ours: move it aside, then retry.
		old := final + ".old"
		os.RemoveAll(old)
		if err2 := os.Rename(final, old); err2 != nil && !errors.Is(err2, os.ErrNotExist) {
			return "", fmt.Errorf("demo: %s is not a valid demo model and cannot be replaced: %v", final, err2)
		}
		if err := os.Rename(tmp, final); err != nil {
			return "", fmt.Errorf("demo: %v", err)
		}
		os.RemoveAll(old)
	}
	if d, err := os.Open(parent); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return final, nil
}

// valid checks a demo folder: this version's notice and a model that opens
// and checks strictly.
func valid(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, NoticeFile))
	if err != nil {
		return err
	}
	if string(b) != Notice() {
		return fmt.Errorf("%s: written by another version", filepath.Join(dir, NoticeFile))
	}
	s, err := sdxl.OpenSource(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Check()
}
