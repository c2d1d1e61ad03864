package optest

import (
	"math"

	"lorastudio/engine/tensor"
)

// The float64 reference: plain loops, one function per op, no cleverness.
// Every slice is row-major with the shape given in its comment.

func strides(s tensor.Shape) []int { return s.Strides() }

// unravel writes the multi-index of linear index i in shape s into idx.
func unravel(i int, s tensor.Shape, idx []int) {
	for d := len(s) - 1; d >= 0; d-- {
		idx[d] = i % s[d]
		i /= s[d]
	}
}

// bcastIndex is the linear index into a tensor of shape in broadcast to the
// multi-index idx of shape out.
func bcastIndex(idx []int, in, out tensor.Shape) int {
	off, st := 0, strides(in)
	for d := range in {
		od := d + len(out) - len(in)
		if in[d] != 1 {
			off += idx[od] * st[d]
		}
	}
	return off
}

// refMatMul: a (batch.., M, K) or (.., K, M); b (batch.., K, N), (.., N, K) or
// rank 2 shared; bias (N) or nil. Returns (batch.., M, N).
func refMatMul(a, b, bias []float64, as, bs tensor.Shape, ta, tb bool) []float64 {
	d, err := tensor.MatMulShape(as, bs, nil, ta, tb)
	if err != nil {
		panic(err)
	}
	batch := as[:len(as)-2].Numel()
	M, N := d.Out[len(d.Out)-2], d.N
	K := d.K
	out := make([]float64, batch*M*N)
	for p := 0; p < batch; p++ {
		bo := p * K * N
		if len(bs) == 2 {
			bo = 0
		}
		for i := 0; i < M; i++ {
			for j := 0; j < N; j++ {
				var s float64
				for k := 0; k < K; k++ {
					av := a[p*M*K+i*K+k]
					if ta {
						av = a[p*M*K+k*M+i]
					}
					bv := b[bo+k*N+j]
					if tb {
						bv = b[bo+j*K+k]
					}
					s += av * bv
				}
				if bias != nil {
					s += bias[j]
				}
				out[p*M*N+i*N+j] = s
			}
		}
	}
	return out
}

// refConv2D: x (N, Cin, H, W), w (Cout, Cin, kh, kw), bias (Cout) or nil.
func refConv2D(x, w, bias []float64, xs, ws tensor.Shape, p tensor.Conv2DParams) []float64 {
	os, err := tensor.Conv2DShape(xs, ws, nil, p)
	if err != nil {
		panic(err)
	}
	N, Cin, H, W := xs[0], xs[1], xs[2], xs[3]
	Cout, KH, KW, Ho, Wo, S := ws[0], ws[2], ws[3], os[2], os[3], p.StrideOr1()
	out := make([]float64, os.Numel())
	for n := 0; n < N; n++ {
		for co := 0; co < Cout; co++ {
			for oh := 0; oh < Ho; oh++ {
				for ow := 0; ow < Wo; ow++ {
					var s float64
					if bias != nil {
						s = bias[co]
					}
					for ci := 0; ci < Cin; ci++ {
						for i := 0; i < KH; i++ {
							for j := 0; j < KW; j++ {
								ih, iw := oh*S-p.PadTop+i, ow*S-p.PadLeft+j
								if ih >= 0 && ih < H && iw >= 0 && iw < W {
									s += x[((n*Cin+ci)*H+ih)*W+iw] * w[((co*Cin+ci)*KH+i)*KW+j]
								}
							}
						}
					}
					out[((n*Cout+co)*Ho+oh)*Wo+ow] = s
				}
			}
		}
	}
	return out
}

// refNorm normalizes segments of segLen elements; channel maps (segment,
// element) to the affine channel. gamma, beta may be nil.
func refNorm(x, gamma, beta []float64, segLen int, eps float64, channel func(seg, i int) int) []float64 {
	out := make([]float64, len(x))
	for s := 0; s < len(x)/segLen; s++ {
		seg := x[s*segLen : (s+1)*segLen]
		var mean, v float64
		for _, e := range seg {
			mean += e
		}
		mean /= float64(segLen)
		for _, e := range seg {
			v += (e - mean) * (e - mean)
		}
		v /= float64(segLen)
		for i, e := range seg {
			y := (e - mean) / math.Sqrt(v+eps)
			if gamma != nil {
				c := channel(s, i)
				y = y*gamma[c] + beta[c]
			}
			out[s*segLen+i] = y
		}
	}
	return out
}

