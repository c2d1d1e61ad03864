package gl

import "lorastudio/engine/tensor"

// Softmax returns softmax over the last dimension (softmax_forward.comp).
func (b *Backend) Softmax(x *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "softmax"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	if x.Rank() < 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "x is %s", x.Shape())
	}
	c := x.Dim(-1)
	rows := x.Numel() / c
	return b.kernelOut(op, x.Shape(), []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "softmax_forward", bufs: []*buffer{in[0], out}, p: i32(rows, c), groups: b.dev.tileGroups(rows)}}, nil
	})
}

// SoftmaxBackward returns y * (dout - sum(dout * y)) (softmax_backward.comp).
func (b *Backend) SoftmaxBackward(dout, y *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "softmax backward"
	if err := b.check(op, dout, y); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "y"}, dout, y); err != nil {
		return nil, err
	}
	if !dout.Shape().Equal(y.Shape()) || y.Rank() < 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, y is %s", dout.Shape(), y.Shape())
	}
	c := y.Dim(-1)
	rows := y.Numel() / c
	return b.kernelOut(op, y.Shape(), []*tensor.Tensor{dout, y}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "softmax_backward", bufs: []*buffer{in[0], in[1], out}, p: i32(rows, c), groups: b.dev.tileGroups(rows)}}, nil
	})
}
