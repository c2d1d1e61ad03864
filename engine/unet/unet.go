// Package unet is SDXL's UNet2DConditionModel (diffusers): the time and
// "text_time" embeddings, conv_in, DownBlock2D/CrossAttnDownBlock2D down
// blocks, the UNetMidBlock2DCrossAttn, UpBlock2D/CrossAttnUpBlock2D up
// blocks with skip connections, and conv_norm_out → SiLU → conv_out.
//
// Module and parameter names follow diffusers, so checkpoint keys map one to
// one; every width, depth and head count comes from the config
// (unet/config.json, sdxl.UNetConfig). The layers are engine/nn's.
package unet

import (
	"fmt"
	"slices"
	"strconv"

	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// Model is the UNet on one backend, its weights resident on the device.
// Fields are named like the diffusers modules.
type Model struct {
	cfg sdxl.UNetConfig
	b   tensor.Backend

	TimeEmbedding *nn.TimestepEmbedding // time_proj (weightless) → time_embedding
	AddEmbedding  *nn.TimestepEmbedding // [text_embeds, add_time_proj(time_ids)] → add_embedding
	ConvIn        *nn.Conv2d
	DownBlocks    []*Block
	MidBlock      *Block
	UpBlocks      []*Block
	ConvNormOut   *nn.GroupNorm
	// conv_act is nn.SiLU()
	ConvOut *nn.Conv2d

	layers []freer // every loaded layer, for Free
	kept   *kept   // what ForwardTrain kept beyond the layers' own caches

	// Hook, when set, sees the output of each named module during Forward
	// (see Hook).
	Hook Hook

	// Checkpoint, when set, makes ForwardTrain keep, of every resnet and
	// every transformer block, only its input (gradient checkpointing at
	// diffusers' grain), and Backward run each one's forward again just
	// before its backward: the same gradients for about one more forward's
	// work, with one resnet's or one transformer block's activations held
	// at a time. The transformers' norms and projections, the resamplers,
	// conv_in, conv_norm_out and conv_out keep their caches as without.
	Checkpoint bool

	// NoInputGrads, when set, makes Backward skip the gradients of the
	// UNet's inputs, which a LoRA trainer throws away: conv_in's input
	// gradient and, in every cross-attention, the products that carry dK
	// and dV back to encoder_hidden_states are not computed, and Backward
	// returns nil for both. The activations' gradients inside the network
	// are computed as always.
	NoInputGrads bool
}

// Load builds the UNet of cfg on b with the weights of src (diffusers names,
// e.g. nn.FileSource over unet/diffusion_pytorch_model.safetensors, or
// src.Weights over a single file). Loading is strict: a missing key, a
// shape mismatch or a key no module reads is an error that names the key.
func Load(b tensor.Backend, cfg sdxl.UNetConfig, src nn.Source) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("unet: config: %v", err)
	}
	if cfg.MidBlockScaleFactor != 0 && cfg.MidBlockScaleFactor != 1 {
		return nil, fmt.Errorf("unet: config: mid_block_scale_factor %g is not supported (want 1)", cfg.MidBlockScaleFactor)
	}
	m := &Model{cfg: cfg, b: b}
	l := nn.NewLoader(b, src)
	bl := &builder{}
	err := m.build(bl, l.Root())
	m.layers = bl.owned
	if err == nil {
		err = l.CheckUnused()
	}
	if err != nil {
		m.Free()
		return nil, fmt.Errorf("unet: %w", err)
	}
	return m, nil
}

// FromSource loads the "unet" component of an open SDXL model (a diffusers
// folder or a single file) onto b, with the source's UNet config.
func FromSource(b tensor.Backend, src *sdxl.Source) (*Model, error) {
	m, err := Load(b, src.Config().UNet, src.Weights(sdxl.UNet))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path(), err)
	}
	return m, nil
}

// heads returns the attention head count of down block i: diffusers reads
// num_attention_heads, or attention_head_dim when that is null (SDXL's
// configs put head counts in attention_head_dim).
func (m *Model) heads(i int) int {
	if len(m.cfg.NumAttentionHeads) > 0 {
		return m.cfg.NumAttentionHeads.At(i)
	}
	return m.cfg.AttentionHeadDim.At(i)
}

