package tensor

import "fmt"

// MemStats reports a backend's tensor memory in bytes.
type MemStats struct {
	InUse int64 // bytes held by live buffers now
	Peak  int64 // the most InUse has been since the backend opened or ResetPeak
}

// GradMask selects which gradients a Backward op computes; the ones not
// selected come back nil. For each op, X is the first (input) operand, W the
// weight or second operand and B the bias or shift.
type GradMask uint8

const (
	// GradX asks for the gradient of the input: MatMul's a, Conv2D's x, a norm's x, Binary's a.
	GradX GradMask = 1 << iota
	// GradW asks for the gradient of the weight: MatMul's b, Conv2D's w, a norm's gamma, Binary's b.
	GradW
	// GradB asks for the gradient of the bias: MatMul's and Conv2D's bias, a norm's beta.
	GradB
	// GradAll asks for every gradient.
	GradAll = GradX | GradW | GradB
)

// Has reports whether every gradient in g is selected in m.
func (m GradMask) Has(g GradMask) bool { return m&g == g }

// Act is a pointwise activation function.
type Act uint8

const (
	// SiLU is x * sigmoid(x) (torch.nn.SiLU).
	SiLU Act = iota
	// GELU is the exact x/2 * (1 + erf(x/sqrt 2)) (F.gelu, approximate="none").
	GELU
	// GELUTanh is x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) (approximate="tanh").
	GELUTanh
	// QuickGELU is x * sigmoid(1.702 x) (CLIP's quick_gelu).
	QuickGELU
)

// String returns the activation's name, e.g. "gelu_tanh".
func (a Act) String() string {
	switch a {
	case SiLU:
		return "silu"
	case GELU:
		return "gelu"
	case GELUTanh:
		return "gelu_tanh"
	case QuickGELU:
		return "quick_gelu"
	}
	return fmt.Sprintf("act(%d)", uint8(a))
}

// BinaryOp is an elementwise binary operation with numpy broadcasting.
type BinaryOp uint8

const (
	// Add is a + b.
	Add BinaryOp = iota
	// Sub is a - b.
	Sub
	// Mul is a * b.
	Mul
)

// String returns the operation's name: "add", "sub" or "mul".
func (o BinaryOp) String() string {
	switch o {
	case Add:
		return "add"
	case Sub:
		return "sub"
	case Mul:
		return "mul"
	}
	return fmt.Sprintf("binary(%d)", uint8(o))
}

// Conv2DParams are a 2-D convolution's stride and zero padding. The kernel
// size comes from the weight's shape. Padding may be asymmetric (the SDXL VAE
// encoder's downsample pads only bottom and right).
type Conv2DParams struct {
	Stride                               int // the same in both directions; 0 means 1
	PadTop, PadBottom, PadLeft, PadRight int // zero padding in pixels on each side
}

