package cpu

import (
	"math"

	"lorastudio/engine/tensor"
)

// actF returns f(x) and f'(x) for an activation, in float64:
//
//	silu:       f = x σ(x),                 f' = σ + x σ (1-σ)
//	gelu:       f = x Φ(x),                 f' = Φ(x) + x φ(x)
//	gelu_tanh:  f = x/2 (1 + tanh u),       u = √(2/π)(x + 0.044715 x³)
//	            f' = (1 + t)/2 + x/2 (1 - t²) √(2/π)(1 + 3·0.044715 x²)
//	quick_gelu: f = x σ(1.702 x),           f' = σ + 1.702 x σ (1-σ)
func actF(f tensor.Act, x float64) (y, dy float64) {
	switch f {
	case tensor.SiLU:
		s := 1 / (1 + math.Exp(-x))
		return x * s, s + x*s*(1-s)
	case tensor.GELU:
		cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
		pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
		return x * cdf, cdf + x*pdf
	case tensor.GELUTanh:
		const k = 0.7978845608028654 // √(2/π)
		t := math.Tanh(k * (x + 0.044715*x*x*x))
		return 0.5 * x * (1 + t), 0.5*(1+t) + 0.5*x*(1-t*t)*k*(1+3*0.044715*x*x)
	case tensor.QuickGELU:
		s := 1 / (1 + math.Exp(-1.702*x))
		return x * s, s + 1.702*x*s*(1-s)
	}
	return math.NaN(), math.NaN()
}

func checkAct(op string, f tensor.Act) error {
	if f > tensor.QuickGELU {
		return tensor.Errorf(op, tensor.ErrArg, "unknown activation %s", f)
	}
	return nil
}

// Activation applies f elementwise.
func (b *Backend) Activation(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	if err := checkAct(f.String(), f); err != nil {
		return nil, err
	}
	op := f.String()
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	out, ov, err := b.newF32Dirty(op, x.Shape())
	if err != nil {
		return nil, err
	}
	parallelFor(len(ov), 8, func(lo, hi int) { actForward(f, ov[lo:hi], v[0][lo:hi], nil) })
	return out, nil
}

// ActivationBackward returns dx = dout * f'(x).
func (b *Backend) ActivationBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	op := f.String() + " backward"
	if err := checkAct(op, f); err != nil {
		return nil, err
	}
	v, err := b.f32s(op, []string{"dout", "x"}, dout, x)
	if err != nil {
		return nil, err
	}
	if !dout.Shape().Equal(x.Shape()) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, x is %s", dout.Shape(), x.Shape())
	}
	out, ov, err := b.newF32Dirty(op, x.Shape())
	if err != nil {
		return nil, err
	}
	parallelFor(len(ov), 8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			_, d := actF(f, float64(v[1][i]))
			ov[i] = float32(float64(v[0][i]) * d)
		}
	})
	return out, nil
}

// gegluShape checks x (..., 2F) and returns F and the output shape (..., F).
func gegluShape(op string, x *tensor.Tensor) (int, tensor.Shape, error) {
	s := x.Shape()
	if len(s) < 1 || s[len(s)-1]%2 != 0 {
		return 0, nil, tensor.Errorf(op, tensor.ErrShape, "x is %s: the last dimension must be even", s)
	}
	F := s[len(s)-1] / 2
	os := s.Clone()
	os[len(os)-1] = F
	return F, os, nil
}

// GEGLU returns h * f(g) for x (..., 2F) = [h, g] along the last dimension.
func (b *Backend) GEGLU(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	const op = "geglu"
	if err := checkAct(op, f); err != nil {
		return nil, err
	}
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	F, os, err := gegluShape(op, x)
	if err != nil {
		return nil, err
	}
	out, ov, err := b.newF32Dirty(op, os)
	if err != nil {
		return nil, err
	}
	xv := v[0]
	parallelFor(len(ov)/F, F, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			h, g, o := xv[2*r*F:2*r*F+F], xv[2*r*F+F:2*r*F+2*F], ov[r*F:r*F+F]
			actForward(f, o, g, h)
		}
	})
	return out, nil
}

// GEGLUBackward returns dx (..., 2F): dh = dout * f(g), dg = dout * h * f'(g).
func (b *Backend) GEGLUBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	const op = "geglu backward"
	if err := checkAct(op, f); err != nil {
		return nil, err
	}
	v, err := b.f32s(op, []string{"dout", "x"}, dout, x)
	if err != nil {
		return nil, err
	}
	F, os, err := gegluShape(op, x)
	if err != nil {
		return nil, err
	}
	if !dout.Shape().Equal(os) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want %s for x %s", dout.Shape(), os, x.Shape())
	}
	out, ov, err := b.newF32Dirty(op, x.Shape())
	if err != nil {
		return nil, err
	}
	dv, xv := v[0], v[1]
	parallelFor(len(dv)/F, F, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			for j := 0; j < F; j++ {
				h, g := float64(xv[2*r*F+j]), float64(xv[2*r*F+F+j])
				y, dy := actF(f, g)
				d := float64(dv[r*F+j])
				ov[2*r*F+j] = float32(d * y)
				ov[2*r*F+F+j] = float32(d * h * dy)
			}
		}
	})
	return out, nil
}
