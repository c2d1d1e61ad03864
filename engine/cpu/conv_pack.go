package cpu

// Conv2D's forward pass on the pure-Go sgemm is an implicit GEMM: the B
// panels of out (Cout, pixels) = w (Cout, Cin*kh*kw) · im2col(x) are packed
// straight from the image, so im2col's column matrix is never written and
// read back (one pass over Cin*kh*kw × pixels instead of two).

// convRow is one row (c, i, j) of the im2col matrix, reduced to what packing
// a panel needs: output pixel (oh, ow) reads x[off + oh*S*W + ow*S], which
// lies inside the image when 0 <= oh*S-PT+i < H and owLo <= ow < owHi.
type convRow struct {
	off, i, owLo, owHi int
}

// convRows returns the im2col rows of g in order.
func (g convGeom) convRows() []convRow {
	rows := make([]convRow, g.ckk())
	for r := range rows {
		c, i, j := r/(g.KH*g.KW), r/g.KW%g.KH, r%g.KW
		lo, hi := g.validCols(j)
		rows[r] = convRow{off: c*g.H*g.W + (i-g.PT)*g.W + j - g.PL, i: i, owLo: lo, owHi: hi}
	}
	return rows
}

// packB packs rows [pc, pc+kc) and columns [jc, jc+nc) of the im2col matrix
// of image x whose column 0 is output pixel p0, as packB would from that
// matrix: bp[q*kc*nr + kk*nr + cc] = im2col[pc+kk, p0+jc+q*nr+cc], zero
// outside the image and past the nc columns. Each panel's nr pixels are
// split at output-row ends into segments; a segment of a row is then one
// copy (stride 1) or gather (stride 2) between zero fills at the edges.
func (g convGeom) packB(bp, x []float32, rows []convRow, p0, pc, kc, jc, nc, nr int) {
	rows = rows[pc : pc+kc]
	for q := 0; q*nr < nc; q++ {
		dst := bp[q*kc*nr : (q+1)*kc*nr]
		pa := p0 + jc + q*nr
		cols := min(nr, nc-q*nr)
		for s := pa; s < pa+cols; {
			oh, ow0 := s/g.Wo, s%g.Wo
			ow1 := min(g.Wo, ow0+pa+cols-s)
			d0, n := s-pa, ow1-ow0
			s += n
			ih0, xoh := oh*g.S-g.PT, oh*g.S*g.W
			for kk := range rows {
				r := &rows[kk]
				d := dst[kk*nr+d0 : kk*nr+d0+n]
				lo, hi := max(r.owLo, ow0), min(r.owHi, ow1)
				if ih := ih0 + r.i; ih < 0 || ih >= g.H || lo >= hi {
					clear(d)
					continue
				}
				src := x[r.off+xoh+lo*g.S:]
				if g.S == 1 {
					if lo == ow0 && hi == ow1 {
						copy(d, src)
						continue
					}
					copy(d[lo-ow0:hi-ow0], src)
				} else {
					for k := range d[lo-ow0 : hi-ow0] {
						d[lo-ow0+k] = src[k*g.S]
					}
				}
				clear(d[:lo-ow0])
				clear(d[hi-ow0:])
			}
		}
		if cols < nr {
			for kk := range rows {
				clear(dst[kk*nr+cols : kk*nr+nr])
			}
		}
	}
}

// panels returns the packed panels of rows [ic, ic+mc) of A's k block pc,
// as gemmCore's packA hands them out (see packedA).
func (pa packedA) panels(ic, mc, pc, kc int) []float32 {
	return pa.p[pc*pa.mPad+ic*kc : pc*pa.mPad+(ic+(mc+pa.mr-1)/pa.mr*pa.mr)*kc]
}

// convGemm adds wp (Cout, Cin*kh*kw) · im2col(x)[:, p0:p1] into c (Cout,
// p1-p0, row stride ldc) on the pure-Go sgemm with kern, packing B from the
// image x (Cin, H, W) of one batch item.
func (g convGeom) convGemm(kern microKernel, wp packedA, rows []convRow, x []float32, p0, p1 int, c []float32, ldc int) {
	gemmCore(kern, wp.m, p1-p0, wp.k,
		func(_ []float32, ic, mc, pc, kc int) []float32 { return wp.panels(ic, mc, pc, kc) },
		func(bp []float32, pc, kc, jc, nc int) { g.packB(bp, x, rows, p0, pc, kc, jc, nc, kern.nr) },
		true, c, ldc)
}
