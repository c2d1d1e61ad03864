package gl

import (
	"lorastudio/engine/tensor"
	"lorastudio/shaders"
)

// attnDims validates q (B, H, Nq, D), k and v (B, H, Nk, D) and returns
// BH, Nq, Nk, D.
func (b *Backend) attnDims(op string, q, k, v *tensor.Tensor) (bh, nq, nk, d int, err error) {
	qs, ks, vs := q.Shape(), k.Shape(), v.Shape()
	if len(qs) != 4 || len(ks) != 4 || !ks.Equal(vs) || qs[0] != ks[0] || qs[1] != ks[1] || qs[3] != ks[3] {
		return 0, 0, 0, 0, tensor.Errorf(op, tensor.ErrShape, "q is %s, k is %s, v is %s: want (B, H, Nq, D) and (B, H, Nk, D)", qs, ks, vs)
	}
	d = qs[3]
	if d%4 != 0 {
		return 0, 0, 0, 0, tensor.Errorf(op, tensor.ErrShape, "head size %d: the GL kernels read rows as vec4, so it must be a multiple of 4", d)
	}
	if attnTile(d, b.dev.limits.MaxSharedBytes) < 1 {
		return 0, 0, 0, 0, tensor.Errorf(op, tensor.ErrArg, "head size %d: two rows of it do not fit the device's %d bytes of shared memory", d, b.dev.limits.MaxSharedBytes)
	}
	if qs[0]*qs[1] > b.dev.limits.MaxGroups[1] {
		return 0, 0, 0, 0, tensor.Errorf(op, tensor.ErrShape, "B*H = %d exceeds %d work groups", qs[0]*qs[1], b.dev.limits.MaxGroups[1])
	}
	return qs[0] * qs[1], qs[2], ks[2], d, nil
}

// Attention is fused attention (shaders/gl/attention_forward.comp): online
// softmax over key tiles, no (Nq, Nk) matrix; lse is kept for the backward.
func (b *Backend) Attention(q, k, v *tensor.Tensor, scale float32, causal bool) (out, lse *tensor.Tensor, err error) {
	const op = "attention"
	if err := b.check(op, q, k, v); err != nil {
		return nil, nil, err
	}
	if err := tensor.CheckF32(op, []string{"q", "k", "v"}, q, k, v); err != nil {
		return nil, nil, err
	}
	bh, nq, nk, d, err := b.attnDims(op, q, k, v)
	if err != nil {
		return nil, nil, err
	}
	c := 0
	if causal {
		c = 1
	}
	qs := q.Shape()
	err = b.call(op, func() error {
		in, err := bufs(q, k, v)
		if err != nil {
			return err
		}
		o, ob, err := b.alloc(qs, tensor.F32)
		if err != nil {
			return err
		}
		l, lb, err := b.alloc(qs[:3], tensor.F32)
		if err != nil {
			o.Free()
			return err
		}
		err = b.dev.run(launch{kernel: "attention_forward", defines: b.dev.attnDefines(d),
			bufs: []*buffer{in[0], in[1], in[2], ob, lb}, p: i32(nq, nk, c), f: []float32{scale}, groups: [3]int{(nq + 63) / 64, bh, 1}})
		if err != nil {
			o.Free()
			l.Free()
			return err
		}
		out, lse = o, l
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, lse, nil
}

// AttentionBackward returns dq, dk, dv by recomputation from q, k and lse
// (attention_backward_dq.comp, then attention_backward_dkv.comp).
func (b *Backend) AttentionBackward(dout, q, k, v, out, lse *tensor.Tensor, scale float32, causal bool) (dq, dk, dv *tensor.Tensor, err error) {
	const op = "attention backward"
	if err := b.check(op, dout, q, k, v, out, lse); err != nil {
		return nil, nil, nil, err
	}
	if err := tensor.CheckF32(op, []string{"dout", "q", "k", "v", "out", "lse"}, dout, q, k, v, out, lse); err != nil {
		return nil, nil, nil, err
	}
	bh, nq, nk, d, err := b.attnDims(op, q, k, v)
	if err != nil {
		return nil, nil, nil, err
	}
	qs := q.Shape()
	if !dout.Shape().Equal(qs) || !out.Shape().Equal(qs) || !lse.Shape().Equal(qs[:3]) {
		return nil, nil, nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, out is %s, lse is %s for q %s", dout.Shape(), out.Shape(), lse.Shape(), qs)
	}
	c := 0
	if causal {
		c = 1
	}
	def := b.dev.attnDefines(d)
	err = b.call(op, func() error {
		in, err := bufs(q, k, v, dout, out, lse)
		if err != nil {
			return err
		}
		var made []*tensor.Tensor
		fail := func(err error) error {
			tensor.FreeAll(made...)
			return err
		}
		tq, gq, err := b.alloc(qs, tensor.F32)
		if err != nil {
			return err
		}
		made = append(made, tq)
		tk, gk, err := b.alloc(k.Shape(), tensor.F32)
		if err != nil {
			return fail(err)
		}
		made = append(made, tk)
		tv, gv, err := b.alloc(v.Shape(), tensor.F32)
		if err != nil {
			return fail(err)
		}
		made = append(made, tv)
		delta, err := b.dev.pool.alloc(4 * bh * nq)
		if err != nil {
			return fail(err)
		}
		defer b.dev.pool.release(delta)
		p := i32(nq, nk, c)
		f := []float32{scale}
		if err := b.dev.run(launch{kernel: "attention_backward_dq", defines: def,
			bufs: []*buffer{in[0], in[1], in[2], in[3], in[4], in[5], gq, delta}, p: p, f: f, groups: [3]int{(nq + 63) / 64, bh, 1}}); err != nil {
			return fail(err)
		}
		if err := b.dev.run(launch{kernel: "attention_backward_dkv", defines: def,
			bufs: []*buffer{in[0], in[1], in[2], in[3], in[5], delta, gk, gv}, p: p, f: f, groups: [3]int{(nk + 63) / 64, bh, 1}}); err != nil {
			return fail(err)
		}
		dq, dk, dv = tq, tk, tv
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return dq, dk, dv, nil
}

// attnTile is how many rows of a head of size d the attention kernels stage
// per tile (shaders.AttentionTile: the Metal kernels are generated with it).
func attnTile(d, sharedBytes int) int { return shaders.AttentionTile(d, sharedBytes) }

// attnDefines are the attention kernels' defines: the head size D and the
// tile sizes TK (keys) and TQ (queries).
func (d *Device) attnDefines(headSize int) map[string]string {
	return shaders.AttentionDefines(headSize, d.limits.MaxSharedBytes)
}
