package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// Linear is torch.nn.Linear: y = x·Wᵀ + b.
type Linear struct {
	Weight *tensor.Tensor // (out, in), F32 or packed F16/BF16
	Bias   *tensor.Tensor // (out) or nil
	In     int
	Out    int

	// Trainable makes Backward add the parameter gradients into WeightGrad
	// and BiasGrad (F32; the caller frees or zeroes them between steps).
	Trainable  bool
	WeightGrad *tensor.Tensor
	BiasGrad   *tensor.Tensor

	x *tensor.Tensor // cached input (..., in) for Backward
}

// LoadLinear loads weight (out, in) and, with bias, bias (out) from scope s.
func LoadLinear(s Scope, in, out int, bias bool) (*Linear, error) {
	w, err := s.Param("weight", tensor.Shape{out, in}, true)
	if err != nil {
		return nil, err
	}
	l := &Linear{Weight: w, In: in, Out: out}
	if bias {
		if l.Bias, err = s.Param("bias", tensor.Shape{out}, false); err != nil {
			w.Free()
			return nil, err
		}
	}
	return l, nil
}

// Forward returns x·Wᵀ + b: x is (..., in), out is (..., out).
func (l *Linear) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if x.Rank() == 0 || x.Dim(-1) != l.In {
		return nil, fmt.Errorf("nn: linear (%d → %d): input is %s", l.In, l.Out, x.Shape())
	}
	return tensor.Linear(x.Backend(), x, l.Weight, l.Bias)
}

// ForwardTrain is Forward that keeps a view of x for Backward.
func (l *Linear) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := l.Forward(x)
	if err != nil {
		return nil, err
	}
	release(&l.x)
	if l.x, err = keep(x); err != nil {
		y.Free()
		return nil, err
	}
	return y, nil
}

// Backward returns dx (..., in) for dout (..., out) using the input kept by
// ForwardTrain; when Trainable it adds dW and db into WeightGrad, BiasGrad.
func (l *Linear) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	return l.backward(dout, true)
}

// backward is Backward where the input gradient may be skipped (wantX false
// returns a nil dx).
func (l *Linear) backward(dout *tensor.Tensor, wantX bool) (*tensor.Tensor, error) {
	if l.x == nil {
		return nil, fmt.Errorf("nn: linear backward without ForwardTrain")
	}
	var need tensor.GradMask
	if wantX {
		need |= tensor.GradX
	}
	if l.Trainable {
		need |= tensor.GradW
		if l.Bias != nil {
			need |= tensor.GradB
		}
	}
	if need == 0 {
		return nil, nil
	}
	b := dout.Backend()
	dx, dw, db, err := tensor.LinearBackward(b, dout, l.x, l.Weight, need)
	if err != nil {
		return nil, err
	}
	if err := accumulate(b, &l.WeightGrad, dw); err != nil {
		tensor.FreeAll(dx, db)
		return nil, err
	}
	if err := accumulate(b, &l.BiasGrad, db); err != nil {
		tensor.FreeAll(dx)
		return nil, err
	}
	return dx, nil
}

// FreeCache releases what ForwardTrain kept.
func (l *Linear) FreeCache() { release(&l.x) }

// ZeroGrad frees the accumulated parameter gradients.
func (l *Linear) ZeroGrad() { release(&l.WeightGrad, &l.BiasGrad) }

// Free releases the parameters, the gradients and the cache.
func (l *Linear) Free() {
	l.FreeCache()
	l.ZeroGrad()
	release(&l.Weight, &l.Bias)
}
