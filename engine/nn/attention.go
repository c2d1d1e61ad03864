package nn

import (
	"fmt"
	"math"

	"lorastudio/engine/tensor"
)

// AttentionNames are the checkpoint names of an attention's four projections.
type AttentionNames struct{ Q, K, V, Out string }

// CLIPAttentionNames are transformers' CLIPAttention names.
var CLIPAttentionNames = AttentionNames{Q: "q_proj", K: "k_proj", V: "v_proj", Out: "out_proj"}

// DiffusersAttentionNames are diffusers' Attention names (to_out.1 is dropout).
var DiffusersAttentionNames = AttentionNames{Q: "to_q", K: "to_k", V: "to_v", Out: "to_out.0"}

// AttentionConfig sizes an Attention.
type AttentionConfig struct {
	QueryDim   int  // width of x and of the output
	ContextDim int  // width of the context for cross-attention; 0 means QueryDim
	Heads      int  // number of heads
	HeadDim    int  // width of one head; the inner width is Heads*HeadDim
	QKVBias    bool // q, k and v projections have biases (CLIP: yes, diffusers: no)
	OutBias    bool // the output projection has a bias
	Causal     bool // query i sees keys j <= i only (CLIP's text encoders)
}

// Attention is multi-head scaled-dot-product attention with q/k/v/out
// projections (transformers' CLIPAttention, diffusers' Attention), fused on
// the backend (no score matrix).
type Attention struct {
	Q, K, V, Out *Linear
	Heads        int
	HeadDim      int
	Causal       bool

	// NoContextGrad makes a cross-attention's Backward skip the context
	// gradient (for a caller whose context is an input that needs none, as
	// a LoRA trainer's text embeddings): dK and dV still give the K and V
	// projections their parameter gradients, but the products dK·Wk and
	// dV·Wv are not computed and dcontext comes back nil.
	NoContextGrad bool

	// cached by ForwardTrain: q, k, v (B, H, N, D), the attention output o
	// (B, H, Nq, D) and its lse (B, H, Nq)
	q, k, v, o, lse *tensor.Tensor
	cross           bool
}

// LoadAttention loads the four projections named by names from scope s.
func LoadAttention(s Scope, names AttentionNames, c AttentionConfig) (*Attention, error) {
	if c.Heads <= 0 || c.HeadDim <= 0 {
		return nil, fmt.Errorf("nn: attention %s: %d heads of width %d", s.Prefix(), c.Heads, c.HeadDim)
	}
	ctx := c.ContextDim
	if ctx == 0 {
		ctx = c.QueryDim
	}
	inner := c.Heads * c.HeadDim
	a := &Attention{Heads: c.Heads, HeadDim: c.HeadDim, Causal: c.Causal}
	var err error
	if a.Q, err = LoadLinear(s.Sub(names.Q), c.QueryDim, inner, c.QKVBias); err == nil {
		if a.K, err = LoadLinear(s.Sub(names.K), ctx, inner, c.QKVBias); err == nil {
			if a.V, err = LoadLinear(s.Sub(names.V), ctx, inner, c.QKVBias); err == nil {
				a.Out, err = LoadLinear(s.Sub(names.Out), inner, c.QueryDim, c.OutBias)
			}
		}
	}
	if err != nil {
		a.Free()
		return nil, err
	}
	return a, nil
}

// SetTrainable sets Trainable on the four projections.
func (a *Attention) SetTrainable(on bool) {
	for _, l := range a.linears() {
		l.Trainable = on
	}
}

