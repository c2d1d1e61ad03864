package cpu

import (
	"math"
	"sync"

	"lorastudio/engine/cpu/internal/asm"
	"lorastudio/engine/tensor"
)

// attnBlock is how many query rows are processed at once; the score block
// (attnBlock, Nk) is the only (query, key) buffer, never the full (Nq, Nk).
const attnBlock = 128

// attnFwdBlock is the forward's query block: one sgemm row panel (gemmMC),
// so a worker's sgemms on it stay on that worker.
const attnFwdBlock = gemmMC

type attnGeom struct{ B, H, Nq, Nk, D int }

func (b *Backend) attnCheck(op string, q, k, v *tensor.Tensor, extra ...*tensor.Tensor) (attnGeom, error) {
	ts := append([]*tensor.Tensor{q, k, v}, extra...)
	if _, err := b.f32s(op, []string{"q", "k", "v", "dout", "out", "lse"}, ts...); err != nil {
		return attnGeom{}, err
	}
	qs, ks, vs := q.Shape(), k.Shape(), v.Shape()
	if len(qs) != 4 || !ks.Equal(vs) || len(ks) != 4 || qs[0] != ks[0] || qs[1] != ks[1] || qs[3] != ks[3] {
		return attnGeom{}, tensor.Errorf(op, tensor.ErrShape, "q is %s, k is %s, v is %s: want q (B, H, Nq, D), k and v (B, H, Nk, D)", qs, ks, vs)
	}
	return attnGeom{qs[0], qs[1], qs[2], ks[2], qs[3]}, nil
}

// attnScores fills p (rows, Nk) with the probabilities of query rows
// [i0, i0+rows) of one head: p = exp(scale·q·kᵀ - lse), masked to 0 above the
// diagonal when causal. With lse == nil it computes lse (written to lseOut)
// from the scores first.
func (b *Backend) attnScores(g attnGeom, qh, kh []float32, i0, rows int, scale float32, causal bool, lse, lseOut, p []float32) {
	// p (rows, Nk) = q[i0:i0+rows] (rows, D) · kᵀ (D, Nk)
	b.gemm(false, true, rows, g.Nk, g.D, qh[i0*g.D:], g.D, kh, g.D, false, p, g.Nk)
	parallelFor(rows, g.Nk, func(lo, hi int) { attnRows(g, i0, lo, hi, scale, causal, lse, lseOut, p) })
}

// attnRows turns rows [lo, hi) of the raw scores p (rows, Nk) of query rows
// starting at i0 into probabilities; see attnScores.
func attnRows(g attnGeom, i0, lo, hi int, scale float32, causal bool, lse, lseOut, p []float32) {
	for r := lo; r < hi; r++ {
		row := p[r*g.Nk : (r+1)*g.Nk]
		vis := g.Nk
		if causal {
			vis = min(i0+r+1, g.Nk)
		}
		sc := row[:vis]
		if lse != nil {
			// Backward: P = exp(scale*s - lse) from the saved log-sum-exp.
			l := lse[i0+r]
			k, _ := asm.ExpSum(sc, sc, scale, -l)
			for j := k; j < len(sc); j++ {
				sc[j] = expf(sc[j]*scale - l)
			}
		} else {
			// Forward: one exp per score, then normalize; lse = m + log Σ.
			// For scale > 0 the largest scaled score is scale·max(s), so the
			// scaling rides in the exp's argument; asm takes what this CPU's
			// vectors allow, the Go loops the rest.
			a := scale
			if !(a > 0) {
				for j := range sc {
					sc[j] *= a
				}
				a = 1
			}
			k, m := asm.Max(sc)
			for _, s := range sc[k:] {
				m = max(m, s)
			}
			m *= a
			k, sum := asm.ExpSum(sc, sc, a, -m)
			for j := k; j < len(sc); j++ {
				e := expf(sc[j]*a - m)
				sc[j] = e
				sum += float64(e)
			}
			inv := float32(1 / sum)
			k = asm.Scale(sc, inv)
			for j := k; j < len(sc); j++ {
				sc[j] *= inv
			}
			lseOut[i0+r] = float32(float64(m) + math.Log(sum))
		}
		clear(row[vis:])
	}
}

// Attention is softmax(scale·q·kᵀ)·v per (batch, head), query rows in
// blocks of attnBlock; see tensor.Ops.Attention for the shapes.
func (b *Backend) Attention(q, k, v *tensor.Tensor, scale float32, causal bool) (out, lse *tensor.Tensor, err error) {
	const op = "attention"
	g, err := b.attnCheck(op, q, k, v)
	if err != nil {
		return nil, nil, err
	}
	out, ov, err := b.newF32(op, q.Shape())
	if err != nil {
		return nil, nil, err
	}
	lse, lv, err := b.newF32(op, tensor.Shape{g.B, g.H, g.Nq})
	if err != nil {
		out.Free()
		return nil, nil, err
	}
	qv, kv, vv := data(q), data(k), data(v)
	// The workers take whole (head, block of attnFwdBlock query rows) tasks,
	// each with its own score block; a block is one sgemm row panel, so
	// its sgemms and its exps run on the worker alone.
	blocks := (g.Nq + attnFwdBlock - 1) / attnFwdBlock
	var ps sync.Pool
	parallelFor(g.B*g.H*blocks, min(attnFwdBlock, g.Nq)*g.Nk*g.D, func(lo, hi int) {
		pp, _ := ps.Get().(*[]float32)
		if pp == nil {
			s := make([]float32, min(attnFwdBlock, g.Nq)*g.Nk)
			pp = &s
		}
		defer ps.Put(pp)
		p := *pp
		for t := lo; t < hi; t++ {
			h, i0 := t/blocks, t%blocks*attnFwdBlock
			rows := min(attnFwdBlock, g.Nq-i0)
			// qh, oh are (Nq, D); kh, vh are (Nk, D); lh is (Nq).
			qh, oh := qv[h*g.Nq*g.D:(h+1)*g.Nq*g.D], ov[h*g.Nq*g.D:(h+1)*g.Nq*g.D]
			kh, vh := kv[h*g.Nk*g.D:(h+1)*g.Nk*g.D], vv[h*g.Nk*g.D:(h+1)*g.Nk*g.D]
			lh := lv[h*g.Nq : (h+1)*g.Nq]
			// p (rows, Nk) = q[i0:i0+rows] (rows, D) · kᵀ (D, Nk), then probabilities.
			b.gemm(false, true, rows, g.Nk, g.D, qh[i0*g.D:], g.D, kh, g.D, false, p, g.Nk)
			attnRows(g, i0, 0, rows, scale, causal, nil, lh, p)
			// out[i0:i0+rows] (rows, D) = p (rows, Nk) · v (Nk, D)
			b.gemm(false, false, rows, g.D, g.Nk, p, g.Nk, vh, g.D, false, oh[i0*g.D:], g.D)
		}
	})
	return out, lse, nil
}

