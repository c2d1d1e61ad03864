package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// Conv2d is torch.nn.Conv2d (no groups, no dilation): x (N, Cin, H, W) →
// (N, Cout, Ho, Wo).
type Conv2d struct {
	Weight *tensor.Tensor // (Cout, Cin, kh, kw), F32 or packed F16/BF16
	Bias   *tensor.Tensor // (Cout) or nil
	In     int
	Out    int
	Params tensor.Conv2DParams

	// Trainable makes Backward add dW, db into WeightGrad, BiasGrad.
	Trainable  bool
	WeightGrad *tensor.Tensor
	BiasGrad   *tensor.Tensor

	x *tensor.Tensor // cached input
}

// LoadConv2d loads weight (out, in, k, k) and, with bias, bias (out) from
// scope s; p gives stride and padding.
func LoadConv2d(s Scope, in, out, k int, p tensor.Conv2DParams, bias bool) (*Conv2d, error) {
	w, err := s.Param("weight", tensor.Shape{out, in, k, k}, true)
	if err != nil {
		return nil, err
	}
	c := &Conv2d{Weight: w, In: in, Out: out, Params: p}
	if bias {
		if c.Bias, err = s.Param("bias", tensor.Shape{out}, false); err != nil {
			w.Free()
			return nil, err
		}
	}
	return c, nil
}

// Forward convolves x (N, Cin, H, W).
func (c *Conv2d) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if x.Rank() != 4 || x.Dim(1) != c.In {
		return nil, fmt.Errorf("nn: conv2d (%d → %d): input is %s", c.In, c.Out, x.Shape())
	}
	return x.Backend().Conv2D(x, c.Weight, c.Bias, c.Params)
}

// ForwardTrain is Forward that keeps a view of x for Backward.
func (c *Conv2d) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := c.Forward(x)
	if err != nil {
		return nil, err
	}
	release(&c.x)
	if c.x, err = keep(x); err != nil {
		y.Free()
		return nil, err
	}
	return y, nil
}

// Backward returns dx (N, Cin, H, W) for dout; when Trainable it adds dW
// and db into WeightGrad and BiasGrad.
func (c *Conv2d) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if c.x == nil {
		return nil, fmt.Errorf("nn: conv2d backward without ForwardTrain")
	}
	need := tensor.GradX
	if c.Trainable {
		need |= tensor.GradW
		if c.Bias != nil {
			need |= tensor.GradB
		}
	}
	b := dout.Backend()
	dx, dw, db, err := b.Conv2DBackward(dout, c.x, c.Weight, c.Params, need)
	if err != nil {
		return nil, err
	}
	return accumulateParams(dx, &c.WeightGrad, dw, &c.BiasGrad, db)
}

// BackwardParams is Backward for a caller that needs no input gradient
// (a network's first layer): it adds dW and db when Trainable and
// otherwise computes nothing.
func (c *Conv2d) BackwardParams(dout *tensor.Tensor) error {
	if c.x == nil {
		return fmt.Errorf("nn: conv2d backward without ForwardTrain")
	}
	if !c.Trainable {
		return nil
	}
	need := tensor.GradW
	if c.Bias != nil {
		need |= tensor.GradB
	}
	b := dout.Backend()
	_, dw, db, err := b.Conv2DBackward(dout, c.x, c.Weight, c.Params, need)
	if err != nil {
		return err
	}
	_, err = accumulateParams(nil, &c.WeightGrad, dw, &c.BiasGrad, db)
	return err
}

// FreeCache releases what ForwardTrain kept.
func (c *Conv2d) FreeCache() { release(&c.x) }

// ZeroGrad frees the accumulated parameter gradients.
func (c *Conv2d) ZeroGrad() { release(&c.WeightGrad, &c.BiasGrad) }

// Free releases the parameters, the gradients and the cache.
func (c *Conv2d) Free() {
	c.FreeCache()
	c.ZeroGrad()
	release(&c.Weight, &c.Bias)
}
