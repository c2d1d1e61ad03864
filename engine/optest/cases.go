package optest

import (
	"fmt"
	"math"
	"math/rand"

	"lorastudio/engine/tensor"
)

// x is a differentiable F32 input.
func x(name string, shape ...int) Input { return Input{Name: name, Shape: shape, Grad: true} }

// data is a non-differentiable F32 input.
func data(name string, shape ...int) Input { return Input{Name: name, Shape: shape} }

// w16 is a differentiable weight stored packed as dt.
func w16(name string, dt tensor.DType, shape ...int) Input {
	return Input{Name: name, Shape: shape, DType: dt, Grad: true}
}

// one wraps a single-output forward.
func one(f func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error)) func(tensor.Backend, []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		t, err := f(b, in)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{t}, nil
	}
}

// grads collects non-nil gradient results, freeing them all on error.
func grads(err error, ts ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err != nil {
		tensor.FreeAll(ts...)
		return nil, err
	}
	var out []*tensor.Tensor
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// pick chooses the big or the small variant of a size.
func pick(small bool, big, sm int) int {
	if small {
		return sm
	}
	return big
}

// Cases returns the parity table. small selects shapes light enough for
// llvmpipe; both variants keep sizes off every tile multiple.
func Cases(small bool) []Case {
	var cs []Case
	cs = append(cs, matmulCases(small)...)
	cs = append(cs, convCases(small)...)
	cs = append(cs, normCases(small)...)
	cs = append(cs, attentionCases(small)...)
	cs = append(cs, pointwiseCases(small)...)
	cs = append(cs, layoutCases(small)...)
	return cs
}

func matmulCase(name string, a, b Input, bias bool, ta, tb bool) Case {
	ins := []Input{a, b}
	n := b.Shape[len(b.Shape)-1]
	if tb {
		n = b.Shape[len(b.Shape)-2]
	}
	if bias {
		ins = append(ins, x("bias", n))
	}
	return Case{
		Name:   name,
		Inputs: ins,
		Forward: one(func(bk tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
			var bs *tensor.Tensor
			if bias {
				bs = in[2]
			}
			return bk.MatMul(in[0], in[1], bs, ta, tb)
		}),
		Backward: func(bk tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			need := tensor.GradX | tensor.GradW
			if bias {
				need |= tensor.GradB
			}
			da, db, dbias, err := bk.MatMulBackward(d[0], in[0], in[1], ta, tb, need)
			return grads(err, da, db, dbias)
		},
		Ref: func(v [][]float64) [][]float64 {
			var bs []float64
			if bias {
				bs = v[2]
			}
			return [][]float64{refMatMul(v[0], v[1], bs, a.Shape, b.Shape, ta, tb)}
		},
	}
}

func matmulCases(s bool) []Case {
	M, K, N := pick(s, 33, 7), pick(s, 65, 13), pick(s, 13, 5)
	return []Case{
		matmulCase("matmul_nn_shared_bias", x("a", 2, M, K), x("b", K, N), true, false, false),
		matmulCase("linear_f16", x("x", 3, 5, K), w16("w", tensor.F16, N, K), true, false, true),
		matmulCase("linear_bf16", x("x", M, K), w16("w", tensor.BF16, N, K), false, false, true),
		matmulCase("matmul_tt_batched", x("a", 2, 3, K, M), x("b", 2, 3, N, K), false, true, true),
		matmulCase("matmul_tn_shared", x("a", 2, K, M), x("b", K, N), true, true, false),
		matmulCase("matmul_nt_batched", x("a", 3, M, K), x("b", 3, N, K), false, false, true),
		matmulCase("matmul_1x1", x("a", 1, 1), x("b", 1, 1), true, false, false),
		matmulCase("matmul_vec", x("a", 1, K), x("b", K, 1), true, false, false),
	}
}

func convCase(name string, xs, ws []int, wdt tensor.DType, bias bool, p tensor.Conv2DParams) Case {
	ins := []Input{x("x", xs...), w16("w", wdt, ws...)}
	if bias {
		ins = append(ins, x("bias", ws[0]))
	}
	return Case{
		Name:   name,
		Inputs: ins,
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
			var bs *tensor.Tensor
			if bias {
				bs = in[2]
			}
			return b.Conv2D(in[0], in[1], bs, p)
		}),
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			need := tensor.GradX | tensor.GradW
			if bias {
				need |= tensor.GradB
			}
			dx, dw, db, err := b.Conv2DBackward(d[0], in[0], in[1], p, need)
			return grads(err, dx, dw, db)
		},
		Ref: func(v [][]float64) [][]float64 {
			var bs []float64
			if bias {
				bs = v[2]
			}
			return [][]float64{refConv2D(v[0], v[1], bs, xs, ws, p)}
		},
	}
}

