package unet

import (
	"fmt"
	"strconv"

	"lorastudio/engine/nn"
	"lorastudio/engine/tensor"
)

// kept is what ForwardTrain keeps for Backward beyond the layers' own caches.
type kept struct {
	nrm   *tensor.Tensor // conv_norm_out's output, the input of conv_act (N, C0, h, w)
	skips int            // how many tensors the down path pushed (conv_in's included)
}

// ForwardTrain is Forward that keeps, in every layer, what Backward needs
// (views of the activations, no copies). A LoRA takes part through the
// Adapters attached to Linears (see Linears). Call FreeCache after Backward.
func (m *Model) ForwardTrain(sample *tensor.Tensor, timesteps []float32, encoderHidden, textEmbeds, timeIDs *tensor.Tensor) (*tensor.Tensor, error) {
	m.FreeCache()
	out, err := m.forward(sample, timesteps, encoderHidden, textEmbeds, timeIDs, true)
	if err != nil {
		m.FreeCache()
	}
	return out, err
}

// Backward takes dout (N, out_channels, h, w), the gradient of the output of
// the last ForwardTrain, and returns the gradients of the sample
// (N, in_channels, h, w) and of encoderHidden (N, L, cross_attention_dim),
// both nil with NoInputGrads. On the way it accumulates the parameter
// gradients of every Trainable layer and every Adapter (LoRA). The time and
// text_time embeddings are back-propagated to their own weights only
// (timesteps, text_embeds and time_ids get no gradient).
func (m *Model) Backward(dout *tensor.Tensor) (dsample, dcontext *tensor.Tensor, err error) {
	if m.kept == nil {
		return nil, nil, fmt.Errorf("unet: Backward without ForwardTrain")
	}
	b := m.b
	var dtemb, dh *tensor.Tensor
	dskips := make([]*tensor.Tensor, m.kept.skips)
	defer func() {
		tensor.FreeAll(dtemb, dh)
		tensor.FreeAll(dskips...)
		if err != nil {
			tensor.FreeAll(dsample, dcontext)
			dsample, dcontext = nil, nil
		}
	}()
	wrap := func(name string, err error) error { return fmt.Errorf("unet: backward %s: %w", name, err) }
	for _, blk := range m.blocks() {
		blk.setContextGrad(!m.NoInputGrads)
	}

	d, err := m.ConvOut.Backward(dout) // (N, C0, h, w)
	if err != nil {
		return nil, nil, wrap("conv_out", err)
	}
	da, err := b.ActivationBackward(d, m.kept.nrm, tensor.SiLU) // (N, C0, h, w)
	d.Free()
	if err != nil {
		return nil, nil, wrap("conv_act", err)
	}
	dh, err = m.ConvNormOut.Backward(da) // (N, C0, h, w)
	da.Free()
	if err != nil {
		return nil, nil, wrap("conv_norm_out", err)
	}
	for i := len(m.UpBlocks) - 1; i >= 0; i-- {
		next, err := m.UpBlocks[i].upBackward(dh, &dtemb, &dcontext, dskips) // (N, Cprev, H, W); dh is consumed
		dh = nil
		if err != nil {
			return nil, nil, wrap("up_blocks."+strconv.Itoa(i), err)
		}
		dh = next
	}
	next, err := m.MidBlock.midBackward(dh, &dtemb, &dcontext) // (N, Clast, h/f, w/f)
	dh = nil
	if err != nil {
		return nil, nil, wrap("mid_block", err)
	}
	k := len(dskips) - 1 // the mid block's input is the last tensor the down path pushed
	if err := tensor.Accumulate(&dskips[k], next); err != nil {
		return nil, nil, wrap("mid_block", err)
	}
	for i := len(m.DownBlocks) - 1; i >= 0; i-- {
		if k, err = m.DownBlocks[i].downBackward(k, dskips, &dtemb, &dcontext); err != nil {
			return nil, nil, wrap("down_blocks."+strconv.Itoa(i), err)
		}
	}
	if k != 0 {
		return nil, nil, fmt.Errorf("unet: backward: %d skip gradients left over", k)
	}
	if m.NoInputGrads {
		if err := m.ConvIn.BackwardParams(dskips[0]); err != nil {
			return nil, nil, wrap("conv_in", err)
		}
	} else if dsample, err = m.ConvIn.Backward(dskips[0]); err != nil { // (N, in_channels, h, w)
		return nil, nil, wrap("conv_in", err)
	}
	if dtemb != nil {
		// temb = time_embedding(time_proj(t)) + add_embedding(...): both get
		// dtemb, for their own weights (their inputs need no gradient)
		for _, e := range []struct {
			name string
			emb  *nn.TimestepEmbedding
		}{{"time_embedding", m.TimeEmbedding}, {"add_embedding", m.AddEmbedding}} {
			if err := e.emb.BackwardParams(dtemb); err != nil {
				return nil, nil, wrap(e.name, err)
			}
		}
	}
	return dsample, dcontext, nil
}

