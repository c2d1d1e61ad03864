package tensor

import "fmt"

// BroadcastShapes returns the numpy broadcast of a and b: shapes are aligned
// at the right and each pair of sizes must be equal or contain a 1.
func BroadcastShapes(a, b Shape) (Shape, error) {
	n := max(len(a), len(b))
	out := make(Shape, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("%s and %s do not broadcast (dim %d: %d vs %d)", a, b, i, da, db)
		}
	}
	return out, nil
}

// MatMulDims describes one MatMul call after validation.
type MatMulDims struct {
	Batch   int   // number of independent products (1 when a is rank 2 or b is shared)
	M, K, N int   // a·b is (M, K)·(K, N) per batch
	SharedB bool  // b is rank 2 and used by every batch
	Out     Shape // the output shape (..., M, N)
}

// MatMulShape validates MatMul's operand shapes (see Ops.MatMul) and returns
// the dimensions; bias may be nil.
func MatMulShape(a, b, bias Shape, transA, transB bool) (MatMulDims, error) {
	var d MatMulDims
	if len(a) < 2 || len(b) < 2 {
		return d, fmt.Errorf("a is %s, b is %s: both need rank >= 2", a, b)
	}
	ra, ca := a[len(a)-2], a[len(a)-1]
	rb, cb := b[len(b)-2], b[len(b)-1]
	m, ka := ra, ca
	if transA {
		m, ka = ca, ra
	}
	kb, n := rb, cb
	if transB {
		kb, n = cb, rb
	}
	if ka != kb {
		return d, fmt.Errorf("a is %s (transA=%v), b is %s (transB=%v): inner dimensions %d and %d differ", a, transA, b, transB, ka, kb)
	}
	lead := a[:len(a)-2]
	d.M, d.K, d.N = m, ka, n
	switch {
	case len(b) == 2:
		// b is shared by every batch.
		d.SharedB = true
		d.Batch = lead.Numel()
		if !transA {
			// a's leading dimensions fold into M: one (M*batch, K)·(K, N) product.
			d.M *= d.Batch
			d.Batch = 1
		}
	case lead.Equal(b[:len(b)-2]):
		d.Batch = lead.Numel()
	default:
		return d, fmt.Errorf("a is %s, b is %s: batch dimensions differ (b must be rank 2 or have a's batch dimensions)", a, b)
	}
	if bias != nil && !(len(bias) == 1 && bias[0] == n) {
		return d, fmt.Errorf("bias is %s, want (%d)", bias, n)
	}
	d.Out = append(lead.Clone(), m, n)
	return d, nil
}

// Conv2DShape validates Conv2D's shapes (see Ops.Conv2D) and returns the
// output shape (N, Cout, Ho, Wo); bias may be nil.
func Conv2DShape(x, w, bias Shape, p Conv2DParams) (Shape, error) {
	if len(x) != 4 || len(w) != 4 {
		return nil, fmt.Errorf("x is %s, w is %s: want x (N, Cin, H, W) and w (Cout, Cin, kh, kw)", x, w)
	}
	if x[1] != w[1] {
		return nil, fmt.Errorf("x is %s, w is %s: x has %d channels, w expects %d", x, w, x[1], w[1])
	}
	if p.Stride < 0 || p.PadTop < 0 || p.PadBottom < 0 || p.PadLeft < 0 || p.PadRight < 0 {
		return nil, fmt.Errorf("negative stride or padding %+v", p)
	}
	s := p.StrideOr1()
	hp, wp := x[2]+p.PadTop+p.PadBottom, x[3]+p.PadLeft+p.PadRight
	if hp < w[2] || wp < w[3] {
		return nil, fmt.Errorf("x is %s padded to %dx%d, smaller than the %dx%d kernel", x, hp, wp, w[2], w[3])
	}
	if bias != nil && !(len(bias) == 1 && bias[0] == w[0]) {
		return nil, fmt.Errorf("bias is %s, want (%d)", bias, w[0])
	}
	return Shape{x[0], w[0], (hp-w[2])/s + 1, (wp-w[3])/s + 1}, nil
}

// ConcatShape validates Concat's shapes and returns the output shape and the
// resolved axis.
func ConcatShape(axis int, shapes ...Shape) (Shape, int, error) {
	if len(shapes) == 0 {
		return nil, 0, fmt.Errorf("no tensors to concatenate")
	}
	ax, ok := shapes[0].Axis(axis)
	if !ok {
		return nil, 0, fmt.Errorf("axis %d out of range for %s", axis, shapes[0])
	}
	out := shapes[0].Clone()
	for _, s := range shapes[1:] {
		if len(s) != len(out) {
			return nil, 0, fmt.Errorf("%s and %s differ in rank", shapes[0], s)
		}
		for i := range s {
			if i != ax && s[i] != out[i] {
				return nil, 0, fmt.Errorf("%s and %s differ outside axis %d", shapes[0], s, ax)
			}
		}
		out[ax] += s[ax]
	}
	return out, ax, nil
}

// PermuteShape validates perm against shape and returns the permuted shape.
func PermuteShape(shape Shape, perm []int) (Shape, error) {
	if len(perm) != len(shape) {
		return nil, fmt.Errorf("perm %v has %d entries for %s", perm, len(perm), shape)
	}
	seen := make([]bool, len(perm))
	out := make(Shape, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation of 0..%d", perm, len(perm)-1)
		}
		seen[p] = true
		out[i] = shape[p]
	}
	return out, nil
}

// InversePerm returns the permutation that undoes perm.
func InversePerm(perm []int) []int {
	inv := make([]int, len(perm))
	for i, p := range perm {
		inv[p] = i
	}
	return inv
}
