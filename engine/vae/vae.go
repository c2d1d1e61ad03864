// Package vae is SDXL's AutoencoderKL (diffusers' AutoencoderKL with
// DownEncoderBlock2D/UpDecoderBlock2D blocks): Encode maps an image to the
// diagonal Gaussian latent distribution, Decode maps latents back to an image,
// and the tiled variants bound device memory for large images the way
// diffusers' tiled_encode/tiled_decode do.
//
// Module and parameter names follow diffusers, so checkpoint keys map one to
// one; every width and depth comes from the config (vae/config.json).
//
// Scaling: Encode returns the distribution unscaled (multiply a sample by
// ScalingFactor for the UNet); Decode takes latents already divided by
// ScalingFactor, as the pipeline does before vae.decode.
package vae

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

func itoa(i int) string { return strconv.Itoa(i) }

// AutoencoderKL is the VAE on one backend: encoder, quant_conv,
// post_quant_conv and decoder with their weights resident on the device.
type AutoencoderKL struct {
	cfg           sdxl.VAEConfig
	b             tensor.Backend
	encoder       *encoder
	quantConv     *nn.Conv2d // 1x1, 2·latent → 2·latent
	postQuantConv *nn.Conv2d // 1x1, latent → latent
	decoder       *decoder
	layers        []freer // every loaded layer, for Free

	// Hook, when set, sees the output of each named module during Encode and
	// Decode (see Hook).
	Hook Hook
}

// ReadConfig reads a diffusers vae/config.json: the fields of sdxl.VAEConfig
// (act_fn defaults to silu), validated. mid_block_add_attention, when
// present, must be true (the only layout this package builds).
func ReadConfig(path string) (sdxl.VAEConfig, error) {
	var cfg sdxl.VAEConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("vae: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return cfg, fmt.Errorf("vae: %s: not a JSON object: %v", path, err)
	}
	var missing []string
	for _, k := range []string{"block_out_channels", "in_channels", "out_channels", "latent_channels", "layers_per_block", "norm_num_groups", "scaling_factor", "down_block_types", "up_block_types", "sample_size"} {
		if v, ok := raw[k]; !ok || string(bytes.TrimSpace(v)) == "null" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return cfg, fmt.Errorf("vae: %s: missing required field(s) %s", path, strings.Join(missing, ", "))
	}
	if v, ok := raw["mid_block_add_attention"]; ok && string(bytes.TrimSpace(v)) != "true" {
		return cfg, fmt.Errorf("vae: %s: mid_block_add_attention %s is not supported (want true)", path, v)
	}
	cfg.ActFn = "silu"
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("vae: %s: %v", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("vae: %s: %v", path, err)
	}
	return cfg, nil
}

// Load builds the VAE of cfg on b with the weights of src (diffusers names,
// e.g. nn.FileSource over vae/diffusion_pytorch_model.safetensors). Loading
// is strict: a missing key, a shape mismatch or a key no module reads is an
// error that names the key.
func Load(b tensor.Backend, cfg sdxl.VAEConfig, src nn.Source) (*AutoencoderKL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vae: config: %v", err)
	}
	m := &AutoencoderKL{cfg: cfg, b: b}
	l := nn.NewLoader(b, src)
	bl := &builder{}
	err := m.build(bl, l.Root())
	m.layers = bl.owned
	if err == nil {
		err = l.CheckUnused()
	}
	if err != nil {
		m.Free()
		return nil, fmt.Errorf("vae: %w", err)
	}
	return m, nil
}

func (m *AutoencoderKL) build(bl *builder, s nn.Scope) error {
	cfg := m.cfg
	l := cfg.LatentChannels
	var err error
	if m.encoder, err = bl.encoder(s.Sub("encoder"), cfg); err != nil {
		return err
	}
	if m.quantConv, err = bl.conv(s.Sub("quant_conv"), 2*l, 2*l, 1, tensor.ConvParams(1, 0)); err != nil {
		return err
	}
	if m.postQuantConv, err = bl.conv(s.Sub("post_quant_conv"), l, l, 1, tensor.ConvParams(1, 0)); err != nil {
		return err
	}
	m.decoder, err = bl.decoder(s.Sub("decoder"), cfg)
	return err
}

// FromSource loads the "vae" component of an open SDXL model (a diffusers
// folder or a single file) onto b.
func FromSource(b tensor.Backend, src *sdxl.Source) (*AutoencoderKL, error) {
	m, err := Load(b, src.Config().VAE, src.Weights(sdxl.VAE))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path(), err)
	}
	return m, nil
}

