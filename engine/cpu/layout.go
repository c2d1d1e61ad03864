package cpu

import "lorastudio/engine/tensor"

// outerInner splits shape around axis: outer is the product of the
// dimensions before it, inner the product of those after it.
func outerInner(s tensor.Shape, axis int) (outer, inner int) {
	return s[:axis].Numel(), s[axis+1:].Numel()
}

// Concat joins ts along axis.
func (b *Backend) Concat(axis int, ts ...*tensor.Tensor) (*tensor.Tensor, error) {
	const op = "concat"
	if _, err := b.f32s(op, nil, ts...); err != nil {
		return nil, err
	}
	shapes := make([]tensor.Shape, len(ts))
	for i, t := range ts {
		shapes[i] = t.Shape()
	}
	os, ax, err := tensor.ConcatShape(axis, shapes...)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	out, ov, err := b.newF32(op, os)
	if err != nil {
		return nil, err
	}
	// out is (outer, sum of d_i, inner); input i is (outer, d_i, inner).
	outer, inner := outerInner(os, ax)
	at := 0
	for _, t := range ts {
		tv := data(t)
		blk := t.Dim(ax) * inner
		for o := 0; o < outer; o++ {
			copy(ov[o*os[ax]*inner+at:], tv[o*blk:(o+1)*blk])
		}
		at += blk
	}
	return out, nil
}

// Split cuts x along axis into pieces of the given sizes.
func (b *Backend) Split(x *tensor.Tensor, axis int, sizes ...int) ([]*tensor.Tensor, error) {
	const op = "split"
	if _, err := b.f32s(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	ax, ok := xs.Axis(axis)
	if !ok {
		return nil, tensor.Errorf(op, tensor.ErrArg, "axis %d out of range for %s", axis, xs)
	}
	sum := 0
	for _, s := range sizes {
		if s < 1 {
			return nil, tensor.Errorf(op, tensor.ErrArg, "size %d in %v", s, sizes)
		}
		sum += s
	}
	if sum != xs[ax] {
		return nil, tensor.Errorf(op, tensor.ErrShape, "sizes %v sum to %d, x %s has %d along axis %d", sizes, sum, xs, xs[ax], ax)
	}
	outs := make([]*tensor.Tensor, 0, len(sizes))
	start := 0
	for _, s := range sizes {
		t, err := b.Slice(x, ax, start, start+s)
		if err != nil {
			tensor.FreeAll(outs...)
			return nil, err
		}
		outs = append(outs, t)
		start += s
	}
	return outs, nil
}

// Slice returns x[start:end] along axis.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) (*tensor.Tensor, error) {
	const op = "slice"
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	ax, ok := xs.Axis(axis)
	if !ok {
		return nil, tensor.Errorf(op, tensor.ErrArg, "axis %d out of range for %s", axis, xs)
	}
	if start < 0 || end > xs[ax] || start >= end {
		return nil, tensor.Errorf(op, tensor.ErrArg, "range [%d:%d] on axis %d of %s", start, end, ax, xs)
	}
	os := xs.Clone()
	os[ax] = end - start
	out, ov, err := b.newF32(op, os)
	if err != nil {
		return nil, err
	}
	// x is (outer, D, inner); out is (outer, end-start, inner).
	outer, inner := outerInner(xs, ax)
	blk := (end - start) * inner
	for o := 0; o < outer; o++ {
		copy(ov[o*blk:(o+1)*blk], v[0][(o*xs[ax]+start)*inner:])
	}
	return out, nil
}

// SliceBackward scatters dout into zeros of shape at start along axis.
func (b *Backend) SliceBackward(dout *tensor.Tensor, shape tensor.Shape, axis, start int) (*tensor.Tensor, error) {
	const op = "slice backward"
	v, err := b.f32s(op, []string{"dout"}, dout)
	if err != nil {
		return nil, err
	}
	ds := dout.Shape()
	ax, ok := shape.Axis(axis)
	if !ok || len(ds) != len(shape) {
		return nil, tensor.Errorf(op, tensor.ErrArg, "axis %d, dout %s, shape %s", axis, ds, shape)
	}
	for i := range ds {
		if (i != ax && ds[i] != shape[i]) || (i == ax && (start < 0 || start+ds[i] > shape[i])) {
			return nil, tensor.Errorf(op, tensor.ErrShape, "dout %s at %d on axis %d does not fit in %s", ds, start, ax, shape)
		}
	}
	out, ov, err := b.newF32(op, shape)
	if err != nil {
		return nil, err
	}
	outer, inner := outerInner(shape, ax)
	blk := ds[ax] * inner
	for o := 0; o < outer; o++ {
		copy(ov[(o*shape[ax]+start)*inner:], v[0][o*blk:(o+1)*blk])
	}
	return out, nil
}

// Permute reorders x's dimensions: out.Dim(i) = x.Dim(perm[i]).
func (b *Backend) Permute(x *tensor.Tensor, perm ...int) (*tensor.Tensor, error) {
	const op = "permute"
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	os, err := tensor.PermuteShape(xs, perm)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrArg, "%v", err)
	}
	out, ov, err := b.newF32(op, os)
	if err != nil {
		return nil, err
	}
	if len(os) == 0 {
		copy(ov, v[0]) // a rank-0 tensor has one element
		return out, nil
	}
	// Output element at multi-index idx reads x at Σ idx[i] * xStride[perm[i]].
	xst := xs.Strides()
	st := make([]int, len(os))
	for i, p := range perm {
		st[i] = xst[p]
	}
	L := os[len(os)-1]
	il := st[len(os)-1]
	xv := v[0]
	parallelFor(len(ov)/L, L, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			off := rowOffset(r, os, st)
			o := ov[r*L : (r+1)*L]
			for j := range o {
				o[j] = xv[off+j*il]
			}
		}
	})
	return out, nil
}
