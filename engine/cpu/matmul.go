package cpu

import "lorastudio/engine/tensor"

// MatMul returns op(a)·op(b) + bias; see tensor.Ops.MatMul for the shapes.
func (b *Backend) MatMul(a, bm, bias *tensor.Tensor, transA, transB bool) (*tensor.Tensor, error) {
	const op = "matmul"
	ts := []*tensor.Tensor{a, bm}
	if bias != nil {
		ts = append(ts, bias)
	}
	if err := tensor.Check(op, b, ts...); err != nil {
		return nil, err
	}
	if err := tensor.CheckF32(op, []string{"a"}, a); err != nil {
		return nil, err
	}
	var biasShape tensor.Shape
	if bias != nil {
		if err := tensor.CheckF32(op, []string{"bias"}, bias); err != nil {
			return nil, err
		}
		biasShape = bias.Shape()
	}
	d, err := tensor.MatMulShape(a.Shape(), bm.Shape(), biasShape, transA, transB)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	out, c, err := b.newF32(op, d.Out)
	if err != nil {
		return nil, err
	}
	// a is (batch, M, K) or (batch, K, M); b is (batch or 1, K, N) or (…, N, K); c is (batch, M, N).
	av := data(a)
	lda, ldb := d.K, d.N
	if transA {
		lda = d.M
	}
	if transB {
		ldb = d.K
	}
	for i := 0; i < d.Batch; i++ {
		bo := 0
		if !d.SharedB {
			bo = i * d.K * d.N
		}
		if bm.DType() != tensor.F32 {
			// A packed weight: converted while the sgemm packs it.
			b.gemmHalfB(transA, transB, d.M, d.N, d.K, av[i*d.M*d.K:], lda, halfData(bm)[bo:], bm.DType(), ldb, false, c[i*d.M*d.N:], d.N)
			continue
		}
		b.gemm(transA, transB, d.M, d.N, d.K, av[i*d.M*d.K:], lda, data(bm)[bo:], ldb, false, c[i*d.M*d.N:], d.N)
	}
	if bias != nil {
		bv := data(bias)
		rows := len(c) / d.N
		parallelFor(rows, d.N, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := c[r*d.N : (r+1)*d.N]
				for j := range row {
					row[j] += bv[j]
				}
			}
		})
	}
	return out, nil
}

// MatMulBackward returns da, db and dbias for C = op(A)·op(B) + bias:
//
//	dA = dC·op(B)ᵀ        (stored (M, K)), or op(B)·dCᵀ when transA (stored (K, M))
//	dB = op(A)ᵀ·dC        (stored (K, N)), or dCᵀ·op(A) when transB (stored (N, K))
//	dbias = Σ_rows dC
//
// with dB summed over batches when b is shared.
func (b *Backend) MatMulBackward(dout, a, bm *tensor.Tensor, transA, transB bool, need tensor.GradMask) (da, db, dbias *tensor.Tensor, err error) {
	const op = "matmul backward"
	if err := tensor.Check(op, b, dout, a, bm); err != nil {
		return nil, nil, nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "a"}, dout, a); err != nil {
		return nil, nil, nil, err
	}
	d, err := tensor.MatMulShape(a.Shape(), bm.Shape(), nil, transA, transB)
	if err != nil {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	if !dout.Shape().Equal(d.Out) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want %s for a %s, b %s", dout.Shape(), d.Out, a.Shape(), bm.Shape())
	}
	dc, av := data(dout), data(a)
	M, N, K := d.M, d.N, d.K
	lda, ldb := K, N
	if transA {
		lda = M
	}
	if transB {
		ldb = K
	}
	defer func() {
		if err != nil {
			tensor.FreeAll(da, db, dbias)
			da, db, dbias = nil, nil, nil
		}
	}()
	if need.Has(tensor.GradX) {
		var dav []float32
		if da, dav, err = b.newF32(op, a.Shape()); err != nil {
			return
		}
		var bw []float32
		var bh []uint16
		if bm.DType() == tensor.F32 {
			bw = data(bm)
		} else if transA {
			var done func()
			bw, done = weightScratch(bm)
			defer done()
		} else {
			bh = halfData(bm)
		}
		for i := 0; i < d.Batch; i++ {
			bo := 0
			if !d.SharedB {
				bo = i * K * N
			}
			dci, dai := dc[i*M*N:], dav[i*M*K:]
			if bh != nil {
				// dA (M, K) = dC (M, N) · op(B)ᵀ (N, K), the packed weight
				// converted while the sgemm packs it.
				b.gemmHalfB(false, !transB, M, K, N, dci, N, bh[bo:], bm.DType(), ldb, false, dai, K)
				continue
			}
			bi := bw[bo:]
			if transA {
				// dA stored (K, M) = op(B) (K, N) · dCᵀ (N, M)
				b.gemm(transB, true, K, M, N, bi, ldb, dci, N, false, dai, M)
			} else {
				// dA (M, K) = dC (M, N) · op(B)ᵀ (N, K)
				b.gemm(false, !transB, M, K, N, dci, N, bi, ldb, false, dai, K)
			}
		}
	}
	if need.Has(tensor.GradW) {
		var dbv []float32
		if db, dbv, err = b.newF32(op, bm.Shape()); err != nil {
			return
		}
		for i := 0; i < d.Batch; i++ {
			bo, acc := 0, false
			if d.SharedB {
				acc = i > 0
			} else {
				bo = i * K * N
			}
			dci, ai, dbi := dc[i*M*N:], av[i*M*K:], dbv[bo:]
			if transB {
				// dB stored (N, K) = dCᵀ (N, M) · op(A) (M, K)
				b.gemm(true, transA, N, K, M, dci, N, ai, lda, acc, dbi, K)
			} else {
				// dB (K, N) = op(A)ᵀ (K, M) · dC (M, N)
				b.gemm(!transA, false, K, N, M, ai, lda, dci, N, acc, dbi, N)
			}
		}
	}
	if need.Has(tensor.GradB) {
		var dbb []float32
		if dbias, dbb, err = b.newF32(op, tensor.Shape{N}); err != nil {
			return
		}
		// dbias (N) = Σ over every row of dC (rows, N)
		for r := 0; r < len(dc)/N; r++ {
			row := dc[r*N : (r+1)*N]
			for j, v := range row {
				dbb[j] += v
			}
		}
	}
	return da, db, dbias, nil
}
