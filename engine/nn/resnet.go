package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// ResnetBlock2DConfig sizes a ResnetBlock2D.
type ResnetBlock2DConfig struct {
	In, Out      int     // channels
	TembChannels int     // width of the time embedding; 0: no time_emb_proj (the VAE's blocks)
	Groups       int     // group norm groups (norm_num_groups, 32 in SDXL)
	Eps          float32 // group norm eps (UNet: norm_eps 1e-5; VAE: 1e-6)
}

// ResnetBlock2D is diffusers' ResnetBlock2D with SiLU, the "default" time
// scale-shift and output_scale_factor 1 (SDXL's UNet and VAE):
//
//	h = conv1(silu(norm1(x))) + time_emb_proj(silu(temb))[:, :, None, None]
//	h = conv2(silu(norm2(h)))            // dropout is identity
//	out = conv_shortcut(x) (or x) + h
type ResnetBlock2D struct {
	Norm1        *GroupNorm
	Conv1        *Conv2d // 3x3, padding 1
	TimeEmbProj  *Linear // temb → Out, or nil
	Norm2        *GroupNorm
	Conv2        *Conv2d // 3x3, padding 1
	ConvShortcut *Conv2d // 1x1 when In != Out, else nil

	// Checkpoint makes ForwardTrain keep only views of its inputs (gradient
	// checkpointing, as diffusers checkpoints each resnet): Backward runs
	// the forward again from them just before its own work and frees what
	// that kept when done, so the block's activations live only during its
	// backward.
	Checkpoint bool

	// cached by ForwardTrain
	a1, a2, temb *tensor.Tensor // norm1 and norm2 outputs, the time embedding
	ckX, ckTemb  *tensor.Tensor // with Checkpoint: the inputs x and temb
}

// LoadResnetBlock2D loads the block from scope s (norm1, conv1,
// time_emb_proj, norm2, conv2, conv_shortcut).
func LoadResnetBlock2D(s Scope, c ResnetBlock2DConfig) (*ResnetBlock2D, error) {
	r := &ResnetBlock2D{}
	var err error
	if r.Norm1, err = LoadGroupNorm(s.Sub("norm1"), c.Groups, c.In, c.Eps); err == nil {
		if r.Conv1, err = LoadConv2d(s.Sub("conv1"), c.In, c.Out, 3, tensor.ConvParams(1, 1), true); err == nil {
			if c.TembChannels > 0 {
				r.TimeEmbProj, err = LoadLinear(s.Sub("time_emb_proj"), c.TembChannels, c.Out, true)
			}
			if err == nil {
				if r.Norm2, err = LoadGroupNorm(s.Sub("norm2"), c.Groups, c.Out, c.Eps); err == nil {
					if r.Conv2, err = LoadConv2d(s.Sub("conv2"), c.Out, c.Out, 3, tensor.ConvParams(1, 1), true); err == nil && c.In != c.Out {
						r.ConvShortcut, err = LoadConv2d(s.Sub("conv_shortcut"), c.In, c.Out, 1, tensor.ConvParams(1, 0), true)
					}
				}
			}
		}
	}
	if err != nil {
		r.Free()
		return nil, err
	}
	return r, nil
}

// Forward runs the block on x (N, In, H, W) with temb (N, TembChannels)
// (nil when the block has no time_emb_proj); out is (N, Out, H, W).
func (r *ResnetBlock2D) Forward(x, temb *tensor.Tensor) (*tensor.Tensor, error) {
	return r.forward(x, temb, false)
}

// ForwardTrain is Forward that keeps what Backward needs (with
// Checkpoint, views of x and temb only).
func (r *ResnetBlock2D) ForwardTrain(x, temb *tensor.Tensor) (*tensor.Tensor, error) {
	r.FreeCache()
	if !r.Checkpoint {
		return r.forward(x, temb, true)
	}
	y, err := r.forward(x, temb, false)
	if err != nil {
		return nil, err
	}
	if r.ckX, err = keep(x); err == nil {
		r.ckTemb, err = keep(temb)
	}
	if err != nil {
		y.Free()
		r.FreeCache()
		return nil, err
	}
	return y, nil
}

