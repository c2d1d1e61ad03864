package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// BasicTransformerBlock is diffusers' BasicTransformerBlock as SDXL uses it
// (layer norms, self-attention, cross-attention, GEGLU feed-forward):
//
//	h = attn1(norm1(h)) + h
//	h = attn2(norm2(h), context) + h
//	h = ff(norm3(h)) + h
type BasicTransformerBlock struct {
	Norm1 *LayerNorm
	Attn1 *Attention
	Norm2 *LayerNorm
	Attn2 *Attention
	Norm3 *LayerNorm
	FF    *FeedForward
}

// TransformerBlockConfig sizes a BasicTransformerBlock.
type TransformerBlockConfig struct {
	Dim        int     // the block's width
	Heads      int     // attention heads
	HeadDim    int     // width of one head
	ContextDim int     // cross_attention_dim
	Eps        float32 // layer norm eps (1e-5)
}

// LoadBasicTransformerBlock loads norm1, attn1, norm2, attn2, norm3 and ff from s.
func LoadBasicTransformerBlock(s Scope, c TransformerBlockConfig) (*BasicTransformerBlock, error) {
	t := &BasicTransformerBlock{}
	var err error
	ac := AttentionConfig{QueryDim: c.Dim, Heads: c.Heads, HeadDim: c.HeadDim, OutBias: true}
	cc := ac
	cc.ContextDim = c.ContextDim
	if t.Norm1, err = LoadLayerNorm(s.Sub("norm1"), c.Dim, c.Eps); err == nil {
		if t.Attn1, err = LoadAttention(s.Sub("attn1"), DiffusersAttentionNames, ac); err == nil {
			if t.Norm2, err = LoadLayerNorm(s.Sub("norm2"), c.Dim, c.Eps); err == nil {
				if t.Attn2, err = LoadAttention(s.Sub("attn2"), DiffusersAttentionNames, cc); err == nil {
					if t.Norm3, err = LoadLayerNorm(s.Sub("norm3"), c.Dim, c.Eps); err == nil {
						t.FF, err = LoadFeedForward(s.Sub("ff"), c.Dim, 4*c.Dim)
					}
				}
			}
		}
	}
	if err != nil {
		t.Free()
		return nil, err
	}
	return t, nil
}

// Forward runs the block on h (B, N, Dim) with context (B, M, ContextDim).
func (t *BasicTransformerBlock) Forward(h, context *tensor.Tensor) (*tensor.Tensor, error) {
	return t.forward(h, context, false)
}

// ForwardTrain is Forward that keeps what Backward needs.
func (t *BasicTransformerBlock) ForwardTrain(h, context *tensor.Tensor) (*tensor.Tensor, error) {
	return t.forward(h, context, true)
}

func (t *BasicTransformerBlock) forward(h, context *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	b := h.Backend()
	// residual applies f(norm(h)) + h.
	residual := func(n *LayerNorm, h *tensor.Tensor, f func(x *tensor.Tensor) (*tensor.Tensor, error)) (*tensor.Tensor, error) {
		var x *tensor.Tensor
		var err error
		if train {
			x, err = n.ForwardTrain(h)
		} else {
			x, err = n.Forward(h)
		}
		if err != nil {
			return nil, err
		}
		y, err := f(x) // (B, N, Dim)
		x.Free()
		if err != nil {
			return nil, err
		}
		defer y.Free()
		return b.Binary(tensor.Add, y, h)
	}
	attn := func(a *Attention, ctx *tensor.Tensor) func(x *tensor.Tensor) (*tensor.Tensor, error) {
		return func(x *tensor.Tensor) (*tensor.Tensor, error) {
			if train {
				return a.ForwardTrain(x, ctx)
			}
			return a.Forward(x, ctx)
		}
	}
	ff := t.FF.Forward
	if train {
		ff = t.FF.ForwardTrain
	}
	h1, err := residual(t.Norm1, h, attn(t.Attn1, nil)) // self-attention
	if err != nil {
		return nil, err
	}
	h2, err := residual(t.Norm2, h1, attn(t.Attn2, context)) // cross-attention
	h1.Free()
	if err != nil {
		return nil, err
	}
	h3, err := residual(t.Norm3, h2, ff)
	h2.Free()
	return h3, err
}

