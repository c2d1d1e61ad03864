package gl

import (
	"strconv"

	"lorastudio/engine/tensor"
)

// Binary returns a op b with numpy broadcasting (shaders/gl/binary.comp).
func (b *Backend) Binary(bop tensor.BinaryOp, x, y *tensor.Tensor) (*tensor.Tensor, error) {
	op := bop.String()
	if err := b.check(op, x, y); err != nil {
		return nil, err
	}
	if bop > tensor.Mul {
		return nil, tensor.Errorf(op, tensor.ErrArg, "unknown binary op")
	}
	if err := tensor.CheckF32(op, []string{"a", "b"}, x, y); err != nil {
		return nil, err
	}
	xs, ys := x.Shape(), y.Shape()
	outShape, err := tensor.BroadcastShapes(xs, ys)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	if err := rank6(op, outShape); err != nil {
		return nil, err
	}
	n := outShape.Numel()
	p := i32(n)
	p = append(p, pad6(outShape, 1)...)
	p = append(p, pad6(broadcastStrides(xs, outShape), 0)...)
	p = append(p, pad6(broadcastStrides(ys, outShape), 0)...)
	def := map[string]string{"OP": strconv.Itoa(int(bop))}
	chunk := 0
	if xs.Equal(outShape) && ys.Equal(outShape) {
		chunk = n // same shapes: contiguous, so it may run in ranges
	}
	return b.kernelOut(op, outShape, []*tensor.Tensor{x, y}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "binary", defines: def, bufs: []*buffer{in[0], in[1], out}, p: p, groups: b.dev.grid1D(n, 256), chunk: chunk}}, nil
	})
}

// BinaryBackward returns da and db, summed over broadcast dimensions:
// add: da = dout, db = dout; sub: db = -dout; mul: da = dout*b, db = dout*a.
func (b *Backend) BinaryBackward(bop tensor.BinaryOp, dout, x, y *tensor.Tensor, need tensor.GradMask) (da, db *tensor.Tensor, err error) {
	op := bop.String() + " backward"
	if err := b.check(op, dout, x, y); err != nil {
		return nil, nil, err
	}
	if bop > tensor.Mul {
		return nil, nil, tensor.Errorf(op, tensor.ErrArg, "unknown binary op")
	}
	outShape, err := tensor.BroadcastShapes(x.Shape(), y.Shape())
	if err != nil || !outShape.Equal(dout.Shape()) {
		return nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s for a %s and b %s", dout.Shape(), x.Shape(), y.Shape())
	}
	defer func() {
		if err != nil {
			tensor.FreeAll(da, db)
			da, db = nil, nil
		}
	}()
	grad := func(other *tensor.Tensor, to tensor.Shape, factor float32) (*tensor.Tensor, error) {
		src := dout
		if bop == tensor.Mul {
			t, err := b.Binary(tensor.Mul, dout, other)
			if err != nil {
				return nil, err
			}
			defer t.Free()
			src = t
		}
		return b.reduceTo(op, src, to, factor)
	}
	if need.Has(tensor.GradX) {
		if da, err = grad(y, x.Shape(), 1); err != nil {
			return da, db, err
		}
	}
	if need.Has(tensor.GradW) {
		f := float32(1)
		if bop == tensor.Sub {
			f = -1
		}
		if db, err = grad(x, y.Shape(), f); err != nil {
			return da, db, err
		}
	}
	return da, db, nil
}

// ReduceTo sums x over the dimensions broadcast from shape into x's shape
// (shaders/gl/reduce.comp).
func (b *Backend) ReduceTo(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	return b.reduceTo("reduce to", x, shape, 1)
}

// reduceTo is ReduceTo with a factor on the sums.
func (b *Backend) reduceTo(op string, x *tensor.Tensor, shape tensor.Shape, factor float32) (*tensor.Tensor, error) {
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(shape) > len(xs) || !shape.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%s cannot reduce to %s", xs, shape)
	}
	if err := rank6(op, xs); err != nil {
		return nil, err
	}
	st := xs.Strides()
	var kept, keptSt, red, redSt []int
	k := len(xs) - len(shape)
	for i, d := range xs {
		t := 1
		if i >= k {
			t = shape[i-k]
		}
		switch {
		case t == d:
			kept = append(kept, d)
			keptSt = append(keptSt, st[i])
		case t == 1:
			red = append(red, d)
			redSt = append(redSt, st[i])
		default:
			return nil, tensor.Errorf(op, tensor.ErrShape, "%s cannot reduce to %s", xs, shape)
		}
	}
	to := shape.Clone()
	return b.kernelOut(op, to, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{b.reduceLaunch(in[0], out, kept, keptSt, red, redSt, factor)}, nil
	})
}
