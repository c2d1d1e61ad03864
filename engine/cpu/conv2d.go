package cpu

import (
	"runtime"

	"lorastudio/engine/tensor"
)

// convGeom is one Conv2D call's sizes.
type convGeom struct {
	N, Cin, H, W, Cout, KH, KW, Ho, Wo, S, PT, PL int
}

// ckk is the im2col row count Cin*kh*kw; hw the output pixel count.
func (g convGeom) ckk() int { return g.Cin * g.KH * g.KW }
func (g convGeom) hw() int  { return g.Ho * g.Wo }

// colBuffer returns the im2col block buffer for chunks of chunk pixels, or
// nil for a pointwise conv.
func (g convGeom) colBuffer() []float32 {
	if g.pointwise() {
		return nil
	}
	return make([]float32, g.ckk()*min(g.chunk(), g.hw()))
}

// pointwise reports a 1x1, stride 1, unpadded conv, which needs no im2col.
func (g convGeom) pointwise() bool {
	return g.KH == 1 && g.KW == 1 && g.S == 1 && g.PT == 0 && g.PL == 0 && g.Ho == g.H && g.Wo == g.W
}

// Output pixels per im2col block: the column buffer (Cin*kh*kw, chunk) aims
// at convColBytes so it stays in cache, with at least convChunkMin pixels
// for the sgemm's sake and at most convChunkMax.
const (
	convColBytes = 1 << 20
	convChunkMin = 256
	convChunkMax = 2048
)

// convImplicitChunk is the most output pixels one worker's implicit-GEMM
// chunk covers: with no column buffer to keep in cache, a chunk only needs
// to be wide enough that the sgemm streams the packed weight seldom.
const convImplicitChunk = 2048

// chunk is how many output pixels one im2col block covers.
func (g convGeom) chunk() int {
	c := convColBytes / 4 / max(g.ckk(), 1)
	return max(convChunkMin, min(convChunkMax, c&^15))
}

// im2col fills col (Cin*kh*kw, p1-p0) with output pixels [p0, p1) of one
// image x (Cin, H, W), spreading the rows over the workers.
func im2col(g convGeom, x, col []float32, p0, p1 int) {
	parallelFor(g.ckk(), p1-p0, func(lo, hi int) { im2colRows(g, x, col, p0, p1, lo, hi) })
}

// im2colRows fills rows [r0, r1) of col (Cin*kh*kw, p1-p0):
// col[(c*kh+i)*kw+j, p-p0] = x[c, oh*S-PT+i, ow*S-PL+j] where p = oh*Wo+ow,
// zero outside the image. It walks the pixels one output row segment at a
// time, so a stride-1 row is one copy between two zero fills.
func im2colRows(g convGeom, x, col []float32, p0, p1, r0, r1 int) {
	n := p1 - p0
	for row := r0; row < r1; row++ {
		c, i, j := row/(g.KH*g.KW), row/g.KW%g.KH, row%g.KW
		dst := col[row*n : (row+1)*n]
		xc := x[c*g.H*g.W : (c+1)*g.H*g.W]
		owLo, owHi := g.validCols(j)
		for p := p0; p < p1; {
			oh, ow0 := p/g.Wo, p%g.Wo
			ow1 := min(g.Wo, ow0+p1-p)
			seg := dst[p-p0 : p-p0+ow1-ow0]
			p += ow1 - ow0
			ih := oh*g.S - g.PT + i
			lo, hi := max(owLo, ow0), min(owHi, ow1)
			if ih < 0 || ih >= g.H || lo >= hi {
				clear(seg)
				continue
			}
			clear(seg[:lo-ow0])
			clear(seg[hi-ow0:])
			xr := xc[ih*g.W:]
			iw := lo*g.S - g.PL + j
			if g.S == 1 {
				copy(seg[lo-ow0:hi-ow0], xr[iw:iw+hi-lo])
				continue
			}
			for k := range seg[lo-ow0 : hi-ow0] {
				seg[lo-ow0+k] = xr[iw+k*g.S]
			}
		}
	}
}

