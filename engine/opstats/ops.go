package opstats

import "lorastudio/engine/tensor"

// The tensor.Backend methods: each forwards to the wrapped backend, times
// the call and adopts the tensors it returns.

// Name returns the wrapped backend's name.
func (ob *Backend) Name() string { return ob.inner.Name() }

// Device returns the wrapped backend's description.
func (ob *Backend) Device() string { return ob.inner.Device() }

// Memory returns the wrapped backend's memory figures.
func (ob *Backend) Memory() tensor.MemStats { return ob.inner.Memory() }

// ResetPeak resets the wrapped backend's peak.
func (ob *Backend) ResetPeak() { ob.inner.ResetPeak() }

// MaxTensorBytes returns the wrapped backend's per-tensor limit.
func (ob *Backend) MaxTensorBytes() int64 { return ob.inner.MaxTensorBytes() }

// Close closes the wrapped backend.
func (ob *Backend) Close() error { return ob.inner.Close() }

// Upload forwards to the wrapped backend's Upload.
func (ob *Backend) Upload(data []float32, shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	t0 := ob.begin()
	t, err := ob.inner.Upload(data, shape, dt)
	return t, ob.end("Upload", t0, err, t)
}

// Zeros forwards to the wrapped backend's Zeros.
func (ob *Backend) Zeros(shape tensor.Shape, dt tensor.DType) (*tensor.Tensor, error) {
	t0 := ob.begin()
	t, err := ob.inner.Zeros(shape, dt)
	return t, ob.end("Zeros", t0, err, t)
}

// Download forwards to the wrapped backend's Download.
func (ob *Backend) Download(t *tensor.Tensor) ([]float32, error) {
	t0 := ob.begin()
	v, err := ob.inner.Download(t)
	return v, ob.end("Download", t0, err)
}

// MatMul forwards to the wrapped backend's MatMul and counts it as matmul.
func (ob *Backend) MatMul(a, b, bias *tensor.Tensor, transA, transB bool) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.MatMul(a, b, bias, transA, transB)
	return out, ob.end("MatMul", t0, err, out)
}

// MatMulBackward forwards to the wrapped backend's MatMulBackward and counts it as matmul.
func (ob *Backend) MatMulBackward(dout, a, b *tensor.Tensor, transA, transB bool, need tensor.GradMask) (da, db, dbias *tensor.Tensor, err error) {
	t0 := ob.begin()
	da, db, dbias, err = ob.inner.MatMulBackward(dout, a, b, transA, transB, need)
	return da, db, dbias, ob.end("MatMulBackward", t0, err, da, db, dbias)
}

// Conv2D forwards to the wrapped backend's Conv2D and counts it as conv.
func (ob *Backend) Conv2D(x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Conv2D(x, w, bias, p)
	return out, ob.end("Conv2D", t0, err, out)
}

// Conv2DBackward forwards to the wrapped backend's Conv2DBackward and counts it as conv.
func (ob *Backend) Conv2DBackward(dout, x, w *tensor.Tensor, p tensor.Conv2DParams, need tensor.GradMask) (dx, dw, dbias *tensor.Tensor, err error) {
	t0 := ob.begin()
	dx, dw, dbias, err = ob.inner.Conv2DBackward(dout, x, w, p, need)
	return dx, dw, dbias, ob.end("Conv2DBackward", t0, err, dx, dw, dbias)
}

// GroupNorm forwards to the wrapped backend's GroupNorm and counts it as norm.
func (ob *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.GroupNorm(x, gamma, beta, groups, eps)
	return out, ob.end("GroupNorm", t0, err, out)
}

// GroupNormBackward forwards to the wrapped backend's GroupNormBackward and counts it as norm.
func (ob *Backend) GroupNormBackward(dout, x, gamma *tensor.Tensor, groups int, eps float32, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	t0 := ob.begin()
	dx, dgamma, dbeta, err = ob.inner.GroupNormBackward(dout, x, gamma, groups, eps, need)
	return dx, dgamma, dbeta, ob.end("GroupNormBackward", t0, err, dx, dgamma, dbeta)
}

