package gl

import (
	"lorastudio/engine/tensor"
)

// The layout ops are all one strided copy (shaders/gl/copy.comp): permute,
// slice and its backward, concat, split, broadcast and nearest upsampling.

// Permute copies x with its dimensions reordered: out.Dim(i) = x.Dim(perm[i]).
func (b *Backend) Permute(x *tensor.Tensor, perm ...int) (*tensor.Tensor, error) {
	const op = "permute"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	outShape, err := tensor.PermuteShape(xs, perm)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrArg, "%v", err)
	}
	if err := rank6(op, xs); err != nil {
		return nil, err
	}
	xst := xs.Strides()
	sst := make([]int, len(perm))
	for i, p := range perm {
		sst[i] = xst[p]
	}
	return b.kernelOut(op, outShape, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{b.copyLaunch(in[0], out, outShape, sst, 0, outShape.Strides(), 0)}, nil
	})
}

// Slice returns x[..., start:end, ...] along axis.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) (*tensor.Tensor, error) {
	const op = "slice"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	ax, ok := xs.Axis(axis)
	if !ok || start < 0 || end > xs[ax] || start >= end {
		return nil, tensor.Errorf(op, tensor.ErrArg, "[%d:%d] on axis %d of %s", start, end, axis, xs)
	}
	if err := rank6(op, xs); err != nil {
		return nil, err
	}
	outShape := xs.Clone()
	outShape[ax] = end - start
	st := xs.Strides()
	return b.kernelOut(op, outShape, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{b.copyLaunch(in[0], out, outShape, st, start*st[ax], outShape.Strides(), 0)}, nil
	})
}

// SliceBackward returns zeros of shape with dout written at start along axis.
func (b *Backend) SliceBackward(dout *tensor.Tensor, shape tensor.Shape, axis, start int) (*tensor.Tensor, error) {
	const op = "slice backward"
	if err := b.check(op, dout); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout"}, dout); err != nil {
		return nil, err
	}
	ds := dout.Shape()
	ax, ok := shape.Axis(axis)
	if !ok || len(ds) != len(shape) || !shape.Valid() || start < 0 || start+ds[ax] > shape[ax] {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout %s at %d on axis %d of %s", ds, start, axis, shape)
	}
	for i := range ds {
		if i != ax && ds[i] != shape[i] {
			return nil, tensor.Errorf(op, tensor.ErrShape, "dout %s does not fit %s outside axis %d", ds, shape, ax)
		}
	}
	if err := rank6(op, shape); err != nil {
		return nil, err
	}
	st := shape.Strides()
	return b.kernelOut(op, shape.Clone(), []*tensor.Tensor{dout}, func(in []*buffer, out *buffer) ([]launch, error) {
		zeroFill(out, 4*shape.Numel())
		return []launch{b.copyLaunch(in[0], out, ds, ds.Strides(), 0, st, start*st[ax])}, nil
	})
}

// Concat joins ts along axis.
func (b *Backend) Concat(axis int, ts ...*tensor.Tensor) (*tensor.Tensor, error) {
	const op = "concat"
	if len(ts) == 0 {
		return nil, tensor.Errorf(op, tensor.ErrArg, "no tensors")
	}
	if err := b.check(op, ts...); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, nil, ts...); err != nil {
		return nil, err
	}
	shapes := make([]tensor.Shape, len(ts))
	for i, t := range ts {
		shapes[i] = t.Shape()
	}
	outShape, ax, err := tensor.ConcatShape(axis, shapes...)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	if err := rank6(op, outShape); err != nil {
		return nil, err
	}
	ost := outShape.Strides()
	return b.kernelOut(op, outShape, ts, func(in []*buffer, out *buffer) ([]launch, error) {
		var ls []launch
		at := 0
		for i, s := range shapes {
			ls = append(ls, b.copyLaunch(in[i], out, s, s.Strides(), 0, ost, at*ost[ax]))
			at += s[ax]
		}
		return ls, nil
	})
}

