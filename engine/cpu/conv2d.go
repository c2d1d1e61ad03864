package cpu

import "lorastudio/engine/tensor"

// convGeom is one Conv2D call's sizes.
type convGeom struct {
	N, Cin, H, W, Cout, KH, KW, Ho, Wo, S, PT, PL int
}

// ckk is the im2col row count Cin*kh*kw; hw the output pixel count.
func (g convGeom) ckk() int { return g.Cin * g.KH * g.KW }
func (g convGeom) hw() int  { return g.Ho * g.Wo }

// pointwise reports a 1x1, stride 1, unpadded conv, which needs no im2col.
func (g convGeom) pointwise() bool {
	return g.KH == 1 && g.KW == 1 && g.S == 1 && g.PT == 0 && g.PL == 0 && g.Ho == g.H && g.Wo == g.W
}

// im2col fills col (Cin*kh*kw, Ho*Wo) from one image x (Cin, H, W):
// col[(c*kh+i)*kw+j, oh*Wo+ow] = x[c, oh*S-PT+i, ow*S-PL+j], zero outside.
func im2col(g convGeom, x, col []float32) {
	parallelFor(g.ckk(), g.hw(), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			c, i, j := row/(g.KH*g.KW), row/g.KW%g.KH, row%g.KW
			dst := col[row*g.hw() : (row+1)*g.hw()]
			for oh := 0; oh < g.Ho; oh++ {
				ih := oh*g.S - g.PT + i
				d := dst[oh*g.Wo : (oh+1)*g.Wo]
				if ih < 0 || ih >= g.H {
					clear(d)
					continue
				}
				src := x[(c*g.H+ih)*g.W : (c*g.H+ih+1)*g.W]
				for ow := range d {
					iw := ow*g.S - g.PL + j
					if iw < 0 || iw >= g.W {
						d[ow] = 0
					} else {
						d[ow] = src[iw]
					}
				}
			}
		}
	})
}

// col2im adds col (Cin*kh*kw, Ho*Wo) back into dx (Cin, H, W), the adjoint of im2col.
func col2im(g convGeom, col, dx []float32) {
	parallelFor(g.Cin, g.KH*g.KW*g.hw(), func(lo, hi int) {
		for c := lo; c < hi; c++ {
			for i := 0; i < g.KH; i++ {
				for j := 0; j < g.KW; j++ {
					src := col[((c*g.KH+i)*g.KW+j)*g.hw():]
					for oh := 0; oh < g.Ho; oh++ {
						ih := oh*g.S - g.PT + i
						if ih < 0 || ih >= g.H {
							continue
						}
						d := dx[(c*g.H+ih)*g.W : (c*g.H+ih+1)*g.W]
						for ow := 0; ow < g.Wo; ow++ {
							iw := ow*g.S - g.PL + j
							if iw >= 0 && iw < g.W {
								d[iw] += src[oh*g.Wo+ow]
							}
						}
					}
				}
			}
		}
	})
}

func (b *Backend) convCheck(op string, x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (convGeom, tensor.Shape, error) {
	ts := []*tensor.Tensor{x, w}
	if bias != nil {
		ts = append(ts, bias)
	}
	if err := tensor.Check(op, b, ts...); err != nil {
		return convGeom{}, nil, err
	}
	if err := tensor.CheckF32(op, []string{"x"}, x); err != nil {
		return convGeom{}, nil, err
	}
	var bs tensor.Shape
	if bias != nil {
		if err := tensor.CheckF32(op, []string{"bias"}, bias); err != nil {
			return convGeom{}, nil, err
		}
		bs = bias.Shape()
	}
	os, err := tensor.Conv2DShape(x.Shape(), w.Shape(), bs, p)
	if err != nil {
		return convGeom{}, nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	xs, ws := x.Shape(), w.Shape()
	return convGeom{N: xs[0], Cin: xs[1], H: xs[2], W: xs[3], Cout: ws[0], KH: ws[2], KW: ws[3],
		Ho: os[2], Wo: os[3], S: p.StrideOr1(), PT: p.PadTop, PL: p.PadLeft}, os, nil
}

// Conv2D is out[n] (Cout, Ho*Wo) = w (Cout, Cin*kh*kw) · im2col(x[n]) (Cin*kh*kw, Ho*Wo) + bias.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (*tensor.Tensor, error) {
	const op = "conv2d"
	g, os, err := b.convCheck(op, x, w, bias, p)
	if err != nil {
		return nil, err
	}
	out, ov, err := b.newF32(op, os)
	if err != nil {
		return nil, err
	}
	xv, wv := data(x), weightF32(w)
	var col []float32
	if !g.pointwise() {
		col = make([]float32, g.ckk()*g.hw())
	}
	for n := 0; n < g.N; n++ {
		xn := xv[n*g.Cin*g.H*g.W : (n+1)*g.Cin*g.H*g.W]
		cn := xn
		if col != nil {
			im2col(g, xn, col)
			cn = col
		}
		b.gemm(false, false, g.Cout, g.hw(), g.ckk(), wv, g.ckk(), cn, g.hw(), false, ov[n*g.Cout*g.hw():], g.hw())
	}
	if bias != nil {
		bv := data(bias)
		parallelFor(g.N*g.Cout, g.hw(), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				o, bb := ov[r*g.hw():(r+1)*g.hw()], bv[r%g.Cout]
				for i := range o {
					o[i] += bb
				}
			}
		})
	}
	return out, nil
}