func convCases(s bool) []Case {
	H, W := pick(s, 13, 7), pick(s, 11, 5)
	cs := []Case{
		convCase("conv3x3_s1", []int{2, 3, H, W}, []int{5, 3, 3, 3}, tensor.F32, true, tensor.ConvParams(1, 1)),
		convCase("conv3x3_s2_f16", []int{1, 4, H, W + 1}, []int{6, 4, 3, 3}, tensor.F16, true, tensor.ConvParams(2, 1)),
		convCase("conv1x1", []int{2, 5, 3, W}, []int{4, 5, 1, 1}, tensor.F32, false, tensor.ConvParams(1, 0)),
		convCase("conv3x3_s2_pad_br", []int{1, 3, pick(s, 8, 6), 7}, []int{2, 3, 3, 3}, tensor.F32, true,
			tensor.Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1}),
		convCase("conv3x3_1px", []int{3, 2, 1, 1}, []int{1, 2, 3, 3}, tensor.F32, true, tensor.ConvParams(1, 1)),
	}
	if !s {
		// More output pixels than one im2col block of the CPU backend (2048).
		cs = append(cs, convCase("conv3x3_wide", []int{2, 2, 47, 53}, []int{3, 2, 3, 3}, tensor.F32, true, tensor.ConvParams(1, 1)))
	}
	return cs
}

func groupNormCase(name string, xs []int, groups int, affine bool) Case {
	C := xs[1]
	ins := []Input{x("x", xs...)}
	if affine {
		ins = append(ins, x("gamma", C), x("beta", C))
	}
	const eps = 1e-5
	return Case{
		Name:   name,
		Inputs: ins,
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
			if affine {
				return b.GroupNorm(in[0], in[1], in[2], groups, eps)
			}
			return b.GroupNorm(in[0], nil, nil, groups, eps)
		}),
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if affine {
				dx, dg, db, err := b.GroupNormBackward(d[0], in[0], in[1], groups, eps, tensor.GradAll)
				return grads(err, dx, dg, db)
			}
			dx, dg, db, err := b.GroupNormBackward(d[0], in[0], nil, groups, eps, tensor.GradX)
			return grads(err, dx, dg, db)
		},
		Ref: func(v [][]float64) [][]float64 {
			if affine {
				return [][]float64{refGroupNorm(v[0], v[1], v[2], xs, groups, eps)}
			}
			return [][]float64{refGroupNorm(v[0], nil, nil, xs, groups, eps)}
		},
	}
}

func layerNormCase(name string, xs []int, affine bool) Case {
	C := xs[len(xs)-1]
	ins := []Input{x("x", xs...)}
	if affine {
		ins = append(ins, x("gamma", C), x("beta", C))
	}
	const eps = 1e-5
	return Case{
		Name:   name,
		Inputs: ins,
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
			if affine {
				return b.LayerNorm(in[0], in[1], in[2], eps)
			}
			return b.LayerNorm(in[0], nil, nil, eps)
		}),
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if affine {
				dx, dg, db, err := b.LayerNormBackward(d[0], in[0], in[1], eps, tensor.GradAll)
				return grads(err, dx, dg, db)
			}
			dx, dg, db, err := b.LayerNormBackward(d[0], in[0], nil, eps, tensor.GradX)
			return grads(err, dx, dg, db)
		},
		Ref: func(v [][]float64) [][]float64 {
			if affine {
				return [][]float64{refLayerNorm(v[0], v[1], v[2], xs, eps)}
			}
			return [][]float64{refLayerNorm(v[0], nil, nil, xs, eps)}
		},
	}
}

