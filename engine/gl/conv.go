package gl

import (
	"strconv"

	"lorastudio/engine/tensor"
)

// Conv2D is a 2-D cross-correlation as an implicit GEMM
// (shaders/gl/conv2d_forward.comp); w may be packed f16/bf16.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (*tensor.Tensor, error) {
	const op = "conv2d"
	ts := []*tensor.Tensor{x, w}
	f32 := []*tensor.Tensor{x}
	if bias != nil {
		ts = append(ts, bias)
		f32 = append(f32, bias)
	}
	if err := b.check(op, ts...); err != nil {
		return nil, err
	}
	if err := weightDType(op, w, []string{"x", "bias"}, f32...); err != nil {
		return nil, err
	}
	var bs tensor.Shape
	if bias != nil {
		bs = bias.Shape()
	}
	xs, ws := x.Shape(), w.Shape()
	outShape, err := tensor.Conv2DShape(xs, ws, bs, p)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	n, cin, h, wd := xs[0], xs[1], xs[2], xs[3]
	cout, kh, kw := ws[0], ws[2], ws[3]
	ho, wo := outShape[2], outShape[3]
	hasBias := 0
	if bias != nil {
		hasBias = 1
	}
	pp := i32(cout, ho*wo, cin*kh*kw, cin, h, wd, kh, kw, p.StrideOr1(), p.PadTop, p.PadLeft, wo, hasBias)
	def, tile := b.dev.gemmConfig(map[string]string{"WTYPE": strconv.Itoa(int(w.DType()))}, cout, ho*wo, n, false)
	return b.kernelOut(op, outShape, ts, func(in []*buffer, out *buffer) ([]launch, error) {
		bb := out
		if bias != nil {
			bb = in[2]
		}
		return []launch{{kernel: "conv2d_forward", defines: def, bufs: []*buffer{in[0], in[1], bb, out}, p: pp,
			groups: [3]int{(ho*wo + tile - 1) / tile, (cout + tile - 1) / tile, n}}}, nil
	})
}

// Conv2DBackward returns dx (conv2d_backward_input.comp), dw
// (conv2d_backward_weight.comp) and dbias (the reduce kernel) for dout.
func (b *Backend) Conv2DBackward(dout, x, w *tensor.Tensor, p tensor.Conv2DParams, need tensor.GradMask) (dx, dw, dbias *tensor.Tensor, err error) {
	const op = "conv2d backward"
	if err := b.check(op, dout, x, w); err != nil {
		return nil, nil, nil, err
	}
	if err := weightDType(op, w, []string{"dout", "x"}, dout, x); err != nil {
		return nil, nil, nil, err
	}
	xs, ws := x.Shape(), w.Shape()
	outShape, err := tensor.Conv2DShape(xs, ws, nil, p)
	if err != nil {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	if !dout.Shape().Equal(outShape) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want %s", dout.Shape(), outShape)
	}
	defer func() {
		if err != nil {
			tensor.FreeAll(dx, dw, dbias)
			dx, dw, dbias = nil, nil, nil
		}
	}()
	n, cin, h, wd := xs[0], xs[1], xs[2], xs[3]
	cout, kh, kw := ws[0], ws[2], ws[3]
	ho, wo := outShape[2], outShape[3]
	s := p.StrideOr1()
	if need.Has(tensor.GradX) {
		pp := i32(cin, h*wd, cout*kh*kw, cout, h, wd, kh, kw, s, p.PadTop, p.PadLeft, ho, wo)
		def, tile := b.dev.gemmConfig(map[string]string{"WTYPE": strconv.Itoa(int(w.DType()))}, cin, h*wd, n, false)
		dx, err = b.kernelOut(op, xs, []*tensor.Tensor{dout, w}, func(in []*buffer, out *buffer) ([]launch, error) {
			return []launch{{kernel: "conv2d_backward_input", defines: def, bufs: []*buffer{in[0], in[1], out}, p: pp,
				groups: [3]int{(h*wd + tile - 1) / tile, (cin + tile - 1) / tile, n}}}, nil
		})
		if err != nil {
			return dx, dw, dbias, err
		}
	}
	if need.Has(tensor.GradW) {
		// K = N*Ho*Wo is long and the output small: split K when the
		// output has few tiles, then sum the partials.
		m, nn, k := cout, cin*kh*kw, n*ho*wo
		splits := 1
		if tiles := ((m + 63) / 64) * ((nn + 63) / 64); tiles < 64 && k >= 2048 {
			splits = max(1, min(64/tiles, k/1024))
		}
		if b.dev.splitK > 0 {
			splits = b.dev.splitK
		}
		kc := ((k+splits-1)/splits + 15) / 16 * 16
		pp := i32(m, nn, k, cin, h, wd, kh, kw, s, p.PadTop, p.PadLeft, ho, wo, kc)
		def, tile := b.dev.gemmConfig(nil, m, nn, splits, false)
		dw, err = b.kernelOut(op, ws, []*tensor.Tensor{dout, x}, func(in []*buffer, out *buffer) ([]launch, error) {
			l := launch{kernel: "conv2d_backward_weight", defines: def, bufs: []*buffer{in[0], in[1], out}, p: pp,
				groups: [3]int{(nn + tile - 1) / tile, (m + tile - 1) / tile, splits}}
			if splits == 1 {
				return []launch{l}, nil
			}
			tmp, err := b.dev.pool.alloc(4 * splits * m * nn)
			if err != nil {
				return nil, err
			}
			defer b.dev.pool.release(tmp)
			l.bufs[2] = tmp
			if err := b.dev.run(l); err != nil {
				return nil, err
			}
			return nil, b.dev.run(b.reduceLaunch(tmp, out, []int{m * nn}, []int{1}, []int{splits}, []int{m * nn}, 1))
		})
		if err != nil {
			return dx, dw, dbias, err
		}
	}
	if need.Has(tensor.GradB) {
		dbias, err = b.kernelOut(op, tensor.Shape{cout}, []*tensor.Tensor{dout}, func(in []*buffer, out *buffer) ([]launch, error) {
			// dout (N, Cout, P): keep Cout, reduce (N, P).
			return []launch{b.reduceLaunch(in[0], out, []int{cout}, []int{ho * wo}, []int{n, ho * wo}, []int{cout * ho * wo, 1}, 1)}, nil
		})
		if err != nil {
			return dx, dw, dbias, err
		}
	}
	return dx, dw, dbias, nil
}
