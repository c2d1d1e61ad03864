package cpu

import "lorastudio/engine/tensor"

// MSELoss returns mean((pred - target)^2) as a (1) tensor.
func (b *Backend) MSELoss(pred, target *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "mse loss"
	v, err := b.f32s(op, []string{"pred", "target"}, pred, target)
	if err != nil {
		return nil, err
	}
	if !pred.Shape().Equal(target.Shape()) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "pred is %s, target is %s", pred.Shape(), target.Shape())
	}
	var s float64
	for i, p := range v[0] {
		d := float64(p) - float64(v[1][i])
		s += d * d
	}
	return b.Upload([]float32{float32(s / float64(len(v[0])))}, tensor.Shape{1}, tensor.F32)
}

// MSELossBackward returns dpred = dout * 2 (pred - target) / numel.
func (b *Backend) MSELossBackward(dout, pred, target *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "mse loss backward"
	v, err := b.f32s(op, []string{"dout", "pred", "target"}, dout, pred, target)
	if err != nil {
		return nil, err
	}
	if !pred.Shape().Equal(target.Shape()) || dout.Numel() != 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s (want one element), pred is %s, target is %s", dout.Shape(), pred.Shape(), target.Shape())
	}
	out, ov, err := b.newF32(op, pred.Shape())
	if err != nil {
		return nil, err
	}
	k := v[0][0] * 2 / float32(len(ov))
	for i := range ov {
		ov[i] = k * (v[1][i] - v[2][i])
	}
	return out, nil
}
