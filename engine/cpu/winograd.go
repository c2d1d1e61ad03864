package cpu

import "lorastudio/engine/tensor"

// Conv2D's 3×3 stride-1 convolutions with many channels (the VAE decoder's,
// most of the UNet's) run as Winograd F(2×2, 3×3) on the pure-Go sgemm
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015):
// each 2×2 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for its 4×4 input patch d,
// so a tile costs 16 multiply-adds per channel pair instead of 36. Summed
// over the input channels, the 16 element-wise products become 16 matrix
// products M_ξ (Cout, tiles) = U_ξ (Cout, Cin) · V_ξ (Cin, tiles), run on the
// same micro-kernel as every other sgemm. The transforms' coefficients are
// 0, ±1 and ±½, so the result differs from the direct sum only in rounding
// (the tests hold it to the direct conv at fp32 tolerance).
//
// The weight transform U is made and packed into the kernel's A panels once
// per call (converted from F16/BF16 on the way). The tiles are cut into
// chunks that the workers take whole: a chunk's V is written straight into
// the packed B panel layout, its 16 products go to a chunk-sized M, and the
// output transform adds the bias and writes the output pixels.

// Winograd is used when every channel count is at least winogradMinC and
// the batch has at least winogradMinTiles tiles: below that the transforms
// and the per-call weight transform cost more than the multiply-adds saved
// (BenchmarkSDXLConv, 2026-12-04: 1280 channels on 2×16×16 images, 128
// tiles, ran at 0.6× the direct conv; 640 on 2×32×32, 512 tiles, at 1.25×).
const (
	winogradMinC     = 64
	winogradMinTiles = 256
	// winogradChunk is the most tiles one worker's chunk covers: V and M
	// for 512 channels are then 4 MB each, and each U_ξ panel block is
	// streamed once per chunk for 128 tiles of work.
	winogradChunk = 128
)

// winograd reports whether Conv2D runs g as Winograd F(2×2, 3×3).
func (g convGeom) winograd() bool {
	return g.KH == 3 && g.KW == 3 && g.S == 1 && g.Cin >= winogradMinC && g.Cout >= winogradMinC &&
		g.N*g.tilesH()*g.tilesW() >= winogradMinTiles
}

// tilesH and tilesW count the 2×2 output tiles down and across an image
// (the last row or column of tiles may stick out of an odd-sized output).
func (g convGeom) tilesH() int { return (g.Ho + 1) / 2 }
func (g convGeom) tilesW() int { return (g.Wo + 1) / 2 }

// winogradU packs U_ξ = (G g Gᵀ)_ξ for each weight g = w[co, ci] (3×3) into
// the kernel's A panels, one packedA per ξ sharing one scratch slice. Call
// done when the panels are no longer read.
func winogradU(kern microKernel, cout, cin int, wf []float32, wh []uint16, dt tensor.DType) (us [16]packedA, done func()) {
	mr := kern.mr
	mPad := (cout + mr - 1) / mr * mr
	all, done := getScratch(16 * mPad * cin)
	for xi := range us {
		us[xi] = packedA{m: cout, k: cin, mPad: mPad, mr: mr, p: all[xi*mPad*cin : (xi+1)*mPad*cin]}
	}
	parallelFor(mPad/mr, mr*cin*16, func(lo, hi int) {
		var g9 [gemmKC * 9]float32
		for pc := 0; pc < cin; pc += gemmKC {
			kc := min(gemmKC, cin-pc)
			for co := lo * mr; co < hi*mr; co++ {
				// Panel co/mr of block pc holds (co, pc+kk) at kk*mr + co%mr.
				at := pc*mPad + co/mr*mr*kc + co%mr
				if co >= cout {
					for xi := range us {
						for kk := 0; kk < kc; kk++ {
							us[xi].p[at+kk*mr] = 0
						}
					}
					continue
				}
				src := g9[:kc*9]
				if wh != nil {
					unpackHalf(src, wh[(co*cin+pc)*9:(co*cin+pc+kc)*9], dt)
				} else {
					copy(src, wf[(co*cin+pc)*9:])
				}
				for kk := 0; kk < kc; kk++ {
					u := winogradWeight((*[9]float32)(src[kk*9:]))
					for xi, v := range u {
						us[xi].p[at+kk*mr] = v
					}
				}
			}
		}
	})
	return us, done
}