func normCases(s bool) []Case {
	return []Case{
		groupNormCase("groupnorm_affine", []int{2, 6, pick(s, 13, 5), 7}, 3, true),
		groupNormCase("groupnorm_plain", []int{1, 4, pick(s, 33, 7)}, 2, false),
		groupNormCase("groupnorm_group_per_channel", []int{2, 5, 3, 1}, 5, true),
		layerNormCase("layernorm_affine", []int{2, pick(s, 7, 3), pick(s, 65, 13)}, true),
		layerNormCase("layernorm_plain", []int{pick(s, 13, 3), 33}, false),
		{
			Name:    "softmax",
			Inputs:  []Input{x("x", 2, pick(s, 7, 3), pick(s, 65, 13))},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Softmax(in[0]) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.SoftmaxBackward(d[0], out[0])
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refSoftmax(v[0], pick(s, 65, 13))} },
		},
	}
}

func attentionCase(name string, B, H, Nq, Nk, D int, causal bool) Case {
	scale := 1 / math.Sqrt(float64(D))
	qs, ks := tensor.Shape{B, H, Nq, D}, tensor.Shape{B, H, Nk, D}
	return Case{
		Name:   name,
		Inputs: []Input{x("q", qs...), x("k", ks...), x("v", ks...)},
		Forward: func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			out, lse, err := b.Attention(in[0], in[1], in[2], float32(scale), causal)
			if err != nil {
				return nil, err
			}
			return []*tensor.Tensor{out, lse}, nil
		},
		NDiff: 1, // lse is compared but not differentiated
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			dq, dk, dv, err := b.AttentionBackward(d[0], in[0], in[1], in[2], out[0], out[1], float32(scale), causal)
			return grads(err, dq, dk, dv)
		},
		Ref: func(v [][]float64) [][]float64 {
			o, l := refAttention(v[0], v[1], v[2], qs, ks, scale, causal)
			return [][]float64{o, l}
		},
	}
}

func attentionCases(s bool) []Case {
	return []Case{
		attentionCase("attention_self", 2, 3, pick(s, 33, 7), pick(s, 33, 7), 8, false),
		attentionCase("attention_cross", 1, 2, pick(s, 65, 9), 7, pick(s, 16, 8), false),
		attentionCase("attention_causal", 2, 2, pick(s, 13, 5), pick(s, 13, 5), 8, true),
		attentionCase("attention_one_key", 1, 1, 3, 1, 4, false),
	}
}

func actCase(f tensor.Act, shape ...int) Case {
	return Case{
		Name:    "act_" + f.String(),
		Inputs:  []Input{x("x", shape...)},
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Activation(in[0], f) }),
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, err := b.ActivationBackward(d[0], in[0], f)
			return grads(err, dx)
		},
		Ref: func(v [][]float64) [][]float64 {
			o := make([]float64, len(v[0]))
			for i, e := range v[0] {
				o[i] = refAct(f, e)
			}
			return [][]float64{o}
		},
	}
}

func gegluCase(f tensor.Act, F int, lead ...int) Case {
	shape := append(append([]int(nil), lead...), 2*F)
	return Case{
		Name:    "geglu_" + f.String(),
		Inputs:  []Input{x("x", shape...)},
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.GEGLU(in[0], f) }),
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, err := b.GEGLUBackward(d[0], in[0], f)
			return grads(err, dx)
		},
		Ref: func(v [][]float64) [][]float64 { return [][]float64{refGEGLU(v[0], F, f)} },
	}
}

func binaryCase(op tensor.BinaryOp, as, bs []int) Case {
	return Case{
		Name:    fmt.Sprintf("%s_%v_%v", op, as, bs),
		Inputs:  []Input{x("a", as...), x("b", bs...)},
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Binary(op, in[0], in[1]) }),
		Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
			da, db, err := b.BinaryBackward(op, d[0], in[0], in[1], tensor.GradX|tensor.GradW)
			return grads(err, da, db)
		},
		Ref: func(v [][]float64) [][]float64 { return [][]float64{refBinary(op, v[0], v[1], as, bs)} },
	}
}

