package gl

import (
	"lorastudio/engine/tensor"
)

// affineArgs validates optional gamma and beta of c channels (both or neither).
func affineArgs(op string, c int, gamma, beta *tensor.Tensor) error {
	if (gamma == nil) != (beta == nil) {
		return tensor.Errorf(op, tensor.ErrArg, "gamma and beta must both be given or both be nil")
	}
	for _, t := range []*tensor.Tensor{gamma, beta} {
		if t != nil && !(t.Rank() == 1 && t.Dim(0) == c) {
			return tensor.Errorf(op, tensor.ErrShape, "affine parameter is %s, want (%d)", t.Shape(), c)
		}
	}
	return nil
}

// nonNil returns the non-nil tensors of ts.
func nonNil(ts ...*tensor.Tensor) []*tensor.Tensor {
	var out []*tensor.Tensor
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// normForward runs a norm's forward kernel with x, gamma, beta, out bound.
func (b *Backend) normForward(op, kernel string, x, gamma, beta *tensor.Tensor, p []int32, eps float32, groups [3]int) (*tensor.Tensor, error) {
	ins := nonNil(x, gamma, beta)
	if err := b.check(op, ins...); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x", "gamma", "beta"}, ins...); err != nil {
		return nil, err
	}
	return b.kernelOut(op, x.Shape(), ins, func(in []*buffer, out *buffer) ([]launch, error) {
		g, bt := out, out
		if gamma != nil {
			g, bt = in[1], in[2]
		}
		return []launch{{kernel: kernel, bufs: []*buffer{in[0], g, bt, out}, p: p, f: []float32{eps}, groups: groups}}, nil
	})
}