// winogradWeight is G g Gᵀ for one 3×3 kernel g (row-major), with
// G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1].
func winogradWeight(g *[9]float32) (u [16]float32) {
	var t [4][3]float32 // G g
	for j := 0; j < 3; j++ {
		g0, g1, g2 := g[j], g[3+j], g[6+j]
		t[0][j] = g0
		t[1][j] = 0.5 * (g0 + g1 + g2)
		t[2][j] = 0.5 * (g0 - g1 + g2)
		t[3][j] = g2
	}
	for r := 0; r < 4; r++ {
		a, b, c := t[r][0], t[r][1], t[r][2]
		u[r*4+0] = a
		u[r*4+1] = 0.5 * (a + b + c)
		u[r*4+2] = 0.5 * (a - b + c)
		u[r*4+3] = c
	}
	return u
}

// winogradRun is a run of a chunk's tiles side by side in one tile row of
// one image: the chunk's tiles [j0, j0+n), whose first covers output pixel
// (oh, ow) of image img. The transforms work a run at a time, so that their
// loops run over contiguous rows.
type winogradRun struct{ j0, n, img, oh, ow int }

// winogradRuns cuts tiles [t0, t1) of the batch into runs.
func (g convGeom) winogradRuns(runs []winogradRun, t0, t1 int) []winogradRun {
	th, tw := g.tilesH(), g.tilesW()
	runs = runs[:0]
	for t := t0; t < t1; {
		img, r := t/(th*tw), t%(th*tw)
		col := r % tw
		n := min(tw-col, t1-t)
		runs = append(runs, winogradRun{j0: t - t0, n: n, img: img, oh: r / tw * 2, ow: col * 2})
		t += n
	}
	return runs
}

// winogradScratch is one worker's buffers: the packed V and the products M
// of a chunk, V of one input channel before packing, and the rows the
// transforms go through.
type winogradScratch struct {
	vp, m, v  []float32
	rows, pad [4][]float32
	q         [8][]float32
	zeros     []float32
	runs      []winogradRun
	vPlane    int
	mPlane    int
	done      []func()
}

func (g convGeom) newWinogradScratch(chunk, nr int) *winogradScratch {
	ws := &winogradScratch{}
	chunkPad := (chunk + nr - 1) / nr * nr
	ws.vPlane, ws.mPlane = winogradPlane(g.Cin*chunkPad), winogradPlane(g.Cout*chunk)
	get := func(n int) []float32 {
		s, done := getScratch(n)
		ws.done = append(ws.done, done)
		return s
	}
	ws.vp, ws.m, ws.v = get(16*ws.vPlane), get(16*ws.mPlane), get(16*chunkPad)
	cols := 2*chunk + 2
	for k := range ws.rows {
		ws.rows[k], ws.pad[k] = make([]float32, cols), make([]float32, cols)
	}
	for k := range ws.q {
		ws.q[k] = make([]float32, chunk)
	}
	ws.zeros = make([]float32, cols)
	return ws
}

func (ws *winogradScratch) free() {
	for _, done := range ws.done {
		done()
	}
}