// Backward returns dh (B, N, Dim) and dcontext (B, M, ContextDim) for dout.
func (t *BasicTransformerBlock) Backward(dout *tensor.Tensor) (dh, dcontext *tensor.Tensor, err error) {
	if t.Norm1 == nil {
		return nil, nil, fmt.Errorf("nn: transformer block used after Free")
	}
	b := dout.Backend()
	// back goes through y = f(norm(h)) + h: dh = dout + norm'(f'(dout)).
	back := func(n *LayerNorm, d *tensor.Tensor, f func(*tensor.Tensor) (*tensor.Tensor, error)) (*tensor.Tensor, error) {
		dx, err := f(d)
		if err != nil {
			return nil, err
		}
		dn, err := n.Backward(dx)
		dx.Free()
		if err != nil {
			return nil, err
		}
		defer dn.Free()
		return b.Binary(tensor.Add, dn, d)
	}
	d3, err := back(t.Norm3, dout, t.FF.Backward)
	if err != nil {
		return nil, nil, err
	}
	d2, err := back(t.Norm2, d3, func(d *tensor.Tensor) (*tensor.Tensor, error) {
		dx, dc, err := t.Attn2.Backward(d)
		dcontext = dc
		return dx, err
	})
	d3.Free()
	if err != nil {
		if dcontext != nil {
			dcontext.Free()
		}
		return nil, nil, err
	}
	d1, err := back(t.Norm1, d2, func(d *tensor.Tensor) (*tensor.Tensor, error) {
		dx, _, err := t.Attn1.Backward(d)
		return dx, err
	})
	d2.Free()
	if err != nil {
		dcontext.Free()
		return nil, nil, err
	}
	return d1, dcontext, nil
}

func (t *BasicTransformerBlock) each(f func(layer)) {
	for _, m := range []layer{t.Norm1, t.Attn1, t.Norm2, t.Attn2, t.Norm3, t.FF} {
		if !isNil(m) {
			f(m)
		}
	}
}

// SetTrainable sets Trainable on every parameter of the block.
func (t *BasicTransformerBlock) SetTrainable(on bool) {
	t.Norm1.Trainable, t.Norm2.Trainable, t.Norm3.Trainable = on, on, on
	t.Attn1.SetTrainable(on)
	t.Attn2.SetTrainable(on)
	t.FF.SetTrainable(on)
}

// FreeCache releases what ForwardTrain kept.
func (t *BasicTransformerBlock) FreeCache() { t.each(func(m layer) { m.FreeCache() }) }

// ZeroGrad frees the accumulated gradients.
func (t *BasicTransformerBlock) ZeroGrad() { t.each(func(m layer) { m.ZeroGrad() }) }

// Free releases the parameters, gradients and caches.
func (t *BasicTransformerBlock) Free() { t.each(func(m layer) { m.Free() }) }

// Transformer2DConfig sizes a Transformer2DModel.
type Transformer2DConfig struct {
	Channels         int     // in_channels of the feature map
	Heads            int     // attention heads
	HeadDim          int     // width of one head; inner width is Heads*HeadDim
	Depth            int     // number of transformer_blocks
	ContextDim       int     // cross_attention_dim
	Groups           int     // norm_num_groups
	LinearProjection bool    // use_linear_projection (SDXL: true): proj_in/out are Linear, else 1x1 Conv2d
	Eps              float32 // the blocks' layer norm eps (1e-5); the group norm uses 1e-6 as diffusers
}

