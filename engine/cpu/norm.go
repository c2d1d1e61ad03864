package cpu

import (
	"math"

	"lorastudio/engine/tensor"
)

// GroupNorm and LayerNorm share one kernel: both normalize contiguous
// segments of x. A GroupNorm segment is one (n, group): Cg = C/groups
// channels × S spatial elements; a LayerNorm segment is one row of C.
//
//	xhat = (x - mean) * rstd,  rstd = 1/sqrt(var + eps)   (biased variance)
//	y    = xhat * gamma[c] + beta[c]
//
// Backward, per segment of m elements, with dxhat = dout * gamma[c]:
//
//	dx     = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//	dgamma = Σ dout * xhat,  dbeta = Σ dout   (over every segment, per channel)

// normLayout describes the segments: segs segments of segLen elements; each
// segment is made of runs of run elements that share one affine channel, the
// first run of segment seg having channel (seg % perSeg)*(segLen/run).
type normLayout struct {
	segs, segLen int
	run          int // elements per channel inside a segment (S for GroupNorm, 1 for LayerNorm)
	perSeg       int // segments per sample: groups for GroupNorm, 1 for LayerNorm
	channels     int
}

// channel returns the affine channel of element i of segment seg.
func (l normLayout) channel(seg, i int) int {
	return (seg%l.perSeg)*(l.segLen/l.run) + i/l.run
}

// segStats returns the mean and rstd of one segment, accumulated in float64
// over four independent partial sums, so the adds overlap rather than wait
// on one another.
func segStats(x []float32, eps float32) (mean, rstd float64) {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	mean = (s0 + s1 + s2 + s3) / float64(len(x))
	var q0, q1, q2, q3 float64
	i = 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := float64(v[0])-mean, float64(v[1])-mean, float64(v[2])-mean, float64(v[3])-mean
		q0 += d0 * d0
		q1 += d1 * d1
		q2 += d2 * d2
		q3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - mean
		q0 += d * d
	}
	return mean, 1 / math.Sqrt((q0+q1+q2+q3)/float64(len(x))+float64(eps))
}

func (b *Backend) normForward(op string, x, gamma, beta *tensor.Tensor, eps float32, lay func(tensor.Shape) (normLayout, error)) (*tensor.Tensor, error) {
	ts, names := []*tensor.Tensor{x}, []string{"x"}
	if (gamma == nil) != (beta == nil) {
		return nil, tensor.Errorf(op, tensor.ErrArg, "gamma and beta must both be given or both be nil")
	}
	if gamma != nil {
		ts, names = append(ts, gamma, beta), append(names, "gamma", "beta")
	}
	v, err := b.f32s(op, names, ts...)
	if err != nil {
		return nil, err
	}
	l, err := lay(x.Shape())
	if err != nil {
		return nil, err
	}
	if gamma != nil && (!gamma.Shape().Equal(tensor.Shape{l.channels}) || !beta.Shape().Equal(tensor.Shape{l.channels})) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "x is %s, gamma %s, beta %s: want (%d)", x.Shape(), gamma.Shape(), beta.Shape(), l.channels)
	}
	out, ov, err := b.newF32Dirty(op, x.Shape())
	if err != nil {
		return nil, err
	}
	xv := v[0]
	parallelFor(l.segs, l.segLen, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			seg := xv[s*l.segLen : (s+1)*l.segLen]
			o := ov[s*l.segLen : (s+1)*l.segLen]
			mean, rstd := segStats(seg, eps)
			m, r := float32(mean), float32(rstd)
			if l.run == 1 && gamma != nil {
				// LayerNorm: every element has its own channel, so the
				// affine rows are read alongside instead of one channel
				// lookup (two divisions) per element.
				c0 := l.channel(s, 0)
				gs, bs := v[1][c0:c0+l.segLen], v[2][c0:c0+l.segLen]
				for i, xi := range seg {
					o[i] = (xi-m)*r*gs[i] + bs[i]
				}
				continue
			}
			for i0 := 0; i0 < l.segLen; i0 += l.run {
				// one run of elements sharing channel c: y = (x - mean) * rstd * gamma + beta
				g, bb := r, -m*r
				if gamma != nil {
					c := l.channel(s, i0)
					g, bb = r*v[1][c], -m*r*v[1][c]+v[2][c]
				}
				xs, os := seg[i0:i0+l.run], o[i0:i0+l.run]
				for i, xi := range xs {
					os[i] = xi*g + bb
				}
			}
		}
	})
	return out, nil
}