// LayerNorm forwards to the wrapped backend's LayerNorm and counts it as norm.
func (ob *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.LayerNorm(x, gamma, beta, eps)
	return out, ob.end("LayerNorm", t0, err, out)
}

// LayerNormBackward forwards to the wrapped backend's LayerNormBackward and counts it as norm.
func (ob *Backend) LayerNormBackward(dout, x, gamma *tensor.Tensor, eps float32, need tensor.GradMask) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	t0 := ob.begin()
	dx, dgamma, dbeta, err = ob.inner.LayerNormBackward(dout, x, gamma, eps, need)
	return dx, dgamma, dbeta, ob.end("LayerNormBackward", t0, err, dx, dgamma, dbeta)
}

// Softmax forwards to the wrapped backend's Softmax and counts it as activation.
func (ob *Backend) Softmax(x *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Softmax(x)
	return out, ob.end("Softmax", t0, err, out)
}

// SoftmaxBackward forwards to the wrapped backend's SoftmaxBackward and counts it as activation.
func (ob *Backend) SoftmaxBackward(dout, y *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.SoftmaxBackward(dout, y)
	return out, ob.end("SoftmaxBackward", t0, err, out)
}

// Attention forwards to the wrapped backend's Attention and counts it as attention.
func (ob *Backend) Attention(q, k, v *tensor.Tensor, scale float32, causal bool) (out, lse *tensor.Tensor, err error) {
	t0 := ob.begin()
	out, lse, err = ob.inner.Attention(q, k, v, scale, causal)
	return out, lse, ob.end("Attention", t0, err, out, lse)
}

// AttentionBackward forwards to the wrapped backend's AttentionBackward and counts it as attention.
func (ob *Backend) AttentionBackward(dout, q, k, v, out, lse *tensor.Tensor, scale float32, causal bool) (dq, dk, dv *tensor.Tensor, err error) {
	t0 := ob.begin()
	dq, dk, dv, err = ob.inner.AttentionBackward(dout, q, k, v, out, lse, scale, causal)
	return dq, dk, dv, ob.end("AttentionBackward", t0, err, dq, dk, dv)
}

// Activation forwards to the wrapped backend's Activation and counts it as activation.
func (ob *Backend) Activation(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Activation(x, f)
	return out, ob.end("Activation", t0, err, out)
}

// ActivationBackward forwards to the wrapped backend's ActivationBackward and counts it as activation.
func (ob *Backend) ActivationBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.ActivationBackward(dout, x, f)
	return out, ob.end("ActivationBackward", t0, err, out)
}

// GEGLU forwards to the wrapped backend's GEGLU and counts it as activation.
func (ob *Backend) GEGLU(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.GEGLU(x, f)
	return out, ob.end("GEGLU", t0, err, out)
}

// GEGLUBackward forwards to the wrapped backend's GEGLUBackward and counts it as activation.
func (ob *Backend) GEGLUBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.GEGLUBackward(dout, x, f)
	return out, ob.end("GEGLUBackward", t0, err, out)
}

// Binary forwards to the wrapped backend's Binary and counts it as elementwise.
func (ob *Backend) Binary(op tensor.BinaryOp, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Binary(op, a, b)
	return out, ob.end("Binary", t0, err, out)
}

// BinaryBackward forwards to the wrapped backend's BinaryBackward and counts it as elementwise.
func (ob *Backend) BinaryBackward(op tensor.BinaryOp, dout, a, b *tensor.Tensor, need tensor.GradMask) (da, db *tensor.Tensor, err error) {
	t0 := ob.begin()
	da, db, err = ob.inner.BinaryBackward(op, dout, a, b, need)
	return da, db, ob.end("BinaryBackward", t0, err, da, db)
}