// Transformer2DModel is diffusers' Transformer2DModel for continuous inputs:
//
//	h = norm(x) → (N, H·W, C) → proj_in → transformer_blocks → proj_out → (N, C, H, W)
//	out = h + x
//
// (with LinearProjection false, proj_in/proj_out are 1x1 convolutions on the
// feature map instead).
type Transformer2DModel struct {
	Norm       *GroupNorm
	ProjIn     *Linear // LinearProjection
	ProjOut    *Linear
	ProjInConv *Conv2d // !LinearProjection
	ProjOutCv  *Conv2d
	Blocks     []*BasicTransformerBlock

	// Checkpoint makes ForwardTrain keep, of the transformer blocks, only
	// each block's input (gradient checkpointing per transformer block, as
	// diffusers does): Backward runs one block's forward again just before
	// its backward and frees what that kept after it. The norm and the
	// projections keep their caches as without.
	Checkpoint bool

	hw    [2]int           // H, W of the last training forward
	ckIn  []*tensor.Tensor // with Checkpoint: each block's input (N, HW, inner)
	ckCtx *tensor.Tensor   // with Checkpoint: a view of the context
}

// LoadTransformer2D loads norm, proj_in, transformer_blocks.i and proj_out from s.
func LoadTransformer2D(s Scope, c Transformer2DConfig) (*Transformer2DModel, error) {
	m := &Transformer2DModel{}
	inner := c.Heads * c.HeadDim
	var err error
	fail := func(err error) (*Transformer2DModel, error) {
		m.Free()
		return nil, err
	}
	if m.Norm, err = LoadGroupNorm(s.Sub("norm"), c.Groups, c.Channels, 1e-6); err != nil {
		return fail(err)
	}
	if c.LinearProjection {
		if m.ProjIn, err = LoadLinear(s.Sub("proj_in"), c.Channels, inner, true); err != nil {
			return fail(err)
		}
	} else if m.ProjInConv, err = LoadConv2d(s.Sub("proj_in"), c.Channels, inner, 1, tensor.ConvParams(1, 0), true); err != nil {
		return fail(err)
	}
	for i := range c.Depth {
		blk, err := LoadBasicTransformerBlock(s.Sub("transformer_blocks").Index(i), TransformerBlockConfig{
			Dim: inner, Heads: c.Heads, HeadDim: c.HeadDim, ContextDim: c.ContextDim, Eps: c.Eps,
		})
		if err != nil {
			return fail(err)
		}
		m.Blocks = append(m.Blocks, blk)
	}
	if c.LinearProjection {
		if m.ProjOut, err = LoadLinear(s.Sub("proj_out"), inner, c.Channels, true); err != nil {
			return fail(err)
		}
	} else if m.ProjOutCv, err = LoadConv2d(s.Sub("proj_out"), inner, c.Channels, 1, tensor.ConvParams(1, 0), true); err != nil {
		return fail(err)
	}
	return m, nil
}

// Forward runs the model on x (N, C, H, W) with context (N, M, ContextDim);
// out is (N, C, H, W).
func (m *Transformer2DModel) Forward(x, context *tensor.Tensor) (*tensor.Tensor, error) {
	return m.forward(x, context, false)
}

// ForwardTrain is Forward that keeps what Backward needs.
func (m *Transformer2DModel) ForwardTrain(x, context *tensor.Tensor) (*tensor.Tensor, error) {
	return m.forward(x, context, true)
}

// toTokens turns (N, C, H, W) into (N, H·W, C).
func toTokens(x *tensor.Tensor) (*tensor.Tensor, error) {
	p, err := x.Backend().Permute(x, 0, 2, 3, 1) // (N, H, W, C)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	return p.Reshape(x.Dim(0), x.Dim(2)*x.Dim(3), x.Dim(1))
}

// toMap turns (N, H·W, C) into (N, C, H, W).
func toMap(t *tensor.Tensor, h, w int) (*tensor.Tensor, error) {
	r, err := t.Reshape(t.Dim(0), h, w, t.Dim(2)) // (N, H, W, C)
	if err != nil {
		return nil, err
	}
	defer r.Free()
	return t.Backend().Permute(r, 0, 3, 1, 2)
}

