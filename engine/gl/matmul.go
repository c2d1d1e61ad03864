package gl

import (
	"strconv"

	"lorastudio/engine/tensor"
)

// operand is one GEMM input: a buffer, its dtype and its element strides
// (batch, row, column) of the logical matrix the kernel reads.
type operand struct {
	buf *buffer
	dt  tensor.DType
	st  [3]int
}

// gemmSplit returns how many slices of K a product without bias is split
// into (split-K): a long K with too few output tiles to fill the device
// (LoRA gradients: rank x width summed over thousands of rows) runs its
// slices in parallel and the host sums them. 1 means no split.
func (b *Backend) gemmSplit(m, n, k, batch int, bias *buffer) int {
	if bias != nil {
		return 1
	}
	if b.dev.splitK > 0 {
		return b.dev.splitK
	}
	tiles := ((m + 63) / 64) * ((n + 63) / 64) * batch
	if tiles >= 64 || k < 2048 {
		return 1
	}
	s := min(64/tiles, k/1024)
	if s < 2 {
		return 1
	}
	return s
}

// gemmLaunch builds the matmul.comp dispatch of splits slices of K: out is
// (batch, M, N) contiguous = A·B (+ bias), or with splits > 1 (batch*splits,
// M, N) partial sums.
func (b *Backend) gemmLaunch(A, B operand, bias, out *buffer, batch, m, n, k, splits int) launch {
	kc := (k + splits - 1) / splits
	kc = (kc + 15) / 16 * 16
	p := i32(m, n, k, A.st[0], A.st[1], A.st[2], B.st[0], B.st[1], B.st[2], 0, splits, kc)
	bb := bias
	if bias != nil {
		p[9] = 1
	} else {
		bb = out // a binding must be present; the kernel does not read it
	}
	defs, tile := b.dev.gemmConfig(map[string]string{"ATYPE": strconv.Itoa(int(A.dt)), "BTYPE": strconv.Itoa(int(B.dt))}, m, n, batch*splits, true)
	return launch{
		kernel:  "matmul",
		defines: defs,
		bufs:    []*buffer{A.buf, B.buf, bb, out},
		p:       p,
		groups:  [3]int{(n + tile - 1) / tile, (m + tile - 1) / tile, batch * splits},
	}
}

// runGemm computes out (batch, M, N) = A·B (+ bias) on the GL thread,
// splitting K when that fills the device better.
func (b *Backend) runGemm(A, B operand, bias, out *buffer, batch, m, n, k int) error {
	s := b.gemmSplit(m, n, k, batch, bias)
	if s == 1 {
		return b.dev.run(b.gemmLaunch(A, B, bias, out, batch, m, n, k, 1))
	}
	tmp, err := b.dev.pool.alloc(4 * batch * s * m * n)
	if err != nil {
		return err
	}
	defer b.dev.pool.release(tmp)
	if err := b.dev.run(b.gemmLaunch(A, B, nil, tmp, batch, m, n, k, s)); err != nil {
		return err
	}
	// tmp is (batch, S, M*N): keep (batch, M*N), sum over S.
	return b.dev.run(b.reduceLaunch(tmp, out, []int{batch, m * n}, []int{s * m * n, 1}, []int{s}, []int{m * n}, 1))
}

// weightDType checks that a weight operand is F32, F16 or BF16 and that the
// other operands are F32.
func weightDType(op string, w *tensor.Tensor, f32 []string, others ...*tensor.Tensor) error {
	if err := tensor.CheckF32(op, f32, others...); err != nil {
		return err
	}
	if !w.DType().Valid() {
		return tensor.Errorf(op, tensor.ErrDType, "weight is %s", w.DType())
	}
	return nil
}

// mmStrides returns the (batch, row, col) strides of a's logical (M, K) and
// b's logical (K, N) matrices.
func mmStrides(d tensor.MatMulDims, transA, transB bool) (sa, sb [3]int) {
	// When a's batch was folded into M (shared b, no transA) the batch is 1
	// and the batch stride is never used.
	if transA {
		sa = [3]int{d.M * d.K, 1, d.M}
	} else {
		sa = [3]int{d.M * d.K, d.K, 1}
	}
	if transB {
		sb = [3]int{d.K * d.N, 1, d.K}
	} else {
		sb = [3]int{d.K * d.N, d.N, 1}
	}
	if d.SharedB {
		sb[0] = 0
	}
	return sa, sb
}