// OpenDir loads a VAE from a diffusers vae folder (config.json and
// diffusion_pytorch_model[.fp16].safetensors) onto b.
func OpenDir(b tensor.Backend, dir string) (*AutoencoderKL, error) {
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var path string
	for _, name := range []string{"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			path = filepath.Join(dir, name)
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("vae: %s: no diffusion_pytorch_model[.fp16].safetensors", dir)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(b, cfg, nn.FileSource(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Config returns the VAE's config.
func (m *AutoencoderKL) Config() sdxl.VAEConfig { return m.cfg }

// Backend returns the backend the weights live on.
func (m *AutoencoderKL) Backend() tensor.Backend { return m.b }

// ScalingFactor returns config.scaling_factor (0.13025 for SDXL): the UNet
// sees latents·ScalingFactor; Decode takes latents/ScalingFactor.
func (m *AutoencoderKL) ScalingFactor() float32 { return float32(m.cfg.ScalingFactor) }

// Factor returns the spatial downsampling factor, 2^(len(block_out_channels)-1)
// (8 for SDXL).
func (m *AutoencoderKL) Factor() int { return 1 << (len(m.cfg.BlockOutChannels) - 1) }

// Free releases every weight on the device.
func (m *AutoencoderKL) Free() {
	for _, l := range m.layers {
		l.Free()
	}
	m.layers = nil
}

// checkInput validates an (N, C, H, W) input with C channels and H, W
// divisible by f.
func (m *AutoencoderKL) checkInput(op string, x *tensor.Tensor, c, f int) error {
	if x == nil {
		return fmt.Errorf("vae: %s: nil input", op)
	}
	if x.Rank() != 4 || x.Dim(1) != c {
		return fmt.Errorf("vae: %s: input %v, want (N, %d, H, W)", op, x.Shape(), c)
	}
	if x.Dim(2)%f != 0 || x.Dim(3)%f != 0 {
		return fmt.Errorf("vae: %s: input %v: height and width must be divisible by %d", op, x.Shape(), f)
	}
	return nil
}

// Decode maps latents z (N, latent_channels, h, w), already divided by
// ScalingFactor, to the image (N, out_channels, h·f, w·f), about [-1, 1] and
// not clamped (diffusers' vae.decode(z).sample). z is not freed.
func (m *AutoencoderKL) Decode(z *tensor.Tensor) (*tensor.Tensor, error) {
	if err := m.checkInput("decode", z, m.cfg.LatentChannels, 1); err != nil {
		return nil, err
	}
	h, err := m.postQuantConv.Forward(z) // h is (N, latent, h, w)
	if err != nil {
		return nil, fmt.Errorf("vae: decode: %w", err)
	}
	if err := m.Hook.call("post_quant_conv", h); err != nil {
		h.Free()
		return nil, err
	}
	out, err := m.decoder.forward(m.b, h, m.Hook) // out is (N, out_channels, h·f, w·f)
	h.Free()
	if err != nil {
		return nil, fmt.Errorf("vae: decode: %w", err)
	}
	return out, nil
}

// Encode maps an image x (N, in_channels, H, W) in [-1, 1], H and W divisible
// by Factor, to its latent distribution (unscaled). x is not freed.
func (m *AutoencoderKL) Encode(x *tensor.Tensor) (*Distribution, error) {
	moments, err := m.encodeMoments(x)
	if err != nil {
		return nil, err
	}
	host, err := m.b.Download(moments)
	shape := moments.Shape()
	moments.Free()
	if err != nil {
		return nil, fmt.Errorf("vae: encode: %w", err)
	}
	return NewDistribution(host, shape)
}

// encodeMoments returns quant_conv(encoder(x)): (N, 2·latent, H/f, W/f).
func (m *AutoencoderKL) encodeMoments(x *tensor.Tensor) (*tensor.Tensor, error) {
	if err := m.checkInput("encode", x, m.cfg.InChannels, m.Factor()); err != nil {
		return nil, err
	}
	h, err := m.encoder.forward(m.b, x, m.Hook) // h is (N, 2·latent, H/f, W/f)
	if err != nil {
		return nil, fmt.Errorf("vae: encode: %w", err)
	}
	if h, err = consume(h, m.quantConv.Forward); err != nil { // h is (N, 2·latent, H/f, W/f)
		return nil, fmt.Errorf("vae: encode: %w", err)
	}
	if err := m.Hook.call("quant_conv", h); err != nil {
		h.Free()
		return nil, err
	}
	return h, nil
}
