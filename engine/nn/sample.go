package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// Downsample2D is diffusers' Downsample2D with use_conv: a 3x3 convolution
// "conv" of stride 2. Padding 1 pads every side (the UNet); padding 0 pads
// only bottom and right by one, as diffusers does before its unpadded
// convolution (the VAE encoder).
type Downsample2D struct {
	Conv *Conv2d
}

// LoadDownsample2D loads conv (out, in, 3, 3) from scope s.
func LoadDownsample2D(s Scope, in, out, padding int) (*Downsample2D, error) {
	p := tensor.ConvParams(2, 1)
	switch padding {
	case 1:
	case 0:
		p = tensor.Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1}
	default:
		return nil, fmt.Errorf("nn: downsample %s: padding %d, want 0 or 1", s.Prefix(), padding)
	}
	c, err := LoadConv2d(s.Sub("conv"), in, out, 3, p, true)
	if err != nil {
		return nil, err
	}
	return &Downsample2D{Conv: c}, nil
}

// Forward halves x (N, C, H, W) → (N, Out, ceil(H/2), ceil(W/2)) for padding 1.
func (d *Downsample2D) Forward(x *tensor.Tensor) (*tensor.Tensor, error) { return d.Conv.Forward(x) }

// ForwardTrain is Forward that keeps what Backward needs.
func (d *Downsample2D) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	return d.Conv.ForwardTrain(x)
}

// Backward returns dx for dout.
func (d *Downsample2D) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	return d.Conv.Backward(dout)
}

// FreeCache releases what ForwardTrain kept.
func (d *Downsample2D) FreeCache() { d.Conv.FreeCache() }

// ZeroGrad frees the accumulated gradients.
func (d *Downsample2D) ZeroGrad() { d.Conv.ZeroGrad() }

// Free releases the parameters, gradients and cache.
func (d *Downsample2D) Free() { d.Conv.Free() }

// Upsample2D is diffusers' Upsample2D with use_conv: nearest-neighbour 2x
// upsampling, then a 3x3 convolution "conv" with padding 1. (diffusers'
// output_size argument for odd sizes is not supported: sizes double.)
type Upsample2D struct {
	Conv *Conv2d
}

// LoadUpsample2D loads conv (out, in, 3, 3) from scope s.
func LoadUpsample2D(s Scope, in, out int) (*Upsample2D, error) {
	c, err := LoadConv2d(s.Sub("conv"), in, out, 3, tensor.ConvParams(1, 1), true)
	if err != nil {
		return nil, err
	}
	return &Upsample2D{Conv: c}, nil
}

// Forward doubles x (N, C, H, W) → (N, Out, 2H, 2W).
func (u *Upsample2D) Forward(x *tensor.Tensor) (*tensor.Tensor, error) { return u.forward(x, false) }

// ForwardTrain is Forward that keeps what Backward needs.
func (u *Upsample2D) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	return u.forward(x, true)
}

func (u *Upsample2D) forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	up, err := x.Backend().Upsample2x(x) // (N, C, 2H, 2W)
	if err != nil {
		return nil, err
	}
	defer up.Free()
	if train {
		return u.Conv.ForwardTrain(up)
	}
	return u.Conv.Forward(up)
}

// Backward returns dx (N, C, H, W) for dout (N, Out, 2H, 2W).
func (u *Upsample2D) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	d, err := u.Conv.Backward(dout)
	if err != nil {
		return nil, err
	}
	defer d.Free()
	return dout.Backend().Upsample2xBackward(d)
}

// FreeCache releases what ForwardTrain kept.
func (u *Upsample2D) FreeCache() { u.Conv.FreeCache() }

// ZeroGrad frees the accumulated gradients.
func (u *Upsample2D) ZeroGrad() { u.Conv.ZeroGrad() }

// Free releases the parameters, gradients and cache.
func (u *Upsample2D) Free() { u.Conv.Free() }