// Conv2DBackward returns, per image n with col = im2col(x[n]):
//
//	dw (Cout, Cin*kh*kw) += dout[n] (Cout, Ho*Wo) · colᵀ
//	dx[n] = col2im(wᵀ (Cin*kh*kw, Cout) · dout[n])
//	dbias (Cout) = Σ_{n, pixels} dout
func (b *Backend) Conv2DBackward(dout, x, w *tensor.Tensor, p tensor.Conv2DParams, need tensor.GradMask) (dx, dw, dbias *tensor.Tensor, err error) {
	const op = "conv2d backward"
	g, os, err := b.convCheck(op, x, w, nil, p)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := tensor.Check(op, b, dout); err != nil {
		return nil, nil, nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout"}, dout); err != nil {
		return nil, nil, nil, err
	}
	if !dout.Shape().Equal(os) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want %s for x %s, w %s", dout.Shape(), os, x.Shape(), w.Shape())
	}
	defer func() {
		if err != nil {
			tensor.FreeAll(dx, dw, dbias)
			dx, dw, dbias = nil, nil, nil
		}
	}()
	dv, xv := data(dout), data(x)
	var col []float32
	if !g.pointwise() {
		col = make([]float32, g.ckk()*g.hw())
	}
	chw := g.Cin * g.H * g.W
	if need.Has(tensor.GradW) {
		var dwv []float32
		if dw, dwv, err = b.newF32(op, w.Shape()); err != nil {
			return
		}
		for n := 0; n < g.N; n++ {
			cn := xv[n*chw : (n+1)*chw]
			if col != nil {
				im2col(g, cn, col)
				cn = col
			}
			b.gemm(false, true, g.Cout, g.ckk(), g.hw(), dv[n*g.Cout*g.hw():], g.hw(), cn, g.hw(), n > 0, dwv, g.ckk())
		}
	}
	if need.Has(tensor.GradX) {
		var dxv []float32
		if dx, dxv, err = b.newF32(op, x.Shape()); err != nil {
			return
		}
		wv := weightF32(w)
		for n := 0; n < g.N; n++ {
			dxn := dxv[n*chw : (n+1)*chw]
			if col == nil {
				b.gemm(true, false, g.ckk(), g.hw(), g.Cout, wv, g.ckk(), dv[n*g.Cout*g.hw():], g.hw(), false, dxn, g.hw())
				continue
			}
			b.gemm(true, false, g.ckk(), g.hw(), g.Cout, wv, g.ckk(), dv[n*g.Cout*g.hw():], g.hw(), false, col, g.hw())
			col2im(g, col, dxn)
		}
	}
	if need.Has(tensor.GradB) {
		var dbv []float32
		if dbias, dbv, err = b.newF32(op, tensor.Shape{g.Cout}); err != nil {
			return
		}
		for r := 0; r < g.N*g.Cout; r++ {
			var s float64
			for _, e := range dv[r*g.hw() : (r+1)*g.hw()] {
				s += float64(e)
			}
			dbv[r%g.Cout] += float32(s)
		}
	}
	return dx, dw, dbias, nil
}