// conv2DWinograd writes out (N, Cout, Ho, Wo) = conv(x, w) + bias for a
// 3×3 stride-1 g on the pure-Go sgemm (see the top of this file).
func (b *Backend) conv2DWinograd(g convGeom, xv []float32, w *tensor.Tensor, bv, ov []float32) {
	kern := b.kernel()
	wf, wh := weightWords(w)
	us, done := winogradU(kern, g.Cout, g.Cin, wf, wh, w.DType())
	defer done()

	tiles := g.N * g.tilesH() * g.tilesW()
	// Chunks of at most winogradChunk tiles, as many for each worker.
	chunk, chunks := splitChunks(tiles, 1, winogradChunk, kern.nr)
	parallelFor(chunks, 16*g.Cin*g.Cout*chunk/64, func(lo, hi int) {
		ws := g.newWinogradScratch(chunk, kern.nr)
		defer ws.free()
		for c := lo; c < hi; c++ {
			t0, t1 := c*chunk, min((c+1)*chunk, tiles)
			nt := t1 - t0
			ws.runs = g.winogradRuns(ws.runs, t0, t1)
			g.winogradInput(ws, xv, nt, kern.nr)
			// M_ξ (Cout, nt) = U_ξ · V_ξ, block by block of Cin as gemmCore
			// runs it: the (ξ, pc) block of V stays in L2 across the row
			// blocks of U_ξ.
			ntPad := (nt + kern.nr - 1) / kern.nr * kern.nr
			for xi := 0; xi < 16; xi++ {
				mx := ws.m[xi*ws.mPlane : xi*ws.mPlane+g.Cout*nt]
				clear(mx)
				vx := ws.vp[xi*ws.vPlane:]
				for pc := 0; pc < g.Cin; pc += gemmKC {
					kc := min(gemmKC, g.Cin-pc)
					for ic := 0; ic < g.Cout; ic += gemmMC {
						mc := min(gemmMC, g.Cout-ic)
						macroKernel(kern, mc, nt, kc, us[xi].panels(ic, mc, pc, kc), vx[pc*ntPad:], mx[ic*nt:], nt)
					}
				}
			}
			g.winogradOutput(ws, ov, bv, nt)
		}
	})
}

// winogradInput writes V_ξ = (Bᵀ d B)_ξ of the 4×4 patch d of each of the
// chunk's nt tiles (ws.runs) and every input channel into ws.vp, as the
// packed B panels of 16 matrices (Cin, nt) ws.vPlane floats apart: matrix
// ξ's block of rows pc (kc of them) starts at pc*ntPad, and within a block
// element (kk, j) sits at j/nr*kc*nr + kk*nr + j%nr, as packB lays it out.
// With Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], a run's four input rows
// are combined column by column first (s = Bᵀ d, each column once), then
// each tile's four columns of s; a channel's V goes to ws.v and is copied
// into the panels a run of nr at a time.
func (g convGeom) winogradInput(ws *winogradScratch, x []float32, nt, nr int) {
	ntPad := (nt + nr - 1) / nr * nr
	hw := g.H * g.W
	for xi := 0; xi < 16; xi++ {
		clear(ws.v[xi*ntPad+nt : (xi+1)*ntPad]) // the last panel's pad columns
	}
	for ci := 0; ci < g.Cin; ci++ {
		for _, run := range ws.runs {
			cols := 2*run.n + 2
			ih0, iw0 := run.oh-g.PT, run.ow-g.PL
			base := (run.img*g.Cin + ci) * hw
			var r [4][]float32
			for k := range r {
				ih := ih0 + k
				switch {
				case ih < 0 || ih >= g.H:
					r[k] = ws.zeros[:cols]
				case iw0 >= 0 && iw0+cols <= g.W:
					r[k] = x[base+ih*g.W+iw0 : base+ih*g.W+iw0+cols]
				default:
					src := x[base+ih*g.W : base+(ih+1)*g.W]
					buf := ws.pad[k][:cols]
					lo, hi := min(max(0, -iw0), cols), max(min(cols, g.W-iw0), 0)
					hi = max(hi, lo)
					clear(buf[:lo])
					copy(buf[lo:hi], src[iw0+lo:])
					clear(buf[hi:])
					r[k] = buf
				}
			}
			r0, r1, r2, r3 := r[0], r[1][:cols], r[2][:cols], r[3][:cols]
			s0, s1, s2, s3 := ws.rows[0][:cols], ws.rows[1][:cols], ws.rows[2][:cols], ws.rows[3][:cols]
			for c, a := range r0 {
				b, cc, d := r1[c], r2[c], r3[c]
				s0[c], s1[c], s2[c], s3[c] = a-cc, b+cc, cc-b, b-d
			}
			for k, sr := range [4][]float32{s0, s1, s2, s3} {
				at := k*4*ntPad + run.j0
				v0, v1 := ws.v[at:at+run.n], ws.v[at+ntPad:at+ntPad+run.n]
				v2, v3 := ws.v[at+2*ntPad:at+2*ntPad+run.n], ws.v[at+3*ntPad:at+3*ntPad+run.n]
				for t := range v0 {
					p := sr[2*t : 2*t+4]
					a, b, c, e := p[0], p[1], p[2], p[3]
					v0[t], v1[t], v2[t], v3[t] = a-c, b+c, c-b, b-e
				}
			}
		}
		pc := ci / gemmKC * gemmKC
		kc := min(gemmKC, g.Cin-pc)
		rowAt := pc*ntPad + (ci-pc)*nr
		for xi := 0; xi < 16; xi++ {
			src := ws.v[xi*ntPad : (xi+1)*ntPad]
			dst := ws.vp[xi*ws.vPlane+rowAt:]
			for q := 0; q*nr < ntPad; q++ {
				copy(dst[q*kc*nr:q*kc*nr+nr], src[q*nr:])
			}
		}
	}
}

