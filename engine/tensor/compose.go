package tensor

// Ops composed from the primitives; every backend gets them for free.

// Linear returns x·wᵀ + bias like torch.nn.Linear: x is (..., in), w is
// (out, in) (F32 or F16/BF16), bias is (out) or nil; out is (..., out).
func Linear(b Backend, x, w, bias *Tensor) (*Tensor, error) {
	return b.MatMul(x, w, bias, false, true)
}

// LinearBackward returns dx (..., in), dw (out, in) and dbias (out) for
// dout (..., out), as selected by need.
func LinearBackward(b Backend, dout, x, w *Tensor, need GradMask) (dx, dw, dbias *Tensor, err error) {
	return b.MatMulBackward(dout, x, w, false, true, need)
}

// AllAxes makes Sum and Mean reduce over every dimension.
const AllAxes = -1 << 30

// reducedShape is x's shape with axis set to 1, or (1) for AllAxes.
func reducedShape(op string, x *Tensor, axis int) (Shape, error) {
	if axis == AllAxes {
		return Shape{1}, nil
	}
	s := x.Shape()
	ax, ok := s.Axis(axis)
	if !ok {
		return nil, Errorf(op, ErrArg, "axis %d out of range for %s", axis, s)
	}
	s[ax] = 1
	return s, nil
}

// Sum sums x over axis keeping it as size 1 (AllAxes: over everything,
// giving a (1) tensor). Its backward is BroadcastTo(dout, x's shape).
func Sum(b Backend, x *Tensor, axis int) (*Tensor, error) {
	if err := Check("sum", b, x); err != nil {
		return nil, err
	}
	s, err := reducedShape("sum", x, axis)
	if err != nil {
		return nil, err
	}
	return b.ReduceTo(x, s)
}

// Mean averages x over axis keeping it as size 1 (AllAxes: over everything).
// Its backward is Scale(BroadcastTo(dout, x's shape), 1/n).
func Mean(b Backend, x *Tensor, axis int) (*Tensor, error) {
	s, err := Sum(b, x, axis)
	if err != nil {
		return nil, err
	}
	n := x.Numel() / s.Numel()
	m, err := b.Scale(s, 1/float32(n))
	s.Free()
	return m, err
}

// Accumulate adds g into *acc, taking ownership of g: *acc = *acc + g, or g
// itself when *acc is nil (a gradient's first contribution). A nil g adds
// nothing. Backwards use it to sum the gradients that reach one tensor.
func Accumulate(acc **Tensor, g *Tensor) error {
	if g == nil {
		return nil
	}
	if *acc == nil {
		*acc = g
		return nil
	}
	s, err := g.Backend().Binary(Add, *acc, g)
	g.Free()
	if err != nil {
		return err
	}
	(*acc).Free()
	*acc = s
	return nil
}