func pointwiseCases(s bool) []Case {
	L := pick(s, 65, 13)
	cs := []Case{}
	for _, f := range []tensor.Act{tensor.SiLU, tensor.GELU, tensor.GELUTanh, tensor.QuickGELU} {
		cs = append(cs, actCase(f, 3, 7, L))
	}
	cs = append(cs,
		gegluCase(tensor.GELU, pick(s, 33, 7), 2, 5),
		gegluCase(tensor.GELUTanh, 13, 3),
		binaryCase(tensor.Add, []int{2, 3, L}, []int{3, 1}),
		binaryCase(tensor.Add, []int{2, 3, 7}, []int{2, 3, 7}),
		binaryCase(tensor.Sub, []int{2, 1, 5}, []int{4, 1}),
		binaryCase(tensor.Mul, []int{2, 3, 7, 5}, []int{1, 3, 1, 1}),
		binaryCase(tensor.Mul, []int{1}, []int{2, 13}),
		Case{
			Name:    "scale",
			Inputs:  []Input{x("x", 2, 7, 13)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Scale(in[0], -0.37) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.Scale(d[0], -0.37)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 {
				return [][]float64{mapf(v[0], func(e float64) float64 { return -0.37 * e })}
			},
			Tol: 1e-6,
		},
		Case{
			Name:    "add_scalar",
			Inputs:  []Input{data("x", 3, 13)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.AddScalar(in[0], 1.5) }),
			Ref: func(v [][]float64) [][]float64 {
				return [][]float64{mapf(v[0], func(e float64) float64 { return e + 1.5 })}
			},
			Tol: 1e-6,
		},
		Case{
			Name:   "mse_loss",
			Inputs: []Input{x("pred", 2, 3, L), data("target", 2, 3, L)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
				return b.MSELoss(in[0], in[1])
			}),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.MSELossBackward(d[0], in[0], in[1])
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refMSE(v[0], v[1])} },
		},
		timestepCase("timestep_sdxl", 5, 32, true, 0),
		timestepCase("timestep_odd_shift", 3, 33, false, 1),
		castCase(tensor.F16), castCase(tensor.BF16),
	)
	return cs
}

func timestepCase(name string, n, dim int, flip bool, shift float64) Case {
	return Case{
		Name: name,
		Inputs: []Input{{Name: "t", Shape: tensor.Shape{n}, Gen: func(r *rand.Rand) float64 {
			return math.Floor(r.Float64() * 1000)
		}}},
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
			return b.TimestepEmbedding(in[0], dim, flip, float32(shift))
		}),
		Ref: func(v [][]float64) [][]float64 { return [][]float64{refTimestep(v[0], dim, flip, shift)} },
		Tol: 1e-5,
	}
}

// castCase casts to dt and back: the result must be the input rounded to dt.
func castCase(dt tensor.DType) Case {
	return Case{
		Name: "cast_" + dt.String(),
		Inputs: []Input{{Name: "x", Shape: tensor.Shape{3, 13}, Gen: func(r *rand.Rand) float64 {
			return r.NormFloat64() * math.Pow(10, float64(r.Intn(9)-4))
		}}},
		Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
			h, err := b.Cast(in[0], dt)
			if err != nil {
				return nil, err
			}
			defer h.Free()
			if h.DType() != dt {
				return nil, fmt.Errorf("cast gave %s, want %s", h.DType(), dt)
			}
			return b.Cast(h, tensor.F32)
		}),
		Ref: func(v [][]float64) [][]float64 {
			return [][]float64{mapf(v[0], func(e float64) float64 { return float64(tensor.RoundTo(float32(e), dt)) })}
		},
		Tol: 1e-9,
	}
}

func mapf(v []float64, f func(float64) float64) []float64 {
	o := make([]float64, len(v))
	for i, e := range v {
		o[i] = f(e)
	}
	return o
}