// FreeCache releases what ForwardTrain kept, in the model and every layer.
func (m *Model) FreeCache() {
	if m.kept != nil {
		m.kept.nrm.Free()
		m.kept = nil
	}
	for _, l := range m.layers {
		if c, ok := l.(interface{ FreeCache() }); ok {
			c.FreeCache()
		}
	}
	for _, blk := range m.UpBlocks {
		blk.skipIdx, blk.catSplit, blk.upIn = nil, nil, [2]int{}
	}
}

// resnetAttnBackward runs the backward of attentions.j (when present) and
// resnets.j on dh, which it frees, accumulating into dtemb and dcontext;
// it returns the gradient of the resnet's input.
func (blk *Block) resnetAttnBackward(j int, dh *tensor.Tensor, dtemb, dcontext **tensor.Tensor) (*tensor.Tensor, error) {
	if j < len(blk.Attentions) {
		dx, dc, err := blk.Attentions[j].Backward(dh) // (N, C, H, W), (N, L, Cctx)
		dh.Free()
		if err != nil {
			return nil, fmt.Errorf("attentions.%d: %w", j, err)
		}
		if err := tensor.Accumulate(dcontext, dc); err != nil {
			dx.Free()
			return nil, err
		}
		dh = dx
	}
	dx, dt, err := blk.Resnets[j].Backward(dh) // (N, Cin, H, W), (N, T)
	dh.Free()
	if err != nil {
		return nil, fmt.Errorf("resnets.%d: %w", j, err)
	}
	if err := tensor.Accumulate(dtemb, dt); err != nil {
		dx.Free()
		return nil, err
	}
	return dx, nil
}

// upBackward is up's backward: dh (the block output's gradient) is freed;
// each skip's gradient is added into dskips at the index it was popped
// from; it returns the gradient of the block's input.
func (blk *Block) upBackward(dh *tensor.Tensor, dtemb, dcontext **tensor.Tensor, dskips []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(blk.skipIdx) != len(blk.Resnets) {
		dh.Free()
		return nil, fmt.Errorf("no training forward kept")
	}
	for _, up := range blk.Upsamplers {
		d, err := blk.upsampleBackward(up, dh) // (N, Cout, H, W)
		dh.Free()
		if err != nil {
			return nil, fmt.Errorf("upsamplers.0: %w", err)
		}
		dh = d
	}
	for j := len(blk.Resnets) - 1; j >= 0; j-- {
		dcat, err := blk.resnetAttnBackward(j, dh, dtemb, dcontext) // (N, C + Cskip, H, W)
		if err != nil {
			return nil, err
		}
		parts, err := dcat.Backend().Split(dcat, 1, blk.catSplit[j][0], blk.catSplit[j][1])
		dcat.Free()
		if err != nil {
			return nil, fmt.Errorf("resnets.%d: splitting the concatenation's gradient: %w", j, err)
		}
		if err := tensor.Accumulate(&dskips[blk.skipIdx[j]], parts[1]); err != nil {
			parts[0].Free()
			return nil, err
		}
		dh = parts[0] // (N, C, H, W)
	}
	return dh, nil
}

// midBackward is mid's backward: dh is freed; it returns the gradient of
// the block's input.
func (blk *Block) midBackward(dh *tensor.Tensor, dtemb, dcontext **tensor.Tensor) (*tensor.Tensor, error) {
	dx, dt, err := blk.Resnets[1].Backward(dh) // (N, C, H, W)
	dh.Free()
	if err != nil {
		return nil, fmt.Errorf("resnets.1: %w", err)
	}
	if err := tensor.Accumulate(dtemb, dt); err != nil {
		dx.Free()
		return nil, err
	}
	return blk.resnetAttnBackward(0, dx, dtemb, dcontext)
}

// downBackward is down's backward. The block's outputs are dskips[..k]
// (the last at k), each gradient complete (from the up path and from what
// came after it); each is consumed and its input's gradient added at the
// index before. It returns the index of the block input's gradient.
func (blk *Block) downBackward(k int, dskips []*tensor.Tensor, dtemb, dcontext **tensor.Tensor) (int, error) {
	for _, d := range blk.Downsamplers {
		g := dskips[k]
		dskips[k] = nil
		dx, err := d.Backward(g) // (N, Cout, H, W)
		g.Free()
		if err != nil {
			return k, fmt.Errorf("downsamplers.0: %w", err)
		}
		if err := tensor.Accumulate(&dskips[k-1], dx); err != nil {
			return k, err
		}
		k--
	}
	for j := len(blk.Resnets) - 1; j >= 0; j-- {
		g := dskips[k]
		dskips[k] = nil
		if g == nil {
			return k, fmt.Errorf("resnets.%d: no gradient reached its output", j)
		}
		dx, err := blk.resnetAttnBackward(j, g, dtemb, dcontext) // (N, Cin, H, W)
		if err != nil {
			return k, err
		}
		if err := tensor.Accumulate(&dskips[k-1], dx); err != nil {
			return k, err
		}
		k--
	}
	return k, nil
}

// convForward runs c, keeping its input for Backward when train.
func convForward(c *nn.Conv2d, x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return c.ForwardTrain(x)
	}
	return c.Forward(x)
}

// embForward runs e, keeping what Backward needs when train.
func embForward(e *nn.TimestepEmbedding, x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return e.ForwardTrain(x)
	}
	return e.Forward(x)
}
