package cpu

import "lorastudio/engine/tensor"

// LayerNorm: x (..., C) is normalized per row of C; the kernel is in norm.go.

func rowLayout(s tensor.Shape) normLayout {
	C := s[len(s)-1]
	return normLayout{segs: s.Numel() / C, segLen: C, run: 1, perSeg: 1, channels: C}
}

func layerLay(op string) func(tensor.Shape) (normLayout, error) {
	return func(s tensor.Shape) (normLayout, error) {
		if len(s) < 1 {
			return normLayout{}, tensor.Errorf(op, tensor.ErrShape, "x is %s", s)
		}
		return rowLayout(s), nil
	}
}

// LayerNorm normalizes x (..., C) over its last dimension.
func (b *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) (*tensor.Tensor, error) {
	return b.normForward("layernorm", x, gamma, beta, eps, layerLay("layernorm"))
}

// LayerNormBackward returns dx, dgamma, dbeta; see tensor.Ops.LayerNormBackward.
func (b *Backend) LayerNormBackward(dout, x, gamma *tensor.Tensor, eps float32, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	return b.normBackward("layernorm backward", dout, x, gamma, eps, need, layerLay("layernorm backward"))
}
