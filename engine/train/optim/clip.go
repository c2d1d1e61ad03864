package optim

import "math"

// ClipGradNorm scales grads in place so that their total L2 norm (over all
// of them, as one vector) is at most maxNorm, and returns the norm before
// clipping, as torch.nn.utils.clip_grad_norm_ does: the norm is the L2 norm
// of the per-tensor norms, the coefficient maxNorm/(norm + 1e-6) clamped to
// 1 and applied to every gradient (a no-op multiply by 1 when under the
// limit, which leaves the values unchanged). Norms are accumulated in
// float64 (torch reduces float32 with wider partial sums; the difference is
// far below a rounding step of the coefficient). maxNorm ≤ 0 only measures.
// A nil gradient is skipped.
func ClipGradNorm(grads [][]float32, maxNorm float64) float64 {
	var total float64
	for _, g := range grads {
		var s float64
		for _, x := range g {
			s += float64(x) * float64(x)
		}
		n := float64(float32(math.Sqrt(s))) // torch.linalg.vector_norm of one tensor, float32
		total += n * n
	}
	norm := float64(float32(math.Sqrt(total)))
	if maxNorm <= 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	coef := float32(maxNorm / (norm + 1e-6))
	if coef >= 1 {
		return norm
	}
	for _, g := range grads {
		for i := range g {
			g[i] *= coef
		}
	}
	return norm
}
