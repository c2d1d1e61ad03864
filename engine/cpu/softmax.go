package cpu

import (
	"math"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/tensor"
)

// softmaxRow writes softmax(x) into y (max-subtracted, sum in float64).
// The asm kernels take what this CPU's vectors allow (exp as expf, each
// output rounded to float32 before it is summed, scaled by the float32 of
// 1/sum); the Go loops do the rest with math.Exp.
func softmaxRow(y, x []float32) {
	k, m := asm.Max(x)
	for _, v := range x[k:] {
		m = max(m, v)
	}
	k, s := asm.ExpSum(y, x, 1, -m)
	for i := k; i < len(x); i++ {
		e := math.Exp(float64(x[i] - m))
		y[i] = float32(e)
		s += e
	}
	inv := 1 / s
	k = asm.Scale(y, float32(inv))
	for i := k; i < len(y); i++ {
		y[i] = float32(float64(y[i]) * inv)
	}
}

// Softmax returns softmax over the last dimension of x (..., C).
func (b *Backend) Softmax(x *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "softmax"
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	out, ov, err := b.newF32(op, x.Shape())
	if err != nil {
		return nil, err
	}
	C := atLeast1(x.Shape())[max(0, x.Rank()-1)]
	parallelFor(len(ov)/C, C, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(ov[r*C:(r+1)*C], v[0][r*C:(r+1)*C])
		}
	})
	return out, nil
}

// SoftmaxBackward returns dx = y * (dout - Σ dout*y) for the output y (..., C).
func (b *Backend) SoftmaxBackward(dout, y *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "softmax backward"
	v, err := b.f32s(op, []string{"dout", "y"}, dout, y)
	if err != nil {
		return nil, err
	}
	if !dout.Shape().Equal(y.Shape()) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, y is %s", dout.Shape(), y.Shape())
	}
	out, ov, err := b.newF32(op, y.Shape())
	if err != nil {
		return nil, err
	}
	C := atLeast1(y.Shape())[max(0, y.Rank()-1)]
	dv, yv := v[0], v[1]
	parallelFor(len(ov)/C, C, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			d, yr := dv[r*C:(r+1)*C], yv[r*C:(r+1)*C]
			var s float64
			for i := range d {
				s += float64(d[i]) * float64(yr[i])
			}
			for i := range d {
				ov[r*C+i] = float32(float64(yr[i]) * (float64(d[i]) - s))
			}
		}
	})
	return out, nil
}
