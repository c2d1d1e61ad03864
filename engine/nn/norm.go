package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// LayerNorm is torch.nn.LayerNorm over the last dimension with an affine.
type LayerNorm struct {
	Weight *tensor.Tensor // gamma (C), F32
	Bias   *tensor.Tensor // beta (C), F32
	C      int
	Eps    float32

	// Trainable makes Backward add dgamma, dbeta into WeightGrad, BiasGrad.
	Trainable  bool
	WeightGrad *tensor.Tensor
	BiasGrad   *tensor.Tensor

	x *tensor.Tensor // cached input (..., C)
}

// LoadLayerNorm loads weight and bias (c) from scope s.
func LoadLayerNorm(s Scope, c int, eps float32) (*LayerNorm, error) {
	w, err := s.Param("weight", tensor.Shape{c}, false)
	if err != nil {
		return nil, err
	}
	bb, err := s.Param("bias", tensor.Shape{c}, false)
	if err != nil {
		w.Free()
		return nil, err
	}
	return &LayerNorm{Weight: w, Bias: bb, C: c, Eps: eps}, nil
}

// Forward normalizes x (..., C) over its last dimension; out has x's shape.
func (n *LayerNorm) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if x.Rank() == 0 || x.Dim(-1) != n.C {
		return nil, fmt.Errorf("nn: layer norm (%d): input is %s", n.C, x.Shape())
	}
	return x.Backend().LayerNorm(x, n.Weight, n.Bias, n.Eps)
}

// ForwardTrain is Forward that keeps a view of x for Backward.
func (n *LayerNorm) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := n.Forward(x)
	if err != nil {
		return nil, err
	}
	release(&n.x)
	if n.x, err = keep(x); err != nil {
		y.Free()
		return nil, err
	}
	return y, nil
}

// Backward returns dx for dout (x's shape); when Trainable it adds dgamma
// and dbeta into WeightGrad and BiasGrad.
func (n *LayerNorm) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if n.x == nil {
		return nil, fmt.Errorf("nn: layer norm backward without ForwardTrain")
	}
	need := tensor.GradX
	if n.Trainable {
		need |= tensor.GradW | tensor.GradB
	}
	b := dout.Backend()
	dx, dg, db, err := b.LayerNormBackward(dout, n.x, n.Weight, n.Eps, need)
	if err != nil {
		return nil, err
	}
	return accumulateParams(dx, &n.WeightGrad, dg, &n.BiasGrad, db)
}

// FreeCache releases what ForwardTrain kept.
func (n *LayerNorm) FreeCache() { release(&n.x) }

// ZeroGrad frees the accumulated parameter gradients.
func (n *LayerNorm) ZeroGrad() { release(&n.WeightGrad, &n.BiasGrad) }

// Free releases the parameters, the gradients and the cache.
func (n *LayerNorm) Free() {
	n.FreeCache()
	n.ZeroGrad()
	release(&n.Weight, &n.Bias)
}

// GroupNorm is torch.nn.GroupNorm with an affine: x (N, C, ...).
type GroupNorm struct {
	Weight *tensor.Tensor // gamma (C), F32
	Bias   *tensor.Tensor // beta (C), F32
	Groups int
	C      int
	Eps    float32

	// Trainable makes Backward add dgamma, dbeta into WeightGrad, BiasGrad.
	Trainable  bool
	WeightGrad *tensor.Tensor
	BiasGrad   *tensor.Tensor

	x *tensor.Tensor // cached input (N, C, ...)
}

// LoadGroupNorm loads weight and bias (c) from scope s.
func LoadGroupNorm(s Scope, groups, c int, eps float32) (*GroupNorm, error) {
	if groups <= 0 || c%groups != 0 {
		return nil, fmt.Errorf("nn: group norm %s: %d channels are not divisible into %d groups", s.Prefix(), c, groups)
	}
	w, err := s.Param("weight", tensor.Shape{c}, false)
	if err != nil {
		return nil, err
	}
	bb, err := s.Param("bias", tensor.Shape{c}, false)
	if err != nil {
		w.Free()
		return nil, err
	}
	return &GroupNorm{Weight: w, Bias: bb, Groups: groups, C: c, Eps: eps}, nil
}

// Forward normalizes x (N, C, ...) per group; out has x's shape.
func (n *GroupNorm) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if x.Rank() < 2 || x.Dim(1) != n.C {
		return nil, fmt.Errorf("nn: group norm (%d channels): input is %s", n.C, x.Shape())
	}
	return x.Backend().GroupNorm(x, n.Weight, n.Bias, n.Groups, n.Eps)
}

// ForwardTrain is Forward that keeps a view of x for Backward.
func (n *GroupNorm) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := n.Forward(x)
	if err != nil {
		return nil, err
	}
	release(&n.x)
	if n.x, err = keep(x); err != nil {
		y.Free()
		return nil, err
	}
	return y, nil
}

// Backward returns dx for dout (x's shape); when Trainable it adds dgamma
// and dbeta into WeightGrad and BiasGrad.
func (n *GroupNorm) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if n.x == nil {
		return nil, fmt.Errorf("nn: group norm backward without ForwardTrain")
	}
	need := tensor.GradX
	if n.Trainable {
		need |= tensor.GradW | tensor.GradB
	}
	b := dout.Backend()
	dx, dg, db, err := b.GroupNormBackward(dout, n.x, n.Weight, n.Groups, n.Eps, need)
	if err != nil {
		return nil, err
	}
	return accumulateParams(dx, &n.WeightGrad, dg, &n.BiasGrad, db)
}

// FreeCache releases what ForwardTrain kept.
func (n *GroupNorm) FreeCache() { release(&n.x) }

// ZeroGrad frees the accumulated parameter gradients.
func (n *GroupNorm) ZeroGrad() { release(&n.WeightGrad, &n.BiasGrad) }

// Free releases the parameters, the gradients and the cache.
func (n *GroupNorm) Free() {
	n.FreeCache()
	n.ZeroGrad()
	release(&n.Weight, &n.Bias)
}