func (m *Transformer2DModel) forward(x, context *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if x.Rank() != 4 {
		return nil, fmt.Errorf("nn: transformer 2d: input is %s, want (N, C, H, W)", x.Shape())
	}
	b := x.Backend()
	hh, ww := x.Dim(2), x.Dim(3)
	if train {
		m.hw = [2]int{hh, ww}
	}
	var n *tensor.Tensor
	var err error
	if train {
		n, err = m.Norm.ForwardTrain(x)
	} else {
		n, err = m.Norm.Forward(x)
	}
	if err != nil {
		return nil, err
	}
	var h *tensor.Tensor
	if m.ProjIn != nil {
		t, err := toTokens(n) // (N, HW, C)
		n.Free()
		if err != nil {
			return nil, err
		}
		h, err = m.linear(m.ProjIn, t, train) // (N, HW, inner)
		t.Free()
		if err != nil {
			return nil, err
		}
	} else {
		p, err := m.conv(m.ProjInConv, n, train) // (N, inner, H, W)
		n.Free()
		if err != nil {
			return nil, err
		}
		h, err = toTokens(p)
		p.Free()
		if err != nil {
			return nil, err
		}
	}
	ck := train && m.Checkpoint
	if ck {
		m.freeCheckpoint()
		if m.ckCtx, err = keep(context); err != nil {
			h.Free()
			return nil, err
		}
	}
	for i, blk := range m.Blocks {
		var next *tensor.Tensor
		if train && !ck {
			next, err = blk.ForwardTrain(h, context)
		} else {
			next, err = blk.Forward(h, context)
		}
		if ck && err == nil {
			m.ckIn = append(m.ckIn, h) // the block's input, to run it again
		} else {
			h.Free()
		}
		if err != nil {
			return nil, fmt.Errorf("transformer_blocks.%d: %w", i, err)
		}
		h = next // (N, HW, inner)
	}
	var y *tensor.Tensor
	if m.ProjOut != nil {
		p, err := m.linear(m.ProjOut, h, train) // (N, HW, C)
		h.Free()
		if err != nil {
			return nil, err
		}
		y, err = toMap(p, hh, ww) // (N, C, H, W)
		p.Free()
		if err != nil {
			return nil, err
		}
	} else {
		p, err := toMap(h, hh, ww) // (N, inner, H, W)
		h.Free()
		if err != nil {
			return nil, err
		}
		y, err = m.conv(m.ProjOutCv, p, train) // (N, C, H, W)
		p.Free()
		if err != nil {
			return nil, err
		}
	}
	defer y.Free()
	return b.Binary(tensor.Add, y, x)
}

func (m *Transformer2DModel) linear(l *Linear, x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return l.ForwardTrain(x)
	}
	return l.Forward(x)
}

func (m *Transformer2DModel) conv(c *Conv2d, x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return c.ForwardTrain(x)
	}
	return c.Forward(x)
}