// maxNR bounds the kernels' nr (avx512's 32) for Winograd.
const maxNR = 32

// winogradPlane is how many floats apart the 16 matrices of n floats each
// lie: n rounded up to an odd number of 64-byte lines, so that the same
// element of the 16 does not fall in the same cache set (4 KiB aliasing).
func winogradPlane(n int) int {
	lines := (n + 15) / 16
	return (lines | 1) * 16
}

// winogradOutput writes Y = Aᵀ M A + bias of each of the chunk's nt tiles
// (ws.runs) into out, with Aᵀ = [1 1 1 0; 0 1 -1 -1]: ws.m holds the 16
// products M_ξ (Cout, nt), ws.mPlane floats apart. A run's rows Aᵀ M go to
// ws.q first, then each output row is written two pixels a tile; pixels of
// a tile past an odd-sized output are dropped.
func (g convGeom) winogradOutput(ws *winogradScratch, out, bias []float32, nt int) {
	for co := 0; co < g.Cout; co++ {
		var bc float32
		if bias != nil {
			bc = bias[co]
		}
		for _, run := range ws.runs {
			n := run.n
			mrow := func(xi int) []float32 {
				at := xi*ws.mPlane + co*nt + run.j0
				return ws.m[at : at+n]
			}
			for c := 0; c < 4; c++ {
				m0, m1, m2, m3 := mrow(c), mrow(4+c), mrow(8+c), mrow(12+c)
				q0, q1 := ws.q[c][:n], ws.q[4+c][:n]
				for t, a := range m0 {
					b, cc := m1[t], m2[t]
					q0[t], q1[t] = a+b+cc, b-cc-m3[t]
				}
			}
			full := n
			if run.ow+2*n > g.Wo {
				full-- // the last tile's right column is past the output
			}
			for k := 0; k < 2 && run.oh+k < g.Ho; k++ {
				o := out[((run.img*g.Cout+co)*g.Ho+run.oh+k)*g.Wo+run.ow:]
				q0, q1, q2, q3 := ws.q[4*k][:n], ws.q[4*k+1][:n], ws.q[4*k+2][:n], ws.q[4*k+3][:n]
				for t := 0; t < full; t++ {
					b, c := q1[t], q2[t]
					y := o[2*t : 2*t+2]
					y[0], y[1] = q0[t]+b+c+bc, b-c-q3[t]+bc
				}
				if full < n {
					o[2*full] = q0[full] + q1[full] + q2[full] + bc
				}
			}
		}
	}
}
