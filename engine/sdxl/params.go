package sdxl

import (
	"fmt"
	"strconv"
)

// Param is one parameter a component needs: its diffusers name and shape.
type Param struct {
	Name  string
	Shape []int
}

// NumElements returns the product of the shape.
func (p Param) NumElements() int64 {
	n := int64(1)
	for _, d := range p.Shape {
		n *= int64(d)
	}
	return n
}

// paramList appends parameters under a growing prefix, in the order the
// reference registers its modules (the order of its state_dict).
type paramList struct {
	out []Param
}

func (l *paramList) add(name string, shape ...int) {
	l.out = append(l.out, Param{Name: name, Shape: shape})
}

// linear adds prefix.weight (out, in) and, with bias, prefix.bias (out).
func (l *paramList) linear(prefix string, in, out int, bias bool) {
	l.add(prefix+".weight", out, in)
	if bias {
		l.add(prefix+".bias", out)
	}
}

// conv adds prefix.weight (out, in, k, k) and prefix.bias (out).
func (l *paramList) conv(prefix string, in, out, k int) {
	l.add(prefix+".weight", out, in, k, k)
	l.add(prefix+".bias", out)
}

// norm adds prefix.weight and prefix.bias (c): GroupNorm and LayerNorm alike.
func (l *paramList) norm(prefix string, c int) {
	l.add(prefix+".weight", c)
	l.add(prefix+".bias", c)
}

func idx(prefix string, i int) string { return prefix + "." + strconv.Itoa(i) }

// resnet adds diffusers' ResnetBlock2D: norm1, conv1, time_emb_proj (when
// temb > 0), norm2, conv2, and conv_shortcut (1×1) when in != out.
func (l *paramList) resnet(p string, in, out, temb int) {
	l.norm(p+".norm1", in)
	l.conv(p+".conv1", in, out, 3)
	if temb > 0 {
		l.linear(p+".time_emb_proj", temb, out, true)
	}
	l.norm(p+".norm2", out)
	l.conv(p+".conv2", out, out, 3)
	// dropout and nonlinearity carry no weights
	if in != out {
		l.conv(p+".conv_shortcut", in, out, 1)
	}
}

// transformer2D adds diffusers' Transformer2DModel: norm (GroupNorm),
// proj_in, depth BasicTransformerBlocks (self-attention, cross-attention,
// GEGLU feed-forward with inner width 4c), proj_out.
func (l *paramList) transformer2D(p string, c, depth, crossDim int, linearProj bool) {
	l.norm(p+".norm", c)
	if linearProj {
		l.linear(p+".proj_in", c, c, true)
	} else {
		l.conv(p+".proj_in", c, c, 1)
	}
	for k := range depth {
		b := idx(p+".transformer_blocks", k)
		l.norm(b+".norm1", c)
		l.attention(b+".attn1", c, c)
		l.norm(b+".norm2", c)
		l.attention(b+".attn2", c, crossDim)
		l.norm(b+".norm3", c)
		inner := 4 * c
		l.linear(b+".ff.net.0.proj", c, 2*inner, true) // GEGLU: value and gate
		// ff.net.1 is dropout
		l.linear(b+".ff.net.2", inner, c, true)
	}
	if linearProj {
		l.linear(p+".proj_out", c, c, true)
	} else {
		l.conv(p+".proj_out", c, c, 1)
	}
}

// attention adds diffusers' Attention of a transformer block: bias-free
// to_q/to_k/to_v, to_out.0 with bias (to_out.1 is dropout).
func (l *paramList) attention(p string, c, kvDim int) {
	l.linear(p+".to_q", c, c, false)
	l.linear(p+".to_k", kvDim, c, false)
	l.linear(p+".to_v", kvDim, c, false)
	l.linear(p+".to_out.0", c, c, true)
}

