package nn

import (
	"fmt"

	"lorastudio/engine/tensor"
)

// ParseAct maps a transformers/diffusers activation name ("quick_gelu",
// "gelu", "gelu_pytorch_tanh", "silu", "swish") to a tensor.Act.
func ParseAct(name string) (tensor.Act, error) {
	switch name {
	case "quick_gelu":
		return tensor.QuickGELU, nil
	case "gelu":
		return tensor.GELU, nil
	case "gelu_pytorch_tanh", "gelu_new", "gelu_tanh":
		return tensor.GELUTanh, nil
	case "silu", "swish":
		return tensor.SiLU, nil
	}
	return 0, fmt.Errorf("nn: unknown activation %q", name)
}

// MLP is transformers' CLIPMLP: fc2(act(fc1(x))).
type MLP struct {
	FC1, FC2 *Linear
	Act      tensor.Act

	h *tensor.Tensor // cached fc1 output (pre-activation)
}

// LoadMLP loads fc1 (dim → hidden) and fc2 (hidden → dim), both with bias.
func LoadMLP(s Scope, dim, hidden int, act tensor.Act) (*MLP, error) {
	fc1, err := LoadLinear(s.Sub("fc1"), dim, hidden, true)
	if err != nil {
		return nil, err
	}
	fc2, err := LoadLinear(s.Sub("fc2"), hidden, dim, true)
	if err != nil {
		fc1.Free()
		return nil, err
	}
	return &MLP{FC1: fc1, FC2: fc2, Act: act}, nil
}

// Forward returns fc2(act(fc1(x))) for x (..., dim).
func (m *MLP) Forward(x *tensor.Tensor) (*tensor.Tensor, error) { return m.forward(x, false) }

// ForwardTrain is Forward that keeps what Backward needs.
func (m *MLP) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	m.FreeCache()
	return m.forward(x, true)
}

func (m *MLP) forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	b := x.Backend()
	var h *tensor.Tensor
	var err error
	if train {
		h, err = m.FC1.ForwardTrain(x) // h is (..., hidden)
	} else {
		h, err = m.FC1.Forward(x)
	}
	if err != nil {
		return nil, err
	}
	a, err := b.Activation(h, m.Act) // a is (..., hidden)
	if err != nil {
		h.Free()
		return nil, err
	}
	if train {
		m.h = h
	} else {
		h.Free()
	}
	var y *tensor.Tensor
	if train {
		y, err = m.FC2.ForwardTrain(a) // y is (..., dim)
	} else {
		y, err = m.FC2.Forward(a)
	}
	a.Free()
	return y, err
}

// Backward returns dx for dout (..., dim).
func (m *MLP) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if m.h == nil {
		return nil, fmt.Errorf("nn: mlp backward without ForwardTrain")
	}
	da, err := m.FC2.Backward(dout)
	if err != nil {
		return nil, err
	}
	dh, err := dout.Backend().ActivationBackward(da, m.h, m.Act)
	da.Free()
	if err != nil {
		return nil, err
	}
	dx, err := m.FC1.Backward(dh)
	dh.Free()
	return dx, err
}

// SetTrainable sets Trainable on both linears.
func (m *MLP) SetTrainable(on bool) { m.FC1.Trainable, m.FC2.Trainable = on, on }

// FreeCache releases what ForwardTrain kept.
func (m *MLP) FreeCache() {
	release(&m.h)
	m.FC1.FreeCache()
	m.FC2.FreeCache()
}

// ZeroGrad frees the accumulated parameter gradients.
func (m *MLP) ZeroGrad() { m.FC1.ZeroGrad(); m.FC2.ZeroGrad() }

// Free releases the parameters, gradients and caches.
func (m *MLP) Free() {
	release(&m.h)
	m.FC1.Free()
	m.FC2.Free()
}

// FeedForward is diffusers' FeedForward with activation_fn "geglu" (SDXL's
// transformer blocks): net.2(GEGLU(net.0.proj(x))); net.1 is dropout.
type FeedForward struct {
	Proj *Linear // net.0.proj: dim → 2*inner
	Out  *Linear // net.2: inner → dim

	h *tensor.Tensor // cached net.0.proj output (..., 2*inner)
}

// LoadFeedForward loads net.0.proj (dim → 2*inner) and net.2 (inner → dim),
// both with bias, from scope s.
func LoadFeedForward(s Scope, dim, inner int) (*FeedForward, error) {
	p, err := LoadLinear(s.Sub("net").Index(0).Sub("proj"), dim, 2*inner, true)
	if err != nil {
		return nil, err
	}
	o, err := LoadLinear(s.Sub("net").Index(2), inner, dim, true)
	if err != nil {
		p.Free()
		return nil, err
	}
	return &FeedForward{Proj: p, Out: o}, nil
}

// Forward returns net.2(GEGLU(net.0.proj(x))) for x (..., dim).
func (f *FeedForward) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	return f.forward(x, false)
}

// ForwardTrain is Forward that keeps what Backward needs.
func (f *FeedForward) ForwardTrain(x *tensor.Tensor) (*tensor.Tensor, error) {
	f.FreeCache()
	return f.forward(x, true)
}

func (f *FeedForward) forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	b := x.Backend()
	var h *tensor.Tensor
	var err error
	if train {
		h, err = f.Proj.ForwardTrain(x) // h is (..., 2*inner)
	} else {
		h, err = f.Proj.Forward(x)
	}
	if err != nil {
		return nil, err
	}
	g, err := b.GEGLU(h, tensor.GELU) // g is (..., inner)
	if err != nil {
		h.Free()
		return nil, err
	}
	if train {
		f.h = h
	} else {
		h.Free()
	}
	var y *tensor.Tensor
	if train {
		y, err = f.Out.ForwardTrain(g) // y is (..., dim)
	} else {
		y, err = f.Out.Forward(g)
	}
	g.Free()
	return y, err
}

// Backward returns dx for dout (..., dim).
func (f *FeedForward) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if f.h == nil {
		return nil, fmt.Errorf("nn: feed-forward backward without ForwardTrain")
	}
	dg, err := f.Out.Backward(dout)
	if err != nil {
		return nil, err
	}
	dh, err := dout.Backend().GEGLUBackward(dg, f.h, tensor.GELU)
	dg.Free()
	if err != nil {
		return nil, err
	}
	dx, err := f.Proj.Backward(dh)
	dh.Free()
	return dx, err
}

// SetTrainable sets Trainable on both linears.
func (f *FeedForward) SetTrainable(on bool) { f.Proj.Trainable, f.Out.Trainable = on, on }

// FreeCache releases what ForwardTrain kept.
func (f *FeedForward) FreeCache() {
	release(&f.h)
	f.Proj.FreeCache()
	f.Out.FreeCache()
}

// ZeroGrad frees the accumulated parameter gradients.
func (f *FeedForward) ZeroGrad() { f.Proj.ZeroGrad(); f.Out.ZeroGrad() }

// Free releases the parameters, gradients and caches.
func (f *FeedForward) Free() {
	release(&f.h)
	f.Proj.Free()
	f.Out.Free()
}