func (b *Backend) normBackward(op string, dout, x, gamma *tensor.Tensor, eps float32, need tensor.GradMask, lay func(tensor.Shape) (normLayout, error)) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	ts, names := []*tensor.Tensor{dout, x}, []string{"dout", "x"}
	if gamma != nil {
		ts, names = append(ts, gamma), append(names, "gamma")
	} else if need&(tensor.GradW|tensor.GradB) != 0 {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrArg, "dgamma/dbeta requested without gamma")
	}
	v, err := b.f32s(op, names, ts...)
	if err != nil {
		return nil, nil, nil, err
	}
	if !dout.Shape().Equal(x.Shape()) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, x is %s", dout.Shape(), x.Shape())
	}
	l, err := lay(x.Shape())
	if err != nil {
		return nil, nil, nil, err
	}
	if gamma != nil && !gamma.Shape().Equal(tensor.Shape{l.channels}) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "x is %s, gamma %s: want (%d)", x.Shape(), gamma.Shape(), l.channels)
	}
	dv, xv := v[0], v[1]
	g := func(c int) float32 { return 1 }
	if gamma != nil {
		gv := v[2]
		g = func(c int) float32 { return gv[c] }
	}
	var dxv []float32
	if need.Has(tensor.GradX) {
		if dx, dxv, err = b.newF32(op, x.Shape()); err != nil {
			return nil, nil, nil, err
		}
		parallelFor(l.segs, l.segLen, func(lo, hi int) {
			for s := lo; s < hi; s++ {
				seg := xv[s*l.segLen : (s+1)*l.segLen]
				ds := dv[s*l.segLen : (s+1)*l.segLen]
				mean, rstd := segStats(seg, eps)
				var sumD, sumDX float64 // Σ dxhat, Σ dxhat*xhat
				for i, xi := range seg {
					dh := float64(ds[i] * g(l.channel(s, i)))
					sumD += dh
					sumDX += dh * (float64(xi) - mean) * rstd
				}
				m := float64(l.segLen)
				o := dxv[s*l.segLen : (s+1)*l.segLen]
				for i, xi := range seg {
					dh := float64(ds[i] * g(l.channel(s, i)))
					xh := (float64(xi) - mean) * rstd
					o[i] = float32(rstd * (dh - sumD/m - xh*sumDX/m))
				}
			}
		})
	}
	if need&(tensor.GradW|tensor.GradB) != 0 {
		dg := make([]float64, l.channels)
		db := make([]float64, l.channels)
		for s := 0; s < l.segs; s++ {
			seg := xv[s*l.segLen : (s+1)*l.segLen]
			ds := dv[s*l.segLen : (s+1)*l.segLen]
			mean, rstd := segStats(seg, eps)
			for i, xi := range seg {
				c := l.channel(s, i)
				dg[c] += float64(ds[i]) * (float64(xi) - mean) * rstd
				db[c] += float64(ds[i])
			}
		}
		toF32 := func(a []float64) []float32 {
			o := make([]float32, len(a))
			for i, e := range a {
				o[i] = float32(e)
			}
			return o
		}
		if need.Has(tensor.GradW) {
			if dgamma, err = b.Upload(toF32(dg), tensor.Shape{l.channels}, tensor.F32); err != nil {
				tensor.FreeAll(dx)
				return nil, nil, nil, err
			}
		}
		if need.Has(tensor.GradB) {
			if dbeta, err = b.Upload(toF32(db), tensor.Shape{l.channels}, tensor.F32); err != nil {
				tensor.FreeAll(dx, dgamma)
				return nil, nil, nil, err
			}
		}
	}
	return dx, dgamma, dbeta, nil
}
