package cpu

import "lorastudio/engine/tensor"

// Cast converts x to dt, rounding to nearest even.
func (b *Backend) Cast(x *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	const op = "cast"
	if err := tensor.Check(op, b, x); err != nil {
		return nil, err
	}
	vals, err := b.Download(x)
	if err != nil {
		return nil, err
	}
	return b.Upload(vals, x.Shape(), dt)
}