// UNetParams returns every parameter of diffusers' UNet2DConditionModel for
// cfg, with its shape, in the model's own order.
func UNetParams(cfg UNetConfig) ([]Param, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sdxl: unet config: %v", err)
	}
	var l paramList
	ch := cfg.BlockOutChannels
	n := len(ch)
	temb := cfg.TimeEmbedDim()
	lin := cfg.UseLinearProjection
	l.conv("conv_in", cfg.InChannels, ch[0], cfg.ConvInKernel)
	// time_proj is sinusoidal: no weights
	l.linear("time_embedding.linear_1", ch[0], temb, true)
	l.linear("time_embedding.linear_2", temb, temb, true)
	// add_time_proj is sinusoidal: no weights
	l.linear("add_embedding.linear_1", cfg.ProjectionClassEmbeddingsInputDim, temb, true)
	l.linear("add_embedding.linear_2", temb, temb, true)

	// down_blocks: attentions, then resnets, then the downsampler (module order)
	out := ch[0]
	for i := range n {
		in := out
		out = ch[i]
		p := idx("down_blocks", i)
		if cfg.HasCrossAttention(i) {
			for j := range cfg.LayersPerBlock {
				l.transformer2D(idx(p+".attentions", j), out, cfg.TransformerDepth(i), cfg.CrossAttentionDimAt(i), lin)
			}
		}
		for j := range cfg.LayersPerBlock {
			rin := out
			if j == 0 {
				rin = in
			}
			l.resnet(idx(p+".resnets", j), rin, out, temb)
		}
		if i < n-1 {
			l.conv(p+".downsamplers.0.conv", out, out, 3)
		}
	}

	// up_blocks are registered before mid_block in the reference
	prev := ch[n-1]
	for i := range n {
		out := ch[n-1-i]
		in := ch[max(n-2-i, 0)]
		p := idx("up_blocks", i)
		layers := cfg.LayersPerBlock + 1
		if cfg.UpHasCrossAttention(i) {
			for j := range layers {
				l.transformer2D(idx(p+".attentions", j), out, cfg.UpTransformerDepth(i), cfg.CrossAttentionDim.At(n-1-i), lin)
			}
		}
		for j := range layers {
			skip := out
			if j == layers-1 {
				skip = in
			}
			rin := out
			if j == 0 {
				rin = prev
			}
			l.resnet(idx(p+".resnets", j), rin+skip, out, temb)
		}
		if i < n-1 {
			l.conv(p+".upsamplers.0.conv", out, out, 3)
		}
		prev = out
	}

	// mid_block: one transformer between two resnets at the deepest width
	c := ch[n-1]
	l.transformer2D("mid_block.attentions.0", c, cfg.TransformerDepth(n-1), cfg.CrossAttentionDimAt(n-1), lin)
	l.resnet("mid_block.resnets.0", c, c, temb)
	l.resnet("mid_block.resnets.1", c, c, temb)

	l.norm("conv_norm_out", ch[0])
	l.conv("conv_out", ch[0], cfg.OutChannels, cfg.ConvOutKernel)
	return l.out, nil
}

// vaeMid adds the VAE's UNetMidBlock2D: one attention (group_norm, to_q,
// to_k, to_v, to_out.0, all with bias) and two resnets without time embedding.
func (l *paramList) vaeMid(p string, c int) {
	a := p + ".attentions.0"
	l.norm(a+".group_norm", c)
	l.linear(a+".to_q", c, c, true)
	l.linear(a+".to_k", c, c, true)
	l.linear(a+".to_v", c, c, true)
	l.linear(a+".to_out.0", c, c, true)
	l.resnet(p+".resnets.0", c, c, 0)
	l.resnet(p+".resnets.1", c, c, 0)
}

