package cpu

import "lorastudio/engine/tensor"

// convGeom is one Conv2D call's sizes.
type convGeom struct {
	N, Cin, H, W, Cout, KH, KW, Ho, Wo, S, PT, PL int
}

// ckk is the im2col row count Cin*kh*kw; hw the output pixel count.
func (g convGeom) ckk() int { return g.Cin * g.KH * g.KW }
func (g convGeom) hw() int  { return g.Ho * g.Wo }

// colBuffer returns the im2col block buffer, or nil for a pointwise conv.
func (g convGeom) colBuffer() []float32 {
	if g.pointwise() {
		return nil
	}
	return make([]float32, g.ckk()*min(convChunk, g.hw()))
}

// pointwise reports a 1x1, stride 1, unpadded conv, which needs no im2col.
func (g convGeom) pointwise() bool {
	return g.KH == 1 && g.KW == 1 && g.S == 1 && g.PT == 0 && g.PL == 0 && g.Ho == g.H && g.Wo == g.W
}

// convChunk is how many output pixels one im2col block covers, so the
// column buffer stays (Cin*kh*kw, convChunk) however large the image is.
const convChunk = 2048

// im2col fills col (Cin*kh*kw, p1-p0) with output pixels [p0, p1) of one
// image x (Cin, H, W): col[(c*kh+i)*kw+j, p-p0] = x[c, oh*S-PT+i, ow*S-PL+j]
// where p = oh*Wo+ow, zero outside the image.
func im2col(g convGeom, x, col []float32, p0, p1 int) {
	n := p1 - p0
	parallelFor(g.ckk(), n, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			c, i, j := row/(g.KH*g.KW), row/g.KW%g.KH, row%g.KW
			dst := col[row*n : (row+1)*n]
			for p := p0; p < p1; p++ {
				oh, ow := p/g.Wo, p%g.Wo
				ih, iw := oh*g.S-g.PT+i, ow*g.S-g.PL+j
				if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
					dst[p-p0] = 0
				} else {
					dst[p-p0] = x[(c*g.H+ih)*g.W+iw]
				}
			}
		}
	})
}

// col2im adds col (Cin*kh*kw, p1-p0) for output pixels [p0, p1) back into
// dx (Cin, H, W): the adjoint of im2col.
func col2im(g convGeom, col, dx []float32, p0, p1 int) {
	n := p1 - p0
	parallelFor(g.Cin, g.KH*g.KW*n, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			for i := 0; i < g.KH; i++ {
				for j := 0; j < g.KW; j++ {
					src := col[((c*g.KH+i)*g.KW+j)*n:]
					for p := p0; p < p1; p++ {
						oh, ow := p/g.Wo, p%g.Wo
						ih, iw := oh*g.S-g.PT+i, ow*g.S-g.PL+j
						if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
							dx[(c*g.H+ih)*g.W+iw] += src[p-p0]
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
	col := g.colBuffer()
	for n := 0; n < g.N; n++ {
		xn := xv[n*g.Cin*g.H*g.W : (n+1)*g.Cin*g.H*g.W]
		on := ov[n*g.Cout*g.hw():]
		if col == nil {
			// 1x1: x[n] is already the (Cin, H*W) column matrix.
			b.gemm(false, false, g.Cout, g.hw(), g.ckk(), wv, g.ckk(), xn, g.hw(), false, on, g.hw())
			continue
		}
		for p0 := 0; p0 < g.hw(); p0 += convChunk {
			p1 := min(p0+convChunk, g.hw())
			im2col(g, xn, col, p0, p1)
			// out[n][:, p0:p1] (Cout, p1-p0) = w (Cout, ckk) · col (ckk, p1-p0)
			b.gemm(false, false, g.Cout, p1-p0, g.ckk(), wv, g.ckk(), col, p1-p0, false, on[p0:], g.hw())
		}
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
	col := g.colBuffer()
	chw, ohw := g.Cin*g.H*g.W, g.Cout*g.hw()
	if need.Has(tensor.GradW) {
		var dwv []float32
		if dw, dwv, err = b.newF32(op, w.Shape()); err != nil {
			return
		}
		for n := 0; n < g.N; n++ {
			xn, dn := xv[n*chw:(n+1)*chw], dv[n*ohw:(n+1)*ohw]
			if col == nil {
				// dw (Cout, Cin) += dout[n] (Cout, HW) · x[n]ᵀ (HW, Cin)
				b.gemm(false, true, g.Cout, g.ckk(), g.hw(), dn, g.hw(), xn, g.hw(), n > 0, dwv, g.ckk())
				continue
			}
			for p0 := 0; p0 < g.hw(); p0 += convChunk {
				p1 := min(p0+convChunk, g.hw())
				im2col(g, xn, col, p0, p1)
				// dw (Cout, ckk) += dout[n][:, p0:p1] (Cout, p1-p0) · colᵀ (p1-p0, ckk)
				b.gemm(false, true, g.Cout, g.ckk(), p1-p0, dn[p0:], g.hw(), col, p1-p0, n > 0 || p0 > 0, dwv, g.ckk())
			}
		}
	}
	if need.Has(tensor.GradX) {
		var dxv []float32
		if dx, dxv, err = b.newF32(op, x.Shape()); err != nil {
			return
		}
		wv := weightF32(w)
		for n := 0; n < g.N; n++ {
			dxn, dn := dxv[n*chw:(n+1)*chw], dv[n*ohw:(n+1)*ohw]
			if col == nil {
				// dx[n] (Cin, HW) = wᵀ (Cin, Cout) · dout[n] (Cout, HW)
				b.gemm(true, false, g.ckk(), g.hw(), g.Cout, wv, g.ckk(), dn, g.hw(), false, dxn, g.hw())
				continue
			}
			for p0 := 0; p0 < g.hw(); p0 += convChunk {
				p1 := min(p0+convChunk, g.hw())
				// dcol (ckk, p1-p0) = wᵀ (ckk, Cout) · dout[n][:, p0:p1]
				b.gemm(true, false, g.ckk(), p1-p0, g.Cout, wv, g.ckk(), dn[p0:], g.hw(), false, col, p1-p0)
				col2im(g, col, dxn, p0, p1)
			}
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