// refGroupNorm: x (N, C, ...), gamma/beta (C).
func refGroupNorm(x, gamma, beta []float64, xs tensor.Shape, groups int, eps float64) []float64 {
	N, C := xs[0], xs[1]
	S := xs.Numel() / (N * C)
	cg := C / groups
	return refNorm(x, gamma, beta, cg*S, eps, func(seg, i int) int { return (seg%groups)*cg + i/S })
}

// refLayerNorm: x (..., C), gamma/beta (C).
func refLayerNorm(x, gamma, beta []float64, xs tensor.Shape, eps float64) []float64 {
	return refNorm(x, gamma, beta, xs[len(xs)-1], eps, func(_, i int) int { return i })
}

// refSoftmax over the last dimension C.
func refSoftmax(x []float64, C int) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x)/C; r++ {
		m := math.Inf(-1)
		for _, e := range x[r*C : (r+1)*C] {
			m = math.Max(m, e)
		}
		var s float64
		for i, e := range x[r*C : (r+1)*C] {
			out[r*C+i] = math.Exp(e - m)
			s += out[r*C+i]
		}
		for i := r * C; i < (r+1)*C; i++ {
			out[i] /= s
		}
	}
	return out
}

// refAttention: q (B, H, Nq, D), k/v (B, H, Nk, D); returns out (B, H, Nq, D)
// and lse (B, H, Nq).
func refAttention(q, k, v []float64, qs, ks tensor.Shape, scale float64, causal bool) (out, lse []float64) {
	BH, Nq, Nk, D := qs[0]*qs[1], qs[2], ks[2], qs[3]
	out = make([]float64, len(q))
	lse = make([]float64, BH*Nq)
	for h := 0; h < BH; h++ {
		for i := 0; i < Nq; i++ {
			vis := Nk
			if causal {
				vis = min(i+1, Nk)
			}
			sc := make([]float64, vis)
			m := math.Inf(-1)
			for j := 0; j < vis; j++ {
				var s float64
				for d := 0; d < D; d++ {
					s += q[(h*Nq+i)*D+d] * k[(h*Nk+j)*D+d]
				}
				sc[j] = s * scale
				m = math.Max(m, sc[j])
			}
			var sum float64
			for j := range sc {
				sc[j] = math.Exp(sc[j] - m)
				sum += sc[j]
			}
			lse[h*Nq+i] = m + math.Log(sum)
			for j := range sc {
				for d := 0; d < D; d++ {
					out[(h*Nq+i)*D+d] += sc[j] / sum * v[(h*Nk+j)*D+d]
				}
			}
		}
	}
	return out, lse
}

// refAct is the activation in float64.
func refAct(f tensor.Act, x float64) float64 {
	switch f {
	case tensor.SiLU:
		return x / (1 + math.Exp(-x))
	case tensor.GELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case tensor.GELUTanh:
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	case tensor.QuickGELU:
		return x / (1 + math.Exp(-1.702*x))
	}
	panic("unknown activation")
}

// refGEGLU: x (..., 2F) → (..., F) = x[..., :F] * f(x[..., F:]).
func refGEGLU(x []float64, F int, f tensor.Act) []float64 {
	out := make([]float64, len(x)/2)
	for r := 0; r < len(out)/F; r++ {
		for j := 0; j < F; j++ {
			out[r*F+j] = x[2*r*F+j] * refAct(f, x[2*r*F+F+j])
		}
	}
	return out
}

// refBinary: a op b with numpy broadcasting.
func refBinary(op tensor.BinaryOp, a, b []float64, as, bs tensor.Shape) []float64 {
	os, err := tensor.BroadcastShapes(as, bs)
	if err != nil {
		panic(err)
	}
	out := make([]float64, os.Numel())
	idx := make([]int, len(os))
	for i := range out {
		unravel(i, os, idx)
		p, q := a[bcastIndex(idx, as, os)], b[bcastIndex(idx, bs, os)]
		switch op {
		case tensor.Add:
			out[i] = p + q
		case tensor.Sub:
			out[i] = p - q
		case tensor.Mul:
			out[i] = p * q
		}
	}
	return out
}