func (m *Model) build(bl *builder, s nn.Scope) error {
	cfg := m.cfg
	n := len(cfg.BlockOutChannels)
	c0 := cfg.BlockOutChannels[0]
	tdim := cfg.TimeEmbedDim()
	var err error
	if m.TimeEmbedding, err = bl.timestepEmbedding(s.Sub("time_embedding"), c0, tdim); err != nil {
		return err
	}
	if m.AddEmbedding, err = bl.timestepEmbedding(s.Sub("add_embedding"), cfg.ProjectionClassEmbeddingsInputDim, tdim); err != nil {
		return err
	}
	kin := cfg.ConvInKernel
	if m.ConvIn, err = bl.conv(s.Sub("conv_in"), cfg.InChannels, c0, kin, tensor.ConvParams(1, (kin-1)/2)); err != nil {
		return err
	}
	out := c0
	for i := range n {
		in := out
		out = cfg.BlockOutChannels[i]
		var attn *attnConfig
		if cfg.HasCrossAttention(i) {
			attn = &attnConfig{heads: m.heads(i), depth: cfg.TransformerDepth(i), contextDim: cfg.CrossAttentionDimAt(i)}
		}
		blk, err := m.loadDown(bl, s.Sub("down_blocks").Index(i), in, out, attn, i < n-1)
		if err != nil {
			return err
		}
		m.DownBlocks = append(m.DownBlocks, blk)
	}
	last := cfg.BlockOutChannels[n-1]
	if m.MidBlock, err = m.loadMid(bl, s.Sub("mid_block"), last, attnConfig{
		heads: m.heads(n - 1), depth: cfg.TransformerDepth(n - 1), contextDim: cfg.CrossAttentionDimAt(n - 1),
	}); err != nil {
		return err
	}
	out = last
	for i := range n {
		prev := out
		out = cfg.BlockOutChannels[n-1-i]
		in := cfg.BlockOutChannels[max(n-2-i, 0)]
		var attn *attnConfig
		if cfg.UpHasCrossAttention(i) {
			attn = &attnConfig{heads: m.heads(n - 1 - i), depth: cfg.UpTransformerDepth(i), contextDim: cfg.CrossAttentionDimAt(n - 1 - i)}
		}
		blk, err := m.loadUp(bl, s.Sub("up_blocks").Index(i), prev, in, out, attn, i < n-1)
		if err != nil {
			return err
		}
		m.UpBlocks = append(m.UpBlocks, blk)
	}
	if m.ConvNormOut, err = bl.groupNorm(s.Sub("conv_norm_out"), cfg.NormNumGroups, c0, float32(cfg.NormEps)); err != nil {
		return err
	}
	kout := cfg.ConvOutKernel
	m.ConvOut, err = bl.conv(s.Sub("conv_out"), c0, cfg.OutChannels, kout, tensor.ConvParams(1, (kout-1)/2))
	return err
}

// Config returns the UNet's config.
func (m *Model) Config() sdxl.UNetConfig { return m.cfg }

// Backend returns the backend the weights live on.
func (m *Model) Backend() tensor.Backend { return m.b }

// Factor returns the UNet's total downsampling, 2^(number of
// downsamplers). Sizes that are not multiples of it work as in diffusers
// (each downsampler rounds up; each upsampler meets its skip's size).
func (m *Model) Factor() int { return 1 << (len(m.cfg.BlockOutChannels) - 1) }

// TextEmbedsDim returns the width of the pooled text embedding the UNet
// expects: projection_class_embeddings_input_dim − 6 × addition_time_embed_dim.
func (m *Model) TextEmbedsDim() int {
	return m.cfg.ProjectionClassEmbeddingsInputDim - 6*m.cfg.AdditionTimeEmbedDim
}

// Free releases every weight on the device, and what a training forward kept.
func (m *Model) Free() {
	m.FreeCache()
	for _, l := range m.layers {
		l.Free()
	}
	m.layers = nil
}

// checkInputs validates the shapes of Forward's arguments.
func (m *Model) checkInputs(sample *tensor.Tensor, timesteps []float32, context, textEmbeds, timeIDs *tensor.Tensor) error {
	cfg := m.cfg
	if sample == nil || context == nil || textEmbeds == nil || timeIDs == nil {
		return fmt.Errorf("unet: nil input")
	}
	if len(m.layers) == 0 {
		return fmt.Errorf("unet: model used after Free")
	}
	if sample.Rank() != 4 || sample.Dim(1) != cfg.InChannels {
		return fmt.Errorf("unet: sample %s, want (N, %d, h, w)", sample.Shape(), cfg.InChannels)
	}
	n := sample.Dim(0)
	if len(timesteps) != 1 && len(timesteps) != n {
		return fmt.Errorf("unet: %d timesteps for a batch of %d (want 1 or %d)", len(timesteps), n, n)
	}
	if ctxDim := cfg.CrossAttentionDimAt(0); context.Rank() != 3 || context.Dim(0) != n || context.Dim(2) != ctxDim {
		return fmt.Errorf("unet: encoder_hidden_states %s, want (%d, L, %d)", context.Shape(), n, ctxDim)
	}
	if p := m.TextEmbedsDim(); !textEmbeds.Shape().Equal(tensor.Shape{n, p}) {
		return fmt.Errorf("unet: text_embeds %s, want (%d, %d)", textEmbeds.Shape(), n, p)
	}
	if !timeIDs.Shape().Equal(tensor.Shape{n, 6}) {
		return fmt.Errorf("unet: time_ids %s, want (%d, 6)", timeIDs.Shape(), n)
	}
	return nil
}