// Scale forwards to the wrapped backend's Scale and counts it as elementwise.
func (ob *Backend) Scale(x *tensor.Tensor, s float32) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Scale(x, s)
	return out, ob.end("Scale", t0, err, out)
}

// AddScalar forwards to the wrapped backend's AddScalar and counts it as elementwise.
func (ob *Backend) AddScalar(x *tensor.Tensor, s float32) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.AddScalar(x, s)
	return out, ob.end("AddScalar", t0, err, out)
}

// ReduceTo forwards to the wrapped backend's ReduceTo and counts it as elementwise.
func (ob *Backend) ReduceTo(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.ReduceTo(x, shape)
	return out, ob.end("ReduceTo", t0, err, out)
}

// BroadcastTo forwards to the wrapped backend's BroadcastTo and counts it as copy.
func (ob *Backend) BroadcastTo(x *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.BroadcastTo(x, shape)
	return out, ob.end("BroadcastTo", t0, err, out)
}

// Concat forwards to the wrapped backend's Concat and counts it as copy.
func (ob *Backend) Concat(axis int, ts ...*tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Concat(axis, ts...)
	return out, ob.end("Concat", t0, err, out)
}

// Split forwards to the wrapped backend's Split and counts it as copy.
func (ob *Backend) Split(x *tensor.Tensor, axis int, sizes ...int) ([]*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Split(x, axis, sizes...)
	return out, ob.end("Split", t0, err, out...)
}

// Slice forwards to the wrapped backend's Slice and counts it as copy.
func (ob *Backend) Slice(x *tensor.Tensor, axis, start, end int) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Slice(x, axis, start, end)
	return out, ob.end("Slice", t0, err, out)
}

// SliceBackward forwards to the wrapped backend's SliceBackward and counts it as copy.
func (ob *Backend) SliceBackward(dout *tensor.Tensor, shape tensor.Shape, axis, start int) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.SliceBackward(dout, shape, axis, start)
	return out, ob.end("SliceBackward", t0, err, out)
}

// Permute forwards to the wrapped backend's Permute and counts it as copy.
func (ob *Backend) Permute(x *tensor.Tensor, perm ...int) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Permute(x, perm...)
	return out, ob.end("Permute", t0, err, out)
}

// Upsample2x forwards to the wrapped backend's Upsample2x and counts it as copy.
func (ob *Backend) Upsample2x(x *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Upsample2x(x)
	return out, ob.end("Upsample2x", t0, err, out)
}

// Upsample2xBackward forwards to the wrapped backend's Upsample2xBackward and counts it as copy.
func (ob *Backend) Upsample2xBackward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Upsample2xBackward(dout)
	return out, ob.end("Upsample2xBackward", t0, err, out)
}

// TimestepEmbedding forwards to the wrapped backend's TimestepEmbedding and counts it as other.
func (ob *Backend) TimestepEmbedding(t *tensor.Tensor, dim int, flipSinToCos bool, freqShift float32) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.TimestepEmbedding(t, dim, flipSinToCos, freqShift)
	return out, ob.end("TimestepEmbedding", t0, err, out)
}

// MSELoss forwards to the wrapped backend's MSELoss and counts it as other.
func (ob *Backend) MSELoss(pred, target *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.MSELoss(pred, target)
	return out, ob.end("MSELoss", t0, err, out)
}

// MSELossBackward forwards to the wrapped backend's MSELossBackward and counts it as other.
func (ob *Backend) MSELossBackward(dout, pred, target *tensor.Tensor) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.MSELossBackward(dout, pred, target)
	return out, ob.end("MSELossBackward", t0, err, out)
}

// Cast forwards to the wrapped backend's Cast and counts it as cast.
func (ob *Backend) Cast(x *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	t0 := ob.begin()
	out, err := ob.inner.Cast(x, dt)
	return out, ob.end("Cast", t0, err, out)
}