func (a *Attention) linears() []*Linear {
	var out []*Linear
	for _, l := range []*Linear{a.Q, a.K, a.V, a.Out} {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// Forward returns the attention of x (B, Nq, QueryDim) over context
// (B, Nk, ContextDim), or over x itself when context is nil; out is
// (B, Nq, QueryDim).
func (a *Attention) Forward(x, context *tensor.Tensor) (*tensor.Tensor, error) {
	return a.forward(x, context, false)
}

// ForwardTrain is Forward that keeps what Backward needs.
func (a *Attention) ForwardTrain(x, context *tensor.Tensor) (*tensor.Tensor, error) {
	a.FreeCache()
	return a.forward(x, context, true)
}

func (a *Attention) linearForward(l *Linear, x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if train {
		return l.ForwardTrain(x)
	}
	return l.Forward(x)
}

func (a *Attention) forward(x, context *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if x.Rank() != 3 {
		return nil, fmt.Errorf("nn: attention: x is %s, want (B, N, C)", x.Shape())
	}
	kv := x
	if context != nil {
		if context.Rank() != 3 || context.Dim(0) != x.Dim(0) {
			return nil, fmt.Errorf("nn: attention: context is %s for x %s", context.Shape(), x.Shape())
		}
		kv = context
	}
	b := x.Backend()
	var q, k, v, o, lse *tensor.Tensor
	fail := func(err error) (*tensor.Tensor, error) {
		tensor.FreeAll(q, k, v, o, lse)
		return nil, err
	}
	var err error
	if q, err = a.project(a.Q, x, train); err != nil { // q is (B, H, Nq, D)
		return fail(err)
	}
	if k, err = a.project(a.K, kv, train); err != nil { // k is (B, H, Nk, D)
		return fail(err)
	}
	if v, err = a.project(a.V, kv, train); err != nil { // v is (B, H, Nk, D)
		return fail(err)
	}
	scale := float32(1 / math.Sqrt(float64(a.HeadDim)))
	if o, lse, err = b.Attention(q, k, v, scale, a.Causal); err != nil { // o is (B, H, Nq, D)
		return fail(err)
	}
	h, err := a.mergeHeads(o) // h is (B, Nq, H*D)
	if err != nil {
		return fail(err)
	}
	y, err := a.linearForward(a.Out, h, train) // y is (B, Nq, QueryDim)
	h.Free()
	if err != nil {
		return fail(err)
	}
	if train {
		a.q, a.k, a.v, a.o, a.lse, a.cross = q, k, v, o, lse, context != nil
	} else {
		tensor.FreeAll(q, k, v, o, lse)
	}
	return y, nil
}

// project applies l to x (B, N, C) and splits the heads: (B, H, N, D).
func (a *Attention) project(l *Linear, x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	p, err := a.linearForward(l, x, train) // p is (B, N, H*D)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	return a.splitHeads(p)
}

// splitHeads turns (B, N, H*D) into (B, H, N, D).
func (a *Attention) splitHeads(p *tensor.Tensor) (*tensor.Tensor, error) {
	r, err := p.Reshape(p.Dim(0), p.Dim(1), a.Heads, a.HeadDim) // (B, N, H, D)
	if err != nil {
		return nil, err
	}
	defer r.Free()
	return p.Backend().Permute(r, 0, 2, 1, 3)
}

// mergeHeads turns (B, H, N, D) into (B, N, H*D).
func (a *Attention) mergeHeads(o *tensor.Tensor) (*tensor.Tensor, error) {
	p, err := o.Backend().Permute(o, 0, 2, 1, 3) // (B, N, H, D)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	return p.Reshape(p.Dim(0), p.Dim(1), a.Heads*a.HeadDim)
}

// Backward returns dx (B, Nq, QueryDim) and, for cross-attention, dcontext
// (B, Nk, ContextDim) (nil for self-attention, whose context gradient is
// folded into dx), for dout (B, Nq, QueryDim). Trainable projections add
// their parameter gradients.
func (a *Attention) Backward(dout *tensor.Tensor) (dx, dcontext *tensor.Tensor, err error) {
	if a.q == nil {
		return nil, nil, fmt.Errorf("nn: attention backward without ForwardTrain")
	}
	b := dout.Backend()
	var dh, do, dq, dk, dv, t1, t2 *tensor.Tensor
	defer func() { tensor.FreeAll(dh, do, dq, dk, dv, t1, t2) }()
	if dh, err = a.Out.Backward(dout); err != nil { // dh is (B, Nq, H*D)
		return nil, nil, err
	}
	if do, err = a.splitHeads(dh); err != nil { // do is (B, H, Nq, D)
		return nil, nil, err
	}
	scale := float32(1 / math.Sqrt(float64(a.HeadDim)))
	if dq, dk, dv, err = b.AttentionBackward(do, a.q, a.k, a.v, a.o, a.lse, scale, a.Causal); err != nil {
		return nil, nil, err
	}
	back := func(l *Linear, d *tensor.Tensor) (*tensor.Tensor, error) {
		m, err := a.mergeHeads(d) // (B, N, H*D)
		if err != nil {
			return nil, err
		}
		defer m.Free()
		return l.Backward(m)
	}
	if dx, err = back(a.Q, dq); err != nil {
		return nil, nil, err
	}
	if a.cross && a.NoContextGrad {
		for _, p := range []struct {
			l *Linear
			d *tensor.Tensor
		}{{a.K, dk}, {a.V, dv}} {
			if !p.l.needsParamGrad() {
				continue
			}
			m, err := a.mergeHeads(p.d) // (B, Nk, H*D)
			if err == nil {
				err = p.l.BackwardParams(m)
				m.Free()
			}
			if err != nil {
				dx.Free()
				return nil, nil, err
			}
		}
		return dx, nil, nil
	}
	if t1, err = back(a.K, dk); err != nil {
		dx.Free()
		return nil, nil, err
	}
	if t2, err = back(a.V, dv); err != nil {
		dx.Free()
		return nil, nil, err
	}
	dc, err := b.Binary(tensor.Add, t1, t2) // d(context) = dk·Wk + dv·Wv
	if err != nil {
		dx.Free()
		return nil, nil, err
	}
	if a.cross {
		return dx, dc, nil
	}
	sum, err := b.Binary(tensor.Add, dx, dc)
	tensor.FreeAll(dx, dc)
	if err != nil {
		return nil, nil, err
	}
	return sum, nil, nil
}

// FreeCache releases what ForwardTrain kept, here and in the projections.
func (a *Attention) FreeCache() {
	release(&a.q, &a.k, &a.v, &a.o, &a.lse)
	for _, l := range a.linears() {
		l.FreeCache()
	}
}

// ZeroGrad frees the projections' accumulated gradients.
func (a *Attention) ZeroGrad() {
	for _, l := range a.linears() {
		l.ZeroGrad()
	}
}

// Free releases the parameters, gradients and caches.
func (a *Attention) Free() {
	release(&a.q, &a.k, &a.v, &a.o, &a.lse)
	for _, l := range a.linears() {
		l.Free()
	}
}
