package vae

import (
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// eps is the group-norm epsilon of every norm in diffusers' Encoder and
// Decoder (resnet_eps=1e-6, conv_norm_out eps=1e-6).
const eps = 1e-6

// Hook observes a module's output during a forward pass: name is the module's
// diffusers path ("decoder.up_blocks.0") and t is borrowed (do not Free it).
type Hook func(name string, t *tensor.Tensor) error

// hook calls h when it is set.
func (h Hook) call(name string, t *tensor.Tensor) error {
	if h == nil {
		return nil
	}
	return h(name, t)
}

// resnetBlock2D is diffusers' ResnetBlock2D without a time embedding
// (temb_channels=None, output_scale_factor=1, dropout 0).
type resnetBlock2D struct {
	norm1        *nn.GroupNorm
	conv1        *nn.Conv2d
	norm2        *nn.GroupNorm
	conv2        *nn.Conv2d
	convShortcut *nn.Conv2d // 1x1, only when in != out channels
}

func (bl *builder) resnetBlock2D(s nn.Scope, groups, in, out int) (*resnetBlock2D, error) {
	r := &resnetBlock2D{}
	var err error
	if r.norm1, err = bl.groupNorm(s.Sub("norm1"), groups, in); err != nil {
		return nil, err
	}
	if r.conv1, err = bl.conv(s.Sub("conv1"), in, out, 3, tensor.ConvParams(1, 1)); err != nil {
		return nil, err
	}
	if r.norm2, err = bl.groupNorm(s.Sub("norm2"), groups, out); err != nil {
		return nil, err
	}
	if r.conv2, err = bl.conv(s.Sub("conv2"), out, out, 3, tensor.ConvParams(1, 1)); err != nil {
		return nil, err
	}
	if in != out {
		if r.convShortcut, err = bl.conv(s.Sub("conv_shortcut"), in, out, 1, tensor.ConvParams(1, 0)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// forward returns x + block(x) (through conv_shortcut when the width
// changes); x is (N, Cin, H, W) and is not freed.
func (r *resnetBlock2D) forward(b tensor.Backend, x *tensor.Tensor) (*tensor.Tensor, error) {
	h, err := r.norm1.Forward(x) // h is (N, Cin, H, W)
	if err != nil {
		return nil, err
	}
	silu := func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Activation(t, tensor.SiLU) }
	// nonlinearity is nn.SiLU()
	if h, err = consume(h, silu); err != nil { // h is (N, Cin, H, W)
		return nil, err
	}
	if h, err = consume(h, r.conv1.Forward); err != nil { // h is (N, Cout, H, W)
		return nil, err
	}
	if h, err = consume(h, r.norm2.Forward); err != nil { // h is (N, Cout, H, W)
		return nil, err
	}
	if h, err = consume(h, silu); err != nil { // h is (N, Cout, H, W); dropout is identity
		return nil, err
	}
	if h, err = consume(h, r.conv2.Forward); err != nil { // h is (N, Cout, H, W)
		return nil, err
	}
	if r.convShortcut == nil {
		return consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Binary(tensor.Add, x, t) }) // (N, Cout, H, W)
	}
	sc, err := r.convShortcut.Forward(x) // sc is (N, Cout, H, W)
	if err != nil {
		h.Free()
		return nil, err
	}
	out, err := b.Binary(tensor.Add, sc, h) // out is (N, Cout, H, W)
	tensor.FreeAll(sc, h)
	return out, err
}

// attention is diffusers' Attention as UNetMidBlock2D builds it for the VAE:
// group_norm over the channels, then self-attention over the H·W positions
// with to_q/to_k/to_v/to_out.0 as Linear layers (with biases) over the
// channels, residual added, rescale 1. AutoencoderKL passes
// attention_head_dim = block_out_channels[-1], so there is one head of
// width C (scale 1/sqrt(C)).
type attention struct {
	groupNorm *nn.GroupNorm
	attn      *nn.Attention // to_q, to_k, to_v, to_out.0
}

func (bl *builder) attention(s nn.Scope, groups, c int) (*attention, error) {
	a := &attention{}
	var err error
	if a.groupNorm, err = bl.groupNorm(s.Sub("group_norm"), groups, c); err != nil {
		return nil, err
	}
	cfg := nn.AttentionConfig{QueryDim: c, Heads: 1, HeadDim: c, QKVBias: true, OutBias: true}
	if a.attn, err = bl.load(nn.LoadAttention(s, nn.DiffusersAttentionNames, cfg)); err != nil {
		return nil, err
	}
	return a, nil
}

// forward returns x + attn(group_norm(x)); x is (N, C, H, W) and is not freed.
func (a *attention) forward(b tensor.Backend, x *tensor.Tensor) (*tensor.Tensor, error) {
	n, c, hh, ww := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	h, err := a.groupNorm.Forward(x) // h is (N, C, H, W)
	if err != nil {
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return t.Reshape(n, c, hh*ww) }); err != nil { // h is (N, C, HW)
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Permute(t, 0, 2, 1) }); err != nil { // h is (N, HW, C)
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return a.attn.Forward(t, nil) }); err != nil { // h is (N, HW, C); to_out.1 is dropout
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Permute(t, 0, 2, 1) }); err != nil { // h is (N, C, HW)
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return t.Reshape(n, c, hh, ww) }); err != nil { // h is (N, C, H, W)
		return nil, err
	}
	return consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Binary(tensor.Add, t, x) }) // (N, C, H, W)
}