// Split cuts x along axis into pieces of the given sizes.
func (b *Backend) Split(x *tensor.Tensor, axis int, sizes ...int) ([]*tensor.Tensor, error) {
	const op = "split"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	ax, ok := xs.Axis(axis)
	if !ok {
		return nil, tensor.Errorf(op, tensor.ErrArg, "axis %d of %s", axis, xs)
	}
	sum := 0
	for _, s := range sizes {
		if s < 1 {
			return nil, tensor.Errorf(op, tensor.ErrArg, "sizes %v", sizes)
		}
		sum += s
	}
	if sum != xs[ax] || len(sizes) == 0 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "sizes %v do not sum to %d (axis %d of %s)", sizes, xs[ax], ax, xs)
	}
	var out []*tensor.Tensor
	at := 0
	for _, s := range sizes {
		t, err := b.Slice(x, ax, at, at+s)
		if err != nil {
			tensor.FreeAll(out...)
			return nil, err
		}
		out = append(out, t)
		at += s
	}
	return out, nil
}

// broadcastStrides returns the strides that read a tensor of shape from
// within the broadcast shape to (numpy rules): 0 along repeated dimensions.
func broadcastStrides(shape, to tensor.Shape) []int {
	st := shape.Strides()
	out := make([]int, len(to))
	k := len(to) - len(shape)
	for i := range to {
		j := i - k
		if j >= 0 && shape[j] == to[i] {
			out[i] = st[j]
		}
	}
	return out
}

// BroadcastTo repeats x along broadcast dimensions to shape.
func (b *Backend) BroadcastTo(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	const op = "broadcast to"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	bs, err := tensor.BroadcastShapes(xs, shape)
	if err != nil || !bs.Equal(shape) || !shape.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%s cannot broadcast to %s", xs, shape)
	}
	if err := rank6(op, shape); err != nil {
		return nil, err
	}
	to := shape.Clone()
	return b.kernelOut(op, to, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{b.copyLaunch(in[0], out, to, broadcastStrides(xs, to), 0, to.Strides(), 0)}, nil
	})
}

// Upsample2x is nearest 2x upsampling: out (N, C, 2H, 2W) walked as
// (N*C, H, 2, W, 2) reading x with stride 0 along the two repeats.
func (b *Backend) Upsample2x(x *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "upsample2x"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "x is %s, want (N, C, H, W)", xs)
	}
	nc, h, w := xs[0]*xs[1], xs[2], xs[3]
	walk := []int{nc, h, 2, w, 2}
	return b.kernelOut(op, tensor.Shape{xs[0], xs[1], 2 * h, 2 * w}, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{b.copyLaunch(in[0], out, walk, []int{h * w, w, 0, 1, 0}, 0, tensor.Shape(walk).Strides(), 0)}, nil
	})
}

// Upsample2xBackward sums each 2x2 block of dout (N, C, 2H, 2W) into
// (N, C, H, W) with the reduce kernel.
func (b *Backend) Upsample2xBackward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "upsample2x backward"
	if err := b.check(op, dout); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout"}, dout); err != nil {
		return nil, err
	}
	ds := dout.Shape()
	if len(ds) != 4 || ds[2]%2 != 0 || ds[3]%2 != 0 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want (N, C, 2H, 2W)", ds)
	}
	nc, h, w := ds[0]*ds[1], ds[2]/2, ds[3]/2
	return b.kernelOut(op, tensor.Shape{ds[0], ds[1], h, w}, []*tensor.Tensor{dout}, func(in []*buffer, out *buffer) ([]launch, error) {
		// dout viewed as (NC, H, 2, W, 2): keep (NC, H, W), reduce (2, 2).
		return []launch{b.reduceLaunch(in[0], out, []int{nc, h, w}, []int{4 * h * w, 4 * w, 2}, []int{2, 2}, []int{2 * w, 1}, 1)}, nil
	})
}