// TimestepEmbedding is diffusers' TimestepEmbedding with SiLU:
// linear_2(silu(linear_1(x))). SDXL's UNet has two: time_embedding and
// add_embedding.
type TimestepEmbedding struct {
	Linear1, Linear2 *Linear

	h *tensor.Tensor // cached linear_1 output
}

// LoadTimestepEmbedding loads linear_1 (in → dim) and linear_2 (dim → dim).
func LoadTimestepEmbedding(s Scope, in, dim int) (*TimestepEmbedding, error) {
	l1, err := LoadLinear(s.Sub("linear_1"), in, dim, true)
	if err != nil {
		return nil, err
	}
	l2, err := LoadLinear(s.Sub("linear_2"), dim, dim, true)
	if err != nil {
		l1.Free()
		return nil, err
	}
	return &TimestepEmbedding{Linear1: l1, Linear2: l2}, nil
}

// Forward maps x (N, in) to (N, dim).
func (e *TimestepEmbedding) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	return e.forward(x, false)
}

// ForwardTrain is Forward that keeps what Backward needs.
func (e *TimestepEmbedding) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	release(&e.h)
	return e.forward(x, true)
}

func (e *TimestepEmbedding) forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	var h *tensor.Tensor
	var err error
	if train {
		h, err = e.Linear1.ForwardTrain(x)
	} else {
		h, err = e.Linear1.Forward(x)
	}
	if err != nil {
		return nil, err
	}
	a, err := x.Backend().Activation(h, tensor.SiLU)
	if train && err == nil {
		e.h = h
	} else {
		h.Free()
	}
	if err != nil {
		return nil, err
	}
	defer a.Free()
	if train {
		return e.Linear2.ForwardTrain(a)
	}
	return e.Linear2.Forward(a)
}

// Backward returns dx (N, in) for dout (N, dim).
func (e *TimestepEmbedding) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if e.h == nil {
		return nil, fmt.Errorf("nn: timestep embedding backward without ForwardTrain")
	}
	da, err := e.Linear2.Backward(dout)
	if err != nil {
		return nil, err
	}
	dh, err := dout.Backend().ActivationBackward(da, e.h, tensor.SiLU)
	da.Free()
	if err != nil {
		return nil, err
	}
	defer dh.Free()
	return e.Linear1.Backward(dh)
}

// BackwardParams is Backward for a caller that needs no input gradient
// (the UNet's embeddings, whose inputs are sinusoidal projections and
// conditioning): it adds the linears' parameter gradients (Trainable's and
// Adapters') and computes nothing when neither has any.
func (e *TimestepEmbedding) BackwardParams(dout *tensor.Tensor) error {
	if e.h == nil {
		return fmt.Errorf("nn: timestep embedding backward without ForwardTrain")
	}
	if !e.Linear1.needsParamGrad() {
		return e.Linear2.BackwardParams(dout)
	}
	da, err := e.Linear2.Backward(dout) // (N, dim)
	if err != nil {
		return err
	}
	dh, err := dout.Backend().ActivationBackward(da, e.h, tensor.SiLU) // (N, dim)
	da.Free()
	if err != nil {
		return err
	}
	defer dh.Free()
	return e.Linear1.BackwardParams(dh)
}

// SetTrainable sets Trainable on both linears.
func (e *TimestepEmbedding) SetTrainable(on bool) { e.Linear1.Trainable, e.Linear2.Trainable = on, on }

// FreeCache releases what ForwardTrain kept.
func (e *TimestepEmbedding) FreeCache() {
	release(&e.h)
	e.Linear1.FreeCache()
	e.Linear2.FreeCache()
}

// ZeroGrad frees the accumulated gradients.
func (e *TimestepEmbedding) ZeroGrad() { e.Linear1.ZeroGrad(); e.Linear2.ZeroGrad() }

// Free releases the parameters, gradients and cache.
func (e *TimestepEmbedding) Free() {
	release(&e.h)
	e.Linear1.Free()
	e.Linear2.Free()
}