// validCols returns the output columns [owLo, owHi) whose kernel column j
// reads inside the image: 0 <= ow*S-PL+j < W.
func (g convGeom) validCols(j int) (owLo, owHi int) {
	if d := g.PL - j; d > 0 {
		owLo = (d + g.S - 1) / g.S
	}
	if d := g.W - 1 + g.PL - j; d >= 0 {
		owHi = d/g.S + 1
	}
	return owLo, min(owHi, g.Wo)
}

// col2im adds col (Cin*kh*kw, p1-p0) for output pixels [p0, p1) back into
// dx (Cin, H, W): the adjoint of im2col. Workers take whole input channels;
// like im2colRows it walks one output-row segment at a time.
func col2im(g convGeom, col, dx []float32, p0, p1 int) {
	n := p1 - p0
	parallelFor(g.Cin, g.KH*g.KW*n, func(lo, hi int) {
		for row := lo * g.KH * g.KW; row < hi*g.KH*g.KW; row++ {
			c, i, j := row/(g.KH*g.KW), row/g.KW%g.KH, row%g.KW
			src := col[row*n : (row+1)*n]
			dc := dx[c*g.H*g.W : (c+1)*g.H*g.W]
			owLo, owHi := g.validCols(j)
			for p := p0; p < p1; {
				oh, ow0 := p/g.Wo, p%g.Wo
				ow1 := min(g.Wo, ow0+p1-p)
				seg := src[p-p0 : p-p0+ow1-ow0]
				p += ow1 - ow0
				ih := oh*g.S - g.PT + i
				a, e := max(owLo, ow0), min(owHi, ow1)
				if ih < 0 || ih >= g.H || a >= e {
					continue
				}
				dr := dc[ih*g.W:]
				iw := a*g.S - g.PL + j
				for k, v := range seg[a-ow0 : e-ow0] {
					dr[iw+k*g.S] += v
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
	// Both paths write every output element (the direct one starts each
	// chunk as the bias or zero), so a pooled buffer is not cleared first.
	out, ov, err := b.newF32Dirty(op, os)
	if err != nil {
		return nil, err
	}
	xv := data(x)
	var bv []float32
	if bias != nil {
		bv = data(bias)
	}
	blas := b.convBLAS()
	if !blas && !b.direct && g.winograd() && b.kernel().nr <= maxNR {
		b.conv2DWinograd(g, xv, w, bv, ov)
		return out, nil
	}
	// The weight w (Cout, ckk) is the sgemm's A for every pixel chunk. The
	// pure-Go sgemm takes it packed once for the call (converted from
	// F16/BF16 while packing); OpenBLAS takes it as float32 (unpacked into
	// kept scratch when packed).
	var wv []float32
	var wp packedA
	if blas {
		var done func()
		wv, done = weightScratch(w)
		defer done()
	} else {
		wf, wh := weightWords(w)
		var done func()
		wp, done = packAHalf(b.kernel(), g.Cout, g.ckk(), wf, wh, w.DType())
		defer done()
	}
	// The pixels of every image split into chunks that the workers take
	// whole: each packs its own columns and runs its own sgemm, so a conv
	// with few output channels (one sgemm row block) still uses every core.
	// Each output chunk starts as the bias and the sgemm adds onto it. The
	// pure-Go sgemm packs its B panels straight from the image (convGemm);
	// OpenBLAS needs each chunk's im2col matrix in a column buffer.
	pw := g.pointwise()
	chunk := convChunkMax
	switch {
	case wv != nil && !pw:
		chunk = g.chunk()
	case wv == nil:
		chunk = convImplicitChunk
	}
	chunk, perImage := g.split(chunk, b.kernel().nr)
	// Each worker keeps one buffer, from the reused scratch so that a call
	// does not allocate it afresh: the column block for OpenBLAS, the padded
	// input band for the implicit GEMM.
	var bd convBand
	var offs []int
	bufLen := 0
	switch {
	case wv != nil && !pw:
		bufLen = g.ckk() * chunk
	case wv == nil && !pw:
		bd = g.band(chunk)
		offs = g.rowOffsets(bd)
		bufLen = g.Cin * bd.hb * bd.wp
	}
	parallelFor(g.N*perImage, g.Cout*chunk*g.ckk()/64, func(lo, hi int) {
		var buf []float32
		if bufLen > 0 {
			var done func()
			buf, done = getScratch(bufLen)
			defer done()
		}
		for t := lo; t < hi; t++ {
			n, p0 := t/perImage, t%perImage*chunk
			p1 := min(p0+chunk, g.hw())
			xn := xv[n*g.Cin*g.H*g.W : (n+1)*g.Cin*g.H*g.W]
			on := ov[n*g.Cout*g.hw():]
			for co := 0; co < g.Cout; co++ {
				o := on[co*g.hw()+p0 : co*g.hw()+p1]
				if bv == nil {
					clear(o)
					continue
				}
				for k := range o {
					o[k] = bv[co]
				}
			}
			switch {
			case wv == nil && pw:
				// 1x1: x[n] is already the (Cin, H*W) column matrix.
				b.gemmPackedA(wp, p1-p0, xn[p0:], g.hw(), false, true, on[p0:], g.hw())
			case wv == nil:
				// out[n][:, p0:p1] (Cout, p1-p0) += w (Cout, ckk) · im2col(x[n])[:, p0:p1]
				g.convGemm(b.kernel(), wp, bd, buf, offs, xn, p0, p1, on[p0:], g.hw())
			case pw:
				b.gemm(false, false, g.Cout, p1-p0, g.ckk(), wv, g.ckk(), xn[p0:], g.hw(), true, on[p0:], g.hw())
			default:
				im2colRows(g, xn, buf, p0, p1, 0, g.ckk())
				b.gemm(false, false, g.Cout, p1-p0, g.ckk(), wv, g.ckk(), buf, p1-p0, true, on[p0:], g.hw())
			}
		}
	})
	return out, nil
}

// split cuts each image's output pixels into perImage chunks of at most
// chunk pixels (see splitChunks), so the sgemm's column panels end on the
// chunk.
func (g convGeom) split(chunk, nr int) (int, int) { return splitChunks(g.hw(), g.N, chunk, nr) }

// splitChunks cuts each of images runs of items into perImage chunks of at
// most chunk items (the last may be shorter). Where the batch's chunks are
// few, their count is rounded up to a multiple of the workers, so each gets
// the same number of (smaller) chunks, kept a multiple of nr items where
// that costs no extra chunk. Conv2D splits pixels so, Winograd tiles.
func splitChunks(items, images, chunk, nr int) (int, int) {
	chunk = min(chunk, items)
	perImage := (items + chunk - 1) / chunk
	if w := runtime.GOMAXPROCS(0); images*perImage%w != 0 && perImage < 8*w {
		perImage = max((images*perImage+w-1)/w*w/images, 1)
		chunk = (items + perImage - 1) / perImage
		if c := (chunk + nr - 1) / nr * nr; (items+c-1)/c == perImage {
			chunk = c
		}
		perImage = (items + chunk - 1) / chunk
	}
	return chunk, perImage
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
			for p0 := 0; p0 < g.hw(); p0 += g.chunk() {
				p1 := min(p0+g.chunk(), g.hw())
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
		wv, done := weightScratch(w)
		defer done()
		for n := 0; n < g.N; n++ {
			dxn, dn := dxv[n*chw:(n+1)*chw], dv[n*ohw:(n+1)*ohw]
			if col == nil {
				// dx[n] (Cin, HW) = wᵀ (Cin, Cout) · dout[n] (Cout, HW)
				b.gemm(true, false, g.ckk(), g.hw(), g.Cout, wv, g.ckk(), dn, g.hw(), false, dxn, g.hw())
				continue
			}
			for p0 := 0; p0 < g.hw(); p0 += g.chunk() {
				p1 := min(p0+g.chunk(), g.hw())
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
