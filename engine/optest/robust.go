package optest

import (
	"math/rand"
	"testing"

	"lorastudio/engine/tensor"
)

// RunNoPanic throws random shapes (rank 0 to 4), dtypes and arguments at
// every op of b: each call must return a result or an error (and then no
// tensors), never panic. It makes 3×20000 calls (3×2000 with Small), most of
// them invalid, so it is fast.
func RunNoPanic(t *testing.T, b tensor.Backend, opts ...Option) {
	o := parse(opts)
	n := 20000
	if o.small {
		n = 2000
	}
	for _, seed := range []int64{7, 8, 9} {
		noPanic(t, b, seed+o.seed-1, n)
	}
}

func noPanic(t *testing.T, b tensor.Backend, seed int64, n int) {
	r := rand.New(rand.NewSource(seed))
	shape := func() tensor.Shape {
		s := make(tensor.Shape, r.Intn(5))
		for i := range s {
			s[i] = 1 + r.Intn(4)
		}
		return s
	}
	tens := func() *tensor.Tensor {
		s := shape()
		dt := tensor.F32
		if r.Intn(6) == 0 {
			dt = tensor.F16
		}
		v := make([]float32, s.Numel())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		x, err := b.Upload(v, s, dt)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	opt := func() *tensor.Tensor {
		if r.Intn(2) == 0 {
			return nil
		}
		return tens()
	}
	axis := func() int { return r.Intn(7) - 3 }
	small := func() int { return r.Intn(6) - 1 }
	act := func() tensor.Act { return tensor.Act(r.Intn(5)) }
	mask := func() tensor.GradMask { return tensor.GradMask(r.Intn(8)) }
	conv := func() tensor.Conv2DParams {
		return tensor.Conv2DParams{Stride: small(), PadTop: small(), PadBottom: small(), PadLeft: small(), PadRight: small()}
	}
	calls := []func() ([]*tensor.Tensor, error){
		func() ([]*tensor.Tensor, error) {
			o, e := b.MatMul(tens(), tens(), opt(), r.Intn(2) == 0, r.Intn(2) == 0)
			return l(o), e
		},
		func() ([]*tensor.Tensor, error) {
			x, y, z, e := b.MatMulBackward(tens(), tens(), tens(), r.Intn(2) == 0, r.Intn(2) == 0, mask())
			return l(x, y, z), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.Conv2D(tens(), tens(), opt(), conv()); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			x, y, z, e := b.Conv2DBackward(tens(), tens(), tens(), conv(), mask())
			return l(x, y, z), e
		},
		func() ([]*tensor.Tensor, error) {
			o, e := b.GroupNorm(tens(), opt(), opt(), small(), 1e-5)
			return l(o), e
		},
		func() ([]*tensor.Tensor, error) {
			x, y, z, e := b.GroupNormBackward(tens(), tens(), opt(), small(), 1e-5, mask())
			return l(x, y, z), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.LayerNorm(tens(), opt(), opt(), 1e-5); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			x, y, z, e := b.LayerNormBackward(tens(), tens(), opt(), 1e-5, mask())
			return l(x, y, z), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.Softmax(tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.SoftmaxBackward(tens(), tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			o, s, e := b.Attention(tens(), tens(), tens(), 0.5, r.Intn(2) == 0)
			return l(o, s), e
		},
		func() ([]*tensor.Tensor, error) {
			x, y, z, e := b.AttentionBackward(tens(), tens(), tens(), tens(), tens(), tens(), 0.5, r.Intn(2) == 0)
			return l(x, y, z), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.Activation(tens(), act()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.ActivationBackward(tens(), tens(), act()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.GEGLU(tens(), act()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.GEGLUBackward(tens(), tens(), act()); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			o, e := b.Binary(tensor.BinaryOp(r.Intn(4)), tens(), tens())
			return l(o), e
		},
		func() ([]*tensor.Tensor, error) {
			x, y, e := b.BinaryBackward(tensor.BinaryOp(r.Intn(4)), tens(), tens(), tens(), mask())
			return l(x, y), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.ReduceTo(tens(), shape()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.BroadcastTo(tens(), shape()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.Concat(axis(), tens(), tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) { return b.Split(tens(), axis(), small(), small()) },
		func() ([]*tensor.Tensor, error) { o, e := b.Slice(tens(), axis(), small(), small()); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			o, e := b.SliceBackward(tens(), shape(), axis(), small())
			return l(o), e
		},
		func() ([]*tensor.Tensor, error) {
			x := tens()
			perm := r.Perm(x.Rank())
			if r.Intn(3) == 0 && len(perm) > 0 {
				perm[0] = small()
			}
			o, e := b.Permute(x, perm...)
			return l(o), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.Upsample2x(tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.Upsample2xBackward(tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			o, e := b.TimestepEmbedding(tens(), small()*3, r.Intn(2) == 0, float32(small()))
			return l(o), e
		},
		func() ([]*tensor.Tensor, error) { o, e := b.MSELoss(tens(), tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.MSELossBackward(tens(), tens(), tens()); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := b.Cast(tens(), tensor.DType(r.Intn(4))); return l(o), e },
		func() ([]*tensor.Tensor, error) { o, e := tensor.Mean(b, tens(), axis()); return l(o), e },
		func() ([]*tensor.Tensor, error) {
			o, e := b.Upload(make([]float32, r.Intn(4)), shape(), tensor.F32)
			return l(o), e
		},
	}
	for i := 0; i < n; i++ {
		k := r.Intn(len(calls))
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("seed %d call %d (op #%d) panicked: %v", seed, i, k, p)
				}
			}()
			outs, err := calls[k]()
			if err != nil && len(outs) > 0 {
				t.Fatalf("op #%d returned tensors with error %v", k, err)
			}
			tensor.FreeAll(outs...)
		}()
	}
}

// l collects the non-nil tensors.
func l(ts ...*tensor.Tensor) []*tensor.Tensor {
	var out []*tensor.Tensor
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}