// Forward predicts the noise (N, out_channels, h, w) of sample
// (N, in_channels, h, w) at timesteps (one per sample, or one for all),
// conditioned on encoderHidden (N, L, cross_attention_dim), textEmbeds
// (N, P), the pooled text embedding, and timeIDs (N, 6), the SDXL micro
// conditioning (orig_h, orig_w, crop_top, crop_left, target_h, target_w).
// Any h and w work (see Factor). Nothing given is freed.
func (m *Model) Forward(sample *tensor.Tensor, timesteps []float32, encoderHidden, textEmbeds, timeIDs *tensor.Tensor) (*tensor.Tensor, error) {
	return m.forward(sample, timesteps, encoderHidden, textEmbeds, timeIDs, false)
}

func (m *Model) forward(sample *tensor.Tensor, timesteps []float32, encoderHidden, textEmbeds, timeIDs *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if err := m.checkInputs(sample, timesteps, encoderHidden, textEmbeds, timeIDs); err != nil {
		return nil, err
	}
	temb, err := m.embed(sample.Dim(0), timesteps, textEmbeds, timeIDs, train) // (N, T)
	if err != nil {
		return nil, err
	}
	defer temb.Free()
	b, hook := m.b, m.Hook
	if train {
		for _, blk := range m.blocks() {
			blk.setCheckpoint(m.Checkpoint)
		}
	}
	skips := &skipStack{}
	defer skips.free()

	h, err := convForward(m.ConvIn, sample, train) // (N, C0, h, w)
	if err != nil {
		return nil, fmt.Errorf("unet: conv_in: %w", err)
	}
	hook.call("conv_in", h)
	skips.push(h) // the skips own every tensor of the down path
	for i, blk := range m.DownBlocks {
		if h, err = blk.down(h, temb, encoderHidden, skips, "down_blocks."+strconv.Itoa(i), hook, train); err != nil { // (N, Ci, h/2^(i+1), w/2^(i+1)), the last block keeps its size
			return nil, fmt.Errorf("unet: %w", err)
		}
	}
	nskips := len(*skips)
	if h, err = m.MidBlock.mid(h, temb, encoderHidden, "mid_block", hook, train); err != nil { // (N, Clast, h/f, w/f)
		return nil, fmt.Errorf("unet: %w", err)
	}
	for i, blk := range m.UpBlocks {
		if h, err = blk.up(h, temb, encoderHidden, skips, "up_blocks."+strconv.Itoa(i), hook, train); err != nil { // (N, C(n-1-i), 2×, the last block keeps its size)
			return nil, fmt.Errorf("unet: %w", err)
		}
	}

	defer h.Free()
	if len(*skips) != 0 {
		return nil, fmt.Errorf("unet: %d skip connections left unused", len(*skips))
	}
	var nrm *tensor.Tensor
	if train {
		nrm, err = m.ConvNormOut.ForwardTrain(h) // (N, C0, h, w)
	} else {
		nrm, err = m.ConvNormOut.Forward(h)
	}
	if err != nil {
		return nil, fmt.Errorf("unet: conv_norm_out: %w", err)
	}
	hook.call("conv_norm_out", nrm)
	act, err := b.Activation(nrm, tensor.SiLU) // (N, C0, h, w); conv_act is nn.SiLU()
	if train {
		m.kept = &kept{nrm: nrm, skips: nskips}
	} else {
		nrm.Free()
	}
	if err != nil {
		return nil, fmt.Errorf("unet: conv_act: %w", err)
	}
	hook.call("conv_act", act)
	out, err := convForward(m.ConvOut, act, train) // (N, out_channels, h, w)
	act.Free()
	if err != nil {
		return nil, fmt.Errorf("unet: conv_out: %w", err)
	}
	hook.call("conv_out", out)
	return out, nil
}