// refReduceTo sums x (xs) down to shape to.
func refReduceTo(x []float64, xs, to tensor.Shape) []float64 {
	out := make([]float64, to.Numel())
	idx := make([]int, len(xs))
	for i, e := range x {
		unravel(i, xs, idx)
		out[bcastIndex(idx, to, xs)] += e
	}
	return out
}

// refBroadcastTo repeats x (xs) to shape to.
func refBroadcastTo(x []float64, xs, to tensor.Shape) []float64 {
	out := make([]float64, to.Numel())
	idx := make([]int, len(to))
	for i := range out {
		unravel(i, to, idx)
		out[i] = x[bcastIndex(idx, xs, to)]
	}
	return out
}

// refPermute: out.Dim(i) = x.Dim(perm[i]).
func refPermute(x []float64, xs tensor.Shape, perm []int) []float64 {
	os, _ := tensor.PermuteShape(xs, perm)
	xst := strides(xs)
	out := make([]float64, len(x))
	idx := make([]int, len(os))
	for i := range out {
		unravel(i, os, idx)
		off := 0
		for d, p := range perm {
			off += idx[d] * xst[p]
		}
		out[i] = x[off]
	}
	return out
}

// refSlice returns x[start:end] along axis.
func refSlice(x []float64, xs tensor.Shape, axis, start, end int) []float64 {
	os := xs.Clone()
	os[axis] = end - start
	out := make([]float64, os.Numel())
	idx := make([]int, len(os))
	xst := strides(xs)
	for i := range out {
		unravel(i, os, idx)
		off := 0
		for d := range idx {
			v := idx[d]
			if d == axis {
				v += start
			}
			off += v * xst[d]
		}
		out[i] = x[off]
	}
	return out
}

// refConcat joins parts (shapes ss) along axis.
func refConcat(parts [][]float64, ss []tensor.Shape, axis int) []float64 {
	os, _, _ := tensor.ConcatShape(axis, ss...)
	out := make([]float64, 0, os.Numel())
	outer := os[:axis].Numel()
	for o := 0; o < outer; o++ {
		for i, p := range parts {
			blk := ss[i][axis:].Numel()
			out = append(out, p[o*blk:(o+1)*blk]...)
		}
	}
	return out
}

// refUpsample2x: x (N, C, H, W) → (N, C, 2H, 2W) nearest.
func refUpsample2x(x []float64, xs tensor.Shape) []float64 {
	NC, H, W := xs[0]*xs[1], xs[2], xs[3]
	out := make([]float64, 4*len(x))
	for c := 0; c < NC; c++ {
		for oh := 0; oh < 2*H; oh++ {
			for ow := 0; ow < 2*W; ow++ {
				out[(c*2*H+oh)*2*W+ow] = x[(c*H+oh/2)*W+ow/2]
			}
		}
	}
	return out
}

// refTimestep is diffusers' get_timestep_embedding with torch's float32
// frequencies and arguments: t (N) → (N, dim).
func refTimestep(t []float64, dim int, flip bool, shift float64) []float64 {
	half := dim / 2
	out := make([]float64, len(t)*dim)
	for n, tv := range t {
		for i := 0; i < half; i++ {
			e := float32(-math.Log(10000)) * float32(i) / (float32(half) - float32(shift))
			f := float32(math.Exp(float64(e)))
			arg := float64(float32(tv) * f)
			s, c := math.Sin(arg), math.Cos(arg)
			if flip {
				s, c = c, s
			}
			out[n*dim+i], out[n*dim+half+i] = s, c
		}
	}
	return out
}

// refMSE is mean((p - t)^2).
func refMSE(p, t []float64) []float64 {
	var s float64
	for i := range p {
		s += (p[i] - t[i]) * (p[i] - t[i])
	}
	return []float64{s / float64(len(p))}
}