func layoutCases(s bool) []Case {
	L := pick(s, 13, 7)
	perm := func(xs []int, p []int) Case {
		return Case{
			Name:    fmt.Sprintf("permute_%v", p),
			Inputs:  []Input{x("x", xs...)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Permute(in[0], p...) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.Permute(d[0], tensor.InversePerm(p)...)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refPermute(v[0], xs, p)} },
			Tol: 1e-9,
		}
	}
	reduce := func(xs, to []int) Case {
		return Case{
			Name:    fmt.Sprintf("reduce_to_%v_%v", xs, to),
			Inputs:  []Input{x("x", xs...)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.ReduceTo(in[0], to) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.BroadcastTo(d[0], xs)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refReduceTo(v[0], xs, to)} },
		}
	}
	bcast := func(xs, to []int) Case {
		return Case{
			Name:    fmt.Sprintf("broadcast_to_%v_%v", xs, to),
			Inputs:  []Input{x("x", xs...)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.BroadcastTo(in[0], to) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.ReduceTo(d[0], xs)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refBroadcastTo(v[0], xs, to)} },
		}
	}
	mean := func(xs []int, axis int) Case {
		return Case{
			Name:   fmt.Sprintf("mean_%v_axis%d", xs, axis),
			Inputs: []Input{x("x", xs...)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
				return tensor.Mean(b, in[0], axis)
			}),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				full, err := b.BroadcastTo(d[0], xs)
				if err != nil {
					return nil, err
				}
				defer full.Free()
				dx, err := b.Scale(full, float32(d[0].Numel())/float32(tensor.Shape(xs).Numel()))
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 {
				to := tensor.Shape{1}
				if axis != tensor.AllAxes {
					to = tensor.Shape(xs).Clone()
					to[axis] = 1
				}
				r := refReduceTo(v[0], xs, to)
				k := float64(to.Numel()) / float64(len(v[0]))
				return [][]float64{mapf(r, func(e float64) float64 { return e * k })}
			},
		}
	}
	cs := []Case{
		perm([]int{2, 3, 5, L}, []int{0, 2, 1, 3}),
		perm([]int{2, 3, 5, L}, []int{3, 0, 2, 1}),
		perm([]int{1, 7}, []int{1, 0}),
		reduce([]int{2, 3, L}, []int{3, 1}),
		reduce([]int{2, 3, L}, []int{1}),
		reduce([]int{4, 1, 5}, []int{4, 1, 1}),
		bcast([]int{3, 1}, []int{2, 3, L}),
		bcast([]int{L}, []int{5, L}),
		mean([]int{2, 3, L}, 1),
		mean([]int{2, 3, L}, tensor.AllAxes),
		{
			Name:   "concat_axis1",
			Inputs: []Input{x("a", 2, 3, 5), x("b", 2, 4, 5), x("c", 2, 1, 5)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) {
				return b.Concat(1, in...)
			}),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				return b.Split(d[0], 1, 3, 4, 1)
			},
			Ref: func(v [][]float64) [][]float64 {
				return [][]float64{refConcat(v, []tensor.Shape{{2, 3, 5}, {2, 4, 5}, {2, 1, 5}}, 1)}
			},
			Tol: 1e-9,
		},
		{
			Name:   "split_last",
			Inputs: []Input{x("x", 3, L)},
			Forward: func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				return b.Split(in[0], -1, 5, L-5)
			},
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.Concat(-1, d...)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 {
				return [][]float64{refSlice(v[0], tensor.Shape{3, L}, 1, 0, 5), refSlice(v[0], tensor.Shape{3, L}, 1, 5, L)}
			},
			Tol: 1e-9,
		},
		{
			Name:    "slice_axis2",
			Inputs:  []Input{x("x", 2, 3, L)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Slice(in[0], 2, 2, L-1) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.SliceBackward(d[0], tensor.Shape{2, 3, L}, 2, 2)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refSlice(v[0], tensor.Shape{2, 3, L}, 2, 2, L-1)} },
			Tol: 1e-9,
		},
		{
			Name:    "reshape_view",
			Inputs:  []Input{x("x", 2, 3, 5)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return in[0].Reshape(6, -1) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := d[0].Reshape(2, 3, 5)
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{v[0]} },
			Tol: 1e-9,
		},
		{
			Name:    "upsample2x",
			Inputs:  []Input{x("x", 2, 3, 5, L)},
			Forward: one(func(b tensor.Backend, in []*tensor.Tensor) (*tensor.Tensor, error) { return b.Upsample2x(in[0]) }),
			Backward: func(b tensor.Backend, in, out, d []*tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := b.Upsample2xBackward(d[0])
				return grads(err, dx)
			},
			Ref: func(v [][]float64) [][]float64 { return [][]float64{refUpsample2x(v[0], tensor.Shape{2, 3, 5, L})} },
			Tol: 1e-9,
		},
	}
	return cs
}