// embed returns the resnets' conditioning (N, T):
// time_embedding(time_proj(t)) + add_embedding([text_embeds, add_time_proj(time_ids)]).
func (m *Model) embed(n int, timesteps []float32, textEmbeds, timeIDs *tensor.Tensor, train bool) (_ *tensor.Tensor, err error) {
	cfg, b, hook := m.cfg, m.b, m.Hook
	var ts, tp, te, ids, ap, ap2, cat, ae *tensor.Tensor
	defer func() { tensor.FreeAll(ts, tp, te, ids, ap, ap2, cat, ae) }()
	tv := make([]float32, n)
	for i := range tv {
		tv[i] = timesteps[min(i, len(timesteps)-1)] // one timestep broadcasts over the batch
	}
	flip, shift := cfg.FlipSinToCos, float32(cfg.FreqShift)
	if ts, err = b.Upload(tv, tensor.Shape{n}, tensor.F32); err != nil { // (N)
		return nil, err
	}
	if tp, err = b.TimestepEmbedding(ts, cfg.BlockOutChannels[0], flip, shift); err != nil { // (N, C0)
		return nil, fmt.Errorf("unet: time_proj: %w", err)
	}
	hook.call("time_proj", tp)
	if te, err = embForward(m.TimeEmbedding, tp, train); err != nil { // (N, T)
		return nil, fmt.Errorf("unet: time_embedding: %w", err)
	}
	hook.call("time_embedding", te)
	if ids, err = timeIDs.Reshape(n * 6); err != nil { // (N·6)
		return nil, err
	}
	d := cfg.AdditionTimeEmbedDim
	if ap, err = b.TimestepEmbedding(ids, d, flip, shift); err != nil { // (N·6, D)
		return nil, fmt.Errorf("unet: add_time_proj: %w", err)
	}
	hook.call("add_time_proj", ap)
	if ap2, err = ap.Reshape(n, 6*d); err != nil { // (N, 6·D)
		return nil, err
	}
	if cat, err = b.Concat(1, textEmbeds, ap2); err != nil { // (N, P + 6·D)
		return nil, fmt.Errorf("unet: add_embedding input: %w", err)
	}
	hook.call("add_embedding.input", cat)
	if ae, err = embForward(m.AddEmbedding, cat, train); err != nil { // (N, T)
		return nil, fmt.Errorf("unet: add_embedding: %w", err)
	}
	hook.call("add_embedding", ae)
	return b.Binary(tensor.Add, te, ae) // (N, T)
}

// blocks returns the down blocks, the mid block and the up blocks, in
// forward order.
func (m *Model) blocks() []*Block {
	out := slices.Clone(m.DownBlocks)
	out = append(out, m.MidBlock)
	return append(out, m.UpBlocks...)
}

// Linears returns every Linear of the UNet under its diffusers module name
// ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
// "time_embedding.linear_1", "up_blocks.0.resnets.2.time_emb_proj" ...):
// where a LoRA attaches its Adapter.
func (m *Model) Linears() map[string]*nn.Linear {
	out := map[string]*nn.Linear{}
	add := func(name string, l *nn.Linear) {
		if l != nil {
			out[name] = l
		}
	}
	add("time_embedding.linear_1", m.TimeEmbedding.Linear1)
	add("time_embedding.linear_2", m.TimeEmbedding.Linear2)
	add("add_embedding.linear_1", m.AddEmbedding.Linear1)
	add("add_embedding.linear_2", m.AddEmbedding.Linear2)
	walk := func(prefix string, blk *Block) {
		for j, r := range blk.Resnets {
			add(prefix+".resnets."+strconv.Itoa(j)+".time_emb_proj", r.TimeEmbProj)
		}
		for j, a := range blk.Attentions {
			p := prefix + ".attentions." + strconv.Itoa(j)
			add(p+".proj_in", a.ProjIn)
			add(p+".proj_out", a.ProjOut)
			for k, tb := range a.Blocks {
				q := p + ".transformer_blocks." + strconv.Itoa(k)
				for _, at := range []struct {
					name string
					a    *nn.Attention
				}{{"attn1", tb.Attn1}, {"attn2", tb.Attn2}} {
					add(q+"."+at.name+".to_q", at.a.Q)
					add(q+"."+at.name+".to_k", at.a.K)
					add(q+"."+at.name+".to_v", at.a.V)
					add(q+"."+at.name+".to_out.0", at.a.Out)
				}
				add(q+".ff.net.0.proj", tb.FF.Proj)
				add(q+".ff.net.2", tb.FF.Out)
			}
		}
	}
	for i, blk := range m.DownBlocks {
		walk("down_blocks."+strconv.Itoa(i), blk)
	}
	walk("mid_block", m.MidBlock)
	for i, blk := range m.UpBlocks {
		walk("up_blocks."+strconv.Itoa(i), blk)
	}
	return out
}
