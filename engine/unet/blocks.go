package unet

import (
	"fmt"
	"strconv"

	"lorastudio/engine/nn"
	"lorastudio/engine/tensor"
)

// Hook observes a module's output during Forward: name is the module's
// diffusers path ("down_blocks.1", "mid_block", "conv_out"; a ".input"
// suffix marks a module's first input) and t is borrowed: read it during the
// call, never Free it or keep it.
type Hook func(name string, t *tensor.Tensor)

// call runs h when it is set.
func (h Hook) call(name string, t *tensor.Tensor) {
	if h != nil {
		h(name, t)
	}
}

// freer is anything loaded that holds device memory.
type freer interface{ Free() }

// builder loads layers and remembers every one, so a Model frees them all.
type builder struct {
	owned []freer
}

func (bl *builder) resnet(s nn.Scope, c nn.ResnetBlock2DConfig) (*nn.ResnetBlock2D, error) {
	r, err := nn.LoadResnetBlock2D(s, c)
	if err == nil {
		bl.owned = append(bl.owned, r)
	}
	return r, err
}

func (bl *builder) transformer(s nn.Scope, c nn.Transformer2DConfig) (*nn.Transformer2DModel, error) {
	t, err := nn.LoadTransformer2D(s, c)
	if err == nil {
		bl.owned = append(bl.owned, t)
	}
	return t, err
}

func (bl *builder) conv(s nn.Scope, in, out, k int, p tensor.Conv2DParams) (*nn.Conv2d, error) {
	c, err := nn.LoadConv2d(s, in, out, k, p, true)
	if err == nil {
		bl.owned = append(bl.owned, c)
	}
	return c, err
}

func (bl *builder) groupNorm(s nn.Scope, groups, c int, eps float32) (*nn.GroupNorm, error) {
	n, err := nn.LoadGroupNorm(s, groups, c, eps)
	if err == nil {
		bl.owned = append(bl.owned, n)
	}
	return n, err
}

func (bl *builder) timestepEmbedding(s nn.Scope, in, dim int) (*nn.TimestepEmbedding, error) {
	e, err := nn.LoadTimestepEmbedding(s, in, dim)
	if err == nil {
		bl.owned = append(bl.owned, e)
	}
	return e, err
}

// attnConfig sizes the Transformer2DModels of one block: diffusers gives
// each num_attention_heads heads of width channels/heads.
type attnConfig struct {
	heads, depth, contextDim int
}

// Block is one of diffusers' DownBlock2D, CrossAttnDownBlock2D, UpBlock2D,
// CrossAttnUpBlock2D or UNetMidBlock2DCrossAttn: resnets, each followed by
// an attention in the cross-attention blocks (the mid block: two resnets
// around one attention), and at most one resampler.
type Block struct {
	Resnets      []*nn.ResnetBlock2D
	Attentions   []*nn.Transformer2DModel // empty for DownBlock2D / UpBlock2D
	Downsamplers []*nn.Downsample2D       // zero or one
	Upsamplers   []*nn.Upsample2D         // zero or one

	// kept by a training forward of an up block, per resnet: the index of
	// the skip it consumed and the channels of the running state and of the
	// skip in its concatenated input
	skipIdx  []int
	catSplit [][2]int
	upIn     [2]int // the upsampler's input size H, W
}

// transformerConfig returns the Transformer2DModel config of a block with
// channels c.
func (u *Model) transformerConfig(c int, a attnConfig) (nn.Transformer2DConfig, error) {
	if a.heads <= 0 || c%a.heads != 0 {
		return nn.Transformer2DConfig{}, fmt.Errorf("%d channels do not split into %d attention heads", c, a.heads)
	}
	return nn.Transformer2DConfig{
		Channels: c, Heads: a.heads, HeadDim: c / a.heads, Depth: a.depth, ContextDim: a.contextDim,
		Groups: u.cfg.NormNumGroups, LinearProjection: u.cfg.UseLinearProjection, Eps: 1e-5,
	}, nil
}

// resnetConfig returns the config of a resnet from in to out channels.
func (u *Model) resnetConfig(in, out int) nn.ResnetBlock2DConfig {
	return nn.ResnetBlock2DConfig{
		In: in, Out: out, TembChannels: u.cfg.TimeEmbedDim(), Groups: u.cfg.NormNumGroups, Eps: float32(u.cfg.NormEps),
	}
}

