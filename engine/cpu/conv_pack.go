package cpu

// Conv2D's forward pass on the pure-Go sgemm is an implicit GEMM: the B
// panels of out (Cout, pixels) = w (Cout, Cin*kh*kw) · im2col(x) are packed
// straight from the image, so im2col's column matrix (kh*kw copies of the
// input) is never written and read back. Each pixel chunk first copies the
// input rows it reads into a zero-padded band (about one copy of those
// rows), so that packing needs no bounds tests: every panel row of a
// segment of output pixels is one run of the band (stride 1) or a strided
// gather (stride 2).

// convBand is the shape of the padded input band of one pixel chunk: per
// input channel hb rows of wp columns, band[c, a, b] = x[c, oh0*S-PT+a,
// b-PL] (zero outside the image) for the chunk's first output row oh0.
type convBand struct{ hb, wp int }

// band returns the band shape that holds any chunk of chunk pixels.
func (g convGeom) band(chunk int) convBand {
	// A run of chunk pixels spans at most this many output rows.
	rows := min(g.Ho, (chunk+g.Wo-2)/g.Wo+1)
	return convBand{hb: (rows-1)*g.S + g.KH, wp: (g.Wo-1)*g.S + g.KW}
}

// rowOffsets returns, per im2col row (c, i, j), the band offset of its
// element for output pixel (oh0, 0): c*hb*wp + i*wp + j.
func (g convGeom) rowOffsets(bd convBand) []int {
	offs := make([]int, g.ckk())
	for r := range offs {
		c, i, j := r/(g.KH*g.KW), r/g.KW%g.KH, r%g.KW
		offs[r] = (c*bd.hb+i)*bd.wp + j
	}
	return offs
}

// fillBand copies the input rows that output pixels [p0, p1) of image x
// (Cin, H, W) read into band, zero-padded.
func (g convGeom) fillBand(bd convBand, band, x []float32, p0, p1 int) {
	oh0, oh1 := p0/g.Wo, (p1-1)/g.Wo
	rows := (oh1-oh0)*g.S + g.KH
	// Band columns [PL, PL+W) hold image columns [0, W), cut to wp.
	b0, b1 := min(g.PL, bd.wp), min(g.PL+g.W, bd.wp)
	for c := 0; c < g.Cin; c++ {
		for a := 0; a < rows; a++ {
			dst := band[(c*bd.hb+a)*bd.wp : (c*bd.hb+a+1)*bd.wp]
			ih := oh0*g.S - g.PT + a
			if ih < 0 || ih >= g.H {
				clear(dst)
				continue
			}
			clear(dst[:b0])
			copy(dst[b0:b1], x[(c*g.H+ih)*g.W:])
			clear(dst[b1:])
		}
	}
}

// packB packs rows [pc, pc+kc) and columns [jc, jc+nc) of the im2col
// matrix whose column 0 is output pixel p0, from the band filled for the
// chunk starting at p0, as packB would from that matrix: bp[q*kc*nr + kk*nr
// + cc] = im2col[pc+kk, p0+jc+q*nr+cc], zero past the nc columns. Each
// panel's nr pixels split at output-row ends into segments.
func (g convGeom) packB(bp, band []float32, bd convBand, offs []int, p0, pc, kc, jc, nc, nr int) {
	offs = offs[pc : pc+kc]
	oh0 := p0 / g.Wo
	for q := 0; q*nr < nc; q++ {
		dst := bp[q*kc*nr : (q+1)*kc*nr]
		pa := p0 + jc + q*nr
		cols := min(nr, nc-q*nr)
		for s := pa; s < pa+cols; {
			oh, ow0 := s/g.Wo, s%g.Wo
			n := min(g.Wo-ow0, pa+cols-s)
			d0, base := s-pa, (oh-oh0)*g.S*bd.wp+ow0*g.S
			s += n
			if g.S != 1 {
				for kk, off := range offs {
					d, src := dst[kk*nr+d0:kk*nr+d0+n], band[off+base:]
					for k := range d {
						d[k] = src[k*g.S]
					}
				}
				continue
			}
			for kk, off := range offs {
				copy(dst[kk*nr+d0:kk*nr+d0+n], band[off+base:])
			}
		}
		if cols < nr {
			for kk := range offs {
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
// p1-p0, row stride ldc) on the pure-Go sgemm with kern, packing B from
// band, which it first fills from the image x (Cin, H, W).
func (g convGeom) convGemm(kern microKernel, wp packedA, bd convBand, band []float32, offs []int, x []float32, p0, p1 int, c []float32, ldc int) {
	g.fillBand(bd, band, x, p0, p1)
	gemmCore(kern, wp.m, p1-p0, wp.k,
		func(_ []float32, ic, mc, pc, kc int) []float32 { return wp.panels(ic, mc, pc, kc) },
		func(bp []float32, pc, kc, jc, nc int) { g.packB(bp, band, bd, offs, p0, pc, kc, jc, nc, kern.nr) },
		true, c, ldc)
}