// midBlock is diffusers' UNetMidBlock2D without time embedding: resnets.0,
// attentions.0, resnets.1.
type midBlock struct {
	resnets    [2]*resnetBlock2D
	attentions [1]*attention
}

func (bl *builder) midBlock(s nn.Scope, groups, c int) (*midBlock, error) {
	m := &midBlock{}
	var err error
	for i := range m.resnets {
		if m.resnets[i], err = bl.resnetBlock2D(s.Sub("resnets").Index(i), groups, c, c); err != nil {
			return nil, err
		}
	}
	if m.attentions[0], err = bl.attention(s.Sub("attentions").Index(0), groups, c); err != nil {
		return nil, err
	}
	return m, nil
}

// forward runs the block on x (N, C, H, W), which is not freed; hook sees
// attentions.0's output under prefix.
func (m *midBlock) forward(b tensor.Backend, x *tensor.Tensor, prefix string, hook Hook) (*tensor.Tensor, error) {
	h, err := m.resnets[0].forward(b, x) // h is (N, C, H, W)
	if err != nil {
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return m.attentions[0].forward(b, t) }); err != nil { // h is (N, C, H, W)
		return nil, err
	}
	if err := hook.call(prefix+".attentions.0", h); err != nil {
		h.Free()
		return nil, err
	}
	return consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return m.resnets[1].forward(b, t) }) // (N, C, H, W)
}

// encoder is diffusers' Encoder with DownEncoderBlock2D blocks and double_z:
// conv_in, down_blocks.i (resnets, then downsamplers.0 except the last),
// mid_block, conv_norm_out, SiLU, conv_out to 2·latent_channels.
type encoder struct {
	convIn      *nn.Conv2d
	downBlocks  []downBlock
	midBlock    *midBlock
	convNormOut *nn.GroupNorm
	convOut     *nn.Conv2d
}

// downBlock is DownEncoderBlock2D: resnets, then a stride-2 3x3 conv that
// pads only the bottom and right (Downsample2D with padding=0 pads (0,1,0,1)).
type downBlock struct {
	resnets     []*resnetBlock2D
	downsampler *nn.Conv2d // downsamplers.0.conv, nil in the last block
}