// normBackward runs a norm's backward kernel (dx and per-row or per-group
// stats) and then its affine kernel (dgamma, dbeta) in one GL call.
func (b *Backend) normBackward(op, kernel string, dout, x, gamma *tensor.Tensor, nStats int, p []int32, eps float32, groups [3]int,
	affineKernel string, affineP []int32, c int, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	ins := nonNil(dout, x, gamma)
	if err := b.check(op, ins...); err != nil {
		return nil, nil, nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "x", "gamma"}, ins...); err != nil {
		return nil, nil, nil, err
	}
	if !dout.Shape().Equal(x.Shape()) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, x is %s", dout.Shape(), x.Shape())
	}
	if gamma == nil && (need.Has(tensor.GradW) || need.Has(tensor.GradB)) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrArg, "gradients of gamma/beta asked for a norm without affine")
	}
	if gamma != nil && !(gamma.Rank() == 1 && gamma.Dim(0) == c) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "gamma is %s, want (%d)", gamma.Shape(), c)
	}
	wantDX := need.Has(tensor.GradX)
	wantAff := need.Has(tensor.GradW) || need.Has(tensor.GradB)
	err = b.call(op, func() error {
		in, err := bufs(ins...)
		if err != nil {
			return err
		}
		var results []*tensor.Tensor
		fail := func(err error) error {
			for _, t := range results {
				t.Free()
			}
			return err
		}
		stats, err := b.dev.pool.alloc(8 * nStats)
		if err != nil {
			return err
		}
		defer b.dev.pool.release(stats)
		dxBuf := stats
		if wantDX {
			t, g, err := b.alloc(x.Shape(), tensor.F32)
			if err != nil {
				return err
			}
			dx, dxBuf = t, g
			results = append(results, t)
		}
		gb := stats
		if gamma != nil {
			gb = in[2]
		}
		pp := append([]int32(nil), p...)
		if wantDX {
			pp = append(pp, 1)
		} else {
			pp = append(pp, 0)
		}
		if err := b.dev.run(launch{kernel: kernel, bufs: []*buffer{in[0], in[1], gb, dxBuf, stats}, p: pp, f: []float32{eps}, groups: groups}); err != nil {
			return fail(err)
		}
		if !wantAff {
			return nil
		}
		dg, dgBuf, err := b.alloc(tensor.Shape{c}, tensor.F32)
		if err != nil {
			return fail(err)
		}
		results = append(results, dg)
		db, dbBuf, err := b.alloc(tensor.Shape{c}, tensor.F32)
		if err != nil {
			return fail(err)
		}
		results = append(results, db)
		if err := b.dev.run(launch{kernel: affineKernel, bufs: []*buffer{in[0], in[1], stats, dgBuf, dbBuf}, p: affineP, groups: b.dev.tileGroups(c)}); err != nil {
			return fail(err)
		}
		dgamma, dbeta = dg, db
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if !need.Has(tensor.GradW) && dgamma != nil {
		dgamma.Free()
		dgamma = nil
	}
	if !need.Has(tensor.GradB) && dbeta != nil {
		dbeta.Free()
		dbeta = nil
	}
	return dx, dgamma, dbeta, nil
}

// groupDims checks x (N, C, ...) against groups and returns N, C, S.
func groupDims(op string, x *tensor.Tensor, groups int) (int, int, int, error) {
	xs := x.Shape()
	if len(xs) < 2 || groups < 1 || xs[1]%groups != 0 {
		return 0, 0, 0, tensor.Errorf(op, tensor.ErrShape, "x is %s with %d groups: want (N, C, ...) with C divisible by groups", xs, groups)
	}
	return xs[0], xs[1], xs.Numel() / (xs[0] * xs[1]), nil
}

// GroupNorm normalizes each group of channels (groupnorm_forward.comp).
func (b *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32) (*tensor.Tensor, error) {
	const op = "groupnorm"
	if err := b.check(op, nonNil(x, gamma, beta)...); err != nil {
		return nil, err
	}
	n, c, s, err := groupDims(op, x, groups)
	if err != nil {
		return nil, err
	}
	if err := affineArgs(op, c, gamma, beta); err != nil {
		return nil, err
	}
	aff := 0
	if gamma != nil {
		aff = 1
	}
	cg := c / groups
	return b.normForward(op, "groupnorm_forward", x, gamma, beta, i32(n*groups, cg*s, s, groups, cg, aff), eps, b.dev.tileGroups(n*groups))
}

// GroupNormBackward returns dx, dgamma and dbeta (groupnorm_backward.comp,
// groupnorm_backward_affine.comp), recomputing the statistics from x.
func (b *Backend) GroupNormBackward(dout, x, gamma *tensor.Tensor, groups int, eps float32, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	const op = "groupnorm backward"
	if err := b.check(op, nonNil(dout, x, gamma)...); err != nil {
		return nil, nil, nil, err
	}
	n, c, s, err := groupDims(op, x, groups)
	if err != nil {
		return nil, nil, nil, err
	}
	aff := 0
	if gamma != nil {
		aff = 1
	}
	cg := c / groups
	return b.normBackward(op, "groupnorm_backward", dout, x, gamma, n*groups, i32(n*groups, cg*s, s, groups, cg, aff), eps, b.dev.tileGroups(n*groups),
		"groupnorm_backward_affine", i32(n, c, s, groups, cg), c, need)
}

// LayerNorm normalizes over the last dimension (layernorm_forward.comp).
func (b *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) (*tensor.Tensor, error) {
	const op = "layernorm"
	if err := b.check(op, nonNil(x, gamma, beta)...); err != nil {
		return nil, err
	}
	if x.Rank() < 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "x is %s", x.Shape())
	}
	c := x.Dim(-1)
	if err := affineArgs(op, c, gamma, beta); err != nil {
		return nil, err
	}
	aff := 0
	if gamma != nil {
		aff = 1
	}
	rows := x.Numel() / c
	return b.normForward(op, "layernorm_forward", x, gamma, beta, i32(rows, c, aff), eps, b.dev.tileGroups(rows))
}

// LayerNormBackward returns dx, dgamma and dbeta (layernorm_backward.comp,
// layernorm_backward_affine.comp), recomputing the statistics from x.
func (b *Backend) LayerNormBackward(dout, x, gamma *tensor.Tensor, eps float32, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	const op = "layernorm backward"
	if err := b.check(op, nonNil(dout, x, gamma)...); err != nil {
		return nil, nil, nil, err
	}
	if x.Rank() < 1 {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "x is %s", x.Shape())
	}
	c := x.Dim(-1)
	rows := x.Numel() / c
	aff := 0
	if gamma != nil {
		aff = 1
	}
	return b.normBackward(op, "layernorm_backward", dout, x, gamma, rows, i32(rows, c, aff), eps, b.dev.tileGroups(rows),
		"layernorm_backward_affine", i32(rows, c), c, need)
}
