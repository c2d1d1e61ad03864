package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// Adapter is a side path added to a Linear's output, y = x·Wᵀ + b + A(x):
// the hook a LoRA attaches through (engine/lora implements it).
type Adapter interface {
	// Forward returns A(x) (..., out) for x (..., in); with train it keeps
	// what Backward needs.
	Forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error)
	// Backward returns A's input gradient (..., in) for dout (..., out) and
	// accumulates A's own parameter gradients.
	Backward(dout *tensor.Tensor) (*tensor.Tensor, error)
	// FreeCache releases what a training Forward kept.
	FreeCache()
}

// Linear is torch.nn.Linear: y = x·Wᵀ + b (+ Adapter(x) when set).
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

	// Adapter, when non-nil, adds its output to the layer's (a LoRA).
	Adapter Adapter

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

// Forward returns x·Wᵀ + b (+ Adapter(x)): x is (..., in), out is (..., out).
func (l *Linear) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	return l.forward(x, false)
}

func (l *Linear) forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if x.Rank() == 0 || x.Dim(-1) != l.In {
		return nil, fmt.Errorf("nn: linear (%d → %d): input is %s", l.In, l.Out, x.Shape())
	}
	b := x.Backend()
	y, err := tensor.Linear(b, x, l.Weight, l.Bias) // (..., out)
	if err != nil || l.Adapter == nil {
		return y, err
	}
	a, err := l.Adapter.Forward(x, train) // (..., out)
	if err != nil {
		y.Free()
		return nil, err
	}
	s, err := b.Binary(tensor.Add, y, a)
	tensor.FreeAll(y, a)
	return s, err
}

// ForwardTrain is Forward that keeps a view of x for Backward.
func (l *Linear) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := l.forward(x, true)
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
// With an Adapter, dx includes the adapter's input gradient.
func (l *Linear) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	dx, err := l.backward(dout, true)
	if err != nil || l.Adapter == nil {
		return dx, err
	}
	da, err := l.Adapter.Backward(dout)
	if err != nil {
		dx.Free()
		return nil, err
	}
	s, err := dout.Backend().Binary(tensor.Add, dx, da)
	tensor.FreeAll(dx, da)
	return s, err
}

// BackwardParams is Backward for a caller that needs no input gradient:
// it only adds the parameter gradients (when Trainable) and runs the
// Adapter's backward for its own; the input-gradient product dout·W is not
// computed.
func (l *Linear) BackwardParams(dout *tensor.Tensor) error {
	if _, err := l.backward(dout, false); err != nil { // no GradX: dx is nil
		return err
	}
	if l.Adapter == nil {
		return nil
	}
	da, err := l.Adapter.Backward(dout) // (..., in), rank-sized work; dropped
	if err != nil {
		return err
	}
	return da.Free()
}

// needsParamGrad reports whether Backward has parameter gradients to add
// (its own or its Adapter's).
func (l *Linear) needsParamGrad() bool { return l.Trainable || l.Adapter != nil }

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
	return accumulateParams(dx, &l.WeightGrad, dw, &l.BiasGrad, db)
}

// FreeCache releases what ForwardTrain kept (the adapter's too).
func (l *Linear) FreeCache() {
	release(&l.x)
	if l.Adapter != nil {
		l.Adapter.FreeCache()
	}
}

// ZeroGrad frees the accumulated parameter gradients.
func (l *Linear) ZeroGrad() { release(&l.WeightGrad, &l.BiasGrad) }

// Free releases the parameters, the gradients and the cache (an Adapter's
// parameters belong to the adapter).
func (l *Linear) Free() {
	l.FreeCache()
	l.ZeroGrad()
	release(&l.Weight, &l.Bias)
}