func (bl *builder) encoder(s nn.Scope, cfg sdxl.VAEConfig) (*encoder, error) {
	ch, g := cfg.BlockOutChannels, cfg.NormNumGroups
	n := len(ch)
	e := &encoder{downBlocks: make([]downBlock, n)}
	var err error
	if e.convIn, err = bl.conv(s.Sub("conv_in"), cfg.InChannels, ch[0], 3, tensor.ConvParams(1, 1)); err != nil {
		return nil, err
	}
	out := ch[0]
	for i := range n {
		in := out
		out = ch[i]
		bs := s.Sub("down_blocks").Index(i)
		for j := range cfg.LayersPerBlock {
			rin := out
			if j == 0 {
				rin = in
			}
			r, err := bl.resnetBlock2D(bs.Sub("resnets").Index(j), g, rin, out)
			if err != nil {
				return nil, err
			}
			e.downBlocks[i].resnets = append(e.downBlocks[i].resnets, r)
		}
		if i < n-1 {
			p := tensor.Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1}
			if e.downBlocks[i].downsampler, err = bl.conv(bs.Sub("downsamplers").Index(0).Sub("conv"), out, out, 3, p); err != nil {
				return nil, err
			}
		}
	}
	if e.midBlock, err = bl.midBlock(s.Sub("mid_block"), g, ch[n-1]); err != nil {
		return nil, err
	}
	if e.convNormOut, err = bl.groupNorm(s.Sub("conv_norm_out"), g, ch[n-1]); err != nil {
		return nil, err
	}
	if e.convOut, err = bl.conv(s.Sub("conv_out"), ch[n-1], 2*cfg.LatentChannels, 3, tensor.ConvParams(1, 1)); err != nil {
		return nil, err
	}
	return e, nil
}

// forward maps x (N, in_channels, H, W) to (N, 2·latent, H/f, W/f), f =
// 2^(blocks-1); x is not freed. hook sees each named module's output.
func (e *encoder) forward(b tensor.Backend, x *tensor.Tensor, hook Hook) (*tensor.Tensor, error) {
	h, err := e.convIn.Forward(x) // h is (N, C0, H, W)
	if err != nil {
		return nil, err
	}
	if err := hook.call("encoder.conv_in", h); err != nil {
		h.Free()
		return nil, err
	}
	for i, blk := range e.downBlocks {
		for _, r := range blk.resnets {
			if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return r.forward(b, t) }); err != nil { // h is (N, Ci, H', W')
				return nil, err
			}
		}
		if blk.downsampler != nil {
			if h, err = consume(h, blk.downsampler.Forward); err != nil { // h is (N, Ci, H'/2, W'/2)
				return nil, err
			}
		}
		if err := hook.call("encoder.down_blocks."+itoa(i), h); err != nil {
			h.Free()
			return nil, err
		}
	}
	return e.tail(b, h, hook)
}

// tail runs mid_block, conv_norm_out, SiLU and conv_out on h, consuming it.
func (e *encoder) tail(b tensor.Backend, h *tensor.Tensor, hook Hook) (*tensor.Tensor, error) {
	h, err := consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) {
		return e.midBlock.forward(b, t, "encoder.mid_block", hook)
	}) // h is (N, Cn, h, w)
	if err != nil {
		return nil, err
	}
	return normActConv(b, h, "encoder", e.convNormOut, e.convOut, hook) // (N, 2·latent, h, w)
}

// normActConv runs conv_norm_out, SiLU and conv_out on h (consumed), after
// hooking h as prefix.mid_block.
func normActConv(b tensor.Backend, h *tensor.Tensor, prefix string, norm *nn.GroupNorm, conv *nn.Conv2d, hook Hook) (*tensor.Tensor, error) {
	if err := hook.call(prefix+".mid_block", h); err != nil {
		h.Free()
		return nil, err
	}
	h, err := consume(h, norm.Forward) // h is (N, C, h, w)
	if err != nil {
		return nil, err
	}
	if err := hook.call(prefix+".conv_norm_out", h); err != nil {
		h.Free()
		return nil, err
	}
	// conv_act is nn.SiLU()
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Activation(t, tensor.SiLU) }); err != nil { // h is (N, C, h, w)
		return nil, err
	}
	if h, err = consume(h, conv.Forward); err != nil { // h is (N, Cout, h, w)
		return nil, err
	}
	if err := hook.call(prefix+".conv_out", h); err != nil {
		h.Free()
		return nil, err
	}
	return h, nil
}

// decoder is diffusers' Decoder with UpDecoderBlock2D blocks: conv_in,
// mid_block, up_blocks.i (layers_per_block+1 resnets, then upsamplers.0 except
// the last), conv_norm_out, SiLU, conv_out.
type decoder struct {
	convIn      *nn.Conv2d
	midBlock    *midBlock
	upBlocks    []upBlock
	convNormOut *nn.GroupNorm
	convOut     *nn.Conv2d
}

