package vae

import (
	"lorastudio/engine/nn"
	"lorastudio/engine/tensor"
)

// freer is a loaded layer (every nn layer has Free).
type freer interface{ Free() }

// builder loads layers from an nn scope and remembers them for Free.
type builder struct {
	owned []freer
}

func (bl *builder) conv(s nn.Scope, in, out, k int, p tensor.Conv2DParams) (*nn.Conv2d, error) {
	c, err := nn.LoadConv2d(s, in, out, k, p, true)
	if err == nil {
		bl.owned = append(bl.owned, c)
	}
	return c, err
}

func (bl *builder) groupNorm(s nn.Scope, groups, c int) (*nn.GroupNorm, error) {
	g, err := nn.LoadGroupNorm(s, groups, c, eps)
	if err == nil {
		bl.owned = append(bl.owned, g)
	}
	return g, err
}

// load records a loaded attention for Free.
func (bl *builder) load(a *nn.Attention, err error) (*nn.Attention, error) {
	if err == nil {
		bl.owned = append(bl.owned, a)
	}
	return a, err
}

// consume applies f to t and frees t whatever f returns: the step of a
// forward pass whose input dies there.
func consume(t *tensor.Tensor, f func(*tensor.Tensor) (*tensor.Tensor, error)) (*tensor.Tensor, error) {
	out, err := f(t)
	t.Free()
	return out, err
}