// loadDown loads down_blocks.i: layers_per_block resnets (in → out, then
// out → out), an attention after each when attn is non-nil, and a
// Downsample2D unless the block is the last.
func (u *Model) loadDown(bl *builder, s nn.Scope, in, out int, attn *attnConfig, downsample bool) (*Block, error) {
	blk := &Block{}
	for j := range u.cfg.LayersPerBlock {
		cin := out
		if j == 0 {
			cin = in
		}
		r, err := bl.resnet(s.Sub("resnets").Index(j), u.resnetConfig(cin, out))
		if err != nil {
			return nil, err
		}
		blk.Resnets = append(blk.Resnets, r)
		if attn != nil {
			tc, err := u.transformerConfig(out, *attn)
			if err != nil {
				return nil, fmt.Errorf("%sattentions.%d: %w", s.Prefix(), j, err)
			}
			t, err := bl.transformer(s.Sub("attentions").Index(j), tc)
			if err != nil {
				return nil, err
			}
			blk.Attentions = append(blk.Attentions, t)
		}
	}
	if downsample {
		d, err := nn.LoadDownsample2D(s.Sub("downsamplers").Index(0), out, out, u.cfg.DownsamplePadding)
		if err != nil {
			return nil, err
		}
		bl.owned = append(bl.owned, d)
		blk.Downsamplers = append(blk.Downsamplers, d)
	}
	return blk, nil
}

// loadMid loads the UNetMidBlock2DCrossAttn: resnets.0, then one attention
// and resnets.1 (num_layers 1, as diffusers builds it for SDXL).
func (u *Model) loadMid(bl *builder, s nn.Scope, c int, attn attnConfig) (*Block, error) {
	blk := &Block{}
	for j := range 2 {
		r, err := bl.resnet(s.Sub("resnets").Index(j), u.resnetConfig(c, c))
		if err != nil {
			return nil, err
		}
		blk.Resnets = append(blk.Resnets, r)
	}
	tc, err := u.transformerConfig(c, attn)
	if err != nil {
		return nil, fmt.Errorf("%sattentions.0: %w", s.Prefix(), err)
	}
	t, err := bl.transformer(s.Sub("attentions").Index(0), tc)
	if err != nil {
		return nil, err
	}
	blk.Attentions = append(blk.Attentions, t)
	return blk, nil
}

// loadUp loads up_blocks.i: layers_per_block+1 resnets whose inputs are the
// running state concatenated with a skip (prev+skip → out for the first,
// out+skip → out after; the last skip has `in` channels), an attention after
// each when attn is non-nil, and an Upsample2D unless the block is the last.
func (u *Model) loadUp(bl *builder, s nn.Scope, prev, in, out int, attn *attnConfig, upsample bool) (*Block, error) {
	blk := &Block{}
	n := u.cfg.LayersPerBlock + 1
	for j := range n {
		skip := out
		if j == n-1 {
			skip = in
		}
		cin := out
		if j == 0 {
			cin = prev
		}
		r, err := bl.resnet(s.Sub("resnets").Index(j), u.resnetConfig(cin+skip, out))
		if err != nil {
			return nil, err
		}
		blk.Resnets = append(blk.Resnets, r)
		if attn != nil {
			tc, err := u.transformerConfig(out, *attn)
			if err != nil {
				return nil, fmt.Errorf("%sattentions.%d: %w", s.Prefix(), j, err)
			}
			t, err := bl.transformer(s.Sub("attentions").Index(j), tc)
			if err != nil {
				return nil, err
			}
			blk.Attentions = append(blk.Attentions, t)
		}
	}
	if upsample {
		up, err := nn.LoadUpsample2D(s.Sub("upsamplers").Index(0), out, out)
		if err != nil {
			return nil, err
		}
		bl.owned = append(bl.owned, up)
		blk.Upsamplers = append(blk.Upsamplers, up)
	}
	return blk, nil
}

// skipStack holds the down path's outputs (diffusers' down_block_res_samples)
// until the up blocks consume them, last in first out.
type skipStack []*tensor.Tensor

func (s *skipStack) push(t *tensor.Tensor) { *s = append(*s, t) }

func (s *skipStack) pop() (*tensor.Tensor, error) {
	if len(*s) == 0 {
		return nil, fmt.Errorf("unet: the up blocks ran out of skip connections")
	}
	t := (*s)[len(*s)-1]
	*s = (*s)[:len(*s)-1]
	return t, nil
}

func (s *skipStack) free() {
	tensor.FreeAll(*s...)
	*s = nil
}