// Backward returns dx (N, C, H, W) and dcontext (N, M, ContextDim) for dout.
func (m *Transformer2DModel) Backward(dout *tensor.Tensor) (dx, dcontext *tensor.Tensor, err error) {
	if m.Norm == nil || m.hw[0] == 0 {
		return nil, nil, fmt.Errorf("nn: transformer 2d backward without ForwardTrain")
	}
	b := dout.Backend()
	hh, ww := m.hw[0], m.hw[1]
	var dh *tensor.Tensor
	defer func() {
		if err != nil && dcontext != nil {
			dcontext.Free()
			dcontext = nil
		}
	}()
	if m.ProjOut != nil {
		t, err := toTokens(dout) // (N, HW, C)
		if err != nil {
			return nil, nil, err
		}
		dh, err = m.ProjOut.Backward(t) // (N, HW, inner)
		t.Free()
		if err != nil {
			return nil, nil, err
		}
	} else {
		dp, err := m.ProjOutCv.Backward(dout) // (N, inner, H, W)
		if err != nil {
			return nil, nil, err
		}
		dh, err = toTokens(dp)
		dp.Free()
		if err != nil {
			return nil, nil, err
		}
	}
	ck := len(m.ckIn) == len(m.Blocks) && len(m.ckIn) > 0 && m.ckIn[len(m.ckIn)-1] != nil
	if ck {
		defer m.FreeCache() // checkpointing holds nothing past the backward
	}
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		if ck {
			again, err := m.Blocks[i].ForwardTrain(m.ckIn[i], m.ckCtx) // (N, HW, inner), the same values
			if err != nil {
				dh.Free()
				return nil, nil, fmt.Errorf("transformer_blocks.%d: running the checkpointed forward again: %w", i, err)
			}
			again.Free()
		}
		prev, dc, err := m.Blocks[i].Backward(dh)
		dh.Free()
		if ck {
			m.Blocks[i].FreeCache()
			release(&m.ckIn[i])
		}
		if err != nil {
			return nil, nil, err
		}
		if err := tensor.Accumulate(&dcontext, dc); err != nil {
			prev.Free()
			return nil, nil, err
		}
		dh = prev
	}
	var dn *tensor.Tensor
	if m.ProjIn != nil {
		dt, err := m.ProjIn.Backward(dh) // (N, HW, C)
		dh.Free()
		if err != nil {
			return nil, nil, err
		}
		dn, err = toMap(dt, hh, ww) // (N, C, H, W)
		dt.Free()
		if err != nil {
			return nil, nil, err
		}
	} else {
		dp, err := toMap(dh, hh, ww) // (N, inner, H, W)
		dh.Free()
		if err != nil {
			return nil, nil, err
		}
		dn, err = m.ProjInConv.Backward(dp)
		dp.Free()
		if err != nil {
			return nil, nil, err
		}
	}
	dxn, err := m.Norm.Backward(dn)
	dn.Free()
	if err != nil {
		return nil, nil, err
	}
	dx, err = b.Binary(tensor.Add, dxn, dout) // + the residual
	dxn.Free()
	if err != nil {
		return nil, nil, err
	}
	return dx, dcontext, nil
}

func (m *Transformer2DModel) each(f func(layer)) {
	for _, l := range []layer{m.Norm, m.ProjIn, m.ProjOut, m.ProjInConv, m.ProjOutCv} {
		if !isNil(l) {
			f(l)
		}
	}
	for _, blk := range m.Blocks {
		f(blk)
	}
}

// SetTrainable sets Trainable on every parameter.
func (m *Transformer2DModel) SetTrainable(on bool) {
	m.Norm.Trainable = on
	for _, l := range []*Linear{m.ProjIn, m.ProjOut} {
		if l != nil {
			l.Trainable = on
		}
	}
	for _, c := range []*Conv2d{m.ProjInConv, m.ProjOutCv} {
		if c != nil {
			c.Trainable = on
		}
	}
	for _, blk := range m.Blocks {
		blk.SetTrainable(on)
	}
}

// FreeCache releases what ForwardTrain kept.
func (m *Transformer2DModel) FreeCache() {
	m.hw = [2]int{}
	m.freeCheckpoint()
	m.each(func(l layer) { l.FreeCache() })
}

// freeCheckpoint releases the blocks' kept inputs and the context view.
func (m *Transformer2DModel) freeCheckpoint() {
	tensor.FreeAll(m.ckIn...)
	m.ckIn = nil
	release(&m.ckCtx)
}

// ZeroGrad frees the accumulated gradients.
func (m *Transformer2DModel) ZeroGrad() { m.each(func(l layer) { l.ZeroGrad() }) }

// Free releases the parameters, gradients and caches.
func (m *Transformer2DModel) Free() {
	m.freeCheckpoint()
	m.each(func(l layer) { l.Free() })
	m.Blocks = nil
}