// VAEParams returns every parameter of diffusers' AutoencoderKL for cfg, with
// its shape, in the model's own order.
func VAEParams(cfg VAEConfig) ([]Param, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sdxl: vae config: %v", err)
	}
	var l paramList
	ch := cfg.BlockOutChannels
	n := len(ch)
	lat := cfg.LatentChannels

	// encoder
	l.conv("encoder.conv_in", cfg.InChannels, ch[0], 3)
	out := ch[0]
	for i := range n {
		in := out
		out = ch[i]
		p := idx("encoder.down_blocks", i)
		for j := range cfg.LayersPerBlock {
			rin := out
			if j == 0 {
				rin = in
			}
			l.resnet(idx(p+".resnets", j), rin, out, 0)
		}
		if i < n-1 {
			l.conv(p+".downsamplers.0.conv", out, out, 3)
		}
	}
	l.vaeMid("encoder.mid_block", ch[n-1])
	l.norm("encoder.conv_norm_out", ch[n-1])
	l.conv("encoder.conv_out", ch[n-1], 2*lat, 3) // mean and log-variance

	// decoder: up_blocks are registered before mid_block
	l.conv("decoder.conv_in", lat, ch[n-1], 3)
	prev := ch[n-1]
	for i := range n {
		out := ch[n-1-i]
		p := idx("decoder.up_blocks", i)
		for j := range cfg.LayersPerBlock + 1 {
			rin := out
			if j == 0 {
				rin = prev
			}
			l.resnet(idx(p+".resnets", j), rin, out, 0)
		}
		if i < n-1 {
			l.conv(p+".upsamplers.0.conv", out, out, 3)
		}
		prev = out
	}
	l.vaeMid("decoder.mid_block", ch[n-1])
	l.norm("decoder.conv_norm_out", ch[0])
	l.conv("decoder.conv_out", ch[0], cfg.OutChannels, 3)

	l.conv("quant_conv", 2*lat, 2*lat, 1)
	l.conv("post_quant_conv", lat, lat, 1)
	return l.out, nil
}

// CLIPTextParams returns every parameter of transformers' CLIPTextModel (or
// CLIPTextModelWithProjection) for cfg, with its shape, in the model's own order.
func CLIPTextParams(cfg CLIPTextConfig) ([]Param, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sdxl: clip text config: %v", err)
	}
	var l paramList
	h := cfg.HiddenSize
	l.add("text_model.embeddings.token_embedding.weight", cfg.VocabSize, h)
	l.add("text_model.embeddings.position_embedding.weight", cfg.MaxPositionEmbeddings, h)
	for i := range cfg.NumHiddenLayers {
		p := idx("text_model.encoder.layers", i)
		l.linear(p+".self_attn.k_proj", h, h, true)
		l.linear(p+".self_attn.v_proj", h, h, true)
		l.linear(p+".self_attn.q_proj", h, h, true)
		l.linear(p+".self_attn.out_proj", h, h, true)
		l.norm(p+".layer_norm1", h)
		l.linear(p+".mlp.fc1", h, cfg.IntermediateSize, true)
		l.linear(p+".mlp.fc2", cfg.IntermediateSize, h, true)
		l.norm(p+".layer_norm2", h)
	}
	l.norm("text_model.final_layer_norm", h)
	if cfg.WithProjection() {
		l.linear("text_projection", h, cfg.ProjectionDim, false)
	}
	return l.out, nil
}

// ComponentParams returns the parameter list of one component of cfg
// (UNet, VAE, TextEncoder or TextEncoder2).
func ComponentParams(cfg Config, component string) ([]Param, error) {
	switch component {
	case UNet:
		return UNetParams(cfg.UNet)
	case VAE:
		return VAEParams(cfg.VAE)
	case TextEncoder:
		return CLIPTextParams(cfg.TextEncoder)
	case TextEncoder2:
		return CLIPTextParams(cfg.TextEncoder2)
	}
	return nil, fmt.Errorf("sdxl: unknown component %q (want unet, vae, text_encoder or text_encoder_2)", component)
}

// CountParams returns the number of scalar parameters in ps.
func CountParams(ps []Param) int64 {
	var n int64
	for _, p := range ps {
		n += p.NumElements()
	}
	return n
}