// resnetAttn runs resnets.j, then attentions.j when the block has one, on h
// (N, Cin, H, W), which it does not free; out is (N, Cout, H, W).
func (blk *Block) resnetAttn(j int, h, temb, context *tensor.Tensor, prefix string, hook Hook, train bool) (*tensor.Tensor, error) {
	name := prefix + ".resnets." + strconv.Itoa(j)
	hook.call(name+".input", h)
	r, err := resnetForward(blk.Resnets[j], h, temb, train) // (N, Cout, H, W)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	hook.call(name, r)
	if j >= len(blk.Attentions) {
		return r, nil
	}
	name = prefix + ".attentions." + strconv.Itoa(j)
	hook.call(name+".input", r)
	a, err := attnForward(blk.Attentions[j], r, context, train) // (N, Cout, H, W)
	r.Free()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	hook.call(name, a)
	return a, nil
}

// down runs a down block on h (N, Cin, H, W), pushing every resnet (or
// attention) output and the downsampler's output onto skips, which own
// them; it returns the last one pushed, (N, Cout, H/2, W/2) or (N, Cout, H, W)
// for the last block, still owned by skips.
func (blk *Block) down(h, temb, context *tensor.Tensor, skips *skipStack, prefix string, hook Hook, train bool) (*tensor.Tensor, error) {
	for j := range blk.Resnets {
		next, err := blk.resnetAttn(j, h, temb, context, prefix, hook, train) // (N, Cout, H, W)
		if err != nil {
			return nil, err
		}
		skips.push(next)
		h = next
	}
	for _, d := range blk.Downsamplers {
		name := prefix + ".downsamplers.0"
		var next *tensor.Tensor
		var err error
		if train {
			next, err = d.ForwardTrain(h) // (N, Cout, H/2, W/2)
		} else {
			next, err = d.Forward(h)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		hook.call(name, next)
		skips.push(next)
		h = next
	}
	hook.call(prefix, h)
	return h, nil
}

// mid runs the mid block on h (N, C, H, W), which it does not free:
// resnets.0, then attentions.0 and resnets.1; out is (N, C, H, W).
func (blk *Block) mid(h, temb, context *tensor.Tensor, prefix string, hook Hook, train bool) (*tensor.Tensor, error) {
	hook.call(prefix+".resnets.0.input", h)
	r, err := resnetForward(blk.Resnets[0], h, temb, train) // (N, C, H, W)
	if err != nil {
		return nil, fmt.Errorf("%s.resnets.0: %w", prefix, err)
	}
	hook.call(prefix+".resnets.0", r)
	hook.call(prefix+".attentions.0.input", r)
	a, err := attnForward(blk.Attentions[0], r, context, train) // (N, C, H, W)
	r.Free()
	if err != nil {
		return nil, fmt.Errorf("%s.attentions.0: %w", prefix, err)
	}
	hook.call(prefix+".attentions.0", a)
	hook.call(prefix+".resnets.1.input", a)
	out, err := resnetForward(blk.Resnets[1], a, temb, train) // (N, C, H, W)
	a.Free()
	if err != nil {
		return nil, fmt.Errorf("%s.resnets.1: %w", prefix, err)
	}
	hook.call(prefix+".resnets.1", out)
	hook.call(prefix, out)
	return out, nil
}

// up runs an up block on h (N, Cprev, H, W), popping one skip per resnet;
// out is (N, Cout, 2H, 2W), or (N, Cout, H, W) for the last block. It frees
// h and the skips it pops.
func (blk *Block) up(h, temb, context *tensor.Tensor, skips *skipStack, prefix string, hook Hook, train bool) (*tensor.Tensor, error) {
	b := h.Backend()
	if train {
		blk.skipIdx, blk.catSplit = nil, nil
	}
	for j := range blk.Resnets {
		skip, err := skips.pop() // (N, Cskip, H, W)
		if err != nil {
			h.Free()
			return nil, err
		}
		if train {
			blk.skipIdx = append(blk.skipIdx, len(*skips))
			blk.catSplit = append(blk.catSplit, [2]int{h.Dim(1), skip.Dim(1)})
		}
		cat, err := b.Concat(1, h, skip) // (N, C + Cskip, H, W)
		tensor.FreeAll(h, skip)
		if err != nil {
			return nil, fmt.Errorf("%s: concatenating skip %d: %w", prefix, j, err)
		}
		h, err = blk.resnetAttn(j, cat, temb, context, prefix, hook, train) // (N, Cout, H, W)
		cat.Free()
		if err != nil {
			return nil, err
		}
	}
	for _, up := range blk.Upsamplers {
		name := prefix + ".upsamplers.0"
		// diffusers' forward_upsample_size: upsample to the next skip's size
		// (2H, or 2H-1 after a downsampler met an odd size)
		oh, ow := 2*h.Dim(2), 2*h.Dim(3)
		if len(*skips) > 0 {
			next := (*skips)[len(*skips)-1]
			oh, ow = next.Dim(2), next.Dim(3)
		}
		next, err := blk.upsample(up, h, oh, ow, train) // (N, Cout, oh, ow)
		h.Free()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		hook.call(name, next)
		h = next
	}
	hook.call(prefix, h)
	return h, nil
}

// resnetForward runs r, keeping what Backward needs when train.
func resnetForward(r *nn.ResnetBlock2D, x, temb *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return r.ForwardTrain(x, temb)
	}
	return r.Forward(x, temb)
}