// MatMul returns a·b (+ bias) with optional transposes, batched or with a
// shared rank-2 b that may be packed f16/bf16 (shaders/gl/matmul.comp).
func (b *Backend) MatMul(x, w, bias *tensor.Tensor, transA, transB bool) (*tensor.Tensor, error) {
	const op = "matmul"
	ts := []*tensor.Tensor{x, w}
	if bias != nil {
		ts = append(ts, bias)
	}
	if err := b.check(op, ts...); err != nil {
		return nil, err
	}
	f32 := []*tensor.Tensor{x}
	if bias != nil {
		f32 = append(f32, bias)
	}
	if err := weightDType(op, w, []string{"a", "bias"}, f32...); err != nil {
		return nil, err
	}
	var bs tensor.Shape
	if bias != nil {
		bs = bias.Shape()
	}
	d, err := tensor.MatMulShape(x.Shape(), w.Shape(), bs, transA, transB)
	if err != nil {
		return nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	sa, sb := mmStrides(d, transA, transB)
	return b.kernelOut(op, d.Out, ts, func(in []*buffer, out *buffer) ([]launch, error) {
		var bb *buffer
		if bias != nil {
			bb = in[2]
		}
		return nil, b.runGemm(operand{in[0], tensor.F32, sa}, operand{in[1], w.DType(), sb}, bb, out, d.Batch, d.M, d.N, d.K)
	})
}

// MatMulBackward returns da, db and dbias for dout (..., M, N):
// da = dout·bᵀ, db = aᵀ·dout (summed over the batch when b is shared),
// dbias = dout summed over rows — each a GEMM with rearranged strides, no
// transposed copies.
func (b *Backend) MatMulBackward(dout, x, w *tensor.Tensor, transA, transB bool, need tensor.GradMask) (da, db, dbias *tensor.Tensor, err error) {
	const op = "matmul backward"
	if err := b.check(op, dout, x, w); err != nil {
		return nil, nil, nil, err
	}
	if err := weightDType(op, w, []string{"dout", "a"}, dout, x); err != nil {
		return nil, nil, nil, err
	}
	d, err := tensor.MatMulShape(x.Shape(), w.Shape(), nil, transA, transB)
	if err != nil {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "%v", err)
	}
	if !dout.Shape().Equal(d.Out) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want %s", dout.Shape(), d.Out)
	}
	defer func() {
		if err != nil {
			tensor.FreeAll(da, db, dbias)
			da, db, dbias = nil, nil, nil
		}
	}()
	sa, sb := mmStrides(d, transA, transB)
	M, N, K, batch := d.M, d.N, d.K, d.Batch
	sd := [3]int{M * N, N, 1}  // dout as (batch, M, N)
	sdT := [3]int{M * N, 1, N} // dout as (batch, N, M)
	swap := func(s [3]int) [3]int { return [3]int{s[0], s[2], s[1]} }
	if need.Has(tensor.GradX) {
		da, err = b.kernelOut(op, x.Shape(), []*tensor.Tensor{dout, w}, func(in []*buffer, out *buffer) ([]launch, error) {
			if !transA { // da (M, K) = dout (M, N) · Bᵀ (N, K)
				return nil, b.runGemm(operand{in[0], tensor.F32, sd}, operand{in[1], w.DType(), swap(sb)}, nil, out, batch, M, K, N)
			}
			// da (K, M) = B (K, N) · doutᵀ (N, M)
			return nil, b.runGemm(operand{in[1], w.DType(), sb}, operand{in[0], tensor.F32, sdT}, nil, out, batch, K, M, N)
		})
		if err != nil {
			return da, db, dbias, err
		}
	}
	if need.Has(tensor.GradW) {
		ws := w.Shape()
		db, err = b.kernelOut(op, ws, []*tensor.Tensor{dout, x}, func(in []*buffer, out *buffer) ([]launch, error) {
			dst := out
			if d.SharedB && batch > 1 {
				tmp, err := b.dev.pool.alloc(4 * batch * K * N)
				if err != nil {
					return nil, err
				}
				defer b.dev.pool.release(tmp)
				dst = tmp
			}
			var err error
			if !transB { // db (K, N) = Aᵀ (K, M) · dout (M, N)
				err = b.runGemm(operand{in[1], tensor.F32, swap(sa)}, operand{in[0], tensor.F32, sd}, nil, dst, batch, K, N, M)
			} else { // db (N, K) = doutᵀ (N, M) · A (M, K)
				err = b.runGemm(operand{in[0], tensor.F32, sdT}, operand{in[1], tensor.F32, sa}, nil, dst, batch, N, K, M)
			}
			if err != nil || dst == out {
				return nil, err
			}
			// tmp is released when this function returns: reduce it now.
			return nil, b.dev.run(b.reduceLaunch(dst, out, []int{K * N}, []int{1}, []int{batch}, []int{K * N}, 1))
		})
		if err != nil {
			return da, db, dbias, err
		}
	}
	if need.Has(tensor.GradB) {
		rows := dout.Numel() / N
		dbias, err = b.kernelOut(op, tensor.Shape{N}, []*tensor.Tensor{dout}, func(in []*buffer, out *buffer) ([]launch, error) {
			return []launch{b.reduceLaunch(in[0], out, []int{N}, []int{1}, []int{rows}, []int{N}, 1)}, nil
		})
		if err != nil {
			return da, db, dbias, err
		}
	}
	return da, db, dbias, nil
}
