package cpu

import "lorastudio/engine/tensor"

// Upsample2x is nearest 2x upsampling of x (N, C, H, W) to (N, C, 2H, 2W).
func (b *Backend) Upsample2x(x *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "upsample2x"
	v, err := b.f32s(op, []string{"x"}, x)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "x is %s, want (N, C, H, W)", xs)
	}
	H, W := xs[2], xs[3]
	out, ov, err := b.newF32Dirty(op, tensor.Shape{xs[0], xs[1], 2 * H, 2 * W})
	if err != nil {
		return nil, err
	}
	xv := v[0]
	// out[nc, oh, ow] = x[nc, oh/2, ow/2]
	parallelFor(xs[0]*xs[1]*2*H, 2*W, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			nc, oh := r/(2*H), r%(2*H)
			src := xv[(nc*H+oh/2)*W:]
			dst := ov[r*2*W : (r+1)*2*W]
			for ow := range dst {
				dst[ow] = src[ow/2]
			}
		}
	})
	return out, nil
}

// Upsample2xBackward sums each 2x2 block of dout (N, C, 2H, 2W) into (N, C, H, W).
func (b *Backend) Upsample2xBackward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "upsample2x backward"
	v, err := b.f32s(op, []string{"dout"}, dout)
	if err != nil {
		return nil, err
	}
	ds := dout.Shape()
	if len(ds) != 4 || ds[2]%2 != 0 || ds[3]%2 != 0 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "dout is %s, want (N, C, 2H, 2W)", ds)
	}
	H, W := ds[2]/2, ds[3]/2
	out, ov, err := b.newF32(op, tensor.Shape{ds[0], ds[1], H, W})
	if err != nil {
		return nil, err
	}
	dv := v[0]
	parallelFor(ds[0]*ds[1]*H, W, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			nc, h := r/H, r%H
			r0 := dv[(nc*2*H+2*h)*2*W:]
			r1 := r0[2*W:]
			for w := 0; w < W; w++ {
				ov[r*W+w] = r0[2*w] + r0[2*w+1] + r1[2*w] + r1[2*w+1]
			}
		}
	})
	return out, nil
}
