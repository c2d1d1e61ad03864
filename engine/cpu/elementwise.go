package cpu

import (
	"lorastudio/engine/tensor"
)

// bcastStrides returns the element strides of a tensor of shape in when it
// is broadcast to shape out (numpy rules): 0 along broadcast dimensions.
// out must be a valid broadcast of in.
func bcastStrides(in, out tensor.Shape) []int {
	st := make([]int, len(out))
	inSt := in.Strides()
	off := len(out) - len(in)
	for i := range out {
		j := i - off
		if j >= 0 && in[j] == out[i] {
			st[i] = inSt[j]
		}
	}
	return st
}

// atLeast1 treats a rank-0 shape as (1) for iteration.
func atLeast1(s tensor.Shape) tensor.Shape {
	if len(s) == 0 {
		return tensor.Shape{1}
	}
	return s
}

// rowOffset returns the offset, under strides st, of the first element of
// row r of a tensor of shape s, where a row is the last dimension.
func rowOffset(r int, s tensor.Shape, st []int) int {
	off := 0
	for d := len(s) - 2; d >= 0; d-- {
		off += (r % s[d]) * st[d]
		r /= s[d]
	}
	return off
}

// isBroadcastOf reports whether shape from broadcasts to exactly to.
func isBroadcastOf(from, to tensor.Shape) bool {
	s, err := tensor.BroadcastShapes(from, to)
	return err == nil && s.Equal(to) && len(from) <= len(to)
}

// Binary returns a op b with numpy broadcasting.
func (b *Backend) Binary(op tensor.BinaryOp, x, y *tensor.Tensor) (*tensor.Tensor, error) {
	name := op.String()
	v, err := b.f32s(name, []string{"a", "b"}, x, y)
	if err != nil {
		return nil, err
	}
	if op > tensor.Mul {
		return nil, tensor.Errorf(name, tensor.ErrArg, "unknown binary op")
	}
	os, err := tensor.BroadcastShapes(x.Shape(), y.Shape())
	if err != nil {
		return nil, tensor.Errorf(name, tensor.ErrShape, "%v", err)
	}
	out, ov, err := b.newF32Dirty(name, os)
	if err != nil {
		return nil, err
	}
	// out is (..., L); a and b are read through broadcast strides.
	av, bv := v[0], v[1]
	os = atLeast1(os)
	sa, sb := bcastStrides(atLeast1(x.Shape()), os), bcastStrides(atLeast1(y.Shape()), os)
	L := os[len(os)-1]
	ia, ib := sa[len(os)-1], sb[len(os)-1]
	rows := len(ov) / L
	parallelFor(rows, L, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			oa, ob := rowOffset(r, os, sa), rowOffset(r, os, sb)
			o := ov[r*L : (r+1)*L]
			switch {
			case op == tensor.Add && ia == 1 && ib == 1:
				for j, p := range av[oa : oa+L] {
					o[j] = p + bv[ob+j]
				}
			case op == tensor.Mul && ia == 1 && ib == 1:
				for j, p := range av[oa : oa+L] {
					o[j] = p * bv[ob+j]
				}
			default:
				binaryRow(op, o, av, bv, oa, ob, ia, ib)
			}
		}
	})
	return out, nil
}

// binaryRow writes o[j] = a[oa+j*ia] op b[ob+j*ib] (strides 0 broadcast).
func binaryRow(op tensor.BinaryOp, o, a, b []float32, oa, ob, ia, ib int) {
	switch op {
	case tensor.Add:
		for j := range o {
			o[j] = a[oa+j*ia] + b[ob+j*ib]
		}
	case tensor.Sub:
		for j := range o {
			o[j] = a[oa+j*ia] - b[ob+j*ib]
		}
	case tensor.Mul:
		for j := range o {
			o[j] = a[oa+j*ia] * b[ob+j*ib]
		}
	}
}