func (r *ResnetBlock2D) forward(x, temb *tensor.Tensor, train bool) (y *tensor.Tensor, err error) {
	if (temb != nil) != (r.TimeEmbProj != nil) {
		return nil, fmt.Errorf("nn: resnet block: time embedding given %v, block has time_emb_proj %v", temb != nil, r.TimeEmbProj != nil)
	}
	b := x.Backend()
	var a1, s1, h, a2, s2 *tensor.Tensor
	defer func() {
		tensor.FreeAll(s1, h, s2)
		if train && err == nil {
			r.a1, r.a2 = a1, a2
		} else {
			tensor.FreeAll(a1, a2)
		}
	}()
	gn := func(n *GroupNorm, x *tensor.Tensor) (*tensor.Tensor, error) {
		if train {
			return n.ForwardTrain(x)
		}
		return n.Forward(x)
	}
	conv := func(c *Conv2d, x *tensor.Tensor) (*tensor.Tensor, error) {
		if train {
			return c.ForwardTrain(x)
		}
		return c.Forward(x)
	}
	if a1, err = gn(r.Norm1, x); err != nil { // (N, In, H, W)
		return nil, err
	}
	if s1, err = b.Activation(a1, tensor.SiLU); err != nil {
		return nil, err
	}
	if h, err = conv(r.Conv1, s1); err != nil { // (N, Out, H, W)
		return nil, err
	}
	if temb != nil {
		t, err := b.Activation(temb, tensor.SiLU) // (N, T)
		if err != nil {
			return nil, err
		}
		var p *tensor.Tensor
		if train {
			p, err = r.TimeEmbProj.ForwardTrain(t) // (N, Out)
		} else {
			p, err = r.TimeEmbProj.Forward(t)
		}
		t.Free()
		if err != nil {
			return nil, err
		}
		p4, err := p.Reshape(p.Dim(0), p.Dim(1), 1, 1) // (N, Out, 1, 1)
		p.Free()
		if err != nil {
			return nil, err
		}
		sum, err := b.Binary(tensor.Add, h, p4) // (N, Out, H, W)
		p4.Free()
		if err != nil {
			return nil, err
		}
		h.Free()
		h = sum
		if train {
			if r.temb, err = keep(temb); err != nil {
				return nil, err
			}
		}
	}
	if a2, err = gn(r.Norm2, h); err != nil { // (N, Out, H, W)
		return nil, err
	}
	if s2, err = b.Activation(a2, tensor.SiLU); err != nil {
		return nil, err
	}
	h2, err := conv(r.Conv2, s2) // (N, Out, H, W)
	if err != nil {
		return nil, err
	}
	sc := x
	if r.ConvShortcut != nil {
		if sc, err = conv(r.ConvShortcut, x); err != nil { // (N, Out, H, W)
			h2.Free()
			return nil, err
		}
		defer sc.Free()
	}
	y, err = b.Binary(tensor.Add, sc, h2)
	h2.Free()
	return y, err
}

