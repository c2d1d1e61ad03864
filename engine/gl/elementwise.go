package gl

import (
	"math"
	"strconv"
	"unsafe"

	"lorastudio/engine/tensor"
)

// actDefines selects the activation in common/act.glsl.
func actDefines(op string, f tensor.Act) (map[string]string, error) {
	if f > tensor.QuickGELU {
		return nil, tensor.Errorf(op, tensor.ErrArg, "unknown activation %s", f)
	}
	return map[string]string{"ACT": strconv.Itoa(int(f))}, nil
}

// Activation applies f elementwise (shaders/gl/activation_forward.comp).
func (b *Backend) Activation(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	const op = "activation"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	def, err := actDefines(op, f)
	if err != nil {
		return nil, err
	}
	n := x.Numel()
	return b.kernelOut(op, x.Shape(), []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "activation_forward", defines: def, bufs: []*buffer{in[0], out}, p: i32(n), groups: b.dev.grid1D(n, 256), chunk: n}}, nil
	})
}

// ActivationBackward returns dout * f'(x) (shaders/gl/activation_backward.comp).
func (b *Backend) ActivationBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	const op = "activation backward"
	if err := b.check(op, dout, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "x"}, dout, x); err != nil {
		return nil, err
	}
	if !dout.Shape().Equal(x.Shape()) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, x is %s", dout.Shape(), x.Shape())
	}
	def, err := actDefines(op, f)
	if err != nil {
		return nil, err
	}
	n := x.Numel()
	return b.kernelOut(op, x.Shape(), []*tensor.Tensor{dout, x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "activation_backward", defines: def, bufs: []*buffer{in[0], in[1], out}, p: i32(n), groups: b.dev.grid1D(n, 256), chunk: n}}, nil
	})
}

// gegluShape checks x (..., 2F) and returns (..., F), rows and F.
func gegluShape(op string, x *tensor.Tensor) (tensor.Shape, int, int, error) {
	s := x.Shape()
	if len(s) < 1 || s[len(s)-1]%2 != 0 {
		return nil, 0, 0, tensor.Errorf(op, tensor.ErrShape, "x is %s: the last dimension must be even", s)
	}
	f := s[len(s)-1] / 2
	out := s.Clone()
	out[len(out)-1] = f
	return out, s.Numel() / (2 * f), f, nil
}

// GEGLU returns x[..., :F] * f(x[..., F:]) (shaders/gl/geglu_forward.comp).
func (b *Backend) GEGLU(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	const op = "geglu"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	def, err := actDefines(op, f)
	if err != nil {
		return nil, err
	}
	outShape, rows, ff, err := gegluShape(op, x)
	if err != nil {
		return nil, err
	}
	return b.kernelOut(op, outShape, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "geglu_forward", defines: def, bufs: []*buffer{in[0], out}, p: i32(rows*ff, ff), groups: b.dev.grid1D(rows*ff, 256)}}, nil
	})
}

// GEGLUBackward returns dx (..., 2F) for dout (..., F) (geglu_backward.comp).
func (b *Backend) GEGLUBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	const op = "geglu backward"
	if err := b.check(op, dout, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "x"}, dout, x); err != nil {
		return nil, err
	}
	def, err := actDefines(op, f)
	if err != nil {
		return nil, err
	}
	outShape, rows, ff, err := gegluShape(op, x)
	if err != nil {
		return nil, err
	}
	if !dout.Shape().Equal(outShape) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want %s for x %s", dout.Shape(), outShape, x.Shape())
	}
	return b.kernelOut(op, x.Shape(), []*tensor.Tensor{dout, x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "geglu_backward", defines: def, bufs: []*buffer{in[0], in[1], out}, p: i32(rows*ff, ff), groups: b.dev.grid1D(rows*ff, 256)}}, nil
	})
}

// affine returns a*x + c (shaders/gl/scale.comp).
func (b *Backend) affine(op string, x *tensor.Tensor, a, c float32) (*tensor.Tensor, error) {
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return nil, err
	}
	n := x.Numel()
	return b.kernelOut(op, x.Shape(), []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "scale", bufs: []*buffer{in[0], out}, p: i32(n), f: []float32{a, c}, groups: b.dev.grid1D(n, 256), chunk: n}}, nil
	})
}

// Scale returns s * x.
func (b *Backend) Scale(x *tensor.Tensor, s float32) (*tensor.Tensor, error) {
	return b.affine("scale", x, s, 0)
}

// AddScalar returns x + s.
func (b *Backend) AddScalar(x *tensor.Tensor, s float32) (*tensor.Tensor, error) {
	return b.affine("add scalar", x, 1, s)
}