// ConvParams returns Conv2DParams with one stride and the same padding on
// every side, e.g. ConvParams(1, 1) for a 3x3 "same" convolution.
func ConvParams(stride, pad int) Conv2DParams {
	return Conv2DParams{Stride: stride, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
}

// StrideOr1 returns the stride, treating 0 as 1.
func (p Conv2DParams) StrideOr1() int {
	if p.Stride == 0 {
		return 1
	}
	return p.Stride
}

// Backend is a compute device: it allocates tensors and runs ops on them.
// Implementations: engine/cpu (reference) and engine/gl (OpenGL compute).
// A Backend is safe for use by one goroutine at a time unless its own
// documentation says more.
type Backend interface {
	// Name returns the short backend name: "cpu" or "gl".
	Name() string
	// Device returns a human description, e.g. the CPU model and threads or the GL renderer.
	Device() string
	// Upload copies data into a new tensor of the shape; dt F16 or BF16 packs
	// the values (round to nearest even) on upload.
	Upload(data []float32, shape Shape, dt DType) (*Tensor, error)
	// Zeros returns a new tensor of the shape filled with zeros.
	Zeros(shape Shape, dt DType) (*Tensor, error)
	// Download copies the tensor's values back to the host, unpacking F16/BF16 to float32.
	Download(t *Tensor) ([]float32, error)
	// Memory reports the bytes held by live tensors and the peak.
	Memory() MemStats
	// ResetPeak sets Peak to the current InUse.
	ResetPeak()
	// MaxTensorBytes returns the largest tensor, in bytes, one op of this
	// backend takes (GL: what one shader-storage binding may address), or 0
	// when the backend sets no limit of its own. Callers that size work —
	// VAE tiling, benchmarks — ask here instead of knowing the backend.
	MaxTensorBytes() int64
	// Close releases the backend; tensors still alive become unusable.
	Close() error
	Ops
}

// Ops are the primitive ops every backend implements, each forward beside its
// backward. Unless stated otherwise every operand and result is F32, and the
// result is a new tensor the caller must Free. Shapes are written as in
// `x is (N, C, H, W)`; "..." means any number of leading dimensions.
type Ops interface {
	// MatMul returns a·b (+ bias). a is (..., M, K), or (..., K, M) with transA.
	// b is (..., K, N), or (..., N, K) with transB; b is either batched with
	// exactly a's leading dimensions or rank 2 and shared by every batch (then
	// a's leading dimensions are flattened into M). b may be F16/BF16.
	// bias is (N) or nil. out is (..., M, N).
	MatMul(a, b, bias *Tensor, transA, transB bool) (*Tensor, error)
	// MatMulBackward returns da (a's shape), db (b's shape, summed over the
	// batch when b is shared; F32 even when b is F16) and dbias (N) for
	// dout (..., M, N), as selected by need (GradX, GradW, GradB).
	MatMulBackward(dout, a, b *Tensor, transA, transB bool, need GradMask) (da, db, dbias *Tensor, err error)

	// Conv2D is a 2-D cross-correlation like torch's F.conv2d. x is
	// (N, Cin, H, W); w is (Cout, Cin, kh, kw), F32 or F16/BF16; bias is
	// (Cout) or nil. out is (N, Cout, Ho, Wo) with
	// Ho = (H + PadTop + PadBottom - kh)/stride + 1 and likewise Wo.
	Conv2D(x, w, bias *Tensor, p Conv2DParams) (*Tensor, error)
	// Conv2DBackward returns dx (N, Cin, H, W), dw (Cout, Cin, kh, kw) F32 and
	// dbias (Cout) for dout (N, Cout, Ho, Wo), as selected by need.
	Conv2DBackward(dout, x, w *Tensor, p Conv2DParams, need GradMask) (dx, dw, dbias *Tensor, err error)

	// GroupNorm normalizes x (N, C, ...) over each group of C/groups channels
	// and all trailing elements (biased variance, then rsqrt(var + eps)), then
	// applies the affine gamma, beta (C) when they are non-nil (both or neither).
	// out has x's shape.
	GroupNorm(x, gamma, beta *Tensor, groups int, eps float32) (*Tensor, error)
	// GroupNormBackward returns dx (x's shape), dgamma (C) and dbeta (C) for
	// dout (x's shape), as selected by need; gamma may be nil (no affine,
	// then GradW and GradB are errors). Statistics are recomputed from x.
	GroupNormBackward(dout, x, gamma *Tensor, groups int, eps float32, need GradMask) (dx, dgamma, dbeta *Tensor, err error)

	// LayerNorm normalizes x (..., C) over the last dimension (biased
	// variance, eps inside the rsqrt) with the optional affine gamma, beta (C).
	LayerNorm(x, gamma, beta *Tensor, eps float32) (*Tensor, error)
	// LayerNormBackward returns dx (..., C), dgamma (C) and dbeta (C) for dout
	// (..., C), as selected by need. Statistics are recomputed from x.
	LayerNormBackward(dout, x, gamma *Tensor, eps float32, need GradMask) (dx, dgamma, dbeta *Tensor, err error)

	// Softmax returns softmax over the last dimension of x (..., C).
	Softmax(x *Tensor) (*Tensor, error)
	// SoftmaxBackward returns dx = y * (dout - sum(dout * y)) given the
	// forward output y (..., C) and dout (..., C).
	SoftmaxBackward(dout, y *Tensor) (*Tensor, error)

	// Attention is fused scaled-dot-product attention, never materializing the
	// (Nq, Nk) score matrix on a device: out = softmax(scale * q·kᵀ) · v.
	// q is (B, H, Nq, D); k and v are (B, H, Nk, D); out is (B, H, Nq, D);
	// lse (B, H, Nq) is the log-sum-exp of each row of scale * q·kᵀ, kept
	// for the backward. With causal, query i sees keys j <= i only (torch's
	// is_causal, top-left aligned; CLIP's text encoders use it).
	Attention(q, k, v *Tensor, scale float32, causal bool) (out, lse *Tensor, err error)
	// AttentionBackward returns dq, dk, dv (shapes of q, k, v) for dout
	// (B, H, Nq, D), recomputing the probabilities from q, k and lse; out is
	// the forward output (used for the rowwise dout·out term).
	AttentionBackward(dout, q, k, v, out, lse *Tensor, scale float32, causal bool) (dq, dk, dv *Tensor, err error)

	// Activation applies f elementwise; out has x's shape.
	Activation(x *Tensor, f Act) (*Tensor, error)
	// ActivationBackward returns dx = dout * f'(x).
	ActivationBackward(dout, x *Tensor, f Act) (*Tensor, error)
	// GEGLU splits the last dimension of x (..., 2F) into halves h = x[..., :F]
	// and g = x[..., F:] and returns h * f(g) (..., F): diffusers' GEGLU is
	// `hidden_states, gate = proj(x).chunk(2, dim=-1); hidden_states * gelu(gate)`,
	// i.e. f = GELU.
	GEGLU(x *Tensor, f Act) (*Tensor, error)
	// GEGLUBackward returns dx (..., 2F) for dout (..., F).
	GEGLUBackward(dout, x *Tensor, f Act) (*Tensor, error)

	// Binary returns a op b with numpy broadcasting; out has the broadcast shape.
	Binary(op BinaryOp, a, b *Tensor) (*Tensor, error)
	// BinaryBackward returns da (a's shape) and db (b's shape) for dout (the
	// broadcast shape), summed over broadcast dimensions, as selected by need
	// (GradX for a, GradW for b).
	BinaryBackward(op BinaryOp, dout, a, b *Tensor, need GradMask) (da, db *Tensor, err error)
	// Scale returns s * x; its backward is Scale(dout, s).
	Scale(x *Tensor, s float32) (*Tensor, error)
	// AddScalar returns x + s; its backward is dout itself.
	AddScalar(x *Tensor, s float32) (*Tensor, error)
	// ReduceTo sums x over the dimensions where shape is broadcast into x's
	// shape (numpy rules: shape may have fewer leading dims and 1s), returning
	// a tensor of shape. It is BroadcastTo's backward and the base of Sum/Mean.
	ReduceTo(x *Tensor, shape Shape) (*Tensor, error)
	// BroadcastTo repeats x along broadcast dimensions to shape (numpy rules);
	// its backward is ReduceTo.
	BroadcastTo(x *Tensor, shape Shape) (*Tensor, error)

	// Concat joins tensors of equal shape except along axis; its backward is Split.
	Concat(axis int, ts ...*Tensor) (*Tensor, error)
	// Split cuts x along axis into pieces of the given sizes (summing to
	// x's size there); its backward is Concat.
	Split(x *Tensor, axis int, sizes ...int) ([]*Tensor, error)
	// Slice returns x[..., start:end, ...] along axis.
	Slice(x *Tensor, axis, start, end int) (*Tensor, error)
	// SliceBackward returns zeros of shape (the forward input's) with dout
	// written at [start:start+dout.Dim(axis)] along axis.
	SliceBackward(dout *Tensor, shape Shape, axis, start int) (*Tensor, error)
	// Permute reorders the dimensions: out.Dim(i) = x.Dim(perm[i]), copied
	// contiguous. Its backward is Permute with InversePerm(perm).
	Permute(x *Tensor, perm ...int) (*Tensor, error)

	// Upsample2x is nearest-neighbour 2x upsampling: x is (N, C, H, W), out
	// is (N, C, 2H, 2W).
	Upsample2x(x *Tensor) (*Tensor, error)
	// Upsample2xBackward sums each 2x2 block of dout (N, C, 2H, 2W) into
	// dx (N, C, H, W).
	Upsample2xBackward(dout *Tensor) (*Tensor, error)

	// TimestepEmbedding is diffusers' get_timestep_embedding with scale 1 and
	// max_period 10000: t is (N), out is (N, dim) = [sin(t·f), cos(t·f)]
	// with f_i = exp(-ln(10000) i / (dim/2 - freqShift)), halves swapped when
	// flipSinToCos, zero-padded when dim is odd. SDXL's UNet uses
	// flipSinToCos=true, freqShift=0. It has no backward (timesteps are data).
	TimestepEmbedding(t *Tensor, dim int, flipSinToCos bool, freqShift float32) (*Tensor, error)

	// MSELoss returns mean((pred - target)^2) as a (1) tensor; pred and
	// target have the same shape.
	MSELoss(pred, target *Tensor) (*Tensor, error)
	// MSELossBackward returns dpred = dout * 2 (pred - target) / numel for
	// the (1) tensor dout.
	MSELossBackward(dout, pred, target *Tensor) (*Tensor, error)

	// Cast converts x to dtype dt (F32, F16, BF16), rounding to nearest even.
	Cast(x *Tensor, dt DType) (*Tensor, error)
}

// Syncer is implemented by backends whose ops run asynchronously (GL): Sync
// returns when every op issued so far has finished, with the first error of
// any of them. Benchmarks call it, when present, before stopping the clock.
type Syncer interface {
	Sync() error
}