// Backward returns dx (N, In, H, W) and dtemb (N, TembChannels) (nil
// without a time embedding) for dout (N, Out, H, W).
//
// After a checkpointed ForwardTrain it runs the forward again first and
// releases the whole cache when done.
func (r *ResnetBlock2D) Backward(dout *tensor.Tensor) (dx, dtemb *tensor.Tensor, err error) {
	if r.ckX != nil {
		defer r.FreeCache()
		y, err := r.forward(r.ckX, r.ckTemb, true) // (N, Out, H, W), the same values again
		if err != nil {
			return nil, nil, fmt.Errorf("nn: resnet block: running the checkpointed forward again: %w", err)
		}
		y.Free()
	}
	if r.a1 == nil {
		return nil, nil, fmt.Errorf("nn: resnet block backward without ForwardTrain")
	}
	b := dout.Backend()
	var ds2, da2, dh, ds1, da1, dsc, dp, dt *tensor.Tensor
	defer func() { tensor.FreeAll(ds2, da2, dh, ds1, da1, dsc, dp, dt) }()
	if ds2, err = r.Conv2.Backward(dout); err != nil {
		return nil, nil, err
	}
	if da2, err = b.ActivationBackward(ds2, r.a2, tensor.SiLU); err != nil {
		return nil, nil, err
	}
	if dh, err = r.Norm2.Backward(da2); err != nil { // d(conv1 out + time proj)
		return nil, nil, err
	}
	if r.TimeEmbProj != nil {
		n, c := dh.Dim(0), dh.Dim(1)
		red, err := b.ReduceTo(dh, tensor.Shape{n, c, 1, 1}) // sum over H, W
		if err != nil {
			return nil, nil, err
		}
		if dp, err = red.Reshape(n, c); err != nil {
			red.Free()
			return nil, nil, err
		}
		red.Free()
		if dt, err = r.TimeEmbProj.Backward(dp); err != nil { // d silu(temb)
			return nil, nil, err
		}
		if dtemb, err = b.ActivationBackward(dt, r.temb, tensor.SiLU); err != nil {
			return nil, nil, err
		}
	}
	fail := func(err error) (*tensor.Tensor, *tensor.Tensor, error) {
		if dtemb != nil {
			dtemb.Free()
		}
		return nil, nil, err
	}
	if ds1, err = r.Conv1.Backward(dh); err != nil {
		return fail(err)
	}
	if da1, err = b.ActivationBackward(ds1, r.a1, tensor.SiLU); err != nil {
		return fail(err)
	}
	dx1, err := r.Norm1.Backward(da1)
	if err != nil {
		return fail(err)
	}
	if r.ConvShortcut != nil {
		if dsc, err = r.ConvShortcut.Backward(dout); err != nil {
			dx1.Free()
			return fail(err)
		}
		dx, err = b.Binary(tensor.Add, dx1, dsc)
	} else {
		dx, err = b.Binary(tensor.Add, dx1, dout)
	}
	dx1.Free()
	if err != nil {
		return fail(err)
	}
	return dx, dtemb, nil
}

// SetTrainable sets Trainable on every parameterised layer of the block.
func (r *ResnetBlock2D) SetTrainable(on bool) {
	r.Norm1.Trainable, r.Conv1.Trainable, r.Norm2.Trainable, r.Conv2.Trainable = on, on, on, on
	if r.TimeEmbProj != nil {
		r.TimeEmbProj.Trainable = on
	}
	if r.ConvShortcut != nil {
		r.ConvShortcut.Trainable = on
	}
}

// FreeCache releases what ForwardTrain kept, here and in the sublayers.
func (r *ResnetBlock2D) FreeCache() {
	release(&r.a1, &r.a2, &r.temb, &r.ckX, &r.ckTemb)
	r.each(func(m layer) { m.FreeCache() })
}

// ZeroGrad frees the sublayers' accumulated gradients.
func (r *ResnetBlock2D) ZeroGrad() { r.each(func(m layer) { m.ZeroGrad() }) }

// Free releases the parameters, gradients and caches.
func (r *ResnetBlock2D) Free() {
	release(&r.a1, &r.a2, &r.temb, &r.ckX, &r.ckTemb)
	r.each(func(m layer) { m.Free() })
}

// layer is what every parameterised layer offers for bulk cleanup.
type layer interface {
	FreeCache()
	ZeroGrad()
	Free()
}

func (r *ResnetBlock2D) each(f func(layer)) {
	for _, m := range []layer{r.Norm1, r.Conv1, r.TimeEmbProj, r.Norm2, r.Conv2, r.ConvShortcut} {
		if !isNil(m) {
			f(m)
		}
	}
}

// isNil reports whether a layer interface holds a nil pointer.
func isNil(m layer) bool {
	switch v := m.(type) {
	case nil:
		return true
	case *Linear:
		return v == nil
	case *Conv2d:
		return v == nil
	case *GroupNorm:
		return v == nil
	case *LayerNorm:
		return v == nil
	case *Attention:
		return v == nil
	case *FeedForward:
		return v == nil
	case *MLP:
		return v == nil
	}
	return false
}
