package cpu

import "lorastudio/engine/tensor"

// GroupNorm: x (N, C, ...) is normalized per (n, group) over C/groups
// channels and every trailing element; the kernel is in norm.go.

func groupLayout(s tensor.Shape, groups int) normLayout {
	N, C := s[0], s[1]
	S := s.Numel() / (N * C)
	return normLayout{segs: N * groups, segLen: C / groups * S, run: S, perSeg: groups, channels: C}
}

func groupLay(op string, groups int) func(tensor.Shape) (normLayout, error) {
	return func(s tensor.Shape) (normLayout, error) {
		if len(s) < 2 || groups < 1 || s[1]%groups != 0 {
			return normLayout{}, tensor.Errorf(op, tensor.ErrShape, "x is %s with %d groups: want (N, C, ...) with C divisible by groups", s, groups)
		}
		return groupLayout(s, groups), nil
	}
}

// GroupNorm normalizes x (N, C, ...) per group; see tensor.Ops.GroupNorm.
func (b *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32) (*tensor.Tensor, error) {
	return b.normForward("groupnorm", x, gamma, beta, eps, groupLay("groupnorm", groups))
}

// GroupNormBackward returns dx, dgamma, dbeta; see tensor.Ops.GroupNormBackward.
func (b *Backend) GroupNormBackward(dout, x, gamma *tensor.Tensor, groups int, eps float32, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	return b.normBackward("groupnorm backward", dout, x, gamma, eps, need, groupLay("groupnorm backward", groups))
}