// MSELoss returns mean((pred - target)^2) as a (1) tensor: the squared
// difference, then the reduce kernel with factor 1/n.
func (b *Backend) MSELoss(pred, target *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "mse loss"
	if err := b.check(op, pred, target); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"pred", "target"}, pred, target); err != nil {
		return nil, err
	}
	if !pred.Shape().Equal(target.Shape()) {
		return nil, tensor.Errorf(op, tensor.ErrShape, "pred is %s, target is %s", pred.Shape(), target.Shape())
	}
	n := pred.Numel()
	return b.kernelOut(op, tensor.Shape{1}, []*tensor.Tensor{pred, target}, func(in []*buffer, out *buffer) ([]launch, error) {
		sq, err := b.dev.pool.alloc(4 * n)
		if err != nil {
			return nil, err
		}
		defer b.dev.pool.release(sq)
		flat := []int{n}
		one := []int{1}
		steps := []launch{
			{kernel: "binary", defines: map[string]string{"OP": "1"}, bufs: []*buffer{in[0], in[1], sq}, p: append(append(append(i32(n), pad6(flat, 1)...), pad6(one, 0)...), pad6(one, 0)...), groups: b.dev.grid1D(n, 256)},
			{kernel: "binary", defines: map[string]string{"OP": "2"}, bufs: []*buffer{sq, sq, sq}, p: append(append(append(i32(n), pad6(flat, 1)...), pad6(one, 0)...), pad6(one, 0)...), groups: b.dev.grid1D(n, 256)},
			b.reduceLaunch(sq, out, []int{1}, []int{0}, flat, one, 1/float32(n)),
		}
		for _, l := range steps {
			if err := b.dev.run(l); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
}

// MSELossBackward returns dout * 2 (pred - target) / n (mse_loss_backward.comp).
func (b *Backend) MSELossBackward(dout, pred, target *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "mse loss backward"
	if err := b.check(op, dout, pred, target); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "pred", "target"}, dout, pred, target); err != nil {
		return nil, err
	}
	if !pred.Shape().Equal(target.Shape()) || dout.Numel() != 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, pred is %s, target is %s", dout.Shape(), pred.Shape(), target.Shape())
	}
	n := pred.Numel()
	return b.kernelOut(op, pred.Shape(), []*tensor.Tensor{dout, pred, target}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "mse_loss_backward", bufs: []*buffer{in[0], in[1], in[2], out}, p: i32(n, n), groups: b.dev.grid1D(n, 256), chunk: n, whole: 1}}, nil
	})
}

// Cast converts x to dt on the device (shaders/gl/cast.comp).
func (b *Backend) Cast(x *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	const op = "cast"
	if err := b.check(op, x); err != nil {
		return nil, err
	}
	if !dt.Valid() {
		return nil, tensor.Errorf(op, tensor.ErrDType, "cast to %s", dt)
	}
	n := x.Numel()
	threads := n
	if dt != tensor.F32 {
		threads = (n + 1) / 2
	}
	def := map[string]string{"FROM": strconv.Itoa(int(x.DType())), "TO": strconv.Itoa(int(dt))}
	return b.kernelOutDT(op, x.Shape(), dt, []*tensor.Tensor{x}, func(in []*buffer, out *buffer) ([]launch, error) {
		return []launch{{kernel: "cast", defines: def, bufs: []*buffer{in[0], out}, p: i32(n), groups: b.dev.grid1D(threads, 256)}}, nil
	})
}

// TimestepEmbedding is diffusers' sinusoidal timestep embedding
// (shaders/gl/timestep_embedding.comp).
func (b *Backend) TimestepEmbedding(t *tensor.Tensor, dim int, flipSinToCos bool, freqShift float32) (*tensor.Tensor, error) {
	const op = "timestep embedding"
	if err := b.check(op, t); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"t"}, t); err != nil {
		return nil, err
	}
	if t.Rank() != 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "t is %s, want (N)", t.Shape())
	}
	if dim < 2 {
		return nil, tensor.Errorf(op, tensor.ErrArg, "dim %d, want >= 2", dim)
	}
	half := dim / 2
	if float32(half) == freqShift {
		return nil, tensor.Errorf(op, tensor.ErrArg, "freqShift %v equals dim/2", freqShift)
	}
	n := t.Dim(0) * dim
	flip := 0
	if flipSinToCos {
		flip = 1
	}
	freqs := timestepFreqs(half, freqShift)
	return b.kernelOut(op, tensor.Shape{t.Dim(0), dim}, []*tensor.Tensor{t}, func(in []*buffer, out *buffer) ([]launch, error) {
		fb, err := b.dev.pool.alloc(4 * half)
		if err != nil {
			return nil, err
		}
		defer b.dev.pool.release(fb)
		upload(fb, unsafe.Pointer(&freqs[0]), 4*half)
		return nil, b.dev.run(launch{kernel: "timestep_embedding", bufs: []*buffer{in[0], fb, out}, p: i32(n, dim, half, flip), groups: b.dev.grid1D(n, 256)})
	})
}

// timestepFreqs returns exp(-ln(10000) i / (half - shift)) computed in
// float32 steps like torch (and the CPU backend).
func timestepFreqs(half int, shift float32) []float32 {
	f := make([]float32, half)
	ln := float32(-math.Log(10000))
	for i := range f {
		e := ln * float32(i) / (float32(half) - shift)
		f[i] = float32(math.Exp(float64(e)))
	}
	return f
}