// AttentionBackward recomputes P = exp(scale·q·kᵀ - lse) per block of query
// rows and accumulates, with Δ_i = Σ_d dout_i·out_i:
//
//	dv += Pᵀ·dout,  dS = P ∘ (dout·vᵀ - Δ),  dq = scale·dS·k,  dk += scale·dSᵀ·q
func (b *Backend) AttentionBackward(dout, q, k, v, out, lse *tensor.Tensor, scale float32, causal bool) (dq, dk, dv *tensor.Tensor, err error) {
	const op = "attention backward"
	g, err := b.attnCheck(op, q, k, v, dout, out, lse)
	if err != nil {
		return nil, nil, nil, err
	}
	if !dout.Shape().Equal(q.Shape()) || !out.Shape().Equal(q.Shape()) || !lse.Shape().Equal(tensor.Shape{g.B, g.H, g.Nq}) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, out is %s, lse is %s for q %s", dout.Shape(), out.Shape(), lse.Shape(), q.Shape())
	}
	defer func() {
		if err != nil {
			tensor.FreeAll(dq, dk, dv)
			dq, dk, dv = nil, nil, nil
		}
	}()
	var dqv, dkv, dvv []float32
	if dq, dqv, err = b.newF32(op, q.Shape()); err != nil {
		return
	}
	if dk, dkv, err = b.newF32(op, k.Shape()); err != nil {
		return
	}
	if dv, dvv, err = b.newF32(op, v.Shape()); err != nil {
		return
	}
	qv, kv, vv, ov, lv, gv := data(q), data(k), data(v), data(out), data(lse), data(dout)
	blk := min(attnBlock, g.Nq)
	p := make([]float32, blk*g.Nk)
	dp := make([]float32, blk*g.Nk)
	delta := make([]float32, blk)
	qd, kd := g.Nq*g.D, g.Nk*g.D
	for h := 0; h < g.B*g.H; h++ {
		qh, kh, vh := qv[h*qd:(h+1)*qd], kv[h*kd:(h+1)*kd], vv[h*kd:(h+1)*kd]
		oh, gh, lh := ov[h*qd:(h+1)*qd], gv[h*qd:(h+1)*qd], lv[h*g.Nq:(h+1)*g.Nq]
		dqh, dkh, dvh := dqv[h*qd:(h+1)*qd], dkv[h*kd:(h+1)*kd], dvv[h*kd:(h+1)*kd]
		for i0 := 0; i0 < g.Nq; i0 += attnBlock {
			rows := min(attnBlock, g.Nq-i0)
			b.attnScores(g, qh, kh, i0, rows, scale, causal, lh, nil, p)
			// dv (Nk, D) += pᵀ (Nk, rows) · dout (rows, D)
			b.gemm(true, false, g.Nk, g.D, rows, p, g.Nk, gh[i0*g.D:], g.D, i0 > 0, dvh, g.D)
			// dp (rows, Nk) = dout (rows, D) · vᵀ (D, Nk)
			b.gemm(false, true, rows, g.Nk, g.D, gh[i0*g.D:], g.D, vh, g.D, false, dp, g.Nk)
			for r := 0; r < rows; r++ {
				var s float64
				for d := 0; d < g.D; d++ {
					s += float64(gh[(i0+r)*g.D+d]) * float64(oh[(i0+r)*g.D+d])
				}
				delta[r] = float32(s)
			}
			// ds = scale * p ∘ (dp - Δ), stored in dp
			parallelFor(rows, g.Nk, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					pr, dr := p[r*g.Nk:(r+1)*g.Nk], dp[r*g.Nk:(r+1)*g.Nk]
					for j := range dr {
						dr[j] = scale * pr[j] * (dr[j] - delta[r])
					}
				}
			})
			// dq (rows, D) = ds (rows, Nk) · k (Nk, D)
			b.gemm(false, false, rows, g.D, g.Nk, dp, g.Nk, kh, g.D, false, dqh[i0*g.D:], g.D)
			// dk (Nk, D) += dsᵀ (Nk, rows) · q (rows, D)
			b.gemm(true, false, g.Nk, g.D, rows, dp, g.Nk, qh[i0*g.D:], g.D, i0 > 0, dkh, g.D)
		}
	}
	return dq, dk, dv, nil
}