// upBlock is UpDecoderBlock2D: resnets, then nearest 2x and a 3x3 conv
// (Upsample2D with use_conv).
type upBlock struct {
	resnets   []*resnetBlock2D
	upsampler *nn.Conv2d // upsamplers.0.conv, nil in the last block
}

func (bl *builder) decoder(s nn.Scope, cfg sdxl.VAEConfig) (*decoder, error) {
	ch, g := cfg.BlockOutChannels, cfg.NormNumGroups
	n := len(ch)
	d := &decoder{upBlocks: make([]upBlock, n)}
	var err error
	if d.convIn, err = bl.conv(s.Sub("conv_in"), cfg.LatentChannels, ch[n-1], 3, tensor.ConvParams(1, 1)); err != nil {
		return nil, err
	}
	if d.midBlock, err = bl.midBlock(s.Sub("mid_block"), g, ch[n-1]); err != nil {
		return nil, err
	}
	prev := ch[n-1]
	for i := range n {
		out := ch[n-1-i] // reversed block_out_channels
		bs := s.Sub("up_blocks").Index(i)
		for j := range cfg.LayersPerBlock + 1 {
			rin := out
			if j == 0 {
				rin = prev
			}
			r, err := bl.resnetBlock2D(bs.Sub("resnets").Index(j), g, rin, out)
			if err != nil {
				return nil, err
			}
			d.upBlocks[i].resnets = append(d.upBlocks[i].resnets, r)
		}
		if i < n-1 {
			if d.upBlocks[i].upsampler, err = bl.conv(bs.Sub("upsamplers").Index(0).Sub("conv"), out, out, 3, tensor.ConvParams(1, 1)); err != nil {
				return nil, err
			}
		}
		prev = out
	}
	if d.convNormOut, err = bl.groupNorm(s.Sub("conv_norm_out"), g, ch[0]); err != nil {
		return nil, err
	}
	if d.convOut, err = bl.conv(s.Sub("conv_out"), ch[0], cfg.OutChannels, 3, tensor.ConvParams(1, 1)); err != nil {
		return nil, err
	}
	return d, nil
}

// forward maps z (N, latent, h, w) to (N, out_channels, h·f, w·f); z is not
// freed. hook sees each named module's output.
func (d *decoder) forward(b tensor.Backend, z *tensor.Tensor, hook Hook) (*tensor.Tensor, error) {
	h, err := d.convIn.Forward(z) // h is (N, Cn, h, w)
	if err != nil {
		return nil, err
	}
	if err := hook.call("decoder.conv_in", h); err != nil {
		h.Free()
		return nil, err
	}
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) {
		return d.midBlock.forward(b, t, "decoder.mid_block", hook)
	}); err != nil { // h is (N, Cn, h, w)
		return nil, err
	}
	if err := hook.call("decoder.mid_block", h); err != nil {
		h.Free()
		return nil, err
	}
	for i, blk := range d.upBlocks {
		for _, r := range blk.resnets {
			if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return r.forward(b, t) }); err != nil { // h is (N, Ci, h', w')
				return nil, err
			}
		}
		if blk.upsampler != nil {
			if h, err = consume(h, b.Upsample2x); err != nil { // h is (N, Ci, 2h', 2w')
				return nil, err
			}
			if h, err = consume(h, blk.upsampler.Forward); err != nil { // h is (N, Ci, 2h', 2w')
				return nil, err
			}
		}
		if err := hook.call("decoder.up_blocks."+itoa(i), h); err != nil {
			h.Free()
			return nil, err
		}
	}
	h, err = consume(h, d.convNormOut.Forward) // h is (N, C0, H, W)
	if err != nil {
		return nil, err
	}
	if err := hook.call("decoder.conv_norm_out", h); err != nil {
		h.Free()
		return nil, err
	}
	// conv_act is nn.SiLU()
	if h, err = consume(h, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Activation(t, tensor.SiLU) }); err != nil { // h is (N, C0, H, W)
		return nil, err
	}
	if h, err = consume(h, d.convOut.Forward); err != nil { // h is (N, out_channels, H, W)
		return nil, err
	}
	if err := hook.call("decoder.conv_out", h); err != nil {
		h.Free()
		return nil, err
	}
	return h, nil
}