// attnForward runs a, keeping what Backward needs when train.
func attnForward(a *nn.Transformer2DModel, x, context *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return a.ForwardTrain(x, context)
	}
	return a.Forward(x, context)
}

// upsample is diffusers' Upsample2D with output_size: nearest-neighbour
// upsampling of x (N, C, H, W) to (oh, ow), then the 3x3 conv. oh is 2H or
// 2H-1 (likewise ow): torch's nearest index floor(i·H/oh) equals floor(i/2)
// for both, so it is 2x upsampling cropped at the bottom and right.
func (blk *Block) upsample(up *nn.Upsample2D, x *tensor.Tensor, oh, ow int, train bool) (*tensor.Tensor, error) {
	h, w := x.Dim(2), x.Dim(3)
	if (oh != 2*h && oh != 2*h-1) || (ow != 2*w && ow != 2*w-1) {
		return nil, fmt.Errorf("cannot upsample %dx%d to %dx%d", h, w, oh, ow)
	}
	if oh == 2*h && ow == 2*w {
		if train {
			blk.upIn = [2]int{h, w}
			return up.ForwardTrain(x)
		}
		return up.Forward(x)
	}
	b := x.Backend()
	u, err := b.Upsample2x(x) // (N, C, 2H, 2W)
	if err != nil {
		return nil, err
	}
	for _, crop := range [][2]int{{2, oh}, {3, ow}} {
		axis, size := crop[0], crop[1]
		if size == u.Dim(axis) {
			continue
		}
		c, err := b.Slice(u, axis, 0, size) // (N, C, oh or 2H, ow or 2W)
		u.Free()
		if err != nil {
			return nil, err
		}
		u = c
	}
	defer u.Free()
	if train {
		blk.upIn = [2]int{h, w}
	}
	return convForward(up.Conv, u, train) // (N, Cout, oh, ow)
}

// upsampleBackward is upsample's backward: dout (N, Cout, oh, ow) →
// dx (N, C, H, W).
func (blk *Block) upsampleBackward(up *nn.Upsample2D, dout *tensor.Tensor) (*tensor.Tensor, error) {
	h, w := blk.upIn[0], blk.upIn[1]
	if h == 0 {
		return nil, fmt.Errorf("no training forward kept")
	}
	if dout.Dim(2) == 2*h && dout.Dim(3) == 2*w {
		return up.Backward(dout)
	}
	b := dout.Backend()
	d, err := up.Conv.Backward(dout) // (N, C, oh, ow)
	if err != nil {
		return nil, err
	}
	for _, axis := range []int{3, 2} {
		if d.Dim(axis) == 2*blk.upIn[axis-2] {
			continue
		}
		shape := d.Shape().Clone()
		shape[axis] = 2 * blk.upIn[axis-2]
		e, err := b.SliceBackward(d, shape, axis, 0) // zeros where the crop cut
		d.Free()
		if err != nil {
			return nil, err
		}
		d = e
	}
	defer d.Free()
	return b.Upsample2xBackward(d) // (N, C, H, W)
}

// setCheckpoint sets Checkpoint on the block's resnets and transformers.
func (blk *Block) setCheckpoint(on bool) {
	for _, r := range blk.Resnets {
		r.Checkpoint = on
	}
	for _, a := range blk.Attentions {
		a.Checkpoint = on
	}
}

// setContextGrad makes every cross-attention of the block compute the
// context gradient in Backward, or skip it.
func (blk *Block) setContextGrad(on bool) {
	for _, a := range blk.Attentions {
		for _, tb := range a.Blocks {
			tb.Attn2.NoContextGrad = !on
		}
	}
}

// FreeCache releases what a training forward kept in the block's layers.
func (blk *Block) FreeCache() {
	for _, r := range blk.Resnets {
		r.FreeCache()
	}
	for _, a := range blk.Attentions {
		a.FreeCache()
	}
	for _, d := range blk.Downsamplers {
		d.FreeCache()
	}
	for _, u := range blk.Upsamplers {
		u.FreeCache()
	}
	blk.skipIdx, blk.catSplit, blk.upIn = nil, nil, [2]int{}
}