// BinaryBackward returns the gradients of a op b reduced to each input's shape:
//
//	add: da = dout, db = dout
//	sub: da = dout, db = -dout
//	mul: da = dout * b, db = dout * a
func (b *Backend) BinaryBackward(op tensor.BinaryOp, dout, x, y *tensor.Tensor, need tensor.GradMask) (da, db *tensor.Tensor, err error) {
	name := op.String() + " backward"
	_, err = b.f32s(name, []string{"dout", "a", "b"}, dout, x, y)
	if err != nil {
		return nil, nil, err
	}
	if op > tensor.Mul {
		return nil, nil, tensor.Errorf(name, tensor.ErrArg, "unknown binary op")
	}
	os, err := tensor.BroadcastShapes(x.Shape(), y.Shape())
	if err != nil {
		return nil, nil, tensor.Errorf(name, tensor.ErrShape, "%v", err)
	}
	if !dout.Shape().Equal(os) {
		return nil, nil, tensor.Errorf(name, tensor.ErrShape, "dout is %s, want %s", dout.Shape(), os)
	}
	grad := func(self, other *tensor.Tensor, sign float32) (*tensor.Tensor, error) {
		if op != tensor.Mul {
			if sign == 1 {
				return b.ReduceTo(dout, self.Shape())
			}
			neg, err := b.Scale(dout, -1)
			if err != nil {
				return nil, err
			}
			defer neg.Free()
			return b.ReduceTo(neg, self.Shape())
		}
		// full (broadcast shape) = dout * other, then reduce to self's shape.
		prod, err := b.Binary(tensor.Mul, dout, other)
		if err != nil {
			return nil, err
		}
		defer prod.Free()
		return b.ReduceTo(prod, self.Shape())
	}
	if need.Has(tensor.GradX) {
		if da, err = grad(x, y, 1); err != nil {
			return nil, nil, err
		}
	}
	if need.Has(tensor.GradW) {
		sign := float32(1)
		if op == tensor.Sub {
			sign = -1
		}
		if db, err = grad(y, x, sign); err != nil {
			tensor.FreeAll(da)
			return nil, nil, err
		}
	}
	return da, db, nil
}

// Scale returns s * x.
func (b *Backend) Scale(x *tensor.Tensor, s float32) (*tensor.Tensor, error) {
	return b.mapF32("scale", x, func(v float32) float32 { return v * s })
}

// AddScalar returns x + s.
func (b *Backend) AddScalar(x *tensor.Tensor, s float32) (*tensor.Tensor, error) {
	return b.mapF32("add scalar", x, func(v float32) float32 { return v + s })
}

// mapF32 applies f elementwise to the F32 tensor x.
func (b *Backend) mapF32(op string, x *tensor.Tensor, f func(float32) float32) (*tensor.Tensor, error) {
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	out, ov, err := b.newF32Dirty(op, x.Shape())
	if err != nil {
		return nil, err
	}
	xv := v[0]
	parallelFor(len(ov), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ov[i] = f(xv[i])
		}
	})
	return out, nil
}

// ReduceTo sums x (a broadcast of shape) down to shape.
func (b *Backend) ReduceTo(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	const op = "reduce to"
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	if !shape.Valid() || !isBroadcastOf(shape, xs) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%s does not broadcast to x %s", shape, xs)
	}
	out, ov, err := b.newF32(op, shape)
	if err != nil {
		return nil, err
	}
	// x is (..., L); each element adds into out at its broadcast offset.
	xv := v[0]
	xs = atLeast1(xs)
	so := bcastStrides(atLeast1(shape), xs)
	L := xs[len(xs)-1]
	io := so[len(xs)-1]
	acc := make([]float64, len(ov))
	for r := 0; r < len(xv)/L; r++ {
		oo := rowOffset(r, xs, so)
		row := xv[r*L : (r+1)*L]
		if io == 0 {
			var s float64
			for _, e := range row {
				s += float64(e)
			}
			acc[oo] += s
			continue
		}
		for j, e := range row {
			acc[oo+j] += float64(e)
		}
	}
	for i, s := range acc {
		ov[i] = float32(s)
	}
	return out, nil
}

// BroadcastTo repeats x to shape (numpy rules).
func (b *Backend) BroadcastTo(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	const op = "broadcast to"
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	if !shape.Valid() || !isBroadcastOf(xs, shape) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "x %s does not broadcast to %s", xs, shape)
	}
	out, ov, err := b.newF32(op, shape)
	if err != nil {
		return nil, err
	}
	xv := v[0]
	shape = atLeast1(shape)
	sx := bcastStrides(atLeast1(xs), shape)
	L := shape[len(shape)-1]
	ix := sx[len(shape)-1]
	parallelFor(len(ov)/L, L, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ox := rowOffset(r, shape, sx)
			o := ov[r*L : (r+1)*L]
			for j := range o {
				o[j] = xv[ox+j*ix]
			}
		}
	})
	return out, nil
}
